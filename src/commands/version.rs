//! `classify-objects --version`: the versions of classify-objects (with the git commit it was
//! built from), GDAL, PROJ and ONNX Runtime, and the ONNX Runtime library's path (or why none
//! loads).

use std::process::ExitCode;

use crate::messages::print;

/// Prints the version text.
pub fn run() -> anyhow::Result<ExitCode> {
    print(&text())?;
    Ok(ExitCode::SUCCESS)
}

/// What `--version` prints.
pub fn text() -> String {
    // "GDAL 3.6.2, released 2023/01/02"
    let gdal = gdal::version::version_info("--version");
    let (major, minor, patch) = crate::gdal_ffi::proj_version();
    let ort = match crate::infer::locate_runtime(None) {
        Ok(library) => {
            // The file itself, symbolic links resolved.
            let path = std::fs::canonicalize(&library).unwrap_or(library);
            match crate::infer::runtime_version(&path) {
                Some(version) => format!("ONNX Runtime {version} ({})", path.display()),
                None => format!(
                    "ONNX Runtime not loaded: {} does not load as ONNX Runtime",
                    path.display()
                ),
            }
        }
        Err(err) => format!("ONNX Runtime not loaded: {}", crate::error::one_line(&err)),
    };
    format!(
        "classify-objects {}\n{gdal}\nPROJ {major}.{minor}.{patch}\n{ort}\n",
        crate::run::describe::version()
    )
}
