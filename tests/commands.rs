//! The `inspect` and `pack` subcommands.

mod support;

use std::fs;

use support::*;

#[test]
fn inspect_reports_tensors_chip_rules_classes_and_arguments() {
    let out = run_ok(&["inspect", "--json", fixture("real/textline_cls.dlpk").to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON");
    assert_eq!(s["model_type"], "ObjectClassification");
    assert_eq!(s["definition"], "textline_cls.emd");
    assert_eq!(s["model_file"], "ch_ppocr_mobile_v2.0_cls_infer.onnx");
    assert_eq!(s["inputs"][0]["name"], "x");
    assert_eq!(s["inputs"][0]["element_type"], "Float32");
    assert_eq!(s["inputs"][0]["shape"], serde_json::json!([-1, 3, -1, -1]));
    assert_eq!(s["outputs"][0]["shape"].as_array().unwrap().last().unwrap(), 2);
    assert_eq!(s["chip"]["width"], 192);
    assert_eq!(s["chip"]["height"], 48);
    assert_eq!(s["chip"]["normalization"], "NormalizationStats");
    assert_eq!(s["chip"]["image_space"], "PIXEL_SPACE");
    assert_eq!(s["classes"][1]["name"], "180");
    assert_eq!(s["classes"][1]["value"], 180);
    let names: Vec<&str> = s["model_arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["batch_size", "test_time_augmentation"]);
    assert_eq!(s["check"], "ok");

    let text =
        String::from_utf8(run_ok(&["inspect", fixture("synthetic/colors.dlpk").to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("image Float32 [-1,3,32,32]"), "{text}");
    assert!(text.contains("5: dark (value 6, color [40,40,40])"), "{text}");
    assert!(text.contains("check                 ok"), "{text}");
}

#[test]
fn inspect_shows_a_mismatch_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let model = fs::read(fixture("synthetic/colors.onnx")).unwrap();
    let pkg = write_package(
        dir.path(),
        "bad.dlpk",
        &colors_emd(&[("\"ImageWidth\": 32", "\"ImageWidth\": 48")]),
        &model,
    );
    let out = run_ok(&["inspect", "--json", pkg.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["check"].as_str().unwrap().contains("ImageWidth 48"), "{}", s["check"]);
}

#[test]
fn pack_writes_a_package_that_classifies_like_the_hand_written_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pkg = d.join("packed.dlpk");
    run_ok(&[
        "pack",
        "--onnx",
        fixture("synthetic/colors.onnx").to_str().unwrap(),
        "--classes",
        "red,green,blue,yellow,white,dark",
        "-o",
        pkg.to_str().unwrap(),
    ]);
    let info: serde_json::Value =
        serde_json::from_slice(&run_ok(&["inspect", "--json", pkg.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(info["chip"]["width"], 32, "chip size taken from the model");
    assert_eq!(info["check"], "ok");
    let (a, b) = (d.join("a.gpkg"), d.join("b.gpkg"));
    for (model, out) in [(pkg.clone(), &a), (fixture("synthetic/colors.dlpk"), &b)] {
        run_ok(&[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            model.to_str().unwrap(),
            "-f",
            fixture("synthetic/objects.gpkg").to_str().unwrap(),
            "--layer",
            "polygons",
            "-o",
            out.to_str().unwrap(),
        ]);
    }
    let (ra, rb) = (read_rows(&a, None), read_rows(&b, None));
    assert_eq!(ra.len(), 16);
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.text("ClassLabel"), y.text("ClassLabel"));
        assert_eq!(x.number("Confidence"), y.number("Confidence"));
    }
}

#[test]
fn pack_with_scaling_matches_the_real_package() {
    // The PaddleOCR model packed from the command line gives the fixture package's answers.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let onnx = d.join("cls.onnx");
    {
        let mut archive = zip::ZipArchive::new(fs::File::open(fixture("real/textline_cls.dlpk")).unwrap()).unwrap();
        let mut entry = archive.by_name("ch_ppocr_mobile_v2.0_cls_infer.onnx").unwrap();
        std::io::copy(&mut entry, &mut fs::File::create(&onnx).unwrap()).unwrap();
    }
    let pkg = d.join("cls.dlpk");
    run_ok(&[
        "pack",
        "--onnx",
        onnx.to_str().unwrap(),
        "--classes",
        "0,180",
        "--chip-width",
        "192",
        "--chip-height",
        "48",
        "--scale",
        "0,255,0.5,0.5",
        "--pixel-space",
        "-o",
        pkg.to_str().unwrap(),
    ]);
    let (a, b) = (d.join("a.gpkg"), d.join("b.gpkg"));
    for (model, out) in [(pkg.clone(), &a), (fixture("real/textline_cls.dlpk"), &b)] {
        run_ok(&[
            "-r",
            fixture("real/RGB.byte.tif").to_str().unwrap(),
            "-m",
            model.to_str().unwrap(),
            "-f",
            fixture("real/RGB.byte.foot.gpkg").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
    }
    let (ra, rb) = (read_rows(&a, None), read_rows(&b, None));
    assert_eq!(ra.len(), 9);
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.text("ClassLabel"), y.text("ClassLabel"));
        assert!((x.number("Confidence").unwrap() - y.number("Confidence").unwrap()).abs() < 1e-6);
    }
}

#[test]
fn pack_refuses_what_does_not_fit_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let onnx = fixture("synthetic/colors.onnx");
    let out = d.join("x.dlpk");
    let line = run_err(
        &[
            "pack",
            "--onnx",
            onnx.to_str().unwrap(),
            "--classes",
            "a,b",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("6 scores") && line.contains("2 class"), "{line}");
    let line = run_err(
        &[
            "pack",
            "--onnx",
            onnx.to_str().unwrap(),
            "--classes",
            "a,b,c,d,e,f",
            "--bands",
            "0,1,2,3",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("--scale"), "{line}");
    let line = run_err(
        &[
            "pack",
            "--onnx",
            onnx.to_str().unwrap(),
            "--classes",
            "a,b,c,d,e,f",
            "--chip-size",
            "64",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        line.contains("Image") && line.contains(" 64") && line.contains(" 32"),
        "{line}"
    );
    assert_eq!(files_in(d), Vec::<String>::new(), "nothing written on failure");
}

#[test]
fn device_choice_is_reported_and_a_failed_cuda_request_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = |out: &std::path::Path| {
        vec![
            "-r".to_string(),
            fixture("synthetic/colors.tif").to_str().unwrap().to_string(),
            "-m".into(),
            fixture("synthetic/colors.dlpk").to_str().unwrap().to_string(),
            "-f".into(),
            fixture("synthetic/objects.gpkg").to_str().unwrap().to_string(),
            "--layer".into(),
            "polygons".into(),
            "-o".into(),
            out.to_str().unwrap().to_string(),
        ]
    };
    // This machine has no CUDA runtime (and the default build no CUDA support): cuda fails.
    let mut args = base(&d.join("cuda.gpkg"));
    args.extend(["--device".into(), "cuda".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = run_err(&args, 2);
    assert!(
        line.contains("--device cuda:0 cannot be used") && line.contains("--device auto"),
        "{line}"
    );
    assert!(!d.join("cuda.gpkg").exists());
    // auto falls back to the CPU, says so, and the summary names the provider that ran.
    let mut args = base(&d.join("auto.gpkg"));
    let summary = d.join("summary.json");
    args.extend([
        "--device".into(),
        "auto".into(),
        "--summary-json".into(),
        summary.to_str().unwrap().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CUDA is not available") && stderr.contains("running on the CPU"),
        "{stderr}"
    );
    let s: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["execution_provider"], "CPUExecutionProvider");
    assert_eq!(s["objects"], 16);
    assert_eq!(s["classified"], 16);
    assert_eq!(s["labels"]["red"], 3);
    assert!(s["peak_rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(s["seconds"]["inference"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_progress_bar_shows_on_a_terminal_only_and_never_with_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_classify-objects");
    let command = |out: &str, extra: &str| {
        format!(
            "{exe} -r {} -m {} -f {} -o {} {extra}",
            fixture("real/RGB.byte.tif").display(),
            fixture("real/textline_cls.dlpk").display(),
            fixture("real/RGB.byte.bench_points_2000.gpkg").display(),
            dir.path().join(out).display()
        )
    };
    // `script` runs the command on a pseudo-terminal, as a person at a shell would.
    let on_terminal = |cmd: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = on_terminal(command("tty.gpkg", ""));
    assert!(
        shown.contains("/2000 objects ("),
        "a bar on a terminal: {}",
        shown.chars().take(300).collect::<String>()
    );
    assert!(
        shown.contains("2000 object(s), 2000 classified"),
        "then the summary line"
    );
    let quiet = on_terminal(command("quiet.gpkg", "--quiet"));
    assert!(
        !quiet.contains("objects (") && !quiet.contains("classified"),
        "--quiet prints nothing: {quiet}"
    );
    // Not a terminal (a pipe, a CI log): no bar, the summary line only. (Plain progress lines
    // come every --progress-interval seconds; an hour keeps a slow, loaded machine from
    // printing one, which is right but not what this checks.)
    let piped = run_ok(
        &command("pipe.gpkg", "--progress-interval 3600")
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("objects (") && stderr.contains("2000 object(s)"),
        "{stderr}"
    );
}
