//! The command line as typed ("low" arguments, as ripgrep calls them): subcommands and their
//! flags, parsed by clap into typed values ([`values`]) with no checks between flags. The main
//! command's flags ([`classify::ClassifyArgs`]) are turned into one validated plan by the run's
//! plan before any work starts; each subcommand's flags go to its function in `commands`.
//!
//! Each flag of the main command maps to a parameter of Esri's "Classify Objects Using Deep
//! Learning" tool (named in its help).

pub mod classify;
pub mod quantize;
pub mod values;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use classify::ClassifyArgs;
pub use quantize::QuantizeArgs;

/// Classify objects in rasters with Esri deep learning packages (.dlpk/.emd with an ONNX
/// model), like ArcGIS "Classify Objects Using Deep Learning", without ArcGIS.
#[derive(Debug, Parser)]
#[command(
    name = "classify-objects",
    version,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
#[command(
    after_help = "Examples:\n  classify-objects -r image.tif -m model.dlpk -f buildings.gpkg -o classified.gpkg\n  classify-objects -r image.tif -m model.dlpk -f parcels.gpkg --where \"landuse = 'forest'\" --t-srs EPSG:4326 -o forest.gpkg\n  classify-objects -r photo.jpg -m model.dlpk -o labels.csv\n  classify-objects inspect model.dlpk\n  classify-objects convert arcgis_learn_model.dlpk -o model_onnx.dlpk\n  classify-objects quantize model.dlpk -r image.tif -f buildings.gpkg -o model_int8.dlpk\n  classify-objects completions bash > ~/.local/share/bash-completion/completions/classify-objects"
)]
pub struct Cli {
    /// Print the versions of classify-objects (with its git commit), GDAL, PROJ and ONNX Runtime
    /// (with the library it loads), and exit.
    #[arg(short = 'V', long, exclusive = true)]
    pub version: bool,
    /// A subcommand; without one, classify.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the classification run.
    #[command(flatten)]
    pub classify: ClassifyArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what a model package holds: tensors, chip size, bands, classes, chip rules,
    /// accepted model arguments.
    Inspect(InspectArgs),
    /// Write a .dlpk package from a plain ONNX classifier and its class names.
    Pack(PackArgs),
    /// Convert an arcgis.learn FeatureClassifier package (PyTorch .pth weights) into an ONNX
    /// package, once, so that later runs skip the conversion.
    Convert(ConvertArgs),
    /// Write an int8 package calibrated on your own imagery, if it keeps the fp32 labels
    /// (--min-agreement), is faster (--min-speedup) and, with --truth-field, keeps the accuracy
    /// (--max-accuracy-loss); otherwise say why, with the figures.
    Quantize(QuantizeArgs),
    /// List the objects whose label differs between two outputs (matched by SourceOID); exit
    /// status 0 when none changed, 1 when some did, 2 on error.
    Compare(CompareArgs),
    /// Join the outputs of `--shard 0/N` ... `--shard N-1/N` runs, given in shard order, into
    /// exactly what one run would have written.
    Merge(MergeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to standard
    /// output, e.g. `classify-objects completions bash > /etc/bash_completion.d/classify-objects`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to standard output, e.g.
    /// `classify-objects man > /usr/local/share/man/man1/classify-objects.1`.
    Man,
}

/// `completions` options.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `compare` options.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier output.
    pub a: PathBuf,
    /// The later output.
    pub b: PathBuf,
    /// Name of the label field in both.
    #[arg(long, value_name = "NAME", default_value = "ClassLabel")]
    pub label_field: String,
    /// Layer to compare in A, and in B unless --layer2 is given (default: the one layer with a
    /// run's columns).
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Layer to compare in B, when it differs from A's.
    #[arg(long, value_name = "NAME")]
    pub layer2: Option<String>,
    /// Print JSON instead of text (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `merge` options.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard outputs, in shard order (0 to N-1).
    #[arg(required = true, num_args = 1..)]
    pub shards: Vec<PathBuf>,
    /// The merged output.
    #[arg(short = 'o', long, value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Replace the output if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

/// `pack` options.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// The ONNX classifier: input [batch, channels, height, width] float32, output [batch, classes].
    #[arg(long, value_name = "MODEL.onnx")]
    pub onnx: PathBuf,
    /// Class names in model output order, comma-separated.
    #[arg(long, value_name = "A,B,C", required = true)]
    pub classes: String,
    /// Chip width and height in pixels (default: the model's fixed input size).
    #[arg(long, value_name = "PIXELS")]
    pub chip_size: Option<usize>,
    /// Chip width, if not square.
    #[arg(long, value_name = "PIXELS")]
    pub chip_width: Option<usize>,
    /// Chip height, if not square.
    #[arg(long, value_name = "PIXELS")]
    pub chip_height: Option<usize>,
    /// 0-based raster bands the model reads, comma-separated (ExtractBands).
    #[arg(long, value_name = "0,1,2", default_value = "0,1,2")]
    pub bands: String,
    /// Crop around the feature's envelope, resampled to the chip size (CropSizeFixed 0).
    #[arg(long)]
    pub variable_crop: bool,
    /// Set pixels outside polygon features to 0 (BlackenAroundFeature 1).
    #[arg(long)]
    pub blacken_around_feature: bool,
    /// Per-band scaling MIN,MAX,MEAN,STD: ((x - MIN) / (MAX - MIN) - MEAN) / STD, given once for
    /// every band or once per band (NormalizationStats). Default: ImageNet statistics.
    #[arg(long, value_name = "MIN,MAX,MEAN,STD")]
    pub scale: Vec<String>,
    /// Multi-label model (sigmoid scores, MetaDataMode MultiLabeled_Tiles).
    #[arg(long)]
    pub multi_label: bool,
    /// Only identity and horizontal flip for test-time augmentation (ImageSpaceUsed PIXEL_SPACE).
    #[arg(long)]
    pub pixel_space: bool,
    /// ModelName written to the .emd.
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// The package to write.
    #[arg(short = 'o', long, value_name = "OUT.dlpk")]
    pub output: PathBuf,
    /// Replace the output if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
}

/// `convert` options.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The FeatureClassifier package (.dlpk, or an .emd next to its .pth).
    pub input: PathBuf,
    /// The ONNX package to write (.dlpk).
    #[arg(short = 'o', long, value_name = "OUT.dlpk")]
    pub output: PathBuf,
    /// Replace the output if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
}

/// `inspect` options.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .dlpk package or .emd file.
    pub model: PathBuf,
    /// Print JSON instead of text (see docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
}
