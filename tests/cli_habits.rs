//! The habits users expect of a command-line tool (#15): `--version` with the versions that
//! matter, shell completions and a manual page generated from the flags, `--help` grouped by
//! headings, and stable JSON from `inspect` and `compare`.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

#[test]
fn version_names_the_build_gdal_proj_and_onnx_runtime() {
    let out = run_ok(&["--version"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // The commit this checkout is at (the build script reads it).
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string());
    let commit = match option_env!("CLASSIFY_OBJECTS_GIT_COMMIT").map(str::to_string).or(head) {
        Some(commit) => format!("commit {commit}"),
        None => "commit unknown: not built from a git checkout".into(),
    };
    assert_eq!(
        lines[0],
        format!("classify-objects {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
    // GDAL and PROJ as the library reports them.
    let gdal = gdal::version::version_info("RELEASE_NAME");
    assert!(lines[1].starts_with(&format!("GDAL {gdal}, released ")), "{}", lines[1]);
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: the three pointers point to live integers of this function.
    unsafe { gdal_sys::OSRGetPROJVersion(&mut major, &mut minor, &mut patch) };
    assert_eq!(lines[2], format!("PROJ {major}.{minor}.{patch}"));
    // ONNX Runtime: the version the library reports (setup.sh installs 1.32) and its file.
    let ort = lines[3];
    assert!(ort.starts_with("ONNX Runtime 1."), "{ort}");
    let path = ort.rsplit_once(" (").unwrap().1.trim_end_matches(')');
    assert!(Path::new(path).is_file(), "{ort}");
    assert!(path.contains("libonnxruntime"), "{ort}");
    let library = classify_objects::locate_runtime(None).unwrap();
    assert_eq!(Path::new(path), std::fs::canonicalize(library).unwrap());
    // -V is the same; --version takes no other flag.
    assert_eq!(String::from_utf8(run_ok(&["-V"]).stdout).unwrap(), text);
    let line = run_err(&["--version", "-q"], 2);
    assert!(line.contains("--version"), "{line}");
    // A library that cannot be loaded is said on the ONNX Runtime line; the rest stands.
    let out = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .arg("--version")
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .nth(3)
            .unwrap()
            .starts_with("ONNX Runtime not loaded: ONNX Runtime library not found"),
        "{text}"
    );
}

#[test]
fn completions_and_the_manual_page_come_from_the_flags() {
    let bash = String::from_utf8(run_ok(&["completions", "bash"]).stdout).unwrap();
    for needle in ["--extent", "--t-srs", "--where", "inspect", "compare", "completions"] {
        assert!(bash.contains(needle), "bash completion lacks {needle}");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("classify-objects.bash");
    std::fs::write(&script, &bash).unwrap();
    let check = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    for shell in ["zsh", "fish"] {
        let text = String::from_utf8(run_ok(&["completions", shell]).stdout).unwrap();
        assert!(text.contains("extent-crs") && text.contains("all-scores"), "{shell}");
    }
    let line = run_err(&["completions", "tcsh"], 2);
    assert!(line.contains("tcsh"), "{line}");

    let man = String::from_utf8(run_ok(&["man"]).stdout).unwrap();
    assert!(man.starts_with(".ie") || man.starts_with(".TH"), "{}", &man[..80]);
    assert!(man.contains(".TH classify-objects 1"));
    for heading in ["INPUTS", "MODEL", "OUTPUT", "RUN", "SCALE-OUT", "REGRESSION"] {
        assert!(man.contains(&format!(".SH {heading}")), "no section {heading}");
    }
    assert!(man.contains("\\-\\-t\\-srs") && man.contains("\\-\\-where"));
    // Each subcommand has its own page.
    for sub in ["inspect", "compare", "merge", "completions"] {
        assert!(
            man.contains(&format!(".TH classify-objects-{sub} 1")),
            "no page for {sub}"
        );
    }
    // groff reads it as a manual page without complaint.
    let page = dir.path().join("classify-objects.1");
    std::fs::write(&page, &man).unwrap();
    if let Ok(out) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(&page)
        .output()
    {
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--extent"), "rendered page lacks --extent");
    }
}

#[test]
fn help_groups_the_flags_under_headings() {
    let help = String::from_utf8(run_ok(&["--help"]).stdout).unwrap();
    let headings = ["Inputs:", "Model:", "Output:", "Run:", "Scale-out:", "Regression:"];
    let at: Vec<usize> = headings
        .iter()
        .map(|h| {
            help.lines()
                .position(|l| l == *h)
                .unwrap_or_else(|| panic!("no heading {h}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "headings in order: {at:?}");
    let section = |flag: &str| -> usize {
        let line = help
            .lines()
            .position(|l| l.trim_start().starts_with(flag) || l.contains(&format!(", {flag}")))
            .unwrap_or_else(|| panic!("no {flag}"));
        at.iter().rposition(|&h| h < line).unwrap_or(usize::MAX)
    };
    for (flag, heading) in [
        ("--raster", 0),
        ("--where", 0),
        ("--sql", 0),
        ("--extent ", 0),
        ("--bands", 0),
        ("--nodata", 0),
        ("--oo", 0),
        ("--model ", 1),
        ("--device", 1),
        ("--output", 2),
        ("--t-srs", 2),
        ("--all-scores", 2),
        ("--dsco", 2),
        ("--threads", 3),
        ("--config", 3),
        ("--shard", 4),
        ("--resume", 4),
        ("--truth-field", 5),
        ("--min-accuracy", 5),
    ] {
        assert_eq!(section(flag), heading, "{flag} under {}", headings[heading]);
    }
}

#[test]
fn inspect_json_is_the_documented_format() {
    let out = run_ok(&["inspect", "--json", fixture("real/textline_cls.dlpk").to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "format",
            "format_version",
            "package",
            "definition",
            "model_file",
            "model_bytes",
            "model_type",
            "framework",
            "model_configuration",
            "model_name",
            "inputs",
            "outputs",
            "chip",
            "label_mode",
            "activation",
            "converted",
            "classes",
            "model_arguments",
            "inference_function_ignored",
            "check",
        ]
    );
    assert_eq!(json["format"], "classify-objects inspect");
    assert_eq!(json["format_version"], 1);
    // docs/json.md lists every key.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    for key in &keys {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/json.md does not document {key}"
        );
    }
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
