//! Model arguments: test-time augmentation in map and pixel space, multi-label thresholds, `.emd`
//! batch sizes, activations of logits, checked against hand-computed numbers.

use std::path::Path;

use crate::support::*;

fn expected(variants: &[usize]) -> (String, f64) {
    let (w, b) = weights();
    let chip = normalized_chip(7, 5);
    let mut mean = [0.0; 3];
    for &k in variants {
        let p = softmax_logits(&dihedral(&chip, k), &w, &b);
        mean.iter_mut()
            .zip(&p)
            .for_each(|(m, v)| *m += v / variants.len() as f64);
    }
    let best = (0..3).fold(0, |bi, i| if mean[i] > mean[bi] { i } else { bi });
    (CLASSES[best].to_string(), mean[best])
}

fn classify(d: &Path, space: &str, args: &[&str]) -> (String, f64) {
    let (raster, features) = setup(d);
    let (w, b) = weights();
    let model = onnx::dense_classifier(3, 4, 4, w, b);
    let pkg = d.join(format!("dense_{space}.dlpk"));
    write_zip(
        &pkg,
        &[("dense.emd", dense_emd(space).as_bytes()), ("dense.onnx", &model)],
    );
    let out = d.join("out.gpkg");
    let mut full = vec![
        "-r",
        &raster,
        "-m",
        pkg.to_str().unwrap(),
        "-f",
        &features,
        "-o",
        out.to_str().unwrap(),
        "--overwrite",
    ];
    full.extend_from_slice(args);
    run_ok(&full);
    let row = read_rows(&out, None).remove(0);
    (row.text("ClassLabel").unwrap(), row.number("Confidence").unwrap())
}

/// Deterministic small weights for a dense 3 x 4 x 4 -> 3 model.
fn weights() -> (Vec<f32>, Vec<f32>) {
    let n = 3 * 4 * 4 * 3;
    let w = (0..n).map(|i| (((i * 37 + 11) % 23) as f32 - 11.0) * 0.01).collect();
    (w, vec![0.1, -0.2, 0.05])
}

fn dense_emd(space: &str) -> String {
    format!(
        r#"{{"ModelType": "ObjectClassification", "ModelFile": "dense.onnx", "ImageWidth": 4, "ImageHeight": 4,
        "ExtractBands": [0, 1, 2], "ImageSpaceUsed": "{space}",
        "Classes": [{{"Value": 1, "Name": "a"}}, {{"Value": 2, "Name": "b"}}, {{"Value": 3, "Name": "c"}}]}}"#
    )
}

/// Positional raster scaled down by 100 (values ~0..250) and one point whose 4 x 4 window is (7, 5).
fn setup(d: &Path) -> (String, String) {
    let mut raster = TestRaster::positional(30, 20, 3);
    raster
        .planes
        .iter_mut()
        .for_each(|p| p.iter_mut().for_each(|v| *v /= 100.0));
    let path = d.join("pos.tif");
    raster.write(&path);
    let features = d.join("f.geojson");
    write_pixel_features(&features, &["POINT (9.3 7.8)"]);
    (
        path.to_str().unwrap().to_string(),
        features.to_str().unwrap().to_string(),
    )
}

const CLASSES: [&str; 3] = ["a", "b", "c"];

/// The chip of the positional raster at window (col0, row0), ImageNet-normalised, `[c][y][x]`.
fn normalized_chip(col0: usize, row0: usize) -> Vec<f32> {
    let mean = [123.675f32, 116.28, 103.53];
    let std = [58.395f32, 57.12, 57.375];
    let mut chip = Vec::new();
    for c in 0..3 {
        for y in 0..4 {
            for x in 0..4 {
                chip.push((TestRaster::value(c, col0 + x, row0 + y) / 100.0 - mean[c]) / std[c]);
            }
        }
    }
    chip
}

/// fastai `dihedral(k)` written out independently: flip rows if k & 1, columns if k & 2, then
/// transpose if k & 4.
fn dihedral(chip: &[f32], k: usize) -> Vec<f32> {
    let mut out = vec![0.0; chip.len()];
    for c in 0..3 {
        for y in 0..4 {
            for x in 0..4 {
                let (yy, xx) = if k & 4 != 0 { (x, y) } else { (y, x) };
                let sy = if k & 1 != 0 { 3 - yy } else { yy };
                let sx = if k & 2 != 0 { 3 - xx } else { xx };
                out[c * 16 + y * 4 + x] = chip[c * 16 + sy * 4 + sx];
            }
        }
    }
    out
}

