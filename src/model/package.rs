//! Opening a model package: a `.dlpk` (zip) holding one `.emd` at its root and the ONNX model it
//! names in `ModelFile`, or a bare `.emd` next to its model.
//!
//! The zip is read in memory and never extracted; entry sizes are capped so that a zip bomb is
//! refused before it is inflated; anything else in the package (Python inference functions) is
//! ignored and never executed. An arcgis.learn FeatureClassifier package, whose `ModelFile` is
//! PyTorch weights (`.pth`), is converted to ONNX in memory
//! ([`crate::model::arcgis_learn::feature_classifier`]); the `.pth` is inflated once.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zip::ZipArchive;

use crate::bail_input;
use crate::model::arcgis_learn::feature_classifier::{self, Conversion};
use crate::model::definition::{normalize_package_path, ModelDefinition};

/// Largest `.emd` accepted (real ones are a few KiB).
pub const MAX_EMD_BYTES: u64 = 16 << 20;
/// Largest ONNX model accepted from a package.
pub const MAX_MODEL_BYTES: u64 = 4 << 30;

/// A model definition with the ONNX model bytes it names.
#[derive(Debug)]
pub struct ModelPackage {
    /// The path the user gave.
    pub source: PathBuf,
    /// Name of the `.emd` (inside the zip, or the file name).
    pub emd_name: String,
    /// The parsed definition.
    pub definition: ModelDefinition,
    /// Name of the model file as found.
    pub model_name: String,
    /// The ONNX model, as bytes for ONNX Runtime (converted, for a `.pth` package).
    pub onnx: Vec<u8>,
    /// The `.emd` text as read.
    pub emd_text: String,
    /// How the ONNX model was made from PyTorch weights, for a FeatureClassifier `.pth` package.
    pub conversion: Option<Conversion>,
}

impl ModelPackage {
    /// Reads a `.dlpk` held in memory; `name` stands for it in messages.
    pub fn from_dlpk_bytes(name: &str, bytes: &[u8]) -> Result<ModelPackage> {
        read_dlpk(Path::new(name), std::io::Cursor::new(bytes))
    }

