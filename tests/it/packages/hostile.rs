//! Packages that are broken, hostile (zip bombs, code inside) or inconsistent with their model.

use std::fs;
use std::io::Write;

use crate::support::*;

#[test]
fn zip_bombs_are_refused_from_their_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 64 MiB of spaces after the JSON: a 64 KiB zip that inflates far past the .emd cap.
    let bomb = d.join("bomb.dlpk");
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&bomb).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("model.emd", options).unwrap();
        zip.write_all(colors_emd(&[]).as_bytes()).unwrap();
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..64 {
            zip.write_all(&spaces).unwrap();
        }
        zip.start_file("colors.onnx", options).unwrap();
        zip.write_all(&fs::read(fixture("synthetic/colors.onnx")).unwrap())
            .unwrap();
        zip.finish().unwrap();
    }
    assert!(fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            bomb.to_str().unwrap(),
            "-o",
            d.join("o.gpkg").to_str().unwrap(),
        ],
        2,
    );
    assert!(
        line.contains("model.emd") && line.contains("declares 67109") && line.contains("hostile"),
        "{line}"
    );
}

#[test]
fn code_inside_a_package_is_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("pwned");
    let script = format!(
        "import pathlib\npathlib.Path({:?}).write_text('ran')\n",
        marker.to_str().unwrap()
    );
    let emd = colors_emd(&[(
        "\"Framework\": \"ONNX\"",
        "\"Framework\": \"PyTorch\",\n  \"InferenceFunction\": \"evil.py\"",
    )]);
    let pkg = d.join("with_code.dlpk");
    write_zip(
        &pkg,
        &[
            ("model.emd", emd.as_bytes()),
            ("colors.onnx", &fs::read(fixture("synthetic/colors.onnx")).unwrap()),
            ("evil.py", script.as_bytes()),
        ],
    );
    let out = d.join("out.gpkg");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &pkg,
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--layer", "polygons"],
    ));
    let text = String::from_utf8(run_ok(&["inspect", pkg.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("evil.py (ignored: package code is never run)"), "{text}");
    assert!(!marker.exists());
    assert_eq!(
        files_in(d),
        vec!["out.gpkg", "out.qml", "with_code.dlpk"],
        "nothing extracted beside the package"
    );
}

#[test]
fn broken_packages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = fs::read(fixture("synthetic/colors.onnx")).unwrap();
    let emd = colors_emd(&[]);

    let not_zip = d.join("not_zip.dlpk");
    fs::write(&not_zip, b"this is not a zip archive").unwrap();
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", not_zip.to_str().unwrap()]),
        &["not_zip.dlpk", "not a zip"],
    );

    let truncated = d.join("truncated.dlpk");
    let whole = fs::read(fixture("synthetic/colors.dlpk")).unwrap();
    fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", truncated.to_str().unwrap()]),
        &["truncated.dlpk"],
    );

    let no_emd = d.join("no_emd.dlpk");
    write_zip(&no_emd, &[("colors.onnx", &model)]);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", no_emd.to_str().unwrap()]),
        &["no_emd.dlpk", "no .emd"],
    );

    let two_emd = d.join("two_emd.dlpk");
    write_zip(
        &two_emd,
        &[
            ("a.emd", emd.as_bytes()),
            ("b.emd", emd.as_bytes()),
            ("colors.onnx", &model),
        ],
    );
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", two_emd.to_str().unwrap()]),
        &["a.emd", "b.emd", "exactly one"],
    );

    let bad_json = d.join("bad_json.dlpk");
    write_zip(
        &bad_json,
        &[
            ("m.emd", b"{\"ModelType\": \"ObjectClassification\" \"ImageWidth\": 32}"),
            ("colors.onnx", &model),
        ],
    );
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", bad_json.to_str().unwrap()]),
        &["m.emd", "not valid JSON"],
    );

    let no_model = d.join("no_model.dlpk");
    write_zip(&no_model, &[("m.emd", emd.as_bytes())]);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", no_model.to_str().unwrap()]),
        &["colors.onnx", "not in the package"],
    );

    let garbage = d.join("garbage.dlpk");
    write_zip(
        &garbage,
        &[
            ("m.emd", emd.as_bytes()),
            ("colors.onnx", b"\x08\x07garbage that is not a model"),
        ],
    );
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", garbage.to_str().unwrap()]),
        &["colors.onnx", "not a valid ONNX model"],
    );

    // Path traversal names are ignored, never followed.
    let traversal = d.join("traversal.dlpk");
    let evil = colors_emd(&[("\"colors.onnx\"", "\"../../colors.onnx\"")]);
    write_zip(&traversal, &[("m.emd", evil.as_bytes()), ("../../colors.onnx", &model)]);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", traversal.to_str().unwrap()]),
        &["not in the package"],
    );
}