fn softmax_logits(chip: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
    let logits: Vec<f64> = (0..3)
        .map(|k| {
            b[k] as f64
                + chip
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (*v * w[i * 3 + k]) as f64)
                    .sum::<f64>()
        })
        .collect();
    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Multi-label: sigmoid of the colour model's logits `s (2 x·c_k - |c_k|^2)` on a uniform chip
/// of colour `x = c_true`, labels at or above the threshold joined with `;`.
fn multi_label_expected(true_class: usize, s: f64, threshold: f64) -> (String, Vec<f64>) {
    let norm = imagenet();
    let n = |c: [u8; 3]| [0, 1, 2].map(|i| c[i] as f64 * norm[i].0 as f64 + norm[i].1 as f64);
    let x = n(PALETTE[true_class].1);
    let probs: Vec<f64> = PALETTE
        .iter()
        .map(|(_, c)| {
            let c = n(*c);
            let logit = s * (2.0 * (0..3).map(|i| x[i] * c[i]).sum::<f64>() - (0..3).map(|i| c[i] * c[i]).sum::<f64>());
            1.0 / (1.0 + (-logit).exp())
        })
        .collect();
    let label = PALETTE
        .iter()
        .zip(&probs)
        .filter(|(_, p)| **p >= threshold)
        .map(|((n, _), _)| *n)
        .collect::<Vec<_>>()
        .join(";");
    (label, probs)
}

/// A package of the constant model `logits = bias` (whatever the chip) over the colour fixture.
fn constant_logits_package(d: &Path, name: &str, bias: [f32; 6], multi_label: bool) -> std::path::PathBuf {
    let model = onnx::dense_classifier(3, 32, 32, vec![0.0; 3 * 32 * 32 * 6], bias.to_vec());
    let replace: &[(&str, &str)] = if multi_label {
        &[(
            "\"Classes\"",
            "\"MetaDataMode\": \"MultiLabeled_Tiles\",\n  \"Classes\"",
        )]
    } else {
        &[]
    };
    write_package(d, name, &colors_emd(replace), &model)
}

#[test]
fn without_augmentation_the_plain_chip_decides() {
    let dir = tempfile::tempdir().unwrap();
    let (label, p) = classify(dir.path(), "MAP_SPACE", &[]);
    let (want_label, want_p) = expected(&[0]);
    assert_eq!(label, want_label);
    assert!((p - want_p).abs() < 1e-5, "{p} vs {want_p}");
}

