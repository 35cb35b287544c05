//! The model part of the plan: the package (opened, converted if it holds PyTorch weights, or
//! downloaded once from a URL), its resolved arguments, where it runs and with which ONNX
//! Runtime library.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::ClassifyArgs;
use crate::infer::{self, Device};
use crate::input::{download, http, portal};
use crate::messages;
use crate::model::arguments::{self, ModelArguments};
use crate::model::package::{ModelPackage, MAX_MODEL_BYTES};

/// Largest model package downloaded from a URL: the largest model a package may hold, and room
/// for the rest of the package.
pub const MAX_DOWNLOAD_BYTES: u64 = MAX_MODEL_BYTES + (1 << 30);

/// The model, its arguments, and where it runs.
#[derive(Debug)]
pub struct ModelPlan {
    /// The model package.
    pub package: ModelPackage,
    /// The package's local file (its cached copy for a URL); `None` for a definition given as
    /// JSON text.
    pub local_file: Option<PathBuf>,
    /// Resolved model arguments.
    pub arguments: ModelArguments,
    /// Execution device.
    pub device: Device,
    /// ONNX Runtime intra-op threads (0: its default).
    pub intra_op_threads: usize,
    /// The ONNX Runtime library.
    pub ort_library: PathBuf,
}

impl ModelPlan {
    /// Opens and checks the model `--model` names, resolves its arguments, locates ONNX Runtime.
    pub fn from_args(args: &ClassifyArgs, model: &Path) -> Result<ModelPlan> {
        let (package, local_file) = open_package(model, args.cache_dir.as_deref(), args.portal.as_deref())?;
        if let Some(conversion) = &package.conversion {
            messages::info(conversion.notice());
        }
        let mut pairs = Vec::new();
        if let Some(text) = &args.model_arguments {
            pairs.extend(arguments::parse_esri_string(text)?);
        }
        pairs.extend(args.model_arg.iter().map(|a| (a.name.clone(), a.value.clone())));
        let arguments = arguments::resolve(&package.definition, &pairs)?;
        arguments::check_batch_memory(
            &package.definition,
            arguments.batch_size,
            arguments.test_time_augmentation,
        )?;
        Ok(ModelPlan {
            package,
            local_file,
            arguments,
            device: args.device,
            intra_op_threads: args.intra_op_threads.map_or(0, |n| n.0),
            ort_library: infer::locate_runtime(args.ort_library.as_deref())?,
        })
    }
}

/// The package `--model` names: a JSON definition, a local file, or a URL (a portal item, its
/// data, an item ID on `portal`) downloaded once into the cache folder; with its local file.
fn open_package(
    model: &Path,
    cache_dir: Option<&Path>,
    portal: Option<&str>,
) -> Result<(ModelPackage, Option<PathBuf>)> {
    if let Some(text) = model.to_str().filter(|m| ModelPackage::is_json_definition(m)) {
        return Ok((ModelPackage::from_json_definition(text)?, None));
    }
    let (file, url) = fetch_model(model.to_path_buf(), cache_dir, portal)?;
    let mut package = match (ModelPackage::open(&file), &url) {
        (Ok(package), _) => package,
        (Err(err), Some(url)) => {
            return Err(err.context(format!(
                "cached model {url} ({}; delete it to download it again)",
                file.display()
            )))
        }
        (Err(err), None) => return Err(err),
    };
    if let Some(url) = url {
        // Named as the user gave it in the summary and report; the file is the cached copy.
        package.source = PathBuf::from(url);
    }
    Ok((package, Some(file)))
}

/// The local file of `--model`: itself, or for an `http(s)://` URL (a portal item's is its
/// data's, the item checked first; an item ID is on `portal`) its copy in the cache folder,
/// downloaded (and checked as a local package would be) the first time; with the URL to show.
fn fetch_model(model: PathBuf, cache_dir: Option<&Path>, portal: Option<&str>) -> Result<(PathBuf, Option<String>)> {
    let given = model.to_str().filter(|m| !model.exists() || download::is_remote(m));
    let url = match given {
        Some(m) => portal::package_url(m, portal)?.or_else(|| download::is_remote(m).then(|| m.to_string())),
        None => None,
    };
    let Some(url) = url else {
        return Ok((model, None));
    };
    let dir = download::cache_dir(cache_dir)?.join("models");
    let shown = http::redact(&url);
    let check = |path: &Path| ModelPackage::open_dlpk_as(path, &shown).map(drop);
    let notice = |path: &Path| {
        messages::info(format_args!("downloading model {shown} into {}", path.display()));
    };
    let path = download::cached(&url, &dir, "dlpk", MAX_DOWNLOAD_BYTES, &check, &notice)?;
    Ok((path, Some(shown)))
}
