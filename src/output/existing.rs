//! Outputs that exist already, opened to be read: shards to merge, outputs to compare.

use std::path::Path;

use anyhow::Result;

/// Opens an existing output (a shard to merge, an output to compare) read-only, with an error
/// that names it and says what to do.
pub fn open_output(path: &Path) -> Result<gdal::Dataset> {
    let shown = path.display();
    if !path.exists() && !path.starts_with("/vsi") {
        crate::bail_input!("{shown} does not exist; check the path");
    }
    let options = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_READONLY
            | gdal::GdalOpenFlags::GDAL_OF_VECTOR
            | gdal::GdalOpenFlags::GDAL_OF_VERBOSE_ERROR,
        ..Default::default()
    };
    match gdal::Dataset::open_ex(path, options) {
        Ok(dataset) => Ok(dataset),
        Err(err) => {
            let reason = match err {
                gdal::errors::GdalError::NullPointer { msg, .. } if !msg.is_empty() => {
                    msg.trim_end_matches('.').to_string()
                }
                _ => "not a format GDAL recognises".to_string(),
            };
            crate::bail_input!(
                "cannot open {shown}: {reason}; give an output of classify-objects (try `ogrinfo {shown}`)"
            )
        }
    }
}
