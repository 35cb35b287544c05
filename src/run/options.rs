//! The options of a classification run as the user types them: parsed by clap (mounted by
//! the command line, `cli.rs`, as the main command's flags) with no checks beyond types. Each maps to a
//! parameter or environment of Esri's "Classify Objects Using Deep Learning" tool, named in its
//! help. [`crate::run::plan`] validates them.

use std::path::PathBuf;

use clap::Args;

use crate::infer::Device;
use crate::input::items::ProcessingMode;

/// Options of a classification run.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Input raster (Esri in_raster): any GDAL source, e.g. a GeoTIFF, a VRT or a /vsicurl/ URL,
    /// an ArcGIS ImageServer or cached MapServer URL (https://…/rest/services/NAME/ImageServer),
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

    /// Model package (Esri in_model_definition): a .dlpk, or an .emd next to its ONNX model, or
    /// the https:// URL of a .dlpk (a portal item's data), downloaded once into --cache-dir.
    #[arg(short = 'm', long, value_name = "MODEL", required = true)]
    pub model: Option<PathBuf>,

    /// Folder where models given by URL are kept after their first download (default:
    /// $XDG_CACHE_HOME/classify-objects, else ~/.cache/classify-objects).
    #[arg(long, value_name = "DIR", env = "CLASSIFY_OBJECTS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Output (Esri out_feature_class): .gpkg (default), .geojson, .fgb, or .csv for a table.
    #[arg(short = 'o', long, value_name = "OUTPUT", required = true)]
    pub output: Option<PathBuf>,

    /// Features to classify, one object each (Esri in_features): any OGR source, or an ArcGIS
    /// feature layer URL (https://…/FeatureServer/0), read page by page. Without it each image is
    /// one object.
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
    /// test_time_augmentation, threshold (or score_threshold), padding
    /// (no effect), explainability_map (where the .emd offers it).
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

    /// Write a self-contained HTML report to this file: run details, class counts and
    /// confidences, accuracy, F1, kappa and confusion matrix with --truth-field, a map preview in
    /// class colours, and a gallery of the objects to check with their chips.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// With --report: objects per class in the gallery, the lowest-confidence ones (with
    /// --truth-field, the misclassified ones first); 0 for no gallery. Default 8, at most 100.
    #[arg(long, value_name = "N")]
    pub report_chips: Option<usize>,

    /// Write a JSON summary of the run (counts, per-stage timings, execution provider,
    /// throughput, peak memory) to this file, or to standard output with `-`.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Debugging: write every chip, as read before normalisation, as a GeoTIFF into this folder
    /// (chip_<input position>.tif).
    #[arg(long, value_name = "DIR")]
    pub dump_chips: Option<PathBuf>,

    /// Where the QGIS style (classes in their .emd colours) goes: file (a .qml beside the
    /// output, loaded by QGIS as the layer's default style), embedded (the GeoPackage's
    /// layer_styles table) or none.
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = crate::output::StyleMode::File)]
    pub qgis_style: crate::output::StyleMode,

    /// Cut chips at this cell size, in the raster's units (Esri's Cell Size environment),
    /// resampled from the raster (through its overviews when coarser); default: the raster's own.
    #[arg(long, value_name = "SIZE")]
    pub cell_size: Option<f64>,

    /// Resampling of chips cut at another cell size: nearest, bilinear (default), cubic,
    /// cubicspline, lanczos, average, mode.
    #[arg(long, value_name = "METHOD", default_value = "bilinear")]
    pub resampling: String,

    /// Size of GDAL's cache of decoded raster blocks, in MB (default 256, or GDAL_CACHEMAX
    /// when it is set). Chips are read in raster block order, so a cache much smaller than the
    /// image still decodes each block about once.
    #[arg(long, value_name = "MB")]
    pub block_cache: Option<u64>,

    /// When stderr is not a terminal (Slurm, CI logs), print a progress line every this many
    /// seconds (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub progress_interval: u64,
}
