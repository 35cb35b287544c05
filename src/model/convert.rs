//! `classify-objects convert`: writes the ONNX package of an arcgis.learn FeatureClassifier
//! package once, so that later runs skip the conversion and other ONNX tools can use the model.
//!
//! The new package holds the same `.emd` (every key kept, in its order) with `ModelFile` naming
//! the new `.onnx` and a `ConvertedFrom` object saying what it was made from, the `.onnx`, and
//! every other entry of the original package copied as it was, except the `.pth`. It is checked
//! by loading it back (ONNX Runtime included) before it replaces anything.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::bail_input;
use crate::infer::{self, Classifier, Device, SessionOptions};
use crate::model::definition::normalize_package_path;
use crate::model::feature_classifier::Conversion;
use crate::model::package::ModelPackage;
use crate::output::OutputTarget;

/// What `convert` is asked to do.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The FeatureClassifier package (`.dlpk`, or an `.emd` next to its `.pth`).
    pub input: PathBuf,
    /// The `.dlpk` to write.
    pub output: PathBuf,
    /// Replace the output if it exists.
    pub overwrite: bool,
    /// ONNX Runtime library to load.
    pub ort_library: Option<PathBuf>,
}

/// Converts the package and writes it; returns the conversion done.
pub fn convert(options: &ConvertOptions) -> Result<Conversion> {
    let output = &options.output;
    if !output.extension().is_some_and(|e| e.eq_ignore_ascii_case("dlpk")) {
        bail_input!(
            "output {} is not a .dlpk; convert writes a package: give -o NAME.dlpk",
            output.display()
        );
    }
    let target = OutputTarget::for_file(output, options.overwrite)?;
    let package = ModelPackage::open(&options.input)?;
    let Some(conversion) = package.conversion.clone() else {
        bail_input!(
            "model {} already holds an ONNX model ({}); there is nothing to convert, use it as it is",
            options.input.display(),
            package.model_name
        );
    };
    // The converted model must load in ONNX Runtime and agree with its .emd, as a run checks.
    let library = infer::locate_runtime(options.ort_library.as_deref())?;
    let environment = infer::init_runtime(&library)?;
    Classifier::new(
        &environment,
        &package.onnx,
        &conversion.source,
        &package.definition.expected_io(),
        &SessionOptions {
            device: Device::Cpu,
            intra_op_threads: 1,
        },
    )?;

    let onnx_name = onnx_name_for(&conversion.model_file);
    let emd_text = converted_emd(&package.emd_text, &onnx_name, &conversion, &package.emd_name)?;
    {
        let file = fs::File::create(target.temp_path())
            .with_context(|| format!("creating {}", target.temp_path().display()))?;
        let mut zip = zip::ZipWriter::new(file);
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false);
        // Weights barely compress (about 7%): stored, they are written and read at disk speed.
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(package.onnx.len() as u64 >= u32::MAX as u64);
        zip.start_file(package.emd_name.as_str(), deflated)?;
        std::io::Write::write_all(&mut zip, emd_text.as_bytes())?;
        zip.start_file(onnx_name.as_str(), stored)?;
        std::io::Write::write_all(&mut zip, &package.onnx)?;
        if is_zip(&options.input) {
            copy_other_entries(
                &options.input,
                &mut zip,
                &[&package.emd_name, &package.model_name, &onnx_name],
            )?;
        }
        zip.finish()?.sync_all()?;
    }
    let written = ModelPackage::open(target.temp_path()).context("re-reading the converted package")?;
    if written.onnx != package.onnx || written.conversion.is_some() {
        anyhow::bail!("the converted package does not read back as written");
    }
    drop(written);
    target.commit()?;
    Ok(conversion)
}

/// `fc.pth` -> `fc.onnx` (a bare file name: the package keeps entries at its root).
fn onnx_name_for(model_file: &str) -> String {
    let name = normalize_package_path(model_file);
    let base = name.rsplit('/').next().unwrap_or(&name);
    let stem = base
        .rsplit_once('.')
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
        .unwrap_or(base);
    format!("{stem}.onnx")
}

/// The `.emd` with `ModelFile` pointing at `onnx_name` and a `ConvertedFrom` record; every other
/// key is kept, in its order.
fn converted_emd(text: &str, onnx_name: &str, conversion: &Conversion, origin: &str) -> Result<String> {
    let text = text.trim_start_matches('\u{feff}');
    let mut map: Map<String, Value> = match serde_json::from_str(text) {
        Ok(map) => map,
        Err(err) => bail_input!("model definition {origin} cannot be rewritten ({err})"),
    };
    map.insert("ModelFile".into(), json!(onnx_name));
    map.insert(
        "ConvertedFrom".into(),
        json!({
            "ModelFile": conversion.model_file,
            "Format": "PyTorch state_dict (arcgis.learn FeatureClassifier)",
            "Backbone": conversion.architecture,
            "Parameters": conversion.parameters,
            "Outputs": "logits",
            "Converter": format!("classify-objects {}", env!("CARGO_PKG_VERSION")),
        }),
    );
    Ok(serde_json::to_string_pretty(&map)? + "\n")
}

fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"PK"
}

/// Copies the entries of the package at `input` not named in `skip`, as they are (no
/// recompression); entries whose names would leave the package are dropped.
fn copy_other_entries(input: &Path, zip: &mut zip::ZipWriter<fs::File>, skip: &[&str]) -> Result<()> {
    let file = fs::File::open(input).with_context(|| format!("reopening {}", input.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("reopening {}", input.display()))?;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i)?;
        let name = normalize_package_path(entry.name());
        let escapes = name.starts_with('/') || name.split('/').any(|part| part == "..");
        if escapes || skip.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
            continue;
        }
        zip.raw_copy_file(entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_names() {
        assert_eq!(onnx_name_for("fc_resnet34.pth"), "fc_resnet34.onnx");
        assert_eq!(onnx_name_for(".\\models\\m.v2.pth"), "m.v2.onnx");
    }

    #[test]
    fn emd_rewritten_with_every_key_kept_in_order() {
        let text = r#"{"Framework": "arcgis.learn.models._inferencing", "ModelFile": "fc.pth", "MinCellSize": {"x": 0.01999899682394302}, "Classes": [{"Value": 4, "Name": "Built-up"}], "ExpMap": false}"#;
        let conversion = Conversion {
            source: "p.dlpk!fc.pth".into(),
            model_file: "fc.pth".into(),
            architecture: "resnet34".into(),
            declared_backbone: Some("resnet34".into()),
            classes: 1,
            in_channels: 3,
            parameters: 21_000_000,
            float_values: 21_800_000,
            weights_bytes: 1,
            onnx_bytes: 1,
            seconds: 0.1,
        };
        let out = converted_emd(text, "fc.onnx", &conversion, "fc.emd").unwrap();
        let v: Map<String, Value> = serde_json::from_str(&out).unwrap();
        let keys: Vec<&str> = v.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Framework",
                "ModelFile",
                "MinCellSize",
                "Classes",
                "ExpMap",
                "ConvertedFrom"
            ]
        );
        assert_eq!(v["ModelFile"], "fc.onnx");
        assert_eq!(v["MinCellSize"]["x"], 0.01999899682394302);
        assert_eq!(v["ConvertedFrom"]["ModelFile"], "fc.pth");
        assert_eq!(v["ConvertedFrom"]["Backbone"], "resnet34");
    }
}
