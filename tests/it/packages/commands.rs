//! `inspect` and `pack`.

use std::fs;

use crate::support::seeded::SeededPackage;
use crate::support::*;

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
fn convert_and_pack_never_write_over_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let package = SeededPackage::load("fc_resnet18_seeded").write_dlpk(d);
    let alias = d.join("alias.dlpk");
    fs::hard_link(&package, &alias).unwrap();
    let before = fs::read(&package).unwrap();
    for output in [&package, &alias] {
        let line = run_err(
            &[
                "convert",
                package.to_str().unwrap(),
                "-o",
                output.to_str().unwrap(),
                "--overwrite",
            ],
            2,
        );
        assert_mentions(&line, &["is the model", "choose another output name"]);
        assert_eq!(fs::read(&package).unwrap(), before);
    }
    // pack: an ONNX file named .dlpk given as both --onnx and -o.
    let onnx = d.join("model.dlpk");
    fs::copy(fixture("synthetic/colors.onnx"), &onnx).unwrap();
    let line = run_err(
        &[
            "pack",
            "--onnx",
            onnx.to_str().unwrap(),
            "--classes",
            "red,green,blue,yellow,white,dark",
            "-o",
            onnx.to_str().unwrap(),
            "--overwrite",
        ],
        2,
    );
    assert_mentions(&line, &["is the --onnx model", "choose another output name"]);
    assert_eq!(
        fs::read(&onnx).unwrap(),
        fs::read(fixture("synthetic/colors.onnx")).unwrap()
    );
}
