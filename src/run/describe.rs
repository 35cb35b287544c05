//! The run details `--report` shows (versions, model, settings, inputs with their CRS, the exact
//! command line), gathered from the plan before it runs.

use gdal::vector::LayerAccess;

use crate::infer::Device;
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

/// This process's command line, quoted so that a POSIX shell runs it again as it was.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
}

/// What the report says about the run `plan` describes.
pub fn describe(plan: &ClassifyPlan) -> RunDetails {
    let definition = &plan.model.package.definition;
    // As the run reads it (--bands, --nodata); band numbers are the raster's own.
    let first = Raster::open_with(&plan.inputs.rasters[0], &plan.inputs.raster_overrides).ok();
    let listed = plan.inputs.raster_overrides.bands.as_deref();
    let bands = match first.as_ref().and_then(|r| {
        crate::chips::bands::resolve_bands(r, &definition.extract_bands)
            .ok()
            .map(|b| (r, b))
    }) {
        Some((raster, numbers)) => numbers
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
            .join(", "),
        None => format!("{:?}", definition.extract_bands),
    };
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
    let mut inputs: Vec<InputDetails> = plan
        .inputs
        .rasters
        .iter()
        .take(MAX_LISTED_RASTERS)
        .enumerate()
        .map(|(i, name)| match (i, &first) {
            (0, Some(raster)) => InputDetails::new("raster", name, raster.grid.srs_wkt.as_deref()),
            _ => InputDetails::raster(name),
        })
        .collect();
    let features_crs_wkt = features_crs(plan);
    if let Some(features) = &plan.inputs.features {
        let mut details = InputDetails::new("features", &features.source, features_crs_wkt.as_deref());
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
            details.name = format!("{} ({})", features.source, what.join(", "));
        }
        if let Some(given) = &query.srs_override {
            details.crs = format!("{} (given with --features-crs {given})", details.crs);
        }
        inputs.push(details);
    }
    RunDetails {
        command_line: command_line(),
        version: version(),
        gdal_version: gdal::version::version_info("RELEASE_NAME"),
        onnx_runtime_version: crate::infer::runtime_version(&plan.model.ort_library)
            .unwrap_or_else(|| format!("unknown ({})", plan.model.ort_library.display())),
        model: ModelDetails {
            path: plan.model.package.source.display().to_string(),
            name: definition
                .model_name
                .clone()
                .unwrap_or_else(|| plan.model.package.model_name.clone()),
            kind,
            chip_size: (definition.image_width, definition.image_height),
            bands,
            classes: definition.classes.len(),
            multi_label: definition.label_mode == LabelMode::MultiLabel,
        },
        device: match plan.model.device {
            Device::Cpu => "cpu".into(),
            Device::Cuda(n) => format!("cuda:{n}"),
            Device::Auto => "auto".into(),
        },
        test_time_augmentation: plan.model.arguments.test_time_augmentation,
        inputs,
        more_rasters: plan.inputs.rasters.len().saturating_sub(MAX_LISTED_RASTERS),
        features_crs_wkt,
    }
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
