//! Outputs that exist already: opened to be read (shards to merge, outputs to compare), and
//! recognised before a run replaces or adds to one (a run never touches what is not an output of
//! the format it writes).

use std::path::Path;

use anyhow::Result;

use crate::output::format::Format;

/// Checks that the existing `path` is an output of `format` (or an empty file), which a run may
/// replace or add to; anything else (an ordinary folder named `x.gdb`, a file of another format)
/// is refused and left untouched.
pub fn check_replaceable(path: &Path, format: &Format) -> Result<()> {
    let shown = path.display();
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_file() && meta.len() == 0 {
        return Ok(());
    }
    let driver = format.name();
    let options = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_READONLY | gdal::GdalOpenFlags::GDAL_OF_VECTOR,
        allowed_drivers: Some(&[driver]),
        ..Default::default()
    };
    let recognised = crate::messages::gdal_muted(|| gdal::Dataset::open_ex(path, options).is_ok());
    if !recognised {
        let what = if meta.is_dir() { "a folder" } else { "a file" };
        crate::bail_input!(
            "output {shown} exists and is {what} that is not a {driver} dataset; a run replaces or adds to outputs of the format it writes only: move it away or choose another output name"
        );
    }
    Ok(())
}

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
