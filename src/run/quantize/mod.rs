//! `quantize`: an fp32 package made int8 on the user's own imagery, and kept only when it pays.
//!
//! The chips come from a seeded sample of the features spread over the raster, cut as a run cuts
//! them ([`sample`]); the graph is rewritten by `model::quantize` with ranges measured on the
//! calibration chips ([`calibrate`]) by each range method; the method whose int8 model agrees
//! best with fp32 on the held-out chips is kept; and the gate ([`gate`]) measures its agreement,
//! the change in confidence and the speed-up, and refuses it (exit 3, nothing written) below
//! `--min-agreement` or `--min-speedup`.

pub mod calibrate;
pub mod gate;
pub mod sample;

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use ort::environment::Environment;
use serde_json::{Map, Value};

use crate::bail_input;
use crate::cli::QuantizeArgs;
use crate::digest::Fingerprint;
use crate::error::BelowMinimum;
use crate::infer::{Classifier, Device, Expected, SessionOptions};
use crate::input::features::FeatureQuery;
use crate::messages;
use crate::model::arguments;
use crate::model::definition::LabelMode;
use crate::model::quantize::fold::fold_batch_norms;
use crate::model::quantize::record::{
    CalibrationRecord, Figures, GateRecord, MethodFigures, SourceRecord, TruthFigures,
};
use crate::model::quantize::rewrite::int8_model;
use crate::model::quantize::{plan, Method, OnnxModel, QuantRecord};
use crate::model::ModelPackage;
use crate::secrets;
use gate::Agreement;
use sample::SampleRequest;

/// Most bytes of chips the two samples may hold together.
pub const MAX_SAMPLE_BYTES: usize = 2 << 30;

/// The int8 model and what its package records.
pub struct Quantized {
    /// The int8 ONNX model.
    pub onnx: Vec<u8>,
    /// The record for its `.emd`.
    pub record: QuantRecord,
}

/// One range method's int8 model and how it compares on the held-out chips.
struct Candidate {
    method: Method,
    onnx: Vec<u8>,
    agreement: Agreement,
    /// Its probabilities on the held-out chips.
    scores: Vec<f32>,
}

