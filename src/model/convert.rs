//! The ONNX package of an arcgis.learn FeatureClassifier package, as `convert` writes it once so
//! that later runs skip the conversion and other ONNX tools can use the model.
//!
//! The new package holds the same `.emd` (every key kept, in its order) with `ModelFile` naming
//! the new `.onnx` and a `ConvertedFrom` object saying what it was made from, the `.onnx`, and
//! every other entry of the original package copied as it was, except the `.pth`.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::bail_input;
use crate::model::arcgis_learn::feature_classifier::Conversion;
use crate::model::definition::normalize_package_path;
use crate::model::package::ModelPackage;

/// Writes to `path` the ONNX package of `package` (a converted FeatureClassifier package, read
/// from `input`): its `.emd` rewritten for the `.onnx`, the `.onnx` stored, and every other
/// entry of the original copied as it was.
pub fn write(path: &Path, package: &ModelPackage, input: &Path) -> Result<()> {
    let conversion = package
        .conversion
        .as_ref()
        .context("the package holds no converted model")?;
    let onnx_name = onnx_name_for(&conversion.model_file);
    let emd_text = converted_emd(&package.emd_text, &onnx_name, conversion, &package.emd_name)?;
    write_onnx_package(path, package, input, &emd_text, &onnx_name, &package.onnx)
}

/// Writes to `path` a package of `package` (read from `input`) holding `emd_text` as its `.emd`
/// and `onnx` as `onnx_name`; every other entry of the original is copied as it was, except its
/// model file.
pub fn write_onnx_package(
    path: &Path,
    package: &ModelPackage,
    input: &Path,
    emd_text: &str,
    onnx_name: &str,
    onnx: &[u8],
) -> Result<()> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    // Weights barely compress (about 7%): stored, they are written and read at disk speed.
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(onnx.len() as u64 >= u32::MAX as u64);
    zip.start_file(package.emd_name.as_str(), deflated)?;
    std::io::Write::write_all(&mut zip, emd_text.as_bytes())?;
    zip.start_file(onnx_name, stored)?;
    std::io::Write::write_all(&mut zip, onnx)?;
    if is_zip(input) {
        copy_other_entries(input, &mut zip, &[&package.emd_name, &package.model_name, onnx_name])?;
    }
    zip.finish()?.sync_all()?;
    Ok(())
}

/// `fc.pth` -> `fc.onnx` (a bare file name: the package keeps entries at its root).
pub fn onnx_name_for(model_file: &str) -> String {
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
pub fn converted_emd(text: &str, onnx_name: &str, conversion: &Conversion, origin: &str) -> Result<String> {
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
            family: "ResNet".into(),
            architecture: "resnet34".into(),
            description: "resnet34 body + fastai head".into(),
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
