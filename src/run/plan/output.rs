//! The output part of the plan: format, layer, label field, output CRS, what is written besides
//! the label (scores, style), and the temporary file with its lock, prepared last.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::bail_input;
use crate::cli::values::check_pairs;
use crate::cli::ClassifyArgs;
use crate::output::{self, target, Format, LayerSettings, OutputTarget, StyleMode, WritePolicy};

/// Field names the output uses for itself, which the label field cannot take.
pub const RESERVED_FIELDS: &[&str] = &[
    output::SOURCE_ID_FIELD,
    output::IMAGE_ID_FIELD,
    output::CONFIDENCE_FIELD,
    output::STATUS_FIELD,
    "fid",
    "ogc_fid",
    "geom",
    "geometry",
    "the_geom",
    "wkb_geometry",
    "shape",
    "WKT",
];

/// Where and how the result is written.
#[derive(Debug)]
pub struct OutputPlan {
    /// The output and its temporary file (written first, committed at the end).
    pub target: OutputTarget,
    /// Output format.
    pub format: Format,
    /// Output layer name and creation options, and the CRS of `--t-srs`.
    pub layer: LayerSettings,
    /// Label field name.
    pub label_field: String,
    /// Where the QGIS style goes.
    pub style: StyleMode,
    /// One field per class with its probability (`--all-scores`).
    pub all_scores: bool,
    /// Per-feature problems are fatal (`--strict`).
    pub strict: bool,
}

impl OutputPlan {
    /// The output as named in messages.
    pub fn shown(&self) -> String {
        self.target.path.display().to_string()
    }
}

/// The output part, checked but not prepared yet: nothing is written until [`prepare`]
/// (called once every other part is checked).
///
/// [`prepare`]: OutputChoice::prepare
#[derive(Debug)]
pub struct OutputChoice {
    path: PathBuf,
    /// Output format.
    pub format: Format,
    layer: LayerSettings,
    label_field: String,
    style: StyleMode,
    all_scores: bool,
    strict: bool,
    policy: WritePolicy,
}

impl OutputChoice {
    /// Checks the output flags of `args` for the output `path`.
    pub fn from_args(args: &ClassifyArgs, path: &Path) -> Result<OutputChoice> {
        let label_field = label_field(&args.class_label_field)?;
        // The name first (a name without one has no format either), then as the format writes it.
        target::check_name(path, true, "output")?;
        let format = match &args.format {
            Some(name) => Format::named(name)?,
            None => Format::for_path(path)?,
        };
        target::check_name(path, format.writes_folder(), "output")?;
        check_pairs("lco", &args.lco, "SPATIAL_INDEX=NO")?;
        check_pairs("dsco", &args.dsco, "VERSION=1.2")?;
        let target_srs = args.t_srs.as_deref().map(crs_wkt).transpose()?;
        format.check_output_name(path)?;
        let layer_name = args.layer_name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "classified".into())
        });
        Ok(OutputChoice {
            path: path.to_path_buf(),
            format,
            layer: LayerSettings {
                name: layer_name,
                creation_options: args.lco.clone(),
                dataset_options: args.dsco.clone(),
                given: args.layer_name.is_some(),
                target_srs,
            },
            label_field,
            style: args.qgis_style,
            all_scores: args.all_scores,
            strict: args.strict,
            policy: WritePolicy {
                overwrite: args.overwrite,
                append: args.append,
                resume: args.resume,
            },
        })
    }

    /// Whether the format records a shard and can be resumed (GeoPackage or CSV).
    pub fn records_runs(&self) -> bool {
        self.format == Format::Csv || self.format.is_gpkg()
    }

    /// The output's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Prepares the temporary output and its lock: from here on, the run owns the output.
    pub fn prepare(self) -> Result<OutputPlan> {
        let target = OutputTarget::prepare(&self.path, &self.format, self.policy, &self.layer.name)?;
        Ok(OutputPlan {
            target,
            format: self.format,
            layer: self.layer,
            label_field: self.label_field,
            style: self.style,
            all_scores: self.all_scores,
            strict: self.strict,
        })
    }
}

/// `--class-label-field`, checked: usable as a field name and not one the output uses itself.
fn label_field(given: &str) -> Result<String> {
    let label_field = given.trim().to_string();
    if label_field.is_empty() || label_field.contains(|c: char| c.is_control() || c == '"') {
        bail_input!("--class-label-field \"{given}\" is not a usable field name; use letters, digits and underscores");
    }
    if let Some(taken) = RESERVED_FIELDS.iter().find(|r| r.eq_ignore_ascii_case(&label_field)) {
        bail_input!(
            "--class-label-field {label_field} is a name the output already uses ({taken}); choose another name, e.g. ClassLabel"
        );
    }
    Ok(label_field)
}

/// `--t-srs` as WKT.
fn crs_wkt(definition: &str) -> Result<String> {
    match gdal::spatial_ref::SpatialRef::from_definition(definition) {
        Ok(srs) => Ok(srs.to_wkt()?),
        Err(err) => bail_input!(
            "--t-srs \"{definition}\" is not a coordinate reference system GDAL knows ({err}); use e.g. EPSG:4326 or a WKT/PROJ string"
        ),
    }
}
