//! `quantize`: a trained model made int8 on its own imagery keeps its labels and accuracy; the
//! gate refuses a model that changes labels and one that is not faster, with the figures; the
//! `.emd` records where the package came from; hostile calibrations are refused clearly.
//!
//! The trained model (`fixtures/quantize/textures.*`, made by `tools/quantize/make_textures.py`)
//! tells four textures apart on 32 x 32 chips; on its 144-cell test raster fp32 labels 140 cells
//! right (0.9722; the four errors are vertical stripes taken for speckle). Quantized here
//! (64 calibration and 80 held-out chips, seed 0) it kept 80/80 held-out labels and all 144
//! labels of a run, with a largest |Δconfidence| of 0.017 (ONNX Runtime 1.32, x86-64). The
//! thresholds below leave room for another CPU's int8 kernels, not for a broken quantizer:
//! at least 78/80 held-out labels, at least 142/144 labels of a run, and an accuracy no more than
//! one point under fp32's (at least 139/144), which is the issue's bar.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::onnx::{Attr, Dim, Initializer, Model, Node};
use crate::support::*;

fn textures(name: &str) -> PathBuf {
    fixture(&format!("quantize/{name}"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `quantize MODEL -r textures.tif -f textures.gpkg -o OUT` with 64 calibration and 80 held-out
/// chips, and `extra`.
fn quantize_args(model: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    sized_args(model, out, ("64", "80"), extra)
}

/// The same with `(calibration, held_out)` chips.
fn sized_args(model: &Path, out: &Path, (calibration, held_out): (&str, &str), extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "quantize",
        s(model),
        "-r",
        s(&textures("textures.tif")),
        "-f",
        s(&textures("textures.gpkg")),
        "-o",
        s(out),
        "--calibration",
        calibration,
        "--held-out",
        held_out,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The `.emd` inside a package, as JSON.
fn emd_of(package: &Path) -> Value {
    let file = std::fs::File::open(package).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let name = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_string())
        .find(|n| n.ends_with(".emd"))
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name(&name).unwrap(), &mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Rows right against the `truth` field, labels per row, stderr and the `--summary-json` of a run
/// of `model`.
fn classify(model: &Path, out: &Path) -> (usize, Vec<String>, String, Value) {
    let summary = out.with_extension("json");
    let run = run_ok(&[
        "--summary-json",
        s(&summary),
        "-r",
        s(&textures("textures.tif")),
        "-m",
        s(model),
        "-f",
        s(&textures("textures.gpkg")),
        "-o",
        s(out),
    ]);
    let rows = read_rows(out, None);
    let labels: Vec<String> = rows.iter().map(|r| r.text("ClassLabel").unwrap()).collect();
    let right = rows.iter().filter(|r| r.text("ClassLabel") == r.text("truth")).count();
    let summary = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (right, labels, String::from_utf8_lossy(&run.stderr).to_string(), summary)
}

#[test]
fn a_trained_model_keeps_its_labels_and_accuracy_in_int8() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("textures_int8.dlpk");
    // Speed is measured by bench/quantize.sh, not asserted: a model this small gains little.
    run_ok(&refs(&quantize_args(
        &textures("textures.dlpk"),
        &int8,
        &["--min-speedup", "0"],
    )));
    let emd = emd_of(&int8);
    assert_eq!(emd["ModelFile"], "textures_int8.onnx");
    let record = &emd["Int8Quantization"];
    let figures = &record["Figures"];
    assert_eq!(figures["Compared"], 80);
    assert!(figures["Agreeing"].as_u64().unwrap() >= 78, "{figures}");
    assert!(figures["MaxAbsDeltaConfidence"].as_f64().unwrap() < 0.1, "{figures}");
    // The .emd record: source, calibration data, sizes, the nodes made int8 and the head kept.
    let source = &record["Source"];
    assert_eq!(source["Package"], "textures.dlpk");
    assert_eq!(source["ModelFile"], "textures.onnx");
    assert_eq!(source["PackageFingerprint"].as_str().unwrap().len(), 16);
    let calibration = &record["Calibration"];
    assert_eq!(calibration["Raster"], s(&textures("textures.tif")));
    assert_eq!(calibration["Layer"], "cells");
    assert_eq!(calibration["FeaturesUsable"], 144);
    assert_eq!(
        (
            calibration["CalibrationChips"].as_u64(),
            calibration["HeldOutChips"].as_u64()
        ),
        (Some(64), Some(80))
    );
    assert_eq!(calibration["Seed"], 0);
    assert_eq!(calibration["MethodsTried"].as_array().unwrap().len(), 3);
    assert_eq!(
        record["Int8Nodes"],
        serde_json::json!({"Conv": 5, "MaxPool": 1, "Add": 2})
    );
    assert_eq!(record["KeptFp32"], serde_json::json!(["/head/Gemm"]));
    assert_eq!(
        record["Gate"],
        serde_json::json!({"MinAgreement": 0.99, "MinSpeedUp": 0.0})
    );
    // Every other key of the source .emd is kept.
    let source_emd: Value = serde_json::from_str(&std::fs::read_to_string(textures("textures.emd")).unwrap()).unwrap();
    for (key, value) in source_emd.as_object().unwrap() {
        if key != "ModelFile" {
            assert_eq!(&emd[key], value, "{key}");
        }
    }
    // inspect shows the record.
    let text = String::from_utf8(run_ok(&["inspect", s(&int8)]).stdout).unwrap();
    assert!(
        text.contains("calibrated on") && text.contains("64 calibration and 80 held-out chips"),
        "{text}"
    );
    let json: Value = serde_json::from_slice(&run_ok(&["inspect", s(&int8), "--json"]).stdout).unwrap();
    assert_eq!(&json["int8"], record);
    let plain: Value =
        serde_json::from_slice(&run_ok(&["inspect", s(&textures("textures.dlpk")), "--json"]).stdout).unwrap();
    assert!(plain["int8"].is_null());
    // Runs: fp32 labels 140 cells right; int8 keeps them and the accuracy, and says int8.
    let (fp32_right, fp32_labels, fp32_said, fp32_json) =
        classify(&textures("textures.dlpk"), &dir.path().join("fp32.gpkg"));
    let (int8_right, int8_labels, int8_said, int8_json) = classify(&int8, &dir.path().join("int8.gpkg"));
    assert_eq!(fp32_right, 140);
    assert!(int8_right >= 139, "int8 labels {int8_right}/144 right");
    let same = fp32_labels.iter().zip(&int8_labels).filter(|(a, b)| a == b).count();
    assert!(same >= 142, "{same}/144 labels as fp32");
    assert!(int8_said.contains(", int8) ->"), "{int8_said}");
    assert!(!fp32_said.contains("int8"), "{fp32_said}");
    assert_eq!(
        (&fp32_json["model_precision"], &int8_json["model_precision"]),
        (&serde_json::json!("fp32"), &serde_json::json!("int8"))
    );
    // An int8 package is not quantized again.
    let again = run_err(&refs(&quantize_args(&int8, &dir.path().join("again.dlpk"), &[])), 2);
    assert!(again.contains("already int8"), "{again}");
}

#[test]
fn the_gate_refuses_a_model_that_is_not_fast_enough_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int8.dlpk");
    let line = run_err(
        &refs(&quantize_args(
            &textures("textures.dlpk"),
            &out,
            &["--min-speedup", "1000"],
        )),
        3,
    );
    for needle in [
        "refused (not faster)",
        "nothing written",
        "labels agree",
        "/80",
        "speed-up",
        "(min 1000)",
    ] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
}

/// A model whose two logits differ by a thousandth of the first: int8 weights (a step of 1/127 of
/// the largest) cannot tell them apart, so every int8 label is the first class, while fp32 picks
/// the second wherever the green channel is positive.
fn fragile_model() -> Vec<u8> {
    Model {
        nodes: vec![
            Node {
                op: "Conv",
                inputs: vec!["image", "w", "b"],
                outputs: vec!["c"],
                attrs: vec![Attr::Ints("kernel_shape", vec![1, 1])],
            },
            Node {
                op: "GlobalAveragePool",
                inputs: vec!["c"],
                outputs: vec!["g"],
                attrs: vec![],
            },
            Node {
                op: "Flatten",
                inputs: vec!["g"],
                outputs: vec!["f"],
                attrs: vec![],
            },
            Node {
                op: "Gemm",
                inputs: vec!["f", "hw", "hb"],
                outputs: vec!["logits"],
                attrs: vec![Attr::Int("transB", 1)],
            },
        ],
        initializers: vec![
            Initializer {
                name: "w",
                dims: vec![2, 3, 1, 1],
                data: vec![1.0, 0.0, 0.0, 1.0, 1e-3, 0.0],
            },
            Initializer {
                name: "b",
                dims: vec![2],
                data: vec![0.0, 0.0],
            },
            Initializer {
                name: "hw",
                dims: vec![2, 2],
                data: vec![1.0, 0.0, 0.0, 1.0],
            },
            Initializer {
                name: "hb",
                dims: vec![2],
                data: vec![0.0, 0.0],
            },
        ],
        inputs: vec![(
            "image",
            vec![Dim::Param("batch"), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)],
        )],
        outputs: vec![("logits", vec![Dim::Param("batch"), Dim::Fixed(2)])],
        opset: 17,
        output_elem_type: 1,
    }
    .to_bytes()
}

/// An .emd for a 32 x 32 model of `classes`, with `extra` keys.
fn emd(classes: &[&str], extra: &str) -> String {
    let classes: Vec<String> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| format!(r#"{{"Value": {i}, "Name": "{c}"}}"#))
        .collect();
    format!(
        r#"{{"Framework": "ONNX", "ModelType": "ObjectClassification", "ModelFile": "colors.onnx", "ImageHeight": 32, "ImageWidth": 32, "ExtractBands": [0, 1, 2], "CropSizeFixed": 1, {extra} "Classes": [{}]}}"#,
        classes.join(", ")
    )
}

#[test]
fn the_gate_refuses_a_model_that_changes_labels_with_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let package = write_package(dir.path(), "fragile", &emd(&["first", "second"], ""), &fragile_model());
    let out = dir.path().join("fragile_int8.dlpk");
    let line = run_err(&refs(&quantize_args(&package, &out, &["--min-speedup", "0"])), 3);
    for needle in [
        "refused (changes labels)",
        "nothing written",
        "labels agree",
        "(min 0.99)",
        "|Δconfidence| mean",
    ] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    // About half the cells have a positive green channel after normalisation: far below 0.99.
    let agreed: f64 = line
        .split(" = ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(agreed < 0.9, "{line}");
    // Nothing written: no package, no temporary file or lock beside it.
    assert_eq!(files_in(dir.path()), ["fragile"]);
}

#[test]
fn accuracy_against_truth_is_measured_on_the_held_out_chips() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("textures_int8.dlpk");
    // fp32's four errors on this raster are all vertical stripes: without them every held-out
    // chip is labelled right in fp32, so its accuracy is exactly 1. The bar on int8 leaves room
    // for another CPU's kernels (one chip of 64 is 1.6 points).
    run_ok(&refs(&sized_args(
        &textures("textures.dlpk"),
        &int8,
        ("32", "64"),
        &[
            "--where",
            "truth <> 'vertical'",
            "--truth-field",
            "TRUTH",
            "--max-accuracy-loss",
            "2",
            "--min-speedup",
            "0",
        ],
    )));
    let record = &emd_of(&int8)["Int8Quantization"];
    let truth = &record["Figures"]["Truth"];
    // The field as the features name it.
    assert_eq!(truth["Field"], "truth");
    assert_eq!(
        (truth["Compared"].as_u64(), truth["Unmatched"].as_u64()),
        (Some(64), Some(0))
    );
    assert_eq!(truth["Fp32Accuracy"], 1.0);
    assert!(truth["Int8Accuracy"].as_f64().unwrap() >= 63.0 / 64.0, "{truth}");
    assert_eq!(record["Gate"]["MaxAccuracyLoss"], 2.0);
    let text = String::from_utf8(run_ok(&["inspect", s(&int8)]).stdout).unwrap();
    assert!(
        text.contains("int8 accuracy") && text.contains("on 64 held-out chips: fp32 1.0000"),
        "{text}"
    );
    // A truth field that names no class on any held-out feature judges nothing: refused.
    let line = run_err(
        &refs(&sized_args(
            &textures("textures.dlpk"),
            &dir.path().join("none.dlpk"),
            ("32", "64"),
            &["--truth-field", "id", "--where", "id >= 10", "--min-speedup", "0"],
        )),
        2,
    );
    assert!(line.contains("--truth-field id names no class"), "{line}");
    // Without --truth-field the record has no accuracy (the key is left out).
    let plain = dir.path().join("plain_int8.dlpk");
    run_ok(&refs(&quantize_args(
        &textures("textures.dlpk"),
        &plain,
        &["--min-speedup", "0"],
    )));
    let record = &emd_of(&plain)["Int8Quantization"];
    assert!(record["Figures"].get("Truth").is_none() && record["Gate"].get("MaxAccuracyLoss").is_none());
}

#[test]
fn the_gate_refuses_a_model_that_loses_accuracy_against_truth() {
    let dir = tempfile::tempdir().unwrap();
    let package = write_package(dir.path(), "fragile", &emd(&["first", "second"], ""), &fragile_model());
    // Truth here is fp32's own labels: fp32 is right everywhere, and int8 (which labels every
    // chip `first`) is wrong wherever fp32 said `second`.
    let labelled = dir.path().join("labelled.gpkg");
    run_ok(&[
        "-r",
        s(&textures("textures.tif")),
        "-m",
        s(&package),
        "-f",
        s(&textures("textures.gpkg")),
        "-o",
        s(&labelled),
    ]);
    let out = dir.path().join("fragile_int8.dlpk");
    let raster = textures("textures.tif");
    let args = [
        "quantize",
        s(&package),
        "-r",
        s(&raster),
        "-f",
        s(&labelled),
        "-o",
        s(&out),
        "--calibration",
        "64",
        "--held-out",
        "80",
        "--truth-field",
        "ClassLabel",
        "--min-agreement",
        "0",
        "--min-speedup",
        "0",
    ];
    let line = run_err(&args, 3);
    for needle in [
        "refused (loses accuracy)",
        "nothing written",
        "accuracy against ClassLabel on 80 chips: fp32 1.0000, int8 0.",
        "most lost 1)",
    ] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    assert!(!out.exists());
    // A field that is not there, and truth for a multi-label model, are refused before any work.
    let mut missing = args.to_vec();
    missing[13] = "expected";
    let line = run_err(&missing, 2);
    assert!(
        line.contains("--truth-field expected is not a field of") && line.contains("ClassLabel"),
        "{line}"
    );
    let multi = write_package(
        dir.path(),
        "multi",
        &emd(&["first", "second"], r#""MetaDataMode": "MultiLabeled_Tiles","#),
        &fragile_model(),
    );
    let mut multi_args = args.to_vec();
    multi_args[1] = s(&multi);
    let line = run_err(&multi_args, 2);
    assert!(line.contains("multi-label") && line.contains("--truth-field"), "{line}");
    // --max-accuracy-loss means nothing without truth.
    let line = run_err(&refs(&quantize_args(&package, &out, &["--max-accuracy-loss", "2"])), 2);
    assert!(line.contains("--truth-field"), "{line}");
}

#[test]
fn a_multi_label_model_is_gated_on_each_label_decision() {
    let dir = tempfile::tempdir().unwrap();
    // The trained model read as multi-label: each class decided at 0.5 on its sigmoid.
    let text = std::fs::read_to_string(textures("textures.emd"))
        .unwrap()
        .replacen('{', r#"{"MetaDataMode": "MultiLabeled_Tiles", "#, 1)
        .replace("textures.onnx", "colors.onnx");
    let package = write_package(
        dir.path(),
        "multi",
        &text,
        &std::fs::read(textures("textures.onnx")).unwrap(),
    );
    let out = dir.path().join("multi_int8.dlpk");
    run_ok(&refs(&quantize_args(
        &package,
        &out,
        &["--min-speedup", "0", "--min-agreement", "0.95"],
    )));
    let figures = &emd_of(&out)["Int8Quantization"]["Figures"];
    // 80 chips x 4 classes.
    assert_eq!(figures["Compared"], 320);
    assert!(figures["Agreeing"].as_u64().unwrap() >= 312, "{figures}");
}

#[test]
fn a_raster_where_every_chip_is_empty_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The test raster's grid, every pixel NoData.
    let raster = dir.path().join("nodata.tif");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver.create_with_band_type::<u8, _>(&raster, 384, 384, 3).unwrap();
    ds.set_geo_transform(&[500_000.0, 1.0, 0.0, 5_800_000.0, 0.0, -1.0])
        .unwrap();
    ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32633).unwrap())
        .unwrap();
    for b in 1..=3 {
        ds.rasterband(b).unwrap().set_no_data_value(Some(0.0)).unwrap();
    }
    drop(ds);
    let out = dir.path().join("int8.dlpk");
    let line = run_err(
        &[
            "quantize",
            s(&textures("textures.dlpk")),
            "-r",
            s(&raster),
            "-f",
            s(&textures("textures.gpkg")),
            "-o",
            s(&out),
        ],
        2,
    );
    for needle in ["every chip", "is empty", "nodata.tif", "nothing to calibrate on"] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    assert_eq!(files_in(dir.path()), ["nodata.tif"]);
}

