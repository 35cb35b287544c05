//! The command line as typed: subcommands and their flags, parsed by clap with no checks beyond
//! types. The main command's flags are the run's options ([`crate::run::options`]), which
//! [`crate::run::plan`] turns into one validated plan before any work starts.
//!
//! Each flag of the main command maps to a parameter of Esri's "Classify Objects Using Deep
//! Learning" tool (named in its help).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::run::options::ClassifyArgs;

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
    after_help = "Examples:\n  classify-objects -r image.tif -m model.dlpk -f buildings.gpkg -o classified.gpkg\n  classify-objects -r image.tif -m model.dlpk -f parcels.gpkg --where \"landuse = 'forest'\" --t-srs EPSG:4326 -o forest.gpkg\n  classify-objects -r photo.jpg -m model.dlpk -o labels.csv\n  classify-objects inspect model.dlpk\n  classify-objects convert arcgis_learn_model.dlpk -o model_onnx.dlpk\n  classify-objects completions bash > ~/.local/share/bash-completion/completions/classify-objects"
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

/// The shell completion script for `shell`, generated from the command line's definition.
pub fn completions(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "classify-objects", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page (roff), generated from the command line's definition: the main command with
/// its options under their headings, and each subcommand with its own.
pub fn man_page() -> anyhow::Result<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        // clap names commands with static strings; the page is made once per process.
        let name: &'static str = Box::leak(format!("classify-objects-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        out.extend_from_slice(&page);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// What `--version` prints: the versions of classify-objects (with the git commit it was built
/// from), GDAL, PROJ and ONNX Runtime, and the ONNX Runtime library's path (or why none loads).
pub fn version_text() -> String {
    // "GDAL 3.6.2, released 2023/01/02"
    let gdal = gdal::version::version_info("--version");
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    unsafe { gdal_sys::OSRGetPROJVersion(&mut major, &mut minor, &mut patch) };
    let ort = match crate::infer::locate_runtime(None) {
        Ok(library) => {
            // The file itself, symbolic links resolved.
            let path = std::fs::canonicalize(&library).unwrap_or(library);
            match crate::infer::runtime_version(&path) {
                Some(version) => format!("ONNX Runtime {version} ({})", path.display()),
                None => format!(
                    "ONNX Runtime not loaded: {} does not load as ONNX Runtime",
                    path.display()
                ),
            }
        }
        Err(err) => format!("ONNX Runtime not loaded: {}", crate::error::one_line(&err)),
    };
    format!(
        "classify-objects {}\n{gdal}\nPROJ {major}.{minor}.{patch}\n{ort}\n",
        crate::run::describe::version()
    )
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
    /// Layer to compare in both (default: the one layer with a run's columns).
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
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

impl From<PackArgs> for crate::model::pack::PackOptions {
    fn from(args: PackArgs) -> Self {
        crate::model::pack::PackOptions {
            onnx: args.onnx,
            classes: args.classes,
            chip_size: args.chip_size,
            chip_width: args.chip_width,
            chip_height: args.chip_height,
            bands: args.bands,
            variable_crop: args.variable_crop,
            blacken_around_feature: args.blacken_around_feature,
            scale: args.scale,
            multi_label: args.multi_label,
            pixel_space: args.pixel_space,
            model_name: args.model_name,
            output: args.output,
            overwrite: args.overwrite,
            ort_library: args.ort_library,
        }
    }
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

impl From<ConvertArgs> for crate::model::convert::ConvertOptions {
    fn from(args: ConvertArgs) -> Self {
        crate::model::convert::ConvertOptions {
            input: args.input,
            output: args.output,
            overwrite: args.overwrite,
            ort_library: args.ort_library,
        }
    }
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
