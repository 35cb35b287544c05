//! One validated plan for a run, built from the typed flags before any work starts: the model
//! package is opened and checked, the model arguments resolved, the output target checked, the
//! ONNX Runtime library located. Every problem found here is reported once, at the top.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::bail_input;
use crate::infer::{self, Device};
use crate::input::extent::Extent;
use crate::input::features::{FeatureQuery, SqlDialect};
use crate::input::items::ProcessingMode;
use crate::input::raster::{NoData, RasterOverrides};
use crate::model::arguments::{self, ModelArguments};
use crate::model::package::ModelPackage;
use crate::output::target::refuse_input_as_output;
use crate::output::{Format, LayerSettings, OutputTarget, StyleMode, WritePolicy};
use crate::report::gallery::{DEFAULT_CHIPS_PER_CLASS, MAX_CHIPS_PER_CLASS};
use crate::run::options::ClassifyArgs;

/// Memory the pipeline may hold in chip batches at once, in bytes: fewer batches are in flight
/// when batches are large.
pub const PIPELINE_CHIP_BUDGET: usize = 1536 << 20;

/// GDAL's block cache when neither `--block-cache` nor GDAL_CACHEMAX sets it, in MB.
pub const DEFAULT_BLOCK_CACHE_MB: u64 = 256;

/// Most threads accepted by `--threads` and `--intra-op-threads`.
pub const MAX_THREADS: usize = 1024;

/// Field names the output uses for itself, which the label field cannot take.
pub const RESERVED_FIELDS: &[&str] = &[
    crate::output::SOURCE_ID_FIELD,
    crate::output::IMAGE_ID_FIELD,
    crate::output::CONFIDENCE_FIELD,
    crate::output::STATUS_FIELD,
    "fid",
    "ogc_fid",
    "geom",
    "geometry",
    "the_geom",
    "wkb_geometry",
    "shape",
    "WKT",
];

/// Where `--summary-json` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryTarget {
    /// Standard output (`--summary-json -`).
    Stdout,
    /// A file, written whole or not at all.
    File(PathBuf),
}

impl SummaryTarget {
    /// The file, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SummaryTarget::File(path) => Some(path),
            SummaryTarget::Stdout => None,
        }
    }
}

/// Checks that a file written after the run (`--summary-json`, `--report`) can be written: its
/// folder exists, it is not a folder, and it is not the output.
fn check_side_output(path: &Path, flag: &str, output: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail_input!(
            "{flag} {}: folder {} does not exist; create it first",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail_input!("{flag} {} is a folder; give a file name", path.display());
    }
    let readonly = std::fs::metadata(dir)
        .map(|m| m.permissions().readonly())
        .unwrap_or(false);
    if readonly || tempfile_probe(dir).is_err() {
        bail_input!(
            "{flag} {}: folder {} is not writable; choose another place",
            path.display(),
            dir.display()
        );
    }
    if path == output || path.file_name() == output.file_name() && dir == output.parent().unwrap_or(Path::new(".")) {
        bail_input!("{flag} {} is the output itself; give it another name", path.display());
    }
    Ok(path.to_path_buf())
}

/// Creates and removes a probe file in `dir`, to learn early whether it is writable.
fn tempfile_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".classify-objects-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)
}

/// The local file of `--model`: itself, or for an `http(s)://` URL its copy in the cache folder,
/// downloaded (and checked as a local package would be) the first time; with the URL to show.
fn fetch_model(model: PathBuf, cache_dir: Option<&Path>, quiet: bool) -> Result<(PathBuf, Option<String>)> {
    use crate::input::download;
    let Some(url) = model.to_str().filter(|m| download::is_remote(m)).map(str::to_string) else {
        return Ok((model, None));
    };
    let dir = download::cache_dir(cache_dir)?.join("models");
    let shown = crate::input::http::redact(&url);
    let check = |path: &Path| ModelPackage::open_dlpk_as(path, &shown).map(drop);
    let notice = |path: &Path| {
        if !quiet {
            eprintln!("classify-objects: downloading model {shown} into {}", path.display());
        }
    };
    let path = download::cached(&url, &dir, "dlpk", MAX_DOWNLOAD_BYTES, &check, &notice)?;
    Ok((path, Some(shown)))
}