#[test]
fn models_and_requests_quantize_cannot_serve_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("int8.dlpk");
    // No convolution: the one matrix product is the head, kept fp32; nothing to gain.
    let head_only = Model {
        nodes: vec![
            Node {
                op: "GlobalAveragePool",
                inputs: vec!["image"],
                outputs: vec!["g"],
                attrs: vec![],
            },
            Node {
                op: "Flatten",
                inputs: vec!["g"],
                outputs: vec!["f"],
                attrs: vec![],
            },
            Node {
                op: "Gemm",
                inputs: vec!["f", "hw", "hb"],
                outputs: vec!["logits"],
                attrs: vec![Attr::Int("transB", 1)],
            },
        ],
        initializers: vec![
            Initializer {
                name: "hw",
                dims: vec![2, 3],
                data: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            },
            Initializer {
                name: "hb",
                dims: vec![2],
                data: vec![0.0, 0.0],
            },
        ],
        inputs: vec![(
            "image",
            vec![Dim::Param("batch"), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)],
        )],
        outputs: vec![("logits", vec![Dim::Param("batch"), Dim::Fixed(2)])],
        opset: 17,
        output_elem_type: 1,
    };
    let package = write_package(d, "head_only", &emd(&["a", "b"], ""), &head_only.to_bytes());
    let line = run_err(&refs(&quantize_args(&package, &out, &[])), 2);
    assert!(
        line.contains("no convolution or matrix product") && line.contains("classifier head"),
        "{line}"
    );
    // An opset without per-channel quantization: the way out is named.
    let old = Model { opset: 11, ..head_only };
    let package = write_package(d, "old", &emd(&["a", "b"], ""), &old.to_bytes());
    let line = run_err(&refs(&quantize_args(&package, &out, &[])), 2);
    assert!(line.contains("opset 11") && line.contains("opset_version"), "{line}");
    // The output is the input.
    let copy = d.join("textures.dlpk");
    std::fs::copy(textures("textures.dlpk"), &copy).unwrap();
    let line = run_err(&refs(&quantize_args(&copy, &copy, &["--overwrite"])), 2);
    assert!(line.contains("textures.dlpk"), "{line}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(textures("textures.dlpk")).unwrap()
    );
    // Not a package.
    let line = run_err(
        &refs(&quantize_args(&textures("textures.dlpk"), &d.join("x.onnx"), &[])),
        2,
    );
    assert!(line.contains("not a .dlpk"), "{line}");
    // More chips than memory allows, and more than a sample may be.
    let line = run_err(
        &refs(&sized_args(&textures("textures.dlpk"), &out, ("100000", "100000"), &[])),
        2,
    );
    assert!(line.contains("GiB") && line.contains("at most"), "{line}");
    let line = run_err(
        &refs(&sized_args(&textures("textures.dlpk"), &out, ("100001", "80"), &[])),
        2,
    );
    assert!(line.contains("100001"), "{line}");
    // Too few features on the raster.
    let line = run_err(
        &refs(&quantize_args(
            &textures("textures.dlpk"),
            &out,
            &["--where", "id < 20"],
        )),
        2,
    );
    assert!(
        line.contains("only 20 feature(s)") && line.contains("at least 32"),
        "{line}"
    );
    assert!(!out.exists());
}

#[test]
fn a_signal_during_calibration_stops_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int8.dlpk");
    // After the chips are cut, one chip at a time: the probe's two passes, three candidates,
    // the timing rounds.
    let args = quantize_args(
        &textures("textures.dlpk"),
        &out,
        &["--batch-size", "1", "--intra-op-threads", "1"],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the chips to be cut: the line that says so.
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let cut = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("progress: cut"));
    assert!(cut.is_some(), "the chips were never cut");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
}
