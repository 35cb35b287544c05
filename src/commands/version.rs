//! `classify-objects --version`: the versions of classify-objects (with the git commit it was
//! built from), GDAL, PROJ and ONNX Runtime, and the ONNX Runtime library's path (or why none
//! loads).

use std::process::ExitCode;

use crate::error;
use crate::gdal_ffi;
use crate::infer;
use crate::messages::print;
use crate::run::describe;

/// Prints the version text.
pub fn run() -> anyhow::Result<ExitCode> {
    print(&text())?;
    Ok(ExitCode::SUCCESS)
}

/// What `--version` prints.
pub fn text() -> String {
    // "GDAL 3.6.2, released 2023/01/02"
    let gdal = gdal::version::version_info("--version");
    let (major, minor, patch) = gdal_ffi::proj_version();
    let ort = match infer::locate_runtime(None) {
        Ok(library) => {
            // The file itself, symbolic links resolved.
            let path = std::fs::canonicalize(&library).unwrap_or(library);
            match infer::runtime_version(&path) {
                Some(version) => format!("ONNX Runtime {version} ({})", path.display()),
                None => format!(
                    "ONNX Runtime not loaded: {} does not load as ONNX Runtime",
                    path.display()
                ),
            }
        }
        Err(err) => format!("ONNX Runtime not loaded: {}", error::one_line(&err)),
    };
    format!(
        "classify-objects {}\n{gdal}\nPROJ {major}.{minor}.{patch}\n{ort}\n",
        describe::version()
    )
}
