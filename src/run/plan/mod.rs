//! One validated plan for a run, built from the typed flags before any work starts, in parts
//! that follow the data: the [`inputs`] (rasters, features), the [`model`] (package, arguments,
//! where it runs), the [`chips`] (cell size, workers), the [`output`] (format, layer, fields,
//! the temporary file and its lock), the [`report`] (summary, report page, truth, progress) and
//! the [`scale_out`] (shard, resume). Each part is built and checked by its own function; every
//! problem found here is reported once, at the top, and nothing is written before all are
//! checked (the output's temporary file and lock come last).

pub mod chips;
pub mod inputs;
pub mod model;
pub mod output;
pub mod report;
pub mod scale_out;

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use crate::bail_input;
use crate::cli::ClassifyArgs;
use crate::input::{download, http, token};
use crate::output::feature_layer::{self, FeatureLayerTarget};
use crate::output::target::{self, refuse_input_as_output};
use crate::output::StyleMode;

pub use chips::ChipsPlan;
pub use inputs::{FeaturesPlan, InputsPlan};
pub use model::ModelPlan;
pub use output::OutputPlan;
pub use report::{ReportPlan, SummaryTarget};
pub use scale_out::ScaleOutPlan;

/// A checked classification run.
#[derive(Debug)]
pub struct ClassifyPlan {
    /// When the run began (before the inputs were checked): the summary's total time counts
    /// from here, start-up included.
    pub started: Instant,
    /// The same moment as a date, for the summary and the report.
    pub started_at: SystemTime,
    /// Rasters and features.
    pub inputs: InputsPlan,
    /// The model, its arguments, and where it runs.
    pub model: ModelPlan,
    /// How chips are cut.
    pub chips: ChipsPlan,
    /// Where and how the result is written.
    pub output: OutputPlan,
    /// What is said about the run.
    pub report: ReportPlan,
    /// Sharding and resuming.
    pub scale_out: ScaleOutPlan,
    /// The feature layer the results are appended to (`-o …/FeatureServer/N`): the run writes
    /// `output`, a local GeoPackage in the layer's spatial reference, and sends its rows there.
    pub upload: Option<FeatureLayerTarget>,
}

impl ClassifyPlan {
    /// Validates `args` into a plan.
    pub fn from_args(mut args: ClassifyArgs) -> Result<ClassifyPlan> {
        let (started, started_at) = (Instant::now(), SystemTime::now());
        // GDAL's configuration first: it may change how anything below is opened.
        apply_config(&args.config)?;
        // Then what HTTP needs before any request: timeouts and retries, the run's token.
        http::apply_unattended_defaults();
        token::load(args.token_file.as_deref())?;
        let (Some(model), Some(output)) = (args.model.clone(), args.output.clone()) else {
            bail_input!("--model and --output are required; see classify-objects --help");
        };
        if args.raster.is_empty() {
            bail_input!("--raster is required; see classify-objects --help");
        }
        if [args.append, args.overwrite, args.resume]
            .iter()
            .filter(|f| **f)
            .count()
            > 1
        {
            bail_input!("--append, --overwrite and --resume exclude each other; choose one");
        }
        // Results for a feature layer are written to a local GeoPackage first, then sent.
        let (output, upload) = match output.to_str().filter(|o| feature_layer::is_feature_layer(o)) {
            Some(url) => {
                if args.overwrite {
                    bail_input!(
                        "--overwrite does not apply to feature layer {}: results are appended to it; leave --overwrite out (and delete the layer's features yourself if they are to go)",
                        http::redact(url)
                    );
                }
                let layer = FeatureLayerTarget::check(url, &args.class_label_field, args.resume, args.append)?;
                let dir = download::cache_dir(args.cache_dir.as_deref())?.join("uploads");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating the folder of results to send, {}", dir.display()))?;
                args.format = None;
                args.layer_name = Some("results".into());
                args.t_srs = Some(layer.srs.clone());
                args.qgis_style = StyleMode::None;
                args.overwrite = true;
                args.append = false;
                args.resume = false;
                (dir.join(format!("results-{}.gpkg", std::process::id())), Some(layer))
            }
            None => (output, None),
        };
        let choice = output::OutputChoice::from_args(&args, &output)?;
        let scale_out = ScaleOutPlan::from_args(&args, &choice)?;
        let inputs_checked = inputs::check_features_flags(&args)?;
        let report = ReportPlan::from_args(&args, &target::family_names(&output, &choice.format))?;
        let chips = ChipsPlan::from_args(&args)?;
        let model = ModelPlan::from_args(&args, &model)?;
        let inputs = InputsPlan::from_args(args, inputs_checked)?;
        refuse_inputs_as_outputs(&output, &model, &inputs, &report)?;
        chips.create_folders()?;
        // Last, once everything else is known to be right: the temporary output and its lock.
        let output = choice.prepare()?;
        Ok(ClassifyPlan {
            started,
            started_at,
            inputs,
            model,
            chips,
            output,
            report,
            scale_out,
            upload,
        })
    }

    /// Whether the run classifies features (rather than whole images).
    pub fn has_features(&self) -> bool {
        self.inputs.features.is_some()
    }
}

/// Refuses an output, summary or report that is one of the run's inputs.
fn refuse_inputs_as_outputs(output: &Path, model: &ModelPlan, inputs: &InputsPlan, report: &ReportPlan) -> Result<()> {
    let mut read: Vec<(&str, &Path)> = Vec::new();
    if let Some(file) = model.local_file.as_deref() {
        read.push(("model", file));
    }
    read.extend(inputs.rasters.iter().map(|r| ("raster", Path::new(r.as_str()))));
    if let Some(features) = &inputs.features {
        read.push(("features", Path::new(features.source.as_str())));
    }
    refuse_input_as_output(output, &read)?;
    for (what, path) in [
        (
            "--summary-json",
            report.summary_json.as_ref().and_then(SummaryTarget::file),
        ),
        ("--report", report.html.as_deref()),
    ] {
        if let Some(path) = path {
            refuse_input_as_output(path, &read).with_context(|| format!("checking {what}"))?;
        }
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
