//! What an int8 package records in its `.emd`, under the key [`EMD_KEY`] (Esri's tools ignore
//! keys they do not know): the package it was made from (with fingerprints), the calibration
//! data (raster, features, sample sizes, seed, method) and the figures the gate measured. The
//! package itself: the `.emd` with `ModelFile` naming the int8 `.onnx`, every other entry of the
//! source package copied.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bail_input;
use crate::model::convert::{converted_emd, onnx_name_for, write_onnx_package};
use crate::model::package::ModelPackage;

/// The `.emd` key of the record.
pub const EMD_KEY: &str = "Int8Quantization";

/// The record of an int8 package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QuantRecord {
    /// What the model is: `int8 QDQ (...)`.
    pub format: String,
    /// The package quantized.
    pub source: SourceRecord,
    /// The data it was calibrated and checked on.
    pub calibration: CalibrationRecord,
    /// What the gate measured on the held-out chips.
    pub figures: Figures,
    /// The thresholds it passed.
    pub gate: GateRecord,
    /// Nodes run in int8, by operator.
    pub int8_nodes: Map<String, Value>,
    /// Matrix products kept in fp32 (the classifier head).
    pub kept_fp32: Vec<String>,
    /// The program that wrote it.
    pub quantizer: String,
}

/// The package quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceRecord {
    /// Its file name.
    pub package: String,
    /// Its model file (`.onnx`, or the arcgis.learn `.pth` converted).
    pub model_file: String,
    /// Fingerprint (FNV-1a, 16 hex digits) of the package file.
    pub package_fingerprint: String,
    /// Fingerprint of the fp32 ONNX model quantized (after conversion, for a `.pth` package).
    pub onnx_fingerprint: String,
}

/// The calibration data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CalibrationRecord {
    /// The raster, as given (a URL without its password or credential parameters).
    pub raster: String,
    /// The features, as given (likewise).
    pub features: String,
    /// Their layer.
    pub layer: String,
    /// The attribute filter, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub r#where: Option<String>,
    /// Features that could be cut into a chip.
    pub features_usable: usize,
    /// Chips the ranges were measured on.
    pub calibration_chips: usize,
    /// Chips held out for the gate (no feature in both samples).
    pub held_out_chips: usize,
    /// Sampled features skipped because their chip was empty (NoData, masked or outside).
    pub empty_chips_skipped: usize,
    /// Seed of the sample.
    pub seed: u64,
    /// The range method chosen.
    pub method: String,
    /// Each method tried, with its figures on the held-out chips.
    pub methods_tried: Vec<MethodFigures>,
}

/// One range method's figures on the held-out chips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MethodFigures {
    /// `minmax`, `percentile 99.99`.
    pub method: String,
    /// Share of label decisions equal to fp32's.
    pub agreement: f64,
    /// Mean |int8 - fp32| confidence.
    pub mean_abs_delta_confidence: f64,
}

/// What the gate measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Figures {
    /// Share of label decisions equal to fp32's (per label at the threshold, multi-label).
    pub agreement: f64,
    /// Label decisions equal.
    pub agreeing: usize,
    /// Label decisions compared.
    pub compared: usize,
    /// Mean |int8 - fp32| confidence (each class probability, multi-label).
    pub mean_abs_delta_confidence: f64,
    /// Largest |int8 - fp32| confidence.
    pub max_abs_delta_confidence: f64,
    /// Features per second end to end (chip cut + model), int8 over fp32.
    pub speed_up: f64,
    /// The model alone, int8 over fp32.
    pub model_speed_up: f64,
    /// Milliseconds per chip in the fp32 model.
    pub fp32_ms_per_chip: f64,
    /// Milliseconds per chip in the int8 model.
    pub int8_ms_per_chip: f64,
    /// Milliseconds to cut one chip.
    pub cut_ms_per_chip: f64,
    /// Chips per batch.
    pub batch_size: usize,
    /// ONNX Runtime threads (0: its default).
    pub intra_op_threads: usize,
    /// Accuracy against the features' truth (`--truth-field`), when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truth: Option<TruthFigures>,
}

/// fp32 and int8 accuracy against the features' truth on the held-out chips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TruthFigures {
    /// The truth field.
    pub field: String,
    /// Held-out chips with a truth value.
    pub compared: usize,
    /// Share of them fp32 labels right.
    pub fp32_accuracy: f64,
    /// Share of them int8 labels right.
    pub int8_accuracy: f64,
    /// Truth values that name no class of the model (counted as wrong for both).
    pub unmatched: usize,
}

/// The thresholds of the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GateRecord {
    /// `--min-agreement`.
    pub min_agreement: f64,
    /// `--min-speedup`.
    pub min_speed_up: f64,
    /// `--max-accuracy-loss` in percentage points, with `--truth-field`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_accuracy_loss: Option<f64>,
}

impl QuantRecord {
    /// The record in the `.emd` `text`, if it has one (`Err` when it is there but unreadable).
    pub fn from_emd_text(text: &str) -> Result<Option<QuantRecord>, String> {
        let Ok(map) = serde_json::from_str::<Map<String, Value>>(text.trim_start_matches('\u{feff}')) else {
            return Ok(None);
        };
        match map.get(EMD_KEY) {
            None => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|err| format!("{EMD_KEY} is not as classify-objects writes it ({err})")),
        }
    }
}

/// The int8 model's file name: `fc_resnet34.pth` or `.onnx` -> `fc_resnet34_int8.onnx`.
pub fn int8_onnx_name(model_file: &str) -> String {
    let onnx = onnx_name_for(model_file);
    let stem = onnx.strip_suffix(".onnx").unwrap_or(&onnx);
    format!("{stem}_int8.onnx")
}

/// Writes to `path` the int8 package of `package` (read from `input`): its `.emd` with
/// `ModelFile` naming the int8 model (and, for an arcgis.learn package, `ConvertedFrom`) and the
/// record, the int8 model, and every other entry of the source. Returns the `.emd` text written
/// (read back, the record's decimals may differ in their last bit; the text may not).
pub fn write_package(
    path: &Path,
    package: &ModelPackage,
    input: &Path,
    onnx: &[u8],
    record: &QuantRecord,
) -> Result<String> {
    let model_file = package.definition.model_file.clone().unwrap_or_default();
    let onnx_name = int8_onnx_name(&model_file);
    let text = match &package.conversion {
        Some(conversion) => converted_emd(&package.emd_text, &onnx_name, conversion, &package.emd_name)?,
        None => package.emd_text.clone(),
    };
    let mut map: Map<String, Value> = match serde_json::from_str(text.trim_start_matches('\u{feff}')) {
        Ok(map) => map,
        Err(err) => bail_input!("model definition {} cannot be rewritten ({err})", package.emd_name),
    };
    map.insert("ModelFile".into(), Value::String(onnx_name.clone()));
    map.insert(EMD_KEY.into(), serde_json::to_value(record)?);
    let emd_text = serde_json::to_string_pretty(&map)? + "\n";
    write_onnx_package(path, package, input, &emd_text, &onnx_name, onnx)?;
    Ok(emd_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_names() {
        assert_eq!(int8_onnx_name("fc_resnet34.pth"), "fc_resnet34_int8.onnx");
        assert_eq!(int8_onnx_name("models/colors.onnx"), "colors_int8.onnx");
    }

    #[test]
    fn no_record_in_a_plain_emd() {
        assert_eq!(QuantRecord::from_emd_text(r#"{"Framework": "ONNX"}"#), Ok(None));
        assert!(QuantRecord::from_emd_text(r#"{"Int8Quantization": {"Format": 3}}"#).is_err());
    }
}