#[test]
fn augmentation_in_map_space_averages_all_eight_variants() {
    let dir = tempfile::tempdir().unwrap();
    let (label, p) = classify(dir.path(), "MAP_SPACE", &["--model-arg", "test_time_augmentation=true"]);
    let (want_label, want_p) = expected(&[0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(label, want_label);
    assert!((p - want_p).abs() < 1e-5, "{p} vs {want_p}");
    let (_, plain) = expected(&[0]);
    assert!(
        (want_p - plain).abs() > 1e-3,
        "the test must tell augmentation from none"
    );
}

#[test]
fn augmentation_in_pixel_space_uses_identity_and_horizontal_flip() {
    let dir = tempfile::tempdir().unwrap();
    let (label, p) = classify(
        dir.path(),
        "PIXEL_SPACE",
        &["--model-arguments", "test_time_augmentation True"],
    );
    let (want_label, want_p) = expected(&[0, 2]);
    assert_eq!(label, want_label);
    assert!((p - want_p).abs() < 1e-5, "{p} vs {want_p}");
}

#[test]
fn multi_label_models_threshold_sigmoid_scores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = 0.4f32;
    let options = onnx::ColorModelOptions {
        sharpness: s,
        ..Default::default()
    };
    let pkg = color_package(
        d,
        "multi.dlpk",
        &[(
            "\"Classes\"",
            "\"MetaDataMode\": \"MultiLabeled_Tiles\",\n  \"Classes\"",
        )],
        &options,
        &imagenet(),
    );
    // arcgis.learn 2.4 calls the argument threshold, 2.0 called it score_threshold: both work.
    for (i, (threshold, args)) in [
        (0.5, vec![]),
        (0.2, vec!["--model-arg", "score_threshold=0.2"]),
        (0.2, vec!["--model-arguments", "threshold 0.2;padding 0"]),
    ]
    .into_iter()
    .enumerate()
    {
        let out = d.join(format!("multi_{i}.gpkg"));
        let mut full: Vec<String> = vec![
            "-r".into(),
            fixture("synthetic/colors.tif").to_str().unwrap().to_string(),
            "-m".into(),
            pkg.to_str().unwrap().to_string(),
            "-f".into(),
            fixture("synthetic/objects.gpkg").to_str().unwrap().to_string(),
            "--layer".into(),
            "polygons".into(),
            "-o".into(),
            out.to_str().unwrap().to_string(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        run_ok(&full);
        let rows = read_rows(&out, None);
        let mut several = false;
        for row in &rows {
            let truth = row.text("truth").unwrap();
            let class = PALETTE.iter().position(|(n, _)| *n == truth).unwrap();
            let (label, probs) = multi_label_expected(class, s as f64, threshold);
            assert_eq!(row.text("ClassLabel").unwrap_or_default(), label, "feature {truth}");
            several |= label.contains(';');
            let got: Vec<f64> = row
                .text("Confidence")
                .unwrap()
                .split(';')
                .map(|v| v.parse().unwrap())
                .collect();
            assert_eq!(got.len(), 6);
            for (g, p) in got.iter().zip(&probs) {
                assert!((g - p).abs() < 1e-5, "{g} vs {p}");
            }
        }
        assert!(
            several || threshold == 0.5,
            "a low threshold gives several labels for some features"
        );
    }
}

#[test]
fn emd_batch_size_wins_and_a_fixed_batch_model_still_classifies_everything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let options = onnx::ColorModelOptions {
        batch: onnx::Dim::Fixed(2),
        ..Default::default()
    };
    let pkg = color_package(
        d,
        "batch.dlpk",
        &[("\"Classes\"", "\"BatchSize\": 2,\n  \"Classes\"")],
        &options,
        &imagenet(),
    );
    let out = d.join("batch.gpkg");
    let output = run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &pkg,
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--model-arg", "batch_size=7", "--layer", "polygons"],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BatchSize 2, which wins over batch_size 7"), "{stderr}");
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
}

#[test]
fn logits_that_look_like_probabilities_are_still_activated_on_every_chip() {
    // The activation is decided once per model, never from a chip's values: logits that
    // happen to lie in 0..1 (and even sum to 1) still go through the sigmoid / softmax.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let bias = [0.2f32, 0.9, 0.0, 0.5, 0.3, 0.1];
    let pkg = constant_logits_package(d, "multi.dlpk", bias, true);
    let out = d.join("multi.gpkg");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &pkg,
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--layer", "polygons"],
    ));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    for row in &rows {
        let got: Vec<f64> = row
            .text("Confidence")
            .unwrap()
            .split(';')
            .map(|v| v.parse().unwrap())
            .collect();
        for (g, b) in got.iter().zip(bias) {
            assert!((g - sigmoid(b as f64)).abs() < 1e-6, "{g} is not sigmoid({b})");
        }
        // Every sigmoid of a non-negative logit reaches 0.5.
        assert_eq!(row.text("ClassLabel").unwrap(), "red;green;blue;yellow;white;dark");
    }

    let bias = [0.1f32, 0.2, 0.3, 0.4, 0.0, 0.0];
    let pkg = constant_logits_package(d, "single.dlpk", bias, false);
    let out = d.join("single.gpkg");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &pkg,
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--layer", "polygons"],
    ));
    let total: f64 = bias.iter().map(|b| (*b as f64).exp()).sum();
    for row in read_rows(&out, None) {
        assert_eq!(row.text("ClassLabel").unwrap(), "yellow");
        let p = row.number("Confidence").unwrap();
        assert!(
            (p - 0.4f64.exp() / total).abs() < 1e-6,
            "{p} is not the softmax of the logits"
        );
    }
}
