//! `quantize`'s flags: the package, the imagery it is calibrated and checked on, the sample, and
//! the gate.

use std::path::PathBuf;

use clap::Args;

use super::values::{AccuracyLoss, BatchSize, IntraOpThreads, MinAgreement, MinSpeedup, SampleSize};

/// `quantize` options.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The fp32 package: .dlpk or .emd, ONNX or arcgis.learn FeatureClassifier.
    pub model: PathBuf,
    /// The raster to calibrate on: the user's own imagery, read as a run reads it.
    #[arg(short = 'r', long, value_name = "RASTER")]
    pub raster: String,
    /// Features over the raster; a seeded sample spread over the raster gives the chips.
    #[arg(short = 'f', long, value_name = "FEATURES")]
    pub features: String,
    /// The int8 package to write (.dlpk).
    #[arg(short = 'o', long, value_name = "OUT.dlpk")]
    pub output: PathBuf,
    /// Layer of the features (needed when the source has several).
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Attribute filter on the features (as ogr2ogr -where).
    #[arg(long = "where", value_name = "EXPR")]
    pub where_clause: Option<String>,
    /// Chips the activation ranges are measured on.
    #[arg(long, value_name = "N", default_value = "256")]
    pub calibration: SampleSize,
    /// Chips held out (no feature in both samples) for the gate.
    #[arg(long, value_name = "N", default_value = "256")]
    pub held_out: SampleSize,
    /// Seed of the sample.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Least share of label decisions the int8 model must keep on the held-out chips.
    #[arg(long, value_name = "SHARE", default_value = "0.99")]
    pub min_agreement: MinAgreement,
    /// Least end-to-end speed-up (int8 over fp32, chip cutting included) the int8 model must
    /// bring; 0 to write it whatever its speed.
    #[arg(long, value_name = "FACTOR", default_value = "1.2")]
    pub min_speedup: MinSpeedup,
    /// Field of the features holding each one's true class (by name or `Value`): the gate then
    /// also compares fp32 and int8 accuracy against it on the held-out chips (single-label models).
    #[arg(long, value_name = "FIELD")]
    pub truth_field: Option<String>,
    /// With --truth-field: most percentage points of accuracy the int8 model may lose against
    /// fp32's on the held-out chips.
    #[arg(long, value_name = "POINTS", default_value = "1", requires = "truth_field")]
    pub max_accuracy_loss: AccuracyLoss,
    /// Chips per inference batch (default: the model's batch_size, as a run's).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<BatchSize>,
    /// ONNX Runtime threads (default: its own choice, as a run's).
    #[arg(long, value_name = "N")]
    pub intra_op_threads: Option<IntraOpThreads>,
    /// Replace the output if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
}