    /// Opens a `.dlpk` or `.emd` file.
    pub fn open(path: &Path) -> Result<ModelPackage> {
        let shown = path.display();
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(err) => {
                bail_input!("cannot open model {shown}: {err}; give the path of a .dlpk package or an .emd file")
            }
        };
        if path.is_dir() {
            bail_input!("model {shown} is a folder; give the path of a .dlpk package or an .emd file");
        }
        let mut magic = [0u8; 4];
        let n = file
            .read(&mut magic)
            .with_context(|| format!("reading model {shown}"))?;
        file.rewind()?;
        // A model alone has no chip rules nor classes: say how to give them.
        if has_extension(path, "onnx") || (n >= 1 && magic[0] == 0x08 && !has_extension(path, "emd")) {
            bail_input!(
                "model {shown} is a bare ONNX model without its .emd (chip size, bands, classes); make a package with `classify-objects pack --onnx {shown} --classes NAME,NAME,... -o model.dlpk` and pass that"
            );
        }
        if has_extension(path, "pth") || has_extension(path, "pt") {
            bail_input!(
                "model {shown} holds PyTorch weights alone; give the .dlpk arcgis.learn saved (or the .emd beside the weights), which says the backbone, chip rules and classes"
            );
        }
        if n >= 2 && &magic[..2] == b"PK" {
            read_dlpk(path, file)
        } else if has_extension(path, "dlpk") {
            bail_input!(
                "model {shown} is not a zip archive; a .dlpk is a zip holding an .emd and its model (re-export or re-download it)"
            )
        } else {
            open_emd(path, file)
        }
    }

    /// Opens the `.dlpk` file at `path` with every check [`ModelPackage::open`] makes, naming it
    /// `shown` in messages (a download, by its URL, before it enters the cache).
    pub fn open_dlpk_as(path: &Path, shown: &str) -> Result<ModelPackage> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) => bail_input!("cannot open model {shown}: {err}"),
        };
        read_dlpk(Path::new(shown), file)
    }
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn open_emd(path: &Path, file: File) -> Result<ModelPackage> {
    let shown = path.display().to_string();
    let text = read_capped(file, MAX_EMD_BYTES, 0, &shown)?;
    let text = match String::from_utf8(text) {
        Ok(text) => text,
        Err(_) => {
            bail_input!("model definition {shown} is not UTF-8 text; give a .dlpk package or an .emd (JSON) file")
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = path.parent().unwrap_or(Path::new("."));
    from_emd_text(text, path, &name, folder)
}

/// The name a model definition given as a JSON string goes by in messages, summaries and
/// reports.
pub const JSON_DEFINITION_NAME: &str = "(--model JSON)";

impl ModelPackage {
    /// Whether `--model` is a model definition given as a JSON string (`{"Framework": ...}`), as
    /// Esri's tool accepts, rather than a path or URL.
    pub fn is_json_definition(model: &str) -> bool {
        model.trim_start().starts_with('{')
    }

    /// Reads a model definition given as a JSON string: its `ModelFile` (and any other path) is
    /// relative to the current folder, as for an `.emd` there.
    pub fn from_json_definition(text: &str) -> Result<ModelPackage> {
        if text.len() as u64 > MAX_EMD_BYTES {
            bail_input!("the model definition given as JSON is larger than {MAX_EMD_BYTES} bytes; give an .emd file");
        }
        from_emd_text(
            text.to_string(),
            Path::new(JSON_DEFINITION_NAME),
            JSON_DEFINITION_NAME,
            Path::new("."),
        )
    }
}

/// The package of the `.emd` `text` (named `path` in messages, `emd_name` in summaries) whose
/// `ModelFile` is relative to `folder`.
fn from_emd_text(text: String, path: &Path, emd_name: &str, folder: &Path) -> Result<ModelPackage> {
    let shown = path.display().to_string();
    let definition = ModelDefinition::parse(&text, &shown)?;
    let model_file = required_model_file(&definition, &shown)?;
    let pth = feature_classifier::is_pth(&model_file);
    if pth {
        feature_classifier::check_definition(&definition, &model_file, &shown)?;
    } else {
        check_onnx_name(&model_file, &shown)?;
    }
    let model_path = if Path::new(&model_file).is_absolute() {
        PathBuf::from(&model_file)
    } else {
        folder.join(&model_file)
    };
    let model_shown = model_path.display().to_string();
    let bytes = match File::open(&model_path) {
        Ok(f) => {
            let hint = f.metadata().map(|m| m.len()).unwrap_or(0);
            read_capped(f, MAX_MODEL_BYTES, hint, &model_shown)?
        }
        Err(err) => bail_input!(
            "model definition {shown} names \"ModelFile\": \"{model_file}\" but {} cannot be opened ({err}); put the model there or fix ModelFile",
            model_path.display()
        ),
    };
    let (onnx, conversion) = if pth {
        let (onnx, conversion) = feature_classifier::convert(&definition, bytes, &model_file, &model_shown)?;
        (onnx, Some(conversion))
    } else {
        (bytes, None)
    };
    Ok(ModelPackage {
        source: path.to_path_buf(),
        emd_name: emd_name.to_string(),
        definition,
        model_name: model_shown,
        onnx,
        emd_text: text,
        conversion,
    })
}

fn read_dlpk<R: Read + Seek>(path: &Path, file: R) -> Result<ModelPackage> {
    let shown = path.display().to_string();
    let mut archive = match ZipArchive::new(file) {
        Ok(archive) => archive,
        Err(err) => {
            bail_input!("model package {shown} is not a readable zip archive ({err}); re-export or re-download it")
        }
    };
    let names = entry_names(&mut archive);
    let (emd_index, emd_name) = the_emd(&names, &shown)?;
    let where_emd = format!("{shown}!{emd_name}");
    let emd_bytes = read_entry(&mut archive, emd_index, MAX_EMD_BYTES, &where_emd)?;
    let text = match String::from_utf8(emd_bytes) {
        Ok(text) => text,
        Err(_) => bail_input!("model definition {where_emd} is not UTF-8 text; fix the .emd file"),
    };
    let definition = ModelDefinition::parse(&text, &where_emd)?;
    let model_file = required_model_file(&definition, &where_emd)?;
    let pth = feature_classifier::is_pth(&model_file);
    if pth {
        feature_classifier::check_definition(&definition, &model_file, &where_emd)?;
    } else {
        check_onnx_name(&model_file, &where_emd)?;
    }
    let (model_index, model_name) = find_model(&names, &model_file, &shown, &emd_name)?;
    let model_shown = format!("{shown}!{model_name}");
    let bytes = read_entry(&mut archive, model_index, MAX_MODEL_BYTES, &model_shown)?;
    drop(archive);
    let (onnx, conversion) = if pth {
        let (onnx, conversion) = feature_classifier::convert(&definition, bytes, &model_file, &model_shown)?;
        (onnx, Some(conversion))
    } else {
        (bytes, None)
    };
    Ok(ModelPackage {
        source: path.to_path_buf(),
        emd_name,
        definition,
        model_name,
        onnx,
        emd_text: text,
        conversion,
    })
}

/// The package's file entries, names normalised; names that try to leave the package (`..`,
/// absolute) are ignored.
fn entry_names<R: Read + Seek>(archive: &mut ZipArchive<R>) -> Vec<(usize, String)> {
    (0..archive.len())
        .filter_map(|i| {
            let entry = archive.by_index_raw(i).ok()?;
            if entry.is_dir() {
                return None;
            }
            let name = normalize_package_path(entry.name());
            let escapes = name.starts_with('/') || name.split('/').any(|part| part == "..");
            (!escapes).then_some((i, name))
        })
        .collect()
}

/// The one `.emd` at the package's root.
fn the_emd(names: &[(usize, String)], shown: &str) -> Result<(usize, String)> {
    let emds: Vec<&(usize, String)> = names
        .iter()
        .filter(|(_, name)| !name.contains('/') && name.to_ascii_lowercase().ends_with(".emd"))
        .collect();
    match emds.as_slice() {
        [one] => Ok((one.0, one.1.clone())),
        [] => bail_input!(
            "model package {shown} has no .emd at its root; a .dlpk must hold exactly one model definition (.emd) next to the model"
        ),
        many => bail_input!(
            "model package {shown} has {} .emd files at its root ({}); keep exactly one",
            many.len(),
            many.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The entry `ModelFile` names: relative to the `.emd`, which sits at the root; a
/// case-insensitive match is accepted, as Windows-made packages often differ in case.
fn find_model(names: &[(usize, String)], model_file: &str, shown: &str, emd_name: &str) -> Result<(usize, String)> {
    let wanted = model_file.trim_start_matches('/');
    let found = names
        .iter()
        .find(|(_, n)| n == wanted)
        .or_else(|| names.iter().find(|(_, n)| n.eq_ignore_ascii_case(wanted)))
        .or_else(|| {
            // Absolute Windows paths (C:/DeepLearning/m.onnx): fall back to the file name.
            let base = wanted.rsplit('/').next().unwrap_or(wanted);
            (wanted.contains(':')).then(|| names.iter().find(|(_, n)| n.eq_ignore_ascii_case(base)))?
        });
    match found {
        Some(found) => Ok(found.clone()),
        None => {
            let onnx_entries: Vec<&str> = names
                .iter()
                .map(|(_, n)| n.as_str())
                .filter(|n| n.to_ascii_lowercase().ends_with(".onnx"))
                .collect();
            bail_input!(
                "model package {shown}: \"ModelFile\": \"{model_file}\" is not in the package (ONNX files present: {}); fix ModelFile in {emd_name} or add the model",
                if onnx_entries.is_empty() { "none".to_string() } else { onnx_entries.join(", ") }
            )
        }
    }
}

fn required_model_file(definition: &ModelDefinition, origin: &str) -> Result<String> {
    match &definition.model_file {
        Some(f) if !f.is_empty() => Ok(f.clone()),
        _ => bail_input!("model definition {origin} has no \"ModelFile\"; add \"ModelFile\": \"<model>.onnx\""),
    }
}

/// Refuses model formats this tool cannot run, with the way out.
fn check_onnx_name(model_file: &str, origin: &str) -> Result<()> {
    let lower = model_file.to_ascii_lowercase();
    let kind = [
        (".pt", "a PyTorch model"),
        (".h5", "a Keras model"),
        (".pb", "a TensorFlow graph"),
        (".tflite", "a TensorFlow Lite model"),
        (".model", "a CNTK model"),
    ]
    .iter()
    .find(|(ext, _)| lower.ends_with(ext))
    .map(|(_, kind)| *kind);
    if let Some(kind) = kind {
        bail_input!(
            "model definition {origin} names \"ModelFile\": \"{model_file}\", {kind}; classify-objects runs ONNX models: export the model to ONNX and point ModelFile at the .onnx file"
        );
    }
    Ok(())
}

fn read_entry<R: Read + Seek>(archive: &mut ZipArchive<R>, index: usize, cap: u64, origin: &str) -> Result<Vec<u8>> {
    let entry = match archive.by_index(index) {
        Ok(entry) => entry,
        Err(err) => bail_input!("cannot read {origin} ({err}); the package is damaged or encrypted, re-export it"),
    };
    if entry.size() > cap {
        bail_input!(
            "{origin} declares {} bytes, more than the {} bytes allowed; the package is damaged or hostile",
            entry.size(),
            cap
        );
    }
    let declared = entry.size();
    let bytes = read_capped(entry, cap, declared, origin)?;
    if bytes.len() as u64 != declared {
        bail_input!(
            "{origin} inflates to {} bytes but declares {declared}; the package is damaged",
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Most bytes reserved up front from a declared size (a hostile size reserves no more).
const MAX_RESERVE: u64 = 512 << 20;

/// Reads at most `cap` bytes, reserving `hint` (the declared size, if known) up front so that a
/// large model is read into one allocation; more than `cap` is an input error (a zip bomb or the
/// wrong file).
fn read_capped(reader: impl Read, cap: u64, hint: u64, origin: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(hint.min(cap).min(MAX_RESERVE) as usize);
    let read = reader.take(cap + 1).read_to_end(&mut bytes);
    if let Err(err) = read {
        bail_input!("cannot read {origin} ({err}); the file or package is damaged");
    }
    if bytes.len() as u64 > cap {
        bail_input!("{origin} is larger than {cap} bytes; the file is not a model definition/model or is hostile");
    }
    Ok(bytes)
}
