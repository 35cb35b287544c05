//! `classify-objects inspect`: what a model package holds and whether its parts agree. For an
//! arcgis.learn FeatureClassifier package (PyTorch weights), also the architecture found in the
//! weights and converted (backbone, parameter count, class count).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::InspectArgs;
use crate::error;
use crate::infer::{self, Classifier};
use crate::messages::print;
use crate::model::arguments;
use crate::model::definition::{BandSelector, ImageSpace, LabelMode};
use crate::model::package::ModelPackage;
use crate::model::quantize::QuantRecord;

/// Prints what the package holds, as text or JSON.
pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let summary = summary(&args.model, args.ort_library.as_deref())?;
    if args.json {
        print(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
    } else {
        print(&render_text(&summary))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the summary of the package at `model` as JSON (also the source of the text form),
/// loading ONNX Runtime from `ort_library` (or the default places).
pub fn summary(model: &Path, ort_library: Option<&Path>) -> Result<Value> {
    let package = ModelPackage::open(model)?;
    let environment = infer::start_runtime(ort_library)?;
    let (inputs, outputs) = infer::describe_model(&environment, &package.onnx)?;
    let d = &package.definition;
    let (check, activation) =
        match Classifier::check(&environment, &package.onnx, &package.model_name, d).and_then(|classifier| {
            let defaults = arguments::resolve(d, &[])?;
            arguments::check_batch_memory(d, defaults.batch_size, defaults.test_time_augmentation)?;
            Ok(classifier)
        }) {
            Ok(classifier) => ("ok".to_string(), Some(classifier.activation.name())),
            Err(err) => (error::one_line(&err), None),
        };
    let converted = package.conversion.as_ref().map(|c| {
        json!({
            "from": c.model_file,
            "format": "PyTorch state_dict (arcgis.learn FeatureClassifier)",
            "family": c.family,
            "backbone": c.architecture,
            "structure": c.description,
            "declared_backbone": c.declared_backbone,
            "parameters": c.parameters,
            "float32_values": c.float_values,
            "classes": c.classes,
            "input_channels": c.in_channels,
            "weights_bytes": c.weights_bytes,
            "onnx_bytes": c.onnx_bytes,
            "seconds": (c.seconds * 1000.0).round() / 1000.0,
        })
    });
    let int8 = match QuantRecord::from_emd_text(&package.emd_text) {
        Ok(Some(record)) => serde_json::to_value(record)?,
        Ok(None) => Value::Null,
        Err(reason) => json!({ "unreadable": reason }),
    };
    let bands: Vec<Value> = d
        .extract_bands
        .iter()
        .map(|b| match b {
            BandSelector::Index(i) => json!(i),
            BandSelector::Name(n) => json!(n),
        })
        .collect();
    Ok(json!({
        "format": "classify-objects inspect",
        "format_version": 1,
        "package": package.source.display().to_string(),
        "definition": package.emd_name,
        "model_file": package.model_name,
        "model_bytes": package.onnx.len(),
        "model_type": d.model_type,
        "framework": d.framework,
        "model_configuration": d.model_configuration,
        "model_name": d.model_name,
        "inputs": inputs,
        "outputs": outputs,
        "chip": {
            "width": d.image_width,
            "height": d.image_height,
            "extract_bands": bands,
            "crop_size_fixed": d.crop_size_fixed,
            "blacken_around_feature": d.blacken_around_feature,
            "image_space": match d.image_space { ImageSpace::MapSpace => "MAP_SPACE", ImageSpace::PixelSpace => "PIXEL_SPACE" },
            "layout": if d.channels_last { "NHWC" } else { "NCHW" },
            "normalization": if d.normalization.is_some() { "NormalizationStats" } else { "ImageNet (0-255)" },
            "data_range": d.data_range,
        },
        "label_mode": match d.label_mode { LabelMode::SingleLabel => "single-label (softmax)", LabelMode::MultiLabel => "multi-label (sigmoid)" },
        "activation": activation,
        "converted": converted,
        "int8": int8,
        "classes": d.classes.iter().map(|c| json!({"name": c.name, "value": c.value, "color": c.color})).collect::<Vec<_>>(),
        "model_arguments": arguments::accepted(d).iter().map(|a| json!({"name": a.name, "default": a.default, "help": a.help})).collect::<Vec<_>>(),
        "inference_function_ignored": d.inference_function,
        "check": check,
    }))
}

/// Renders the summary as text.
pub fn render_text(s: &Value) -> String {
    let mut out = Lines(String::new());
    out.package(s);
    out.model(s);
    out.chip(&s["chip"]);
    out.classes_and_arguments(s);
    out.int8(&s["int8"]);
    if !s["inference_function_ignored"].is_null() {
        out.line(
            "inference function",
            format!(
                "{} (ignored: package code is never run)",
                text(&s["inference_function_ignored"])
            ),
        );
    }
    out.line("check", text(&s["check"]));
    out.0
}

/// A JSON value as shown: strings bare, null as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The text form, a `key   value` line at a time.
struct Lines(String);

impl Lines {
    fn line(&mut self, key: &str, value: String) {
        self.0.push_str(&format!("{key:<22}{value}\n"));
    }

    /// The package, its model file, and what it was converted from.
    fn package(&mut self, s: &Value) {
        self.line("package", text(&s["package"]));
        self.line("definition", text(&s["definition"]));
        let c = &s["converted"];
        if c.is_null() {
            self.line(
                "model file",
                format!("{} ({} bytes)", text(&s["model_file"]), s["model_bytes"]),
            );
            return;
        }
        self.line(
            "model file",
            format!(
                "{} ({} bytes of PyTorch weights; {} bytes as ONNX)",
                text(&s["model_file"]),
                c["weights_bytes"],
                s["model_bytes"]
            ),
        );
        self.line(
            "converted from",
            format!(
                "{} ({}), in memory in {:.2} s",
                text(&c["from"]),
                text(&c["format"]),
                c["seconds"].as_f64().unwrap_or(0.0)
            ),
        );
        self.line(
            "architecture",
            format!(
                "{} ({}), {} parameters ({} float32 values), {} input channels, {} classes",
                text(&c["structure"]),
                text(&c["family"]),
                c["parameters"],
                c["float32_values"],
                c["input_channels"],
                c["classes"]
            ),
        );
        self.line("declared backbone", text(&c["declared_backbone"]));
    }

    /// The model's kind, name, inputs and outputs.
    fn model(&mut self, s: &Value) {
        self.line("model type", text(&s["model_type"]));
        self.line("framework", text(&s["framework"]));
        self.line("model name", text(&s["model_name"]));
        for (kind, key) in [("input", "inputs"), ("output", "outputs")] {
            for t in s[key].as_array().into_iter().flatten() {
                self.line(
                    kind,
                    format!("{} {} {}", text(&t["name"]), text(&t["element_type"]), t["shape"]),
                );
            }
        }
    }

    /// The chip rules.
    fn chip(&mut self, chip: &Value) {
        self.line(
            "chip",
            format!(
                "{} x {} pixels, {}",
                chip["width"],
                chip["height"],
                text(&chip["layout"])
            ),
        );
        self.line("extract bands", chip["extract_bands"].to_string());
        self.line("crop size fixed", text(&chip["crop_size_fixed"]));
        self.line("blacken around", text(&chip["blacken_around_feature"]));
        self.line("image space", text(&chip["image_space"]));
        self.line("normalization", text(&chip["normalization"]));
        if !chip["data_range"].is_null() {
            self.line("data range", chip["data_range"].to_string());
        }
    }

    /// What an int8 package records: its source, calibration and the gate's figures.
    fn int8(&mut self, q: &Value) {
        if q.is_null() {
            return;
        }
        if !q["unreadable"].is_null() {
            self.line("int8", text(&q["unreadable"]));
            return;
        }
        let (src, cal, fig) = (&q["Source"], &q["Calibration"], &q["Figures"]);
        self.line("int8", text(&q["Format"]));
        self.line(
            "quantized from",
            format!(
                "{} ({}; package fingerprint {}, ONNX fingerprint {})",
                text(&src["Package"]),
                text(&src["ModelFile"]),
                text(&src["PackageFingerprint"]),
                text(&src["OnnxFingerprint"])
            ),
        );
        let filter = if cal["Where"].is_null() {
            String::new()
        } else {
            format!(" where {}", text(&cal["Where"]))
        };
        self.line(
            "calibrated on",
            format!(
                "{} with {} (layer {}{filter}): {} calibration and {} held-out chips of {} usable features ({} empty skipped), seed {}, ranges by {}",
                text(&cal["Raster"]),
                text(&cal["Features"]),
                text(&cal["Layer"]),
                cal["CalibrationChips"],
                cal["HeldOutChips"],
                cal["FeaturesUsable"],
                cal["EmptyChipsSkipped"],
                cal["Seed"],
                text(&cal["Method"])
            ),
        );
        let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        self.line(
            "int8 figures",
            format!(
                "{}/{} decisions as fp32 ({:.4}, gate {}); |Δconfidence| mean {:.4}, max {:.4}; {:.2}x end to end (gate {}), model {:.2}x ({:.2} -> {:.2} ms per chip, batch {})",
                fig["Agreeing"],
                fig["Compared"],
                number(&fig["Agreement"]),
                q["Gate"]["MinAgreement"],
                number(&fig["MeanAbsDeltaConfidence"]),
                number(&fig["MaxAbsDeltaConfidence"]),
                number(&fig["SpeedUp"]),
                q["Gate"]["MinSpeedUp"],
                number(&fig["ModelSpeedUp"]),
                number(&fig["Fp32MsPerChip"]),
                number(&fig["Int8MsPerChip"]),
                fig["BatchSize"]
            ),
        );
        let truth = &fig["Truth"];
        if !truth.is_null() {
            self.line(
                "int8 accuracy",
                format!(
                    "against {} on {} held-out chips: fp32 {:.4}, int8 {:.4} (gate: at most {} points lost)",
                    text(&truth["Field"]),
                    truth["Compared"],
                    number(&truth["Fp32Accuracy"]),
                    number(&truth["Int8Accuracy"]),
                    q["Gate"]["MaxAccuracyLoss"]
                ),
            );
        }
        self.line("int8 nodes", q["Int8Nodes"].to_string());
        self.line("kept fp32", q["KeptFp32"].to_string());
    }

    /// Labels, activation, classes, model arguments.
    fn classes_and_arguments(&mut self, s: &Value) {
        self.line("labels", text(&s["label_mode"]));
        self.line("activation", text(&s["activation"]));
        for (i, c) in s["classes"].as_array().into_iter().flatten().enumerate() {
            self.line(
                if i == 0 { "classes" } else { "" },
                format!(
                    "{i}: {} (value {}, color {})",
                    text(&c["name"]),
                    text(&c["value"]),
                    text(&c["color"])
                ),
            );
        }
        for (i, a) in s["model_arguments"].as_array().into_iter().flatten().enumerate() {
            self.line(
                if i == 0 { "model arguments" } else { "" },
                format!("{} = {} ({})", text(&a["name"]), text(&a["default"]), text(&a["help"])),
            );
        }
    }
}
