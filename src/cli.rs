//! The command line as typed: flags and subcommands, parsed by clap with no checks beyond types.
//! [`crate::plan`] turns them into one validated plan before any work starts.
//!
//! Each flag of the main command maps to a parameter of Esri's "Classify Objects Using Deep
//! Learning" tool (named in its help).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::inference::Device;

/// Classify objects in rasters with Esri deep learning packages (.dlpk/.emd with an ONNX
/// model), like ArcGIS "Classify Objects Using Deep Learning", without ArcGIS.
#[derive(Debug, Parser)]
#[command(
    name = "classify-objects",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
#[command(
    after_help = "Examples:\n  classify-objects -r image.tif -m model.dlpk -f buildings.gpkg -o classified.gpkg\n  classify-objects -r photo.jpg -m model.dlpk -o labels.csv\n  classify-objects inspect model.dlpk"
)]
pub struct Cli {
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
    /// List the objects whose label differs between two outputs (matched by SourceOID); exit
    /// status 0 when none changed, 1 when some did, 2 on error.
    Compare(CompareArgs),
    /// Join the outputs of `--shard 0/N` ... `--shard N-1/N` runs, given in shard order, into
    /// exactly what one run would have written.
    Merge(MergeArgs),
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

/// `inspect` options.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .dlpk package or .emd file.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
}

/// `PROCESS_AS_MOSAICKED_IMAGE` or `PROCESS_ITEMS_SEPARATELY` (Esri `processing_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessingMode {
    /// All rasters form one mosaic, processed as one image.
    #[default]
    ProcessAsMosaickedImage,
    /// Each raster is processed on its own.
    ProcessItemsSeparately,
}

/// Options of a classification run.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Input raster (Esri in_raster): any GDAL source, e.g. a GeoTIFF, a VRT or a /vsicurl/ URL,
    /// or a folder of images; repeatable.
    #[arg(short = 'r', long, value_name = "RASTER", required = true)]
    pub raster: Vec<String>,

    /// Search folders given to --raster recursively.
    #[arg(long)]
    pub recursive: bool,

    /// Image extensions taken from folders given to --raster, comma-separated
    /// (default: tif,tiff,vrt,img,jp2,png,jpg,jpeg,ecw,sid,nitf,ntf).
    #[arg(long, value_name = "EXT,...", value_delimiter = ',')]
    pub extensions: Vec<String>,

    /// Model package (Esri in_model_definition): a .dlpk, or an .emd next to its ONNX model.
    #[arg(short = 'm', long, value_name = "MODEL", required = true)]
    pub model: Option<PathBuf>,

    /// Output (Esri out_feature_class): .gpkg (default), .geojson, .fgb, or .csv for a table.
    #[arg(short = 'o', long, value_name = "OUTPUT", required = true)]
    pub output: Option<PathBuf>,

    /// Features to classify, one object each (Esri in_features): any OGR source. Without it each
    /// image is one object.
    #[arg(short = 'f', long, value_name = "FEATURES")]
    pub features: Option<String>,

    /// Layer of --features to read (default: the first).
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,

    /// CRS of --features when the file's own is missing or wrong (e.g. EPSG:32618).
    #[arg(long, value_name = "CRS")]
    pub features_crs: Option<String>,

    /// Name of the label field (Esri class_label_field).
    #[arg(long, value_name = "NAME", default_value = "ClassLabel")]
    pub class_label_field: String,

    /// How several rasters are processed (Esri processing_mode).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ProcessingMode::ProcessAsMosaickedImage)]
    pub processing_mode: ProcessingMode,

    /// Model argument NAME=VALUE (Esri model_arguments), repeatable: batch_size,
    /// test_time_augmentation, score_threshold.
    #[arg(long = "model-arg", value_name = "NAME=VALUE")]
    pub model_arg: Vec<String>,

    /// Model arguments in Esri's string form, e.g. "batch_size 8;test_time_augmentation true".
    #[arg(long = "model-arguments", value_name = "ARGS")]
    pub model_arguments: Option<String>,

    /// Replace the output if it exists.
    #[arg(long)]
    pub overwrite: bool,

    /// Add the rows to the output if it exists (its layer must have the same columns), as newer
    /// ArcGIS does.
    #[arg(long)]
    pub append: bool,

    /// Output format by GDAL driver name (GPKG, GeoJSON, FlatGeobuf, "ESRI Shapefile", CSV, or any
    /// OGR driver that can create files); default: from the output's extension.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Output layer name (default: the output file's name).
    #[arg(long, value_name = "NAME")]
    pub layer_name: Option<String>,

    /// Layer creation option KEY=VALUE for the output driver, repeatable (as ogr2ogr -lco).
    #[arg(long, value_name = "KEY=VALUE")]
    pub lco: Vec<String>,

    /// Classify only shard I of N (0-based): the features at input positions p with p % N == I,
    /// so that N independent runs (a Slurm job array, a Kubernetes Indexed Job) cover every
    /// feature exactly once; `classify-objects merge` joins their outputs.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Continue a run that was killed: take over its temporary output (or the existing output)
    /// and classify only the features not in it yet.
    #[arg(long)]
    pub resume: bool,

    /// Field of --features holding the expected class: print accuracy, per-class precision and
    /// recall and the confusion matrix (also in --summary-json).
    #[arg(long, value_name = "FIELD")]
    pub truth_field: Option<String>,

    /// With --truth-field: exit with code 3 when accuracy is below this (0..1), for CI gates.
    /// The output is written all the same.
    #[arg(long, value_name = "X")]
    pub min_accuracy: Option<f64>,

    /// Stop with an error at the first feature that cannot be classified (outside the raster,
    /// empty, null or invalid geometry) instead of writing it with a Status.
    #[arg(long)]
    pub strict: bool,

    /// Where to run the model: cpu, cuda, cuda:N, or auto (CUDA if it starts, else CPU).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: Device,

    /// Chip-reading worker threads (default: the number of CPUs, at most 8).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
    #[arg(long, value_name = "N")]
    pub intra_op_threads: Option<usize>,

    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Write a self-contained HTML report (summary, class counts, confusion matrix with
    /// --truth-field, confidence histogram, map preview in class colours) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// Write a JSON summary of the run (counts, per-stage timings, execution provider,
    /// throughput, peak memory) to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Debugging: write every chip, as read before normalisation, as a GeoTIFF into this folder
    /// (chip_<input position>.tif).
    #[arg(long, value_name = "DIR")]
    pub dump_chips: Option<PathBuf>,
}
