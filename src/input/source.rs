//! Opening GDAL/OGR data sources (paths, VSI paths, connection strings, ArcGIS REST service URLs)
//! with errors that name the input, say why, and say what to do.

use std::path::Path;

use anyhow::Result;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use crate::bail_input;
use crate::input::http;
use crate::input::service::{self, LayerFilter, ServiceKind, ServiceUrl};

/// What kind of dataset is being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A raster (image).
    Raster,
    /// A vector layer source (features).
    Vector,
}

/// Whether `name` is a plain local path (not `/vsi...`, a URL, or a `DRIVER:` connection string).
pub fn is_local_path(name: &str) -> bool {
    !(name.starts_with("/vsi") || name.contains("://") || (name.contains(':') && !Path::new(name).exists()))
}

/// Opens `name` read-only as `kind`. An ArcGIS REST service URL (`…/ImageServer`, `…/MapServer`,
/// `…/FeatureServer/N`) is opened through the description [`crate::input::service`] builds for it.
pub fn open(name: &str, kind: SourceKind) -> Result<Dataset> {
    open_with(name, kind, &[])
}

/// As [`open`], with the driver's open options `NAME=VALUE` (`--oo`).
pub fn open_with(name: &str, kind: SourceKind, open_options: &[String]) -> Result<Dataset> {
    open_filtered(name, kind, open_options, &LayerFilter::default())
}

/// As [`open_with`]; a feature service layer is read with `filter` applied by the server.
pub fn open_filtered(name: &str, kind: SourceKind, open_options: &[String], filter: &LayerFilter) -> Result<Dataset> {
    let (what, tool, flag) = match kind {
        SourceKind::Raster => ("raster", "gdalinfo", GdalOpenFlags::GDAL_OF_RASTER),
        SourceKind::Vector => ("features", "ogrinfo", GdalOpenFlags::GDAL_OF_VECTOR),
    };
    if is_local_path(name) && !Path::new(name).exists() {
        bail_input!("{what} {name} does not exist; check the path");
    }
    let service = match service::parse(name) {
        Some(url) => {
            check_service_kind(&url, name, kind)?;
            Some(service::gdal_source(&url, name, filter)?)
        }
        None => None,
    };
    let drivers;
    let mut options: Vec<&str> = open_options.iter().map(String::as_str).collect();
    let (gdal_name, allowed) = match &service {
        Some((gdal_name, driver)) => {
            drivers = [*driver];
            if kind == SourceKind::Vector {
                options.push("FEATURE_SERVER_PAGING=YES");
            }
            (gdal_name.as_str(), Some(&drivers[..]))
        }
        None => (name, None),
    };
    let shown = http::redact(name);
    let name = shown.as_str();
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_READONLY | flag | GdalOpenFlags::GDAL_OF_VERBOSE_ERROR,
        allowed_drivers: allowed,
        open_options: (!options.is_empty()).then_some(options.as_slice()),
        ..Default::default()
    };
    match Dataset::open_ex(Path::new(gdal_name), options) {
        Ok(dataset) => Ok(dataset),
        Err(err) => {
            let reason = match err {
                gdal::errors::GdalError::NullPointer { msg, .. } if !msg.is_empty() => {
                    msg.trim_end_matches('.').to_string()
                }
                _ => "not a format GDAL recognises".to_string(),
            };
            bail_input!("cannot open {what} {name}: {reason}; give a {what} source GDAL can read (try `{tool} {name}`)")
        }
    }
}

/// Refuses a service given where the other kind is wanted (a feature layer as a raster, an
/// image or map service as features).
fn check_service_kind(url: &ServiceUrl, name: &str, kind: SourceKind) -> Result<()> {
    let shown = http::redact(name);
    match (kind, url.kind) {
        (SourceKind::Raster, ServiceKind::FeatureLayer) => bail_input!(
            "--raster {shown} is a feature layer; give it to --features, and give --raster an ImageServer or a cached MapServer"
        ),
        (SourceKind::Vector, ServiceKind::ImageServer | ServiceKind::MapServer) => bail_input!(
            "--features {shown} is an image or map service, not a layer; give a layer (…/FeatureServer/0), or give the service to --raster"
        ),
        _ => Ok(()),
    }
}
