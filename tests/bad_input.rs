//! Bad input: every case exits 2 with one error line that names the input and says what to do,
//! and leaves no output (nor temporary file) behind.

mod support;

use std::fs;
use std::path::Path;

use support::*;

/// Runs a classification expected to fail with exit 2, writing (unless `-o` is given) to
/// `dir/out.gpkg`; returns the error line after checking that `dir` holds exactly the files it
/// held before: no output, no temporary file.
fn fails(dir: &Path, args: &[&str]) -> String {
    let before = files_in(dir);
    let out = dir.join("out.gpkg");
    let mut full: Vec<&str> = args.to_vec();
    let out_str = out.to_str().unwrap().to_string();
    if !args.contains(&"-o") {
        full.extend(["-o", &out_str]);
    }
    let line = run_err(&full, 2);
    assert_eq!(files_in(dir), before, "nothing may be left behind after: {line}");
    line
}

fn colors_tif() -> String {
    fixture("synthetic/colors.tif").to_str().unwrap().to_string()
}

fn colors_dlpk() -> String {
    fixture("synthetic/colors.dlpk").to_str().unwrap().to_string()
}

fn objects() -> String {
    fixture("synthetic/objects.gpkg").to_str().unwrap().to_string()
}

fn assert_mentions(line: &str, needles: &[&str]) {
    for needle in needles {
        assert!(line.contains(needle), "error line should mention {needle:?}: {line}");
    }
}

#[test]
fn missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = fails(d, &["-r", "/no/such/raster.tif", "-m", &colors_dlpk()]);
    assert_mentions(&line, &["/no/such/raster.tif", "does not exist"]);
    let not_raster = fixture("README.md");
    let line = fails(d, &["-r", not_raster.to_str().unwrap(), "-m", &colors_dlpk()]);
    assert_mentions(&line, &["README.md", "not recognized", "gdalinfo"]);
    let line = fails(d, &["-r", &colors_tif(), "-m", "/no/such/model.dlpk"]);
    assert_mentions(&line, &["/no/such/model.dlpk", ".dlpk"]);
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-f",
            "/no/such/features.gpkg",
        ],
    );
    assert_mentions(&line, &["/no/such/features.gpkg", "does not exist"]);
    let line = fails(d, &["-r", &colors_tif(), "-m", &colors_dlpk(), "-f", &colors_tif()]);
    assert_mentions(&line, &["colors.tif", "not recognized", "ogrinfo"]);
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-f",
            &objects(),
            "--layer",
            "roads",
        ],
    );
    assert_mentions(&line, &["roads", "polygons", "--layer"]);
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
        &fails(d, &["-r", &colors_tif(), "-m", not_zip.to_str().unwrap()]),
        &["not_zip.dlpk", "not a zip"],
    );

    let truncated = d.join("truncated.dlpk");
    let whole = fs::read(fixture("synthetic/colors.dlpk")).unwrap();
    fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", truncated.to_str().unwrap()]),
        &["truncated.dlpk"],
    );

    let no_emd = d.join("no_emd.dlpk");
    write_zip(&no_emd, &[("colors.onnx", &model)]);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", no_emd.to_str().unwrap()]),
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
        &fails(d, &["-r", &colors_tif(), "-m", two_emd.to_str().unwrap()]),
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
        &fails(d, &["-r", &colors_tif(), "-m", bad_json.to_str().unwrap()]),
        &["m.emd", "not valid JSON"],
    );

    let no_model = d.join("no_model.dlpk");
    write_zip(&no_model, &[("m.emd", emd.as_bytes())]);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", no_model.to_str().unwrap()]),
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
        &fails(d, &["-r", &colors_tif(), "-m", garbage.to_str().unwrap()]),
        &["colors.onnx", "not a valid ONNX model"],
    );

    // Path traversal names are ignored, never followed.
    let traversal = d.join("traversal.dlpk");
    let evil = colors_emd(&[("\"colors.onnx\"", "\"../../colors.onnx\"")]);
    write_zip(&traversal, &[("m.emd", evil.as_bytes()), ("../../colors.onnx", &model)]);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", traversal.to_str().unwrap()]),
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
        &fails(d, &["-r", &colors_tif(), "-m", pkg.to_str().unwrap()]),
        &["6 scores", "7 class", "Classes"],
    );

    // Chip size that the model does not take.
    let emd = colors_emd(&[("\"ImageWidth\": 32", "\"ImageWidth\": 64")]);
    let pkg = write_package(d, "size.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", pkg.to_str().unwrap()]),
        &["width 32", "ImageWidth 64"],
    );

    // Four bands for a three-channel model.
    let emd = colors_emd(&[("\"ExtractBands\": [0, 1, 2]", "\"ExtractBands\": [0, 1, 2, 2]")]);
    let pkg = write_package(d, "bands.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", pkg.to_str().unwrap()]),
        &["3 input channel", "4 band"],
    );

    // A band the raster does not have.
    let emd = colors_emd(&[("\"ExtractBands\": [0, 1, 2]", "\"ExtractBands\": [0, 1, 3]")]);
    let pkg = write_package(d, "missing_band.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", pkg.to_str().unwrap()]),
        &["band index 3", "3 band(s)", "colors.tif"],
    );

    // A model type this tool does not run.
    let emd = colors_emd(&[("\"ObjectClassification\"", "\"ObjectDetection\"")]);
    let pkg = write_package(d, "detect.dlpk", &emd, &model);
    assert_mentions(
        &fails(d, &["-r", &colors_tif(), "-m", pkg.to_str().unwrap()]),
        &["ObjectDetection", "ObjectClassification"],
    );
}

