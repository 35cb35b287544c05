//! Finding and loading ONNX Runtime: [`locate_runtime`] searches the places the README lists, so
//! a missing library is a clear error rather than a panic; [`init_runtime`] creates the
//! process's one environment; [`describe_model`] lists a model's tensors as ONNX Runtime sees them.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::ValueType;

use crate::bail_input;

/// Environment variable naming the ONNX Runtime library (ort's own convention).
pub const ORT_ENV: &str = "ORT_DYLIB_PATH";

/// The places searched for the ONNX Runtime library, in order.
pub fn runtime_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(path) = explicit {
        places.push(path.to_path_buf());
        return places;
    }
    if let Some(path) = std::env::var_os(ORT_ENV).filter(|p| !p.is_empty()) {
        places.push(PathBuf::from(path));
        return places;
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        places.push(dir.clone());
        places.push(dir.join("lib"));
        // Where `make install` and the dist tarball put it: PREFIX/lib/classify-objects.
        places.push(dir.join("../lib/classify-objects"));
        places.push(dir.join("../lib"));
    }
    // The project-local folder that scripts/setup.sh fills (for builds run from the checkout).
    places.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".onnxruntime/lib"));
    places.push(PathBuf::from(".onnxruntime/lib"));
    places.push(PathBuf::from("/opt/onnxruntime/lib"));
    places.push(PathBuf::from("/usr/local/lib"));
    places.push(PathBuf::from("/usr/lib"));
    places
}

/// Finds the ONNX Runtime library (`explicit`, or the default places) and loads it.
pub fn start_runtime(explicit: Option<&Path>) -> Result<Environment> {
    init_runtime(&locate_runtime(explicit)?)
}

/// Finds the ONNX Runtime shared library: `--ort-library`, `$ORT_DYLIB_PATH`, next to the
/// executable, the project's `.onnxruntime/lib`, `/opt/onnxruntime/lib`, the system folders.
pub fn locate_runtime(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates = runtime_candidates(explicit);
    for place in &candidates {
        if place.is_file() {
            return Ok(place.clone());
        }
        if place.is_dir() {
            if let Some(found) = library_in(place) {
                return Ok(found);
            }
        }
    }
    let origin = if explicit.is_some() {
        "--ort-library"
    } else if std::env::var_os(ORT_ENV).is_some_and(|p| !p.is_empty()) {
        ORT_ENV
    } else {
        "the default places"
    };
    Err(anyhow!(
        "ONNX Runtime library not found (searched {origin}: {}); run scripts/setup.sh, or point --ort-library / {ORT_ENV} at libonnxruntime.so",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}

fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join(if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else {
        "libonnxruntime.so"
    });
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so.") || (n.starts_with("libonnxruntime.") && n.ends_with(".dylib"))
            })
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

/// Loads ONNX Runtime from `library` and creates the process's one environment.
pub fn init_runtime(library: &Path) -> Result<Environment> {
    let builder = ort::init_from(library).map_err(|err| {
        anyhow!(
            "cannot load ONNX Runtime from {}: {err}; give a libonnxruntime.so of version 1.21 or newer (scripts/setup.sh installs 1.32)",
            library.display()
        )
    })?;
    builder
        .with_name("classify-objects")
        .build()
        .map_err(|e| anyhow!("starting ONNX Runtime: {e}"))
}

/// The version of the ONNX Runtime library at `library` (e.g. `1.32.0`), from its C API
/// (`OrtGetApiBase()->GetVersionString()`); `None` when it cannot be read. The library is the one
/// [`init_runtime`] loaded: opening it again only takes another reference to it.
pub fn runtime_version(library: &Path) -> Option<String> {
    // SAFETY: the library is ONNX Runtime (loaded and checked by `init_runtime`); the symbol is
    // its documented entry point, which returns a static struct whose `GetVersionString` returns
    // a static NUL-terminated string.
    unsafe {
        let lib = libloading::Library::new(library).ok()?;
        let base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase\0").ok()?;
        let base = base();
        if base.is_null() {
            return None;
        }
        let text = ((*base).GetVersionString)();
        (!text.is_null()).then(|| std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned())
    }
}

/// Name, element type and shape (-1 for dynamic) of a model input or output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type, e.g. `Float32`.
    pub element_type: String,
    /// Dimensions, -1 where dynamic.
    pub shape: Vec<i64>,
}

/// The inputs and outputs of an ONNX model, as ONNX Runtime sees them.
pub fn describe_model(environment: &Environment, onnx: &[u8]) -> Result<(Vec<TensorInfo>, Vec<TensorInfo>)> {
    let mut builder = Session::builder(environment).context("creating an ONNX Runtime session")?;
    let session = match builder.commit_from_memory(onnx) {
        Ok(session) => session,
        Err(err) => bail_input!("the package's model is not a valid ONNX model ONNX Runtime can load ({err})"),
    };
    let info = |outlets: &[ort::value::Outlet]| -> Vec<TensorInfo> {
        outlets
            .iter()
            .map(|o| match o.dtype() {
                ValueType::Tensor { ty, shape, .. } => TensorInfo {
                    name: o.name().to_string(),
                    element_type: format!("{ty:?}"),
                    shape: shape.to_vec(),
                },
                other => TensorInfo {
                    name: o.name().to_string(),
                    element_type: format!("{other:?}"),
                    shape: Vec::new(),
                },
            })
            .collect()
    };
    Ok((info(session.inputs()), info(session.outputs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_is_a_clear_error() {
        let err = locate_runtime(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("ONNX Runtime library not found") && message.contains("--ort-library"),
            "{message}"
        );
    }
}
