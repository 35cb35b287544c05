//! The run details `--report` shows (versions, model, settings, inputs with their CRS, the exact
//! command line), gathered from the plan before it runs.

use gdal::vector::LayerAccess;

use crate::chips::bands;
use crate::infer;
use crate::infer::Device;
use crate::input::http;
use crate::input::raster::Raster;
use crate::input::source::{self, SourceKind};
use crate::model::definition::LabelMode;
use crate::report::details::{InputDetails, ModelDetails, RunDetails, MAX_LISTED_RASTERS};
use crate::run::plan::ClassifyPlan;

/// classify-objects' version, with the git commit it was built from when known.
pub fn version() -> String {
    match option_env!("CLASSIFY_OBJECTS_GIT_COMMIT") {
        Some(commit) => format!("{} (commit {commit})", env!("CARGO_PKG_VERSION")),
        None => format!(
            "{} (commit unknown: not built from a git checkout)",
            env!("CARGO_PKG_VERSION")
        ),
    }
}

/// This process's command line, quoted so that a POSIX shell runs it again as it was, each
/// secret masked.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| http::redact(&a.to_string_lossy()))
        .collect();
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
}

/// What the report says about the run `plan` describes.
pub fn describe(plan: &ClassifyPlan) -> RunDetails {
    let definition = &plan.model.package.definition;
    // As the run reads it (--bands, --nodata).
    let first = Raster::open_with(&plan.inputs.rasters[0], &plan.inputs.raster_overrides).ok();
    let features_crs_wkt = features_crs(plan);
    RunDetails {
        command_line: command_line(),
        version: version(),
        gdal_version: gdal::version::version_info("RELEASE_NAME"),
        onnx_runtime_version: infer::runtime_version(&plan.model.ort_library)
            .unwrap_or_else(|| format!("unknown ({})", plan.model.ort_library.display())),
        model: ModelDetails {
            path: http::redact(&plan.model.package.source.display().to_string()),
            name: definition
                .model_name
                .clone()
                .unwrap_or_else(|| plan.model.package.model_name.clone()),
            kind: model_kind(plan),
            chip_size: (definition.image_width, definition.image_height),
            bands: bands_read(plan, first.as_ref()),
            classes: definition.classes.len(),
            multi_label: definition.label_mode == LabelMode::MultiLabel,
        },
        device: match plan.model.device {
            Device::Cpu => "cpu".into(),
            Device::Cuda { id, .. } => format!("cuda:{id}"),
            Device::Auto => "auto".into(),
        },
        test_time_augmentation: plan.model.arguments.test_time_augmentation,
        inputs: inputs(plan, first.as_ref(), features_crs_wkt.as_deref()),
        more_rasters: plan.inputs.rasters.len().saturating_sub(MAX_LISTED_RASTERS),
        // The rows' coordinates are in --t-srs when it is given.
        features_crs_wkt: plan.output.layer.target_srs.clone().or(features_crs_wkt),
    }
}

/// The bands the model reads, by the raster's own numbers, with their names.
fn bands_read(plan: &ClassifyPlan, first: Option<&Raster>) -> String {
    let definition = &plan.model.package.definition;
    let listed = plan.inputs.raster_overrides.bands.as_deref();
    let resolved = first.and_then(|r| bands::resolve_bands(r, &definition.extract_bands).ok().map(|b| (r, b)));
    let Some((raster, numbers)) = resolved else {
        return format!("{:?}", definition.extract_bands);
    };
    numbers
        .iter()
        .map(|&n| {
            let band = &raster.bands[n - 1];
            let n = listed.and_then(|l| l.get(n - 1)).copied().unwrap_or(n);
            let name = [&band.description, &band.color_name]
                .into_iter()
                .find(|s| !s.is_empty() && s.as_str() != "Undefined");
            match name {
                Some(name) => format!("{n} ({name})"),
                None => n.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What kind of model it is: framework, configuration, labels, conversion.
fn model_kind(plan: &ClassifyPlan) -> String {
    let definition = &plan.model.package.definition;
    let mut kind = [
        definition.framework.as_deref(),
        definition.model_configuration.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    kind.push_str(match definition.label_mode {
        LabelMode::SingleLabel => ", single-label",
        LabelMode::MultiLabel => ", multi-label",
    });
    if let Some(conversion) = &plan.model.package.conversion {
        kind.push_str(&format!(
            ", {} weights converted to ONNX ({})",
            conversion.architecture, conversion.model_file
        ));
    }
    kind
}

/// The rasters (the first few) and the features, with their CRS and how they were selected.
fn inputs(plan: &ClassifyPlan, first: Option<&Raster>, features_crs_wkt: Option<&str>) -> Vec<InputDetails> {
    let mut inputs: Vec<InputDetails> = plan
        .inputs
        .rasters
        .iter()
        .take(MAX_LISTED_RASTERS)
        .enumerate()
        .map(|(i, name)| match (i, first) {
            (0, Some(raster)) => InputDetails::new("raster", name, raster.grid.srs_wkt.as_deref()),
            _ => InputDetails::raster(name),
        })
        .map(|mut details| {
            details.name = http::redact(&details.name);
            details
        })
        .collect();
    let Some(features) = &plan.inputs.features else {
        return inputs;
    };
    let mut details = InputDetails::new("features", &http::redact(&features.source), features_crs_wkt);
    let query = &features.query;
    let what: Vec<String> = [
        query.layer.as_ref().map(|layer| format!("layer {layer}")),
        query.sql.as_ref().map(|sql| format!("--sql {sql}")),
        query.where_clause.as_ref().map(|filter| format!("--where {filter}")),
        plan.inputs.extent.as_ref().map(|e| {
            let [x0, y0, x1, y1] = e.bounds;
            format!("--extent {x0} {y0} {x1} {y1}")
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !what.is_empty() {
        details.name = format!("{} ({})", http::redact(&features.source), what.join(", "));
    }
    if let Some(given) = &query.srs_override {
        details.crs = format!("{} (given with --features-crs {given})", details.crs);
    }
    inputs.push(details);
    inputs
}

/// The CRS the features are read in: `--features-crs`, else their layer's.
fn features_crs(plan: &ClassifyPlan) -> Option<String> {
    let features = plan.inputs.features.as_ref()?;
    if let Some(given) = &features.query.srs_override {
        return gdal::spatial_ref::SpatialRef::from_definition(given)
            .ok()?
            .to_wkt()
            .ok();
    }
    let dataset = source::open_with(&features.source, SourceKind::Vector, &features.query.open_options).ok()?;
    let layer = match &features.query.layer {
        Some(name) => dataset.layer_by_name(name).ok()?,
        None => dataset.layer(0).ok()?,
    };
    layer.spatial_ref()?.to_wkt().ok()
}