/// Largest model package downloaded from a URL: the largest model a package may hold, and room
/// for the rest of the package.
pub const MAX_DOWNLOAD_BYTES: u64 = crate::model::package::MAX_MODEL_BYTES + (1 << 30);

/// Where the features come from.
#[derive(Debug, Clone)]
pub struct FeaturesPlan {
    /// OGR source.
    pub source: String,
    /// Its layer (or SQL statement), filter, open options and CRS override.
    pub query: FeatureQuery,
}

/// A checked classification run.
#[derive(Debug)]
pub struct ClassifyPlan {
    /// Input rasters (GDAL sources).
    pub rasters: Vec<String>,
    /// The model package.
    pub package: ModelPackage,
    /// Features, or one object per image.
    pub features: Option<FeaturesPlan>,
    /// Where the result goes (temporary file first).
    pub output: OutputTarget,
    /// Output format.
    pub format: Format,
    /// Output layer name and creation options.
    pub layer: LayerSettings,
    /// Label field name.
    pub label_field: String,
    /// Processing mode.
    pub processing_mode: ProcessingMode,
    /// Resolved model arguments.
    pub model_arguments: ModelArguments,
    /// Execution device.
    pub device: Device,
    /// Chip worker threads.
    pub threads: usize,
    /// ONNX Runtime intra-op threads (0: its default).
    pub intra_op_threads: usize,
    /// The ONNX Runtime library.
    pub ort_library: PathBuf,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Folder to write every chip into, for debugging.
    pub dump_chips: Option<PathBuf>,
    /// Per-feature problems are fatal.
    pub strict: bool,
    /// Where to write the JSON summary.
    pub summary_json: Option<SummaryTarget>,
    /// `(index, count)` of the shard to classify.
    pub shard: Option<(usize, usize)>,
    /// Continue a killed run.
    pub resume: bool,
    /// Field holding the expected class.
    pub truth_field: Option<String>,
    /// Accuracy below which the run fails (exit 3).
    pub min_accuracy: Option<f64>,
    /// Where to write the HTML report.
    pub report: Option<PathBuf>,
    /// Objects per class in the report's gallery.
    pub report_chips: usize,
    /// Where the QGIS style goes.
    pub style: StyleMode,
    /// Seconds between plain progress lines when stderr is not a terminal.
    pub progress_interval: u64,
    /// Cell size chips are cut at, in the raster's units (`--cell-size`).
    pub cell_size: Option<f64>,
    /// Resampling of chips at another cell size.
    pub resampling: gdal::raster::ResampleAlg,
    /// GDAL's block cache in MB, when this run sets it (`--block-cache`, or the default when
    /// GDAL_CACHEMAX is not set, in the environment or by `--config`).
    pub block_cache_mb: Option<u64>,
    /// Bands and NoData read instead of the rasters' own (`--bands`, `--nodata`).
    pub raster_overrides: RasterOverrides,
    /// The processing extent (`--extent`).
    pub extent: Option<Extent>,
    /// The CRS of the output geometries as WKT (`--t-srs`).
    pub t_srs: Option<String>,
    /// One field per class with its probability (`--all-scores`).
    pub all_scores: bool,
    /// When the run began (before the inputs were checked): the summary's total time counts
    /// from here, start-up included.
    pub started: std::time::Instant,
}

/// The chip workers `--threads` asks for on a machine with `cpus` CPUs: a number, or a
/// percentage of the CPUs rounded to the nearest integer (Esri's Parallel Processing Factor),
/// at least 1.
pub fn parse_threads(text: &str, cpus: usize) -> Result<usize> {
    let text = text.trim();
    let threads = match text.strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p.is_finite() => ((p / 100.0 * cpus as f64).round() as usize).max(1),
            _ => bail_input!("--threads {text} is not a percentage above 0 (e.g. --threads 50%)"),
        },
        None => match text.parse::<usize>() {
            Ok(n) => n,
            Err(_) => bail_input!("--threads {text} is neither a number nor a percentage of the CPUs (e.g. 4 or 50%)"),
        },
    };
    if !(1..=MAX_THREADS).contains(&threads) {
        bail_input!("--threads {text} gives {threads} threads, not between 1 and {MAX_THREADS}");
    }
    Ok(threads)
}

