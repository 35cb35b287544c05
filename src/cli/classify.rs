//! The options of a classification run as the user types them: parsed by clap (mounted by
//! the command line as the main command's flags) into typed values, with no checks between
//! flags. Each maps to a parameter or environment of Esri's "Classify Objects Using Deep
//! Learning" tool, named in its help. The run's plan validates them together.
//!
//! `--help` shows them under headings: inputs, model, output, run, scale-out, regression.

use std::path::PathBuf;

use clap::Args;

use super::values::{BandList, BlockCacheMb, CellSize, Fraction, IntraOpThreads, ModelArg, Resampling, Shard, Threads};
use crate::infer::Device;
use crate::input::items::ProcessingMode;
use crate::input::raster::NoData;
use crate::output::StyleMode;

/// Options of a classification run.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    // ---- Inputs ----
    /// Input raster (Esri in_raster): any GDAL source, e.g. a GeoTIFF, a VRT or a /vsicurl/ URL,
    /// an ArcGIS ImageServer or cached MapServer URL (https://…/rest/services/NAME/ImageServer),
    /// or a folder of images; repeatable.
    #[arg(short = 'r', long, value_name = "RASTER", required = true, help_heading = INPUTS)]
    pub raster: Vec<String>,

    /// Search folders given to --raster recursively.
    #[arg(long, help_heading = INPUTS)]
    pub recursive: bool,

    /// Image extensions taken from folders given to --raster, comma-separated
    /// (default: tif,tiff,vrt,img,jp2,png,jpg,jpeg,ecw,sid,nitf,ntf).
    #[arg(long, value_name = "EXT,...", value_delimiter = ',', help_heading = INPUTS)]
    pub extensions: Vec<String>,

    /// Raster bands the model's bands are taken from, 1-based and comma-separated as GDAL's -b
    /// (e.g. 3,2,1): the raster is read as if it had only these bands, in this order, and the
    /// model's ExtractBands index into them.
    #[arg(long, value_name = "B,B,...", help_heading = INPUTS)]
    pub bands: Option<BandList>,

    /// NoData value of every raster band, replacing the raster's own (as gdal_translate
    /// -a_nodata); `none` ignores the raster's NoData.
    #[arg(long, value_name = "V", allow_hyphen_values = true, help_heading = INPUTS)]
    pub nodata: Option<NoData>,

    /// Features to classify, one object each (Esri in_features): any OGR source, or an ArcGIS
    /// feature layer URL (https://…/FeatureServer/0), read page by page. Without it each image is
    /// one object.
    #[arg(short = 'f', long, value_name = "FEATURES", help_heading = INPUTS)]
    pub features: Option<String>,

    /// Layer of --features to read (needed when the source has several layers with geometries).
    #[arg(long, value_name = "NAME", help_heading = INPUTS)]
    pub layer: Option<String>,

    /// CRS of --features when the file's own is missing or wrong (e.g. EPSG:32618).
    #[arg(long, value_name = "CRS", help_heading = INPUTS)]
    pub features_crs: Option<String>,

    /// Attribute filter on --features, as ogr2ogr -where (e.g. "id > 3"): only the matching
    /// features are classified (a selection set or definition query in ArcGIS terms).
    #[arg(long = "where", value_name = "EXPRESSION", help_heading = INPUTS)]
    pub where_clause: Option<String>,

    /// SQL statement run on --features, as ogr2ogr -sql: its result layer is classified.
    #[arg(long, value_name = "STATEMENT", help_heading = INPUTS)]
    pub sql: Option<String>,

    /// SQL dialect of --sql: OGRSQL, SQLITE, or the driver's own (default).
    #[arg(long, value_name = "DIALECT", help_heading = INPUTS)]
    pub dialect: Option<String>,

    /// Open option NAME=VALUE of the --features driver, repeatable (as ogr2ogr -oo).
    #[arg(long, value_name = "NAME=VALUE", help_heading = INPUTS)]
    pub oo: Vec<String>,

    /// File holding the ArcGIS token for the run's services and portal items (the token alone,
    /// or the JSON generateToken answers), kept out of URLs, `ps` and shell history; without it,
    /// the environment variable ARCGIS_TOKEN. A URL's own ?token= wins for that URL.
    #[arg(long, value_name = "FILE", help_heading = INPUTS)]
    pub token_file: Option<PathBuf>,

    /// Processing extent (Esri environment): classify only the features whose envelope centre
    /// falls inside; without --features, each image is clipped to it.
    #[arg(long, num_args = 4, value_names = ["XMIN", "YMIN", "XMAX", "YMAX"], allow_negative_numbers = true, help_heading = INPUTS)]
    pub extent: Option<Vec<f64>>,

    /// CRS of --extent (default: the first raster's).
    #[arg(long, value_name = "CRS", requires = "extent", help_heading = INPUTS)]
    pub extent_crs: Option<String>,

    // ---- Model ----
    /// Model (Esri in_model_definition): a .dlpk, an .emd next to its ONNX model, the https:// URL
    /// of a .dlpk or of its portal item (…/sharing/rest/content/items/ID, or …/ID/data; downloaded
    /// once into --cache-dir), an item ID with --portal, or the model
    /// definition itself as a JSON string ('{"Framework": ...}'), whose paths are relative to the
    /// current folder.
    #[arg(short = 'm', long, value_name = "MODEL", required = true, help_heading = MODEL)]
    pub model: Option<PathBuf>,

    /// ArcGIS portal of a model given by item ID (-m 0123456789abcdef0123456789abcdef), e.g.
    /// https://www.arcgis.com or https://gis.example.com/portal.
    #[arg(long, value_name = "URL", help_heading = MODEL)]
    pub portal: Option<String>,

    /// Model argument NAME=VALUE (Esri model_arguments), repeatable: batch_size,
    /// test_time_augmentation, threshold (or score_threshold), padding
    /// (no effect), explainability_map (where the .emd offers it).
    #[arg(long = "model-arg", value_name = "NAME=VALUE", help_heading = MODEL)]
    pub model_arg: Vec<ModelArg>,

    /// Model arguments in Esri's string form, e.g. "batch_size 8;test_time_augmentation true".
    #[arg(long = "model-arguments", value_name = "ARGS", help_heading = MODEL)]
    pub model_arguments: Option<String>,

    /// Folder where models given by URL are kept after their first download (default:
    /// $XDG_CACHE_HOME/classify-objects, else ~/.cache/classify-objects).
    #[arg(long, value_name = "DIR", env = "CLASSIFY_OBJECTS_CACHE_DIR", help_heading = MODEL)]
    pub cache_dir: Option<PathBuf>,

    /// Where to run the model: cpu, cuda, cuda:N, or auto (CUDA if it starts, else CPU).
    #[arg(long, value_name = "DEVICE", default_value = "cpu", help_heading = MODEL)]
    pub device: Device,

    /// ONNX Runtime library to load (default: searched, see README).
    #[arg(long, value_name = "PATH", help_heading = MODEL)]
    pub ort_library: Option<PathBuf>,

    // ---- Output ----
    /// Output (Esri out_feature_class): .gpkg, .gdb (File Geodatabase), .geojson, .fgb, .shp, or
    /// .csv for a table.
    #[arg(short = 'o', long, value_name = "OUTPUT", required = true, help_heading = OUTPUT)]
    pub output: Option<PathBuf>,

    /// Name of the label field (Esri class_label_field).
    #[arg(long, value_name = "NAME", default_value = "ClassLabel", help_heading = OUTPUT)]
    pub class_label_field: String,

    /// Also write one field per class with its probability (columns named after the classes).
    #[arg(long, help_heading = OUTPUT)]
    pub all_scores: bool,

    /// Replace the output if it exists (in a GeoPackage or File Geodatabase: the layer only).
    #[arg(long, help_heading = OUTPUT)]
    pub overwrite: bool,

    /// Add the rows to the output if it exists (its layer must have the same columns), as newer
    /// ArcGIS does.
    #[arg(long, help_heading = OUTPUT)]
    pub append: bool,

    /// Output format by GDAL driver name (GPKG, OpenFileGDB, GeoJSON, FlatGeobuf, "ESRI
    /// Shapefile", CSV, or any OGR driver that can create files); default: from the output's
    /// extension.
    #[arg(long, value_name = "FORMAT", help_heading = OUTPUT)]
    pub format: Option<String>,

    /// Output layer name (default: the output file's name); a new name adds a layer to an
    /// existing GeoPackage or File Geodatabase.
    #[arg(long, visible_alias = "nln", value_name = "NAME", help_heading = OUTPUT)]
    pub layer_name: Option<String>,

    /// Layer creation option KEY=VALUE for the output driver, repeatable (as ogr2ogr -lco).
    #[arg(long, value_name = "KEY=VALUE", help_heading = OUTPUT)]
    pub lco: Vec<String>,

    /// Dataset creation option KEY=VALUE for the output driver, repeatable (as ogr2ogr -dsco).
    #[arg(long, value_name = "KEY=VALUE", help_heading = OUTPUT)]
    pub dsco: Vec<String>,

    /// Output coordinate system (Esri environment): the output geometries are reprojected into
    /// it, as ogr2ogr -t_srs (e.g. EPSG:4326).
    #[arg(long = "t-srs", value_name = "CRS", help_heading = OUTPUT)]
    pub t_srs: Option<String>,

    /// Where the QGIS style (classes in their .emd colours) goes: file (a .qml beside the
    /// output, loaded by QGIS as the layer's default style), embedded (the GeoPackage's
    /// layer_styles table) or none.
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = StyleMode::File, help_heading = OUTPUT)]
    pub qgis_style: StyleMode,

    /// Cut chips at this cell size, in the raster's units (Esri's Cell Size environment),
    /// resampled from the raster (through its overviews when coarser); default: the raster's own.
    #[arg(long, value_name = "SIZE", help_heading = INPUTS)]
    pub cell_size: Option<CellSize>,

    /// Resampling of chips cut at another cell size: nearest, bilinear (default), cubic,
    /// cubicspline, lanczos, average, mode.
    #[arg(long, value_name = "METHOD", default_value = "bilinear", help_heading = INPUTS)]
    pub resampling: Resampling,

    // ---- Run ----
    /// How several rasters, or an image service's catalog items, are processed (Esri
    /// processing_mode): PROCESS_AS_MOSAICKED_IMAGE or PROCESS_ITEMS_SEPARATELY, in any case, or
    /// Esri's labels ("Process as mosaicked image", "Process all raster items separately").
    #[arg(long, value_name = "MODE", default_value_t = ProcessingMode::ProcessAsMosaickedImage, help_heading = INPUTS)]
    pub processing_mode: ProcessingMode,

    /// Chip-reading worker threads (Esri parallelProcessingFactor): a number, or a percentage of
    /// the CPUs (e.g. 50%, rounded to the nearest integer). Default: the CPUs, at most 8.
    #[arg(long, value_name = "N|P%", help_heading = RUN)]
    pub threads: Option<Threads>,

    /// ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
    #[arg(long, value_name = "N", help_heading = RUN)]
    pub intra_op_threads: Option<IntraOpThreads>,

    /// GDAL configuration option, repeatable (as GDAL's --config), e.g. --config GDAL_CACHEMAX 512.
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append, help_heading = RUN)]
    pub config: Vec<String>,

    /// Stop with an error at the first feature that cannot be classified (outside the raster,
    /// empty, null or invalid geometry) instead of writing it with a Status.
    #[arg(long, help_heading = RUN)]
    pub strict: bool,

    /// Print nothing but errors.
    #[arg(short, long, help_heading = RUN)]
    pub quiet: bool,

    /// Size of GDAL's cache of decoded raster blocks, in MB (default 256, or GDAL_CACHEMAX
    /// when it is set). Chips are read in raster block order, so a cache much smaller than the
    /// image still decodes each block about once.
    #[arg(long, value_name = "MB", help_heading = RUN)]
    pub block_cache: Option<BlockCacheMb>,

    /// When stderr is not a terminal (Slurm, CI logs), print a progress line every this many
    /// seconds (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, help_heading = RUN)]
    pub progress_interval: u64,

    /// Write a JSON summary of the run (counts, per-stage timings, execution provider,
    /// throughput, peak memory) to this file, or to standard output with `-`.
    #[arg(long, value_name = "FILE", help_heading = RUN)]
    pub summary_json: Option<PathBuf>,

    /// Debugging: write every chip, as read before normalisation, as a GeoTIFF into this folder
    /// (chip_<input position>.tif).
    #[arg(long, value_name = "DIR", help_heading = RUN)]
    pub dump_chips: Option<PathBuf>,

    // ---- Scale-out ----
    /// Classify only shard I of N (0-based): the features at positions p with p % N == I (after
    /// --where, --sql and --extent), so that N independent runs (a Slurm job array, a Kubernetes
    /// Indexed Job) cover every feature exactly once; `classify-objects merge` joins their outputs.
    #[arg(long, value_name = "I/N", help_heading = SCALE_OUT)]
    pub shard: Option<Shard>,

    /// Continue a run that was killed: take over its temporary output (or the existing output)
    /// and classify only the features not in it yet.
    #[arg(long, help_heading = SCALE_OUT)]
    pub resume: bool,

    // ---- Regression ----
    /// Field of --features holding the expected class: print accuracy, per-class precision and
    /// recall and the confusion matrix (also in --summary-json).
    #[arg(long, value_name = "FIELD", help_heading = REGRESSION)]
    pub truth_field: Option<String>,

    /// With --truth-field: exit with code 3 when accuracy is below this (0..1), for CI gates.
    /// The output is written all the same.
    #[arg(long, value_name = "X", help_heading = REGRESSION)]
    pub min_accuracy: Option<Fraction>,

    /// Write a self-contained HTML report to this file: run details, class counts and
    /// confidences, accuracy, F1, kappa and confusion matrix with --truth-field, a map preview in
    /// class colours, and a gallery of the objects to check with their chips.
    #[arg(long, value_name = "FILE.html", help_heading = REGRESSION)]
    pub report: Option<PathBuf>,

    /// With --report: objects per class in the gallery, the lowest-confidence ones (with
    /// --truth-field, the misclassified ones first); 0 for no gallery. Default 8, at most 100.
    #[arg(long, value_name = "N", help_heading = REGRESSION)]
    pub report_chips: Option<usize>,
}

/// `--help` heading of the inputs: rasters, features and what is read of them.
pub const INPUTS: &str = "Inputs";
/// `--help` heading of the model and where it runs.
pub const MODEL: &str = "Model";
/// `--help` heading of the output.
pub const OUTPUT: &str = "Output";
/// `--help` heading of how the run goes.
pub const RUN: &str = "Run";
/// `--help` heading of sharding and resuming.
pub const SCALE_OUT: &str = "Scale-out";
/// `--help` heading of regression checks and reports.
pub const REGRESSION: &str = "Regression";