/// Quantizes `package` (read from `args.model`) on `args`' imagery and passes it through the
/// gate; a model the gate refuses is an error ([`BelowMinimum`], exit 3) with the figures.
pub fn quantize(args: &QuantizeArgs, package: &ModelPackage, environment: &Environment) -> Result<Quantized> {
    let name = package.model_name.clone();
    let definition = &package.definition;
    let mut folded = OnnxModel::read(&package.onnx, &name)?;
    fold_batch_norms(&mut folded);
    let plan = plan::plan(&folded, &name)?;
    let chip_bytes = definition.extract_bands.len() * definition.image_width * definition.image_height * 4;
    let (calibration, held_out) = (args.calibration.0, args.held_out.0);
    if (calibration + held_out).saturating_mul(chip_bytes) > MAX_SAMPLE_BYTES {
        bail_input!(
            "--calibration {calibration} and --held-out {held_out} chips of {} bytes would hold more than {} GiB; ask for at most {} chips in all",
            chip_bytes,
            MAX_SAMPLE_BYTES >> 30,
            MAX_SAMPLE_BYTES / chip_bytes.max(1)
        );
    }
    if args.truth_field.is_some() && definition.label_mode == LabelMode::MultiLabel {
        bail_input!(
            "--truth-field compares one label per feature, and {name} is a multi-label model; leave --truth-field out (the gate compares each label's decision with fp32's)"
        );
    }
    let model_arguments = arguments::resolve(definition, &[])?;
    let batch = args.batch_size.map_or(model_arguments.batch_size, |b| b.0);
    let query = FeatureQuery {
        layer: args.layer.clone(),
        where_clause: args.where_clause.clone(),
        ..Default::default()
    };
    let request = SampleRequest {
        raster: &args.raster,
        features: &args.features,
        query: &query,
        calibration,
        held_out,
        seed: args.seed,
        truth_field: args.truth_field.as_deref(),
    };
    let sample = sample::draw(definition, &request)?;
    messages::progress(format_args!(
        "cut {} calibration and {} held-out chips from {} ({} features on the raster, {} empty chips skipped)",
        sample.calibration.count, sample.held_out.count, args.raster, sample.usable, sample.empty
    ));
    let options = SessionOptions {
        device: Device::Cpu,
        intra_op_threads: args.intra_op_threads.map_or(0, |t| t.0),
    };
    let expected = Expected::declared_by(definition);
    let mut fp32 = Classifier::new(environment, &package.onnx, &name, &expected, &options)?;
    let fp32_scores = gate::predict(&mut fp32, &sample.held_out, batch)?;
    if fp32_scores.iter().any(|p| !p.is_finite()) {
        bail_input!(
            "model {name} gives non-finite scores (NaN or infinity) in fp32 on held-out chips of {}; fix the model before quantizing it",
            args.raster
        );
    }
    let session = calibrate::ProbeSession {
        environment,
        expected: &expected,
        options: &options,
        name: &name,
    };
    let stats = calibrate::measure(&session, &folded, &plan, &sample.calibration, batch)?;
    let (mode, threshold) = (definition.label_mode, model_arguments.threshold);
    let provenance = vec![(
        "classify-objects.quantized".to_string(),
        "int8 QDQ: per-channel symmetric int8 weights, asymmetric uint8 activations".to_string(),
    )];
    let mut candidates: Vec<Candidate> = Vec::new();
    for method in Method::CANDIDATES {
        let ranges: HashMap<String, (f32, f32)> = stats
            .names
            .iter()
            .enumerate()
            .map(|(k, n)| (n.clone(), stats.range(k, method)))
            .collect();
        let onnx = int8_model(&folded, &plan, &ranges, &provenance)?;
        let mut int8 = Classifier::new(environment, &onnx, &name, &expected, &options)?;
        let scores = gate::predict(&mut int8, &sample.held_out, batch)?;
        let agreement = gate::compare(&fp32_scores, &scores, expected.classes, mode, threshold);
        messages::progress(format_args!(
            "ranges by {}: {}/{} decisions kept, mean |Δconfidence| {:.4}",
            method.name(),
            agreement.agreeing,
            agreement.compared,
            agreement.mean_delta
        ));
        candidates.push(Candidate {
            method,
            onnx,
            agreement,
            scores,
        });
    }
    let best = candidates
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            (a.agreement.agreeing, -a.agreement.mean_delta)
                .partial_cmp(&(b.agreement.agreeing, -b.agreement.mean_delta))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(i, _)| i)
        .unwrap_or_default();
    let mut int8 = Classifier::new(environment, &candidates[best].onnx, &name, &expected, &options)?;
    let (fp32_seconds, int8_seconds) = gate::time_both(&mut fp32, &mut int8, &sample.held_out, batch)?;
    let model_speed_up = fp32_seconds / int8_seconds.max(1e-12);
    let speed_up = (sample.cut_seconds + fp32_seconds) / (sample.cut_seconds + int8_seconds).max(1e-12);
    let chosen = &candidates[best];
    let a = chosen.agreement;
    let truth = sample.truth_field.as_deref().map(|field| {
        gate::accuracy(
            &fp32_scores,
            &chosen.scores,
            &definition.classes,
            &sample.held_out.truth,
            field,
        )
    });
    if let Some(t) = truth.as_ref().filter(|t| t.compared == t.unmatched) {
        bail_input!(
            "--truth-field {} names no class of {name} on any of the {} held-out features of {} ({} empty, {} naming no class); give the field holding each feature's class (a class name or Value)",
            t.field,
            sample.held_out.count,
            args.features,
            sample.held_out.count - t.compared,
            t.unmatched
        );
    }
    let figures = Figures {
        agreement: a.share(),
        agreeing: a.agreeing,
        compared: a.compared,
        mean_abs_delta_confidence: a.mean_delta,
        max_abs_delta_confidence: a.max_delta,
        speed_up,
        model_speed_up,
        fp32_ms_per_chip: fp32_seconds * 1e3,
        int8_ms_per_chip: int8_seconds * 1e3,
        cut_ms_per_chip: sample.cut_seconds * 1e3,
        batch_size: batch,
        intra_op_threads: options.intra_op_threads,
        truth: truth.clone(),
    };
    let decisions = match mode {
        LabelMode::SingleLabel => "labels",
        LabelMode::MultiLabel => "decisions (each class at the threshold)",
    };
    let max_loss = args.truth_field.as_ref().map(|_| args.max_accuracy_loss.0);
    let said = format!(
        "{decisions} agree {}/{} = {:.4} (min {}), |Δconfidence| mean {:.4} max {:.4}; speed-up {:.2}x end to end (min {}), model {:.2}x ({:.2} -> {:.2} ms/chip, cut {:.2} ms); ranges {}{}",
        a.agreeing,
        a.compared,
        a.share(),
        args.min_agreement.0,
        a.mean_delta,
        a.max_delta,
        speed_up,
        args.min_speedup.0,
        model_speed_up,
        fp32_seconds * 1e3,
        int8_seconds * 1e3,
        sample.cut_seconds * 1e3,
        chosen.method.name(),
        truth.as_ref().map_or(String::new(), |t| truth_said(t, args.max_accuracy_loss.0)),
    );
    let refusal = if a.share() < args.min_agreement.0 {
        Some("changes labels")
    } else if speed_up < args.min_speedup.0 {
        Some("not faster")
    } else if truth
        .as_ref()
        .is_some_and(|t| loses_accuracy(t, args.max_accuracy_loss.0))
    {
        Some("loses accuracy")
    } else {
        None
    };
    if let Some(why) = refusal {
        return Err(anyhow::Error::new(BelowMinimum(format!(
            "int8 model refused ({why}), nothing written: {said}"
        ))));
    }
    messages::info(format_args!("int8 model of {}: {said}", args.model.display()));
    let mut int8_nodes = Map::new();
    for (op, n) in plan.counts(&folded) {
        int8_nodes.insert(op, Value::from(n));
    }
    let record = QuantRecord {
        format: "int8 QDQ (QuantizeLinear/DequantizeLinear): per-channel symmetric int8 weights, asymmetric uint8 activations, int32 biases".into(),
        source: SourceRecord {
            package: file_name(&args.model),
            model_file: definition.model_file.clone().unwrap_or_default(),
            package_fingerprint: file_fingerprint(&args.model)?,
            onnx_fingerprint: Fingerprint::default().add(&package.onnx).hex(),
        },
        calibration: CalibrationRecord {
            // As given, less any secret (a URL's password or token): the record is shared.
            raster: secrets::redact(&args.raster),
            features: secrets::redact(&args.features),
            layer: sample.layer.clone(),
            r#where: args.where_clause.as_deref().map(secrets::redact),
            features_usable: sample.usable,
            calibration_chips: sample.calibration.count,
            held_out_chips: sample.held_out.count,
            empty_chips_skipped: sample.empty,
            seed: args.seed,
            method: chosen.method.name(),
            methods_tried: candidates
                .iter()
                .map(|c| MethodFigures {
                    method: c.method.name(),
                    agreement: c.agreement.share(),
                    mean_abs_delta_confidence: c.agreement.mean_delta,
                })
                .collect(),
        },
        figures,
        gate: GateRecord {
            min_agreement: args.min_agreement.0,
            min_speed_up: args.min_speedup.0,
            max_accuracy_loss: max_loss,
        },
        int8_nodes,
        kept_fp32: plan.head.clone(),
        quantizer: format!("classify-objects {}", env!("CARGO_PKG_VERSION")),
    };
    let onnx = candidates.swap_remove(best).onnx;
    Ok(Quantized { onnx, record })
}

/// Whether int8 accuracy against truth is more than `max_loss` percentage points below fp32's.
fn loses_accuracy(truth: &TruthFigures, max_loss: f64) -> bool {
    (truth.fp32_accuracy - truth.int8_accuracy) * 100.0 > max_loss + 1e-9
}

/// The accuracy part of the figures line.
fn truth_said(t: &TruthFigures, max_loss: f64) -> String {
    let unmatched = if t.unmatched > 0 {
        format!(", {} truth values name no class", t.unmatched)
    } else {
        String::new()
    };
    format!(
        "; accuracy against {} on {} chips{unmatched}: fp32 {:.4}, int8 {:.4} ({:+.2} points, most lost {max_loss})",
        t.field,
        t.compared,
        t.fp32_accuracy,
        t.int8_accuracy,
        (t.int8_accuracy - t.fp32_accuracy) * 100.0
    )
}

/// The file name of `path`.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The fingerprint of the file at `path`, read in pieces.
fn file_fingerprint(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut fingerprint = Fingerprint::default();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        fingerprint.add(&buffer[..n]);
    }
    Ok(fingerprint.hex())
}