/// `--bands 3,2,1`: 1-based band numbers.
fn parse_bands(text: &str) -> Result<Vec<usize>> {
    let bands: Vec<Option<usize>> = text
        .split(',')
        .map(|b| b.trim().parse::<usize>().ok().filter(|&b| b >= 1))
        .collect();
    if bands.is_empty() || bands.iter().any(Option::is_none) || bands.len() > crate::model::definition::MAX_BANDS {
        bail_input!("--bands {text} is not a list of band numbers from 1 (e.g. --bands 3,2,1, as GDAL's -b)");
    }
    Ok(bands.into_iter().flatten().collect())
}

/// `--nodata V` or `--nodata none`.
fn parse_nodata(text: &str) -> Result<NoData> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(NoData::None);
    }
    match text.trim().parse::<f64>() {
        Ok(v) => Ok(NoData::Value(v)),
        Err(_) => bail_input!("--nodata {text} is not a number; give the NoData value (e.g. --nodata 0) or none"),
    }
}

/// Checks that every `--FLAG` value is `KEY=VALUE`.
fn check_pairs(flag: &str, values: &[String], example: &str) -> Result<()> {
    if let Some(bad) = values.iter().find(|o| !o.contains('=') || o.starts_with('=')) {
        bail_input!("--{flag} \"{bad}\" is not KEY=VALUE (e.g. --{flag} {example})");
    }
    Ok(())
}

/// Sets the GDAL configuration options of `--config KEY VALUE` (given as a flat list), before
/// anything is opened.
fn apply_config(pairs: &[String]) -> Result<()> {
    for pair in pairs.chunks(2) {
        let [key, value] = pair else {
            bail_input!("--config takes a KEY and a VALUE (e.g. --config GDAL_CACHEMAX 512)");
        };
        if key.trim().is_empty() || key.contains('=') {
            bail_input!("--config \"{key}\" is not a GDAL configuration option name; give --config KEY VALUE (e.g. --config GDAL_CACHEMAX 512)");
        }
        gdal::config::set_config_option(key, value)?;
    }
    Ok(())
}