#[test]
fn model_and_definition_that_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = fs::read(fixture("synthetic/colors.onnx")).unwrap();

    // Seven classes for a six-output model.
    let emd = colors_emd(&[(
        "\"Classes\": [",
        "\"Classes\": [\n    { \"Value\": 9, \"Name\": \"extra\" },",
    )]);
    let pkg = write_package(d, "classes.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", pkg.to_str().unwrap()]),
        &["6 scores", "7 class", "Classes"],
    );

    // Class names that cannot be told apart as labels: the same twice, empty, and (in a
    // multi-label model, which joins labels with ';') holding a ';'.
    let multi = (
        "\"ImageSpaceUsed\"",
        "\"MetaDataMode\": \"MultiLabeled_Tiles\", \"ImageSpaceUsed\"",
    );
    for (replace, needles) in [
        (
            vec![("\"Name\": \"green\"", "\"Name\": \"red\"")],
            vec!["Classes[0] and Classes[1]", "red", "its own name"],
        ),
        (
            vec![("\"Name\": \"blue\"", "\"Name\": \" \"")],
            vec!["Classes[2]", "empty \"Name\""],
        ),
        (
            vec![("\"Name\": \"blue\"", "\"Name\": \"a;b\""), multi],
            vec!["Classes[2]", "\"a;b\"", "';'"],
        ),
    ] {
        let pkg = write_package(d, "names.dlpk", &colors_emd(&replace), &model);
        assert_mentions(
            &fails(d, &["-r", &arg(colors_tif()), "-m", pkg.to_str().unwrap()]),
            &needles,
        );
    }
    // A ';' in a single-label model's class is only text.
    let emd = colors_emd(&[("\"Name\": \"blue\"", "\"Name\": \"a;b\"")]);
    let pkg = write_package(d, "semicolon.dlpk", &emd, &model);
    run_owned_ok(&classify_args(
        &colors_tif(),
        &pkg,
        Some(&objects()),
        &d.join("ok.gpkg"),
        &["--layer", "polygons"],
    ));

    // Chip size that the model does not take.
    let emd = colors_emd(&[("\"ImageWidth\": 32", "\"ImageWidth\": 64")]);
    let pkg = write_package(d, "size.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", pkg.to_str().unwrap()]),
        &["width 32", "ImageWidth 64"],
    );

    // Four bands for a three-channel model.
    let emd = colors_emd(&[("\"ExtractBands\": [0, 1, 2]", "\"ExtractBands\": [0, 1, 2, 2]")]);
    let pkg = write_package(d, "bands.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", pkg.to_str().unwrap()]),
        &["3 input channel", "4 band"],
    );

    // A band the raster does not have.
    let emd = colors_emd(&[("\"ExtractBands\": [0, 1, 2]", "\"ExtractBands\": [0, 1, 3]")]);
    let pkg = write_package(d, "missing_band.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", pkg.to_str().unwrap()]),
        &["band index 3", "3 band(s)", "colors.tif"],
    );

    // A model type this tool does not run.
    let emd = colors_emd(&[("\"ObjectClassification\"", "\"ObjectDetection\"")]);
    let pkg = write_package(d, "detect.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &arg(colors_tif()), "-m", pkg.to_str().unwrap()]),
        &["ObjectDetection", "ObjectClassification"],
    );
}