#[test]
fn bad_arguments_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = fails(
        d,
        &["-r", &colors_tif(), "-m", &colors_dlpk(), "--model-arg", "pading=4"],
    );
    assert_mentions(&line, &["pading", "batch_size", "test_time_augmentation"]);
    let line = fails(
        d,
        &["-r", &colors_tif(), "-m", &colors_dlpk(), "--model-arg", "batch_size"],
    );
    assert_mentions(&line, &["NAME=VALUE"]);
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "--model-arguments",
            "batch_size zero",
        ],
    );
    assert_mentions(&line, &["batch_size", "zero"]);

    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-o",
            d.join("no/such/dir/out.gpkg").to_str().unwrap(),
        ],
    );
    assert_mentions(&line, &["does not exist"]);
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-o",
            d.join("out.shp.xyz").to_str().unwrap(),
        ],
    );
    assert_mentions(&line, &[".xyz", ".gpkg"]);

    // An existing output is kept, byte for byte, unless --overwrite.
    let existing = d.join("existing.gpkg");
    fs::write(&existing, b"previous result").unwrap();
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-f",
            &objects(),
            "--layer",
            "polygons",
            "-o",
            existing.to_str().unwrap(),
        ],
    );
    assert_mentions(&line, &["existing.gpkg", "--overwrite"]);
    assert_eq!(fs::read(&existing).unwrap(), b"previous result");
    run_ok(&[
        "-r",
        &colors_tif(),
        "-m",
        &colors_dlpk(),
        "-f",
        &objects(),
        "--layer",
        "polygons",
        "-o",
        existing.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(read_rows(&existing, None).len(), 16);
    assert_eq!(files_in(d), vec!["existing.gpkg", "existing.qml"]);
}

#[test]
fn a_failure_after_the_output_was_started_leaves_the_previous_output() {
    // The model is only checked against the raster's bands once the run starts: the previous
    // output must survive, and no temporary file may remain.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let existing = d.join("result.gpkg");
    fs::write(&existing, b"previous result").unwrap();
    let gray = d.join("gray.tif");
    write_tiff_u8(&gray, 40, 40, &[vec![100; 1600]], true, None);
    let line = fails(
        d,
        &[
            "-r",
            gray.to_str().unwrap(),
            "-m",
            &colors_dlpk(),
            "-f",
            &objects(),
            "--layer",
            "polygons",
            "-o",
            existing.to_str().unwrap(),
            "--overwrite",
        ],
    );
    assert_mentions(&line, &["gray.tif", "band index 1", "1 band(s)"]);
    assert_eq!(fs::read(&existing).unwrap(), b"previous result");
}

#[test]
fn features_that_cannot_be_placed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The real mislabelled case: UTM coordinates in a GeoJSON file without a CRS member, which
    // GDAL reads as WGS 84. Nothing lands on the raster; --features-crs fixes it.
    let jsons = d.join("foot.geojson");
    let foot = read_rows(&fixture("real/RGB.byte.foot.gpkg"), None);
    let features: Vec<String> = foot
        .iter()
        .map(|r| {
            let g = gdal::vector::Geometry::from_wkt(r.wkt.as_ref().unwrap()).unwrap();
            format!(
                "{{\"type\":\"Feature\",\"properties\":{{}},\"geometry\":{}}}",
                g.json().unwrap()
            )
        })
        .collect();
    fs::write(
        &jsons,
        format!(
            "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
            features.join(",")
        ),
    )
    .unwrap();
    let real = fixture("real/RGB.byte.tif").to_str().unwrap().to_string();
    let textline = fixture("real/textline_cls.dlpk").to_str().unwrap().to_string();
    let line = fails(d, &["-r", &real, "-m", &textline, "-f", jsons.to_str().unwrap()]);
    assert_mentions(
        &line,
        &["none of the 9 features", "EPSG:4326", "EPSG:32618", "--features-crs"],
    );
    let out = d.join("fixed.gpkg");
    run_ok(&[
        "-r",
        &real,
        "-m",
        &textline,
        "-f",
        jsons.to_str().unwrap(),
        "--features-crs",
        "EPSG:32618",
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r.text("ClassLabel").is_some()));

    // Features without any CRS over a georeferenced raster.
    let no_crs = d.join("no_crs.csv");
    fs::write(&no_crs, "id,WKT\n1,\"POINT (500064 5799936)\"\n").unwrap();
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-f",
            no_crs.to_str().unwrap(),
        ],
    );
    assert_mentions(
        &line,
        &[
            "no_crs.csv",
            "no coordinate reference system",
            "--features-crs",
            "EPSG:32633",
        ],
    );
    let line = fails(
        d,
        &[
            "-r",
            &colors_tif(),
            "-m",
            &colors_dlpk(),
            "-f",
            no_crs.to_str().unwrap(),
            "--features-crs",
            "EPSG:999999",
        ],
    );
    assert_mentions(&line, &["EPSG:999999", "--features-crs"]);
}