impl ClassifyPlan {
    /// Validates `args` into a plan.
    pub fn from_args(args: ClassifyArgs) -> Result<ClassifyPlan> {
        let started = std::time::Instant::now();
        // GDAL's configuration first: it may change how anything below is opened.
        apply_config(&args.config)?;
        let (Some(model), Some(output)) = (args.model, args.output) else {
            bail_input!("--model and --output are required; see classify-objects --help");
        };
        if args.raster.is_empty() {
            bail_input!("--raster is required; see classify-objects --help");
        }
        let label_field = args.class_label_field.trim().to_string();
        if label_field.is_empty() || label_field.contains(|c: char| c.is_control() || c == '"') {
            bail_input!(
                "--class-label-field \"{}\" is not a usable field name; use letters, digits and underscores",
                args.class_label_field
            );
        }
        if let Some(taken) = RESERVED_FIELDS.iter().find(|r| r.eq_ignore_ascii_case(&label_field)) {
            bail_input!(
                "--class-label-field {label_field} is a name the output already uses ({taken}); choose another name, e.g. ClassLabel"
            );
        }
        let format = match &args.format {
            Some(name) => Format::named(name)?,
            None => Format::for_path(&output)?,
        };
        if [args.append, args.overwrite, args.resume]
            .iter()
            .filter(|f| **f)
            .count()
            > 1
        {
            bail_input!("--append, --overwrite and --resume exclude each other; choose one");
        }
        let shard = match &args.shard {
            None => None,
            Some(text) => match text
                .split_once('/')
                .map(|(i, n)| (i.trim().parse::<usize>(), n.trim().parse::<usize>()))
            {
                Some((Ok(i), Ok(n))) if n >= 1 && i < n => Some((i, n)),
                _ => bail_input!("--shard \"{text}\" is not I/N with 0 <= I < N (e.g. --shard 0/4 ... --shard 3/4)"),
            },
        };
        match (args.min_accuracy, &args.truth_field) {
            (Some(x), _) if !(0.0..=1.0).contains(&x) => bail_input!("--min-accuracy {x} is not between 0 and 1"),
            (Some(_), None) => bail_input!("--min-accuracy needs --truth-field (the field with the expected class)"),
            _ => {}
        }
        if args.truth_field.is_some() && args.features.is_none() {
            bail_input!("--truth-field compares with a field of --features; give --features");
        }
        if (shard.is_some() || args.resume) && args.features.is_none() {
            bail_input!("--shard and --resume work on features; give --features");
        }
        let creation_options = args.lco.clone();
        check_pairs("lco", &creation_options, "SPATIAL_INDEX=NO")?;
        check_pairs("dsco", &args.dsco, "VERSION=1.2")?;
        check_pairs("oo", &args.oo, "X_POSSIBLE_NAMES=lon")?;
        if args.features.is_none() {
            for (flag, given) in [
                ("--where", args.where_clause.is_some()),
                ("--sql", args.sql.is_some()),
                ("--oo", !args.oo.is_empty()),
                ("--layer", args.layer.is_some()),
            ] {
                if given {
                    bail_input!("{flag} applies to --features; give --features (or leave {flag} out)");
                }
            }
        }
        if args.sql.is_some() && args.layer.is_some() {
            bail_input!("--sql and --layer exclude each other: the statement names the table it reads");
        }
        let dialect = match &args.dialect {
            Some(_) if args.sql.is_none() => bail_input!("--dialect is the dialect of --sql; give --sql"),
            Some(name) => SqlDialect::named(name)?,
            None => SqlDialect::Default,
        };
        for (flag, text) in [("--where", &args.where_clause), ("--sql", &args.sql)] {
            if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                bail_input!("{flag} is empty; give an expression or leave {flag} out");
            }
        }
        let extent = args
            .extent
            .as_deref()
            .map(|values| Extent::from_args(values, args.extent_crs.as_deref()))
            .transpose()?;
        let t_srs = match &args.t_srs {
            None => None,
            Some(definition) => match gdal::spatial_ref::SpatialRef::from_definition(definition) {
                Ok(srs) => Some(srs.to_wkt()?),
                Err(err) => bail_input!(
                    "--t-srs \"{definition}\" is not a coordinate reference system GDAL knows ({err}); use e.g. EPSG:4326 or a WKT/PROJ string"
                ),
            },
        };
        let raster_overrides = RasterOverrides {
            bands: args.bands.as_deref().map(parse_bands).transpose()?,
            nodata: args.nodata.as_deref().map(parse_nodata).transpose()?,
        };
        format.check_output_name(&output)?;
        if shard.is_some() && !(format == Format::Csv || format.is_gpkg()) {
            bail_input!(
                "--shard writes GeoPackage (.gpkg) or CSV outputs, which record the shard for merge ({} is {}); write a .gpkg",
                output.display(),
                format.name()
            );
        }
        if args.resume && !(format == Format::Csv || format.is_gpkg()) {
            bail_input!(
                "--resume continues GeoPackage (.gpkg) and CSV outputs only ({} is {}); write a .gpkg",
                output.display(),
                format.name()
            );
        }
        let summary_json = match &args.summary_json {
            Some(path) if path.as_os_str() == "-" => Some(SummaryTarget::Stdout),
            Some(path) => Some(SummaryTarget::File(check_side_output(path, "--summary-json", &output)?)),
            None => None,
        };
        let cell_size = match args.cell_size {
            Some(c) if !(c.is_finite() && c > 0.0) => {
                bail_input!("--cell-size {c} is not a positive size in the raster's units")
            }
            other => other,
        };
        let resampling = match args.resampling.to_ascii_lowercase().as_str() {
            "nearest" | "near" => gdal::raster::ResampleAlg::NearestNeighbour,
            "bilinear" => gdal::raster::ResampleAlg::Bilinear,
            "cubic" => gdal::raster::ResampleAlg::Cubic,
            "cubicspline" => gdal::raster::ResampleAlg::CubicSpline,
            "lanczos" => gdal::raster::ResampleAlg::Lanczos,
            "average" => gdal::raster::ResampleAlg::Average,
            "mode" => gdal::raster::ResampleAlg::Mode,
            other => bail_input!(
                "--resampling {other} is not a resampling method; use nearest, bilinear, cubic, cubicspline, lanczos, average or mode"
            ),
        };
        if cell_size.is_some() && args.features.is_none() {
            bail_input!("--cell-size sets the cell size of the chips cut around features; give --features (a whole image is resampled to the chip size anyway)");
        }
        let report = args
            .report
            .as_deref()
            .map(|path| check_side_output(path, "--report", &output))
            .transpose()?;
        let report_chips = match (args.report_chips, &report) {
            (Some(_), None) => bail_input!("--report-chips sets the gallery of --report; give --report FILE.html"),
            (Some(n), Some(_)) if n > MAX_CHIPS_PER_CLASS => {
                bail_input!("--report-chips {n} is more than {MAX_CHIPS_PER_CLASS}; ask for fewer objects per class")
            }
            (n, _) => n.unwrap_or(DEFAULT_CHIPS_PER_CLASS),
        };
        let json_definition = model
            .to_str()
            .filter(|m| ModelPackage::is_json_definition(m))
            .map(str::to_string);
        let (model, model_url) = match &json_definition {
            Some(_) => (model, None),
            None => fetch_model(model, args.cache_dir.as_deref(), args.quiet)?,
        };
        let opened = match &json_definition {
            Some(text) => ModelPackage::from_json_definition(text),
            None => ModelPackage::open(&model),
        };
        let mut package = match (opened, &model_url) {
            (Ok(package), _) => package,
            (Err(err), Some(url)) => {
                return Err(err.context(format!(
                    "cached model {url} ({}; delete it to download it again)",
                    model.display()
                )))
            }
            (Err(err), None) => return Err(err),
        };
        if let Some(url) = model_url {
            // Named as the user gave it in the summary and report; the file is the cached copy.
            package.source = PathBuf::from(url);
        }
        if let (Some(conversion), false) = (&package.conversion, args.quiet) {
            eprintln!("{}", conversion.notice());
        }

