//! The command line as a tool: --version, completions and the manual page, --help headings, JSON
//! output of inspect, thread percentages.

use std::path::Path;
use std::process::Command;

use crate::support::*;

#[test]
fn threads_take_a_percentage_of_the_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (given, expected) in [
        ("50%", ((cpus as f64) * 0.5).round().max(1.0) as usize),
        ("100%", cpus),
        ("1%", 1),
        ("3", 3),
    ] {
        let out = dir.path().join(format!("t{}.gpkg", given.trim_end_matches('%')));
        let output = run_owned_ok(&polygons(&out, &["--threads", given, "--summary-json", "-"]));
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["threads"], expected, "--threads {given} on {cpus} CPUs");
        let rows = read_rows(&out, None);
        assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    }
    for bad in ["0%", "half", "0", "2000"] {
        let line = run_err(
            &polygons(&dir.path().join("bad.gpkg"), &["--threads", bad])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            2,
        );
        assert!(line.contains("--threads"), "{line}");
    }
}

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
            "int8",
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
