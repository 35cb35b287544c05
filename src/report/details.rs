//! What the report says about how a run was made, so that a reviewer can reproduce or question
//! it: versions (classify-objects with its git commit, GDAL, ONNX Runtime), the model, the
//! settings, the inputs with their CRS, and the exact command line. Gathered from the plan by
//! the run; the counts and timings come from the [`RunSummary`](crate::report::summary::RunSummary).

use crate::error;
use crate::input::raster::Raster;
use gdal::spatial_ref::SpatialRef;

/// Inputs listed one by one; more rasters (a folder of images) are counted.
pub const MAX_LISTED_RASTERS: usize = 10;

/// How a run was made.
#[derive(Debug, Clone, Default)]
pub struct RunDetails {
    /// The command line, quoted for a POSIX shell.
    pub command_line: String,
    /// classify-objects: version, and the git commit it was built from when known.
    pub version: String,
    /// GDAL's release name.
    pub gdal_version: String,
    /// ONNX Runtime's version, as its library reports it.
    pub onnx_runtime_version: String,
    /// The model.
    pub model: ModelDetails,
    /// `--device` as asked (the provider that ran is in the summary).
    pub device: String,
    /// Test-time augmentation on or off.
    pub test_time_augmentation: bool,
    /// The rasters, features and output, each with its CRS.
    pub inputs: Vec<InputDetails>,
    /// Rasters not listed in `inputs` (beyond [`MAX_LISTED_RASTERS`]).
    pub more_rasters: usize,
    /// The CRS of the rows' coordinates, as WKT (`--t-srs`, else the features' own): the map
    /// places an output that keeps none (a CSV table) with it.
    pub features_crs_wkt: Option<String>,
}

/// The model as the report shows it.
#[derive(Debug, Clone, Default)]
pub struct ModelDetails {
    /// The package path as given.
    pub path: String,
    /// `ModelName` from the `.emd`, else the model file's name.
    pub name: String,
    /// What it is: framework, configuration, single- or multi-label, conversion.
    pub kind: String,
    /// Chip width and height in pixels.
    pub chip_size: (usize, usize),
    /// The raster bands it reads, in channel order (1-based, with their names).
    pub bands: String,
    /// Number of classes.
    pub classes: usize,
    /// A multi-label model: `Confidence` holds every class's score, as text.
    pub multi_label: bool,
}

/// One input or output file.
#[derive(Debug, Clone)]
pub struct InputDetails {
    /// `raster`, `features` or `output`.
    pub role: &'static str,
    /// Path or GDAL source name as given.
    pub name: String,
    /// Its CRS, e.g. `EPSG:32633 (WGS 84 / UTM zone 33N)`, or why there is none.
    pub crs: String,
}

impl InputDetails {
    /// An input whose CRS is given as WKT (`None`: it has none).
    pub fn new(role: &'static str, name: &str, wkt: Option<&str>) -> InputDetails {
        InputDetails {
            role,
            name: name.to_string(),
            crs: wkt.map(crs_label).unwrap_or_else(|| "no CRS".into()),
        }
    }

    /// A raster, opened for its CRS (a raster that cannot be opened says so).
    pub fn raster(name: &str) -> InputDetails {
        match Raster::open(name) {
            Ok(raster) => InputDetails::new("raster", name, raster.grid.srs_wkt.as_deref()),
            Err(err) => InputDetails {
                role: "raster",
                name: name.to_string(),
                crs: format!("unknown ({})", error::one_line(&err)),
            },
        }
    }
}

/// A CRS as a reader knows it: its authority code and name, e.g. `EPSG:32633 (WGS 84 / UTM zone
/// 33N)`, or its name alone.
pub fn crs_label(wkt: &str) -> String {
    let Ok(srs) = SpatialRef::from_wkt(wkt) else {
        return "unknown CRS".into();
    };
    let name = srs.name().unwrap_or_else(|| "unnamed CRS".into());
    match (srs.auth_name(), srs.auth_code()) {
        (Some(auth), Ok(code)) => format!("{auth}:{code} ({name})"),
        _ => name,
    }
}