        let mut pairs = Vec::new();
        if let Some(text) = &args.model_arguments {
            pairs.extend(arguments::parse_esri_string(text)?);
        }
        for item in &args.model_arg {
            match item.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    pairs.push((name.trim().to_string(), value.trim().to_string()))
                }
                _ => bail_input!("--model-arg \"{item}\" is not NAME=VALUE (e.g. --model-arg batch_size=8)"),
            }
        }
        let model_arguments = arguments::resolve(&package.definition, &pairs)?;
        arguments::check_batch_memory(
            &package.definition,
            model_arguments.batch_size,
            model_arguments.test_time_augmentation,
        )?;

        if let Some(n) = args.intra_op_threads.filter(|n| !(1..=MAX_THREADS).contains(n)) {
            bail_input!("--intra-op-threads {n} is not between 1 and {MAX_THREADS}");
        }
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let threads = match &args.threads {
            Some(text) => parse_threads(text, cpus)?,
            None => cpus.min(8),
        };
        let ort_library = infer::locate_runtime(args.ort_library.as_deref())?;
        if let Some(dir) = &args.dump_chips {
            if let Err(err) = std::fs::create_dir_all(dir) {
                bail_input!("--dump-chips folder {} cannot be created: {err}", dir.display());
            }
        }
        let layer_name = args.layer_name.clone().unwrap_or_else(|| {
            output
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "classified".into())
        });

        let rasters = crate::input::items::expand(&args.raster, args.recursive, &args.extensions)?;
        let mut inputs: Vec<(&str, &Path)> = Vec::new();
        if json_definition.is_none() {
            inputs.push(("model", model.as_path()));
        }
        inputs.extend(rasters.iter().map(|r| ("raster", Path::new(r.as_str()))));
        if let Some(features) = &args.features {
            inputs.push(("features", Path::new(features.as_str())));
        }
        refuse_input_as_output(&output, &inputs)?;
        for (what, path) in [
            ("--summary-json", summary_json.as_ref().and_then(SummaryTarget::file)),
            ("--report", report.as_deref()),
        ] {
            if let Some(path) = path {
                refuse_input_as_output(path, &inputs).with_context(|| format!("checking {what}"))?;
            }
        }
        // Last, once everything else is known to be right: the temporary output and its lock.
        let policy = WritePolicy {
            overwrite: args.overwrite,
            append: args.append,
            resume: args.resume,
        };
        let output = OutputTarget::prepare(&output, &format, policy, &layer_name)?;
        Ok(ClassifyPlan {
            started,
            rasters,
            package,
            features: args.features.map(|source| FeaturesPlan {
                source,
                query: FeatureQuery {
                    layer: args.layer,
                    srs_override: args.features_crs,
                    where_clause: args.where_clause,
                    sql: args.sql,
                    dialect,
                    open_options: args.oo,
                },
            }),
            output,
            format,
            layer: LayerSettings {
                name: layer_name,
                creation_options,
                dataset_options: args.dsco,
                given: args.layer_name.is_some(),
                target_srs: t_srs.clone(),
            },
            label_field,
            processing_mode: args.processing_mode,
            model_arguments,
            device: args.device,
            threads,
            intra_op_threads: args.intra_op_threads.unwrap_or(0),
            ort_library,
            quiet: args.quiet,
            dump_chips: args.dump_chips,
            strict: args.strict,
            summary_json,
            shard,
            resume: args.resume,
            truth_field: args.truth_field.clone(),
            min_accuracy: args.min_accuracy,
            report,
            report_chips,
            style: args.qgis_style,
            progress_interval: args.progress_interval,
            cell_size,
            resampling,
            block_cache_mb: match args.block_cache {
                Some(mb) if !(1..=1 << 20).contains(&mb) => {
                    bail_input!("--block-cache {mb} is not between 1 and 1048576 MB")
                }
                Some(mb) => Some(mb),
                // GDAL_CACHEMAX set in the environment or with --config (applied above).
                None if !gdal::config::get_config_option("GDAL_CACHEMAX", "")
                    .unwrap_or_default()
                    .is_empty() =>
                {
                    None
                }
                None => Some(DEFAULT_BLOCK_CACHE_MB),
            },
            raster_overrides,
            extent,
            t_srs,
            all_scores: args.all_scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_percentages_round_to_the_nearest_integer_as_esri_says() {
        // Esri's examples on a 4-core machine: 50% -> 2, 66% -> 3 (2.64), 100% -> 4.
        assert_eq!(parse_threads("50%", 4).unwrap(), 2);
        assert_eq!(parse_threads("66%", 4).unwrap(), 3);
        assert_eq!(parse_threads("100%", 4).unwrap(), 4);
        assert_eq!(parse_threads(" 1% ", 4).unwrap(), 1, "at least one");
        assert_eq!(parse_threads("250%", 2).unwrap(), 5);
        assert_eq!(parse_threads("7", 4).unwrap(), 7);
        for bad in ["0%", "0", "x%", "-1", "2000", "%"] {
            assert!(parse_threads(bad, 4).is_err(), "{bad}");
        }
    }

    #[test]
    fn bands_and_nodata_parse_as_gdal_takes_them() {
        assert_eq!(parse_bands("3,2,1").unwrap(), vec![3, 2, 1]);
        assert_eq!(parse_bands(" 4 ").unwrap(), vec![4]);
        assert!(parse_bands("0,1").is_err() && parse_bands("").is_err() && parse_bands("1,,2").is_err());
        assert_eq!(parse_nodata("-9999").unwrap(), NoData::Value(-9999.0));
        assert_eq!(parse_nodata("None").unwrap(), NoData::None);
        assert!(parse_nodata("zero").is_err());
    }
}
