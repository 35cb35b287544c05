//! `compare`, and the layer a report or a comparison reads.

use std::fs;
use std::path::Path;

use crate::support::*;

#[test]
fn compare_lists_changed_labels_and_says_so_in_its_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b, c) = (d.join("a.gpkg"), d.join("b.gpkg"), d.join("c.gpkg"));
    assert!(run_colors(&a, &fixture("synthetic/colors.dlpk"), &[]).status.success());
    assert!(run_colors(&b, &swapped_package(d), &[]).status.success());
    assert!(run_colors(&c, &fixture("synthetic/colors.emd"), &[]).status.success());
    let same = run(&["compare", a.to_str().unwrap(), c.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&same.stdout).contains("16 row(s) compared, 0 label(s) changed"));
    let changed = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(1));
    let text = String::from_utf8_lossy(&changed.stdout);
    assert!(text.contains("16 row(s) compared, 6 label(s) changed"), "{text}");
    // Polygon 3 (patch 0,2) is blue: now called green.
    assert!(
        text.lines()
            .any(|l| l.starts_with("SourceOID 3: blue (") && l.contains(") -> green (")),
        "{text}"
    );
    let broken = run(&["compare", a.to_str().unwrap(), "/no/such.gpkg"]);
    assert_eq!(broken.status.code(), Some(2));
}

#[test]
fn compare_json_lists_the_changes_with_rounded_confidences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The colour model with green and blue swapped: the 6 green and blue points change label.
    let emd = colors_emd(&[("\"Name\": \"green\"", "\"Name\": \"TMP\"")])
        .replace("\"Name\": \"blue\"", "\"Name\": \"green\"")
        .replace("\"Name\": \"TMP\"", "\"Name\": \"blue\"");
    let model = std::fs::read(fixture("synthetic/colors.onnx")).unwrap();
    let swapped = write_package(d, "swapped.dlpk", &emd, &model);
    let (a, b) = (d.join("a.gpkg"), d.join("b.gpkg"));
    for (out, package) in [(&a, fixture("synthetic/colors.dlpk")), (&b, swapped)] {
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &package,
            Some(&fixture("synthetic/objects.gpkg")),
            out,
            &["--layer", "points"],
        ));
    }
    let output = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(1), "labels changed");
    let text = String::from_utf8(output.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "format",
            "format_version",
            "a",
            "b",
            "label_field",
            "compared",
            "changed_count",
            "only_in_a_count",
            "only_in_b_count",
            "changed",
            "only_in_a",
            "only_in_b",
        ]
    );
    assert_eq!(json["format"], "classify-objects compare");
    assert_eq!(json["compared"], 16);
    let truth: std::collections::BTreeMap<i64, String> = read_rows(&a, None)
        .iter()
        .map(|r| (r.number("SourceOID").unwrap() as i64, r.text("truth").unwrap()))
        .collect();
    let changed = json["changed"].as_array().unwrap();
    let expected: Vec<i64> = truth
        .iter()
        .filter(|(_, t)| *t == "green" || *t == "blue")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        changed
            .iter()
            .map(|c| c["source_oid"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(json["changed_count"], expected.len());
    for c in changed {
        let id = c["source_oid"].as_i64().unwrap();
        assert_eq!(c["image_id"], serde_json::Value::Null);
        assert_eq!(c["a"]["label"], truth[&id].as_str());
        assert_ne!(c["a"]["label"], c["b"]["label"]);
        // Same model, same probabilities; printed with 6 decimals at most.
        let p = c["a"]["confidence"].as_f64().unwrap();
        assert_eq!(c["a"]["confidence"], c["b"]["confidence"]);
        assert!(((p * 1e6).round() - p * 1e6).abs() < 1e-6, "{p}");
        let printed = serde_json::to_string(&c["a"]["confidence"]).unwrap();
        assert!(printed.split('.').nth(1).is_none_or(|d| d.len() <= 6), "{printed}");
        let expected = onnx::expected_confidence(
            &palette(),
            &imagenet(),
            1.0,
            PALETTE.iter().position(|(n, _)| *n == truth[&id]).unwrap(),
        );
        assert!((p - expected).abs() < 2e-6, "{p} vs {expected}");
    }
    assert_eq!(json["only_in_a"], serde_json::json!([]));
    // The same output twice: nothing changed, exit 0.
    let output = run(&["compare", a.to_str().unwrap(), a.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["changed"], serde_json::json!([]));
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    for key in &keys {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/json.md does not document {key}"
        );
    }
}

// 23. The report and compare read the run's layer, wherever it is in the file.
#[test]
fn report_and_compare_use_the_runs_layer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, dlpk, objects) = colors();
    let out = d.join("many.gpkg");
    ogr2ogr(&[
        "-nln",
        "aaa_first",
        out.to_str().unwrap(),
        objects.to_str().unwrap(),
        "points",
    ]);
    let report = d.join("report.html");
    run_owned_ok(&args(
        &tif,
        &dlpk,
        Some(&objects),
        &out,
        &["--layer-name", "zzz_run", "--report", report.to_str().unwrap()],
    ));
    let html = fs::read_to_string(&report).unwrap();
    // Only the run's layer has labels: the report read it, not the first one.
    assert!(
        html.contains("of the 16 labelled rows") && html.contains("(layer <code>zzz_run</code>, 16 rows)"),
        "the report counts the run's 16 rows"
    );
    let other = d.join("other.gpkg");
    run_owned_ok(&args(&tif, &dlpk, Some(&objects), &other, &["--layer-name", "zzz_run"]));
    let output = run(&["compare", out.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&[
        "compare",
        out.to_str().unwrap(),
        other.to_str().unwrap(),
        "--layer",
        "zzz_run",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let line = run_err(
        &[
            "compare",
            out.to_str().unwrap(),
            other.to_str().unwrap(),
            "--layer",
            "nope",
        ],
        2,
    );
    assert!(line.contains("aaa_first") && line.contains("zzz_run"), "{line}");
}

#[test]
fn compare_takes_a_layer_for_each_side() {
    // Two runs in one GeoPackage, as two layers: the first model's, and one that swaps blue
    // and green (the 3 blue and 3 green polygons change).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, dlpk, objects) = colors();
    let out = d.join("runs.gpkg");
    run_owned_ok(&args(&tif, &dlpk, Some(&objects), &out, &["--layer-name", "before"]));
    let swapped = swapped_package(d);
    run_owned_ok(&args(&tif, &swapped, Some(&objects), &out, &["--layer-name", "after"]));
    let path = out.to_str().unwrap();
    let json = |extra: &[&str]| {
        let mut all = vec!["compare", path, path, "--json"];
        all.extend_from_slice(extra);
        let output = run(&all);
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        (output.status.code(), value)
    };
    let (code, same) = json(&["--layer", "before"]);
    assert_eq!(
        (code, same["changed"].as_array().map(Vec::len)),
        (Some(0), Some(0)),
        "{same}"
    );
    let (code, changed) = json(&["--layer", "before", "--layer2", "after"]);
    assert_eq!(code, Some(1), "{changed}");
    assert_eq!(changed["changed"].as_array().map(Vec::len), Some(6), "{changed}");
}
