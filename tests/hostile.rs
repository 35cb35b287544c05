//! The defects a hostile test of an earlier version found (issue #13), one test each: what a
//! suspicious user tried, and what must happen instead. Each of these failed before its fix.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn raster() -> PathBuf {
    fixture("real/RGB.byte.tif")
}
fn model() -> PathBuf {
    fixture("real/textline_cls.dlpk")
}
fn footprints() -> PathBuf {
    fixture("real/RGB.byte.foot.gpkg")
}
fn points() -> PathBuf {
    fixture("real/RGB.byte.bench_points_2000.gpkg")
}
fn colors() -> (PathBuf, PathBuf, PathBuf) {
    (
        fixture("synthetic/colors.tif"),
        fixture("synthetic/colors.dlpk"),
        fixture("synthetic/objects.gpkg"),
    )
}

fn ogr2ogr(args: &[&str]) {
    let out = Command::new("ogr2ogr").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ogr2ogr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs SQL on a GeoPackage in place.
fn ogr2ogr_sql(gpkg: &Path, sql: &str) {
    let out = Command::new("ogrinfo")
        .arg(gpkg)
        .args(["-q", "-sql", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

fn args(raster: &Path, model: &Path, features: Option<&Path>, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = classify_args(raster, model, features, out, extra);
    // The synthetic objects hold three layers: the polygons, unless the test names one.
    if features == Some(fixture("synthetic/objects.gpkg").as_path()) && !extra.contains(&"--layer") {
        all.extend(["--layer".to_string(), "polygons".to_string()]);
    }
    all
}

fn err(args: &[String], code: i32) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_err(&refs, code)
}

/// `(label, confidence)` of every row of an output.
fn labels(path: &Path) -> Vec<(Option<String>, Option<f64>)> {
    read_rows(path, None)
        .iter()
        .map(|r| (r.text("ClassLabel"), r.number("Confidence")))
        .collect()
}

/// The argument list of a slow run (the real model, one chip per batch, augmentation).
fn slow_args(features: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--threads",
        "1",
        "--intra-op-threads",
        "1",
        "--model-arguments",
        "batch_size 1;test_time_augmentation true",
    ];
    all.extend_from_slice(extra);
    args(&raster(), &model(), Some(features), out, &all)
}

fn spawn(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a run has started writing into `dir` (its temporary output is there).
fn wait_for_temporary(dir: &Path) {
    let start = Instant::now();
    while !files_in(dir).iter().any(|f| f.contains(".partial-")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// 1. An output name without extension, or a driver that writes no file, is refused up front.
#[test]
fn outputs_that_would_not_be_written_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = err(
        &args(&raster(), &model(), Some(&footprints()), &d.join("result"), &[]),
        2,
    );
    assert!(line.contains("no extension") && line.contains("result.gpkg"), "{line}");
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));

    let out = d.join("x.gpkg");
    fs::write(&out, b"previous").unwrap();
    let line = err(
        &args(
            &raster(),
            &model(),
            Some(&footprints()),
            &out,
            &["--format", "Memory", "--overwrite"],
        ),
        2,
    );
    assert!(line.contains("Memory") && line.contains("writes no file"), "{line}");
    // --format "ESRI Shapefile" with a .gpkg name would make a folder: refused too.
    let line = err(
        &args(
            &raster(),
            &model(),
            Some(&footprints()),
            &d.join("y.gpkg"),
            &["--format", "ESRI Shapefile"],
        ),
        2,
    );
    assert!(line.contains(".shp"), "{line}");
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    assert_eq!(files_in(d), vec!["x.gpkg"]);
}

// 2. 3-D, measured and curved geometries are classified like their 2-D shapes.
#[test]
fn three_d_measured_and_curved_geometries_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flat = d.join("flat.gpkg");
    run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &flat, &[]));
    let expected = labels(&flat);
    assert_eq!(expected.len(), 9);
    let source = footprints();
    let source = source.to_str().unwrap();
    for (name, extra) in [
        ("z.gpkg", vec!["-dim", "XYZ"]),
        ("m.gpkg", vec!["-dim", "XYM"]),
        ("zm.gpkg", vec!["-dim", "XYZM"]),
        ("curve.gpkg", vec!["-nlt", "CURVEPOLYGON"]),
        ("z.shp", vec!["-dim", "XYZ"]),
    ] {
        let input = d.join(format!("in_{name}"));
        let mut call = vec![input.to_str().unwrap(), source];
        call.extend(extra.iter());
        ogr2ogr(&call);
        let out = d.join(format!("out_{}.gpkg", name.replace('.', "_")));
        run_owned_ok(&args(&raster(), &model(), Some(&input), &out, &[]));
        let rows = read_rows(&out, None);
        assert!(
            rows.iter()
                .all(|r| r.text("Status").as_deref() != Some("empty_geometry")),
            "{name}"
        );
        let got = labels(&out);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.0, e.0, "{name}");
            assert!((g.1.unwrap() - e.1.unwrap()).abs() < 1e-6, "{name}");
        }
    }
}

// 3. NaN pixels count as invalid (0); non-finite model scores give no label.
#[test]
fn nan_pixels_are_zero_and_non_finite_scores_are_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut image = TestRaster::positional(64, 64, 3);
    for row in 10..20 {
        for col in 10..20 {
            image.planes[1][row * 64 + col] = f32::NAN;
            image.planes[2][row * 64 + col] = f32::INFINITY;
        }
    }
    let tif = d.join("nan.tif");
    image.write(&tif);
    let features = d.join("f.geojson");
    write_pixel_features(&features, &["POINT (15 15)"]);
    let package = color_package(d, "colors.dlpk", &[], &onnx::ColorModelOptions::default(), &imagenet());
    let chips = d.join("chips");
    run_owned_ok(&args(
        &tif,
        &package,
        Some(&features),
        &d.join("a.gpkg"),
        &["--dump-chips", chips.to_str().unwrap()],
    ));
    let (w, _, planes) = read_chip(&chips.join("chip_000000.tif"));
    // The 32x32 chip starts at (-1, -1); pixel (15, 15) is at (16, 16) in it.
    let at = |b: usize, col: usize, row: usize| planes[b][(row + 1) * w + col + 1];
    assert_eq!(at(1, 15, 15), 0.0);
    assert_eq!(at(2, 12, 18), 0.0);
    assert_eq!(at(0, 15, 15), TestRaster::value(0, 15, 15));
    assert_eq!(at(1, 5, 5), TestRaster::value(1, 5, 5));
    assert!(planes.iter().flatten().all(|v| v.is_finite()));

    // A model that answers NaN: no label, a status, not counted as classified.
    let nan_model = onnx::dense_classifier(3, 32, 32, vec![f32::NAN; 3 * 32 * 32 * 6], vec![0.0; 6]);
    let package = write_package(d, "nan.dlpk", &colors_emd(&[]), &nan_model);
    let out = d.join("b.gpkg");
    let output = run_owned_ok(&args(&tif, &package, Some(&features), &out, &[]));
    let rows = read_rows(&out, None);
    assert_eq!(rows[0].text("Status").as_deref(), Some("non_finite_scores"));
    assert_eq!(rows[0].text("ClassLabel"), None);
    assert_eq!(rows[0].number("Confidence"), None);
    assert!(String::from_utf8_lossy(&output.stderr).contains("0 classified"));
    let strict = err(
        &args(&tif, &package, Some(&features), &d.join("c.gpkg"), &["--strict"]),
        2,
    );
    assert!(strict.contains("non_finite_scores"), "{strict}");
}

// 4. A damaged features file fails the run instead of being read up to the damage.
#[test]
fn a_damaged_features_file_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let damaged = d.join("damaged.gpkg");
    let mut bytes = fs::read(points()).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b = 0xA5;
    }
    fs::write(&damaged, bytes).unwrap();
    let out = d.join("out.gpkg");
    let line = err(&args(&raster(), &model(), Some(&damaged), &out, &[]), 2);
    assert!(line.contains("damaged.gpkg") && line.contains("damaged"), "{line}");
    assert_eq!(files_in(d), vec!["damaged.gpkg"]);
}

// 5. --overwrite removes only the output's own files.
#[test]
fn overwrite_leaves_files_that_only_look_related() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (out, extra) in [("result.gpkg", vec![]), ("result.csv", vec![])] {
        let out = d.join(out);
        fs::write(&out, b"previous").unwrap();
        let keep = [
            format!("{}-backup", out.display()),
            format!("{}-notes.txt", out.display()),
        ];
        for k in &keep {
            fs::write(k, b"mine").unwrap();
        }
        let mut extra = extra;
        extra.push("--overwrite");
        run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &out, &extra));
        for k in &keep {
            assert_eq!(fs::read(k).unwrap(), b"mine", "{k} survives");
        }
    }
}

// 6. A multi-layer GeoPackage keeps its other layers; an input is never the output.
#[test]
fn geopackage_layers_are_added_or_replaced_and_inputs_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, dlpk, objects) = colors();
    let out = d.join("project.gpkg");
    ogr2ogr(&[
        "-nln",
        "survey",
        out.to_str().unwrap(),
        objects.to_str().unwrap(),
        "polygons",
    ]);
    // A run adds its layer (named after the file) and keeps "survey".
    run_owned_ok(&args(&tif, &dlpk, Some(&objects), &out, &[]));
    let ds = gdal::Dataset::open(&out).unwrap();
    let mut names: Vec<String> = ds.layers().map(|l| gdal::vector::LayerAccess::name(&l)).collect();
    names.sort();
    assert_eq!(names, vec!["project", "survey"]);
    drop(ds);
    assert_eq!(read_rows(&out, Some("project")).len(), 16);
    // The same layer again needs --overwrite, which replaces that layer only.
    let line = err(&args(&tif, &dlpk, Some(&objects), &out, &[]), 2);
    assert!(line.contains("layer project") && line.contains("--overwrite"), "{line}");
    run_owned_ok(&args(
        &tif,
        &dlpk,
        Some(&objects),
        &out,
        &["--overwrite", "--model-arg", "batch_size=3"],
    ));
    assert_eq!(read_rows(&out, Some("project")).len(), 16);
    assert!(!read_rows(&out, Some("survey")).is_empty());
    // Another layer name adds a layer.
    run_owned_ok(&args(&tif, &dlpk, Some(&objects), &out, &["--layer-name", "second"]));
    assert_eq!(read_rows(&out, Some("second")).len(), 16);

    // The features file, the raster or the package as the output: refused, input untouched.
    let features = d.join("in.gpkg");
    fs::copy(&objects, &features).unwrap();
    let before = fs::read(&features).unwrap();
    let line = err(&args(&tif, &dlpk, Some(&features), &features, &["--overwrite"]), 2);
    assert!(line.contains("features") && line.contains("destroy"), "{line}");
    assert_eq!(fs::read(&features).unwrap(), before);
    let link = d.join("same.gpkg");
    fs::hard_link(&features, &link).unwrap();
    let line = err(&args(&tif, &dlpk, Some(&features), &link, &["--overwrite"]), 2);
    assert!(line.contains("features"), "{line}");
    assert_eq!(fs::read(&features).unwrap(), before);
}

// 7. A signal during a run without features stops it and leaves the previous output.
#[test]
fn a_signal_stops_a_whole_image_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let images = d.join("images");
    fs::create_dir(&images).unwrap();
    for i in 0..300 {
        fs::copy(
            fixture("real/dummy_recognition_map.tif"),
            images.join(format!("img{i:03}.tif")),
        )
        .unwrap();
    }
    let out = d.join("labels.csv");
    fs::write(&out, b"previous").unwrap();
    let mut child = spawn(&args(
        &images,
        &model(),
        None,
        &out,
        &[
            "--overwrite",
            "--threads",
            "1",
            "--intra-op-threads",
            "1",
            "--model-arguments",
            "batch_size 1;test_time_augmentation true",
        ],
    ));
    wait_for_temporary(d);
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(143));
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    assert_eq!(files_in(d), vec!["images", "labels.csv"]);
}

/// A killed run's temporary output, made from the first `rows` rows of `full` (plus half a row
/// for CSV), with no live lock: what SIGKILL leaves.
fn fake_killed_partial(full: &Path, out: &Path, rows: usize) {
    let dir = out.parent().unwrap();
    let stem = out.file_stem().unwrap().to_string_lossy();
    let ext = out.extension().unwrap().to_string_lossy();
    let partial = dir.join(format!(".{stem}.partial-dead00000001.{ext}"));
    if ext == "csv" {
        let text = fs::read_to_string(full).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut cut = lines[..=rows].join("\n");
        cut.push('\n');
        cut.push_str(&lines[rows + 1][..lines[rows + 1].len() / 2]);
        fs::write(&partial, cut).unwrap();
    } else {
        fs::copy(full, &partial).unwrap();
        let ds = gdal::Dataset::open_ex(
            &partial,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let name = gdal::vector::LayerAccess::name(&ds.layer(0).unwrap());
        ds.execute_sql(
            format!("DELETE FROM \"{name}\" WHERE fid > {rows}"),
            None,
            gdal::vector::sql::Dialect::DEFAULT,
        )
        .unwrap();
    }
}

// 8 and 25. Resume keys on rows written: a half-written CSV row is redone, duplicate and
// negative feature ids are kept and continued correctly.
#[test]
fn resume_continues_after_the_rows_written_whatever_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, dlpk, _) = colors();
    // Features over the colour patches, with ids that are not positions: one negative.
    let features: Vec<String> = (0..8)
        .map(|k| {
            let (x, y) = pixel_to_map(16.0 + 32.0 * (k % 4) as f64 * 2.0, 16.0 + 64.0 * (k / 4) as f64);
            format!(
                r#"{{"type":"Feature","properties":{{"k":{k}}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
            )
        })
        .collect();
    let geojson = d.join("ids.geojson");
    fs::write(
        &geojson,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    let gpkg = d.join("ids.gpkg");
    ogr2ogr(&[
        "-nln",
        "ids",
        "-lco",
        "FID=fid",
        gpkg.to_str().unwrap(),
        geojson.to_str().unwrap(),
    ]);
    for sql in [
        "UPDATE ids SET fid = fid * 10",
        "UPDATE ids SET fid = -5 WHERE fid = 10",
    ] {
        ogr2ogr_sql(&gpkg, sql);
    }
    let geojson = gpkg;
    for ext in ["csv", "gpkg"] {
        let full = d.join(format!("full.{ext}"));
        run_owned_ok(&args(&tif, &dlpk, Some(&geojson), &full, &[]));
        let out = d.join(format!("resumed.{ext}"));
        fake_killed_partial(&full, &out, 3);
        let output = run_owned_ok(&args(&tif, &dlpk, Some(&geojson), &out, &["--resume"]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("8 object(s)") && stderr.contains("3 continued"),
            "{ext}: {stderr}"
        );
        if ext == "csv" {
            assert_eq!(
                fs::read(&out).unwrap(),
                fs::read(&full).unwrap(),
                "resumed CSV equals one run"
            );
        } else {
            let (a, b) = (read_rows(&out, None), read_rows(&full, None));
            assert_eq!(a.len(), 8);
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.fields, y.fields);
                assert_eq!(x.wkt, y.wkt);
            }
            let sources: Vec<Option<String>> = a.iter().map(|r| r.text("SourceOID")).collect();
            assert_eq!(sources[0].as_deref(), Some("-5"), "negative ids are kept");
        }
    }
    let leftovers: Vec<String> = files_in(d).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// 9. Two runs writing the same new output: the later one does not replace the other's.
#[test]
fn a_run_never_replaces_an_output_that_appeared_while_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("shared.gpkg");
    let slow = spawn(&slow_args(&points(), &out, &[]));
    wait_for_temporary(d);
    run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &out, &[]));
    let fast = fs::read(&out).unwrap();
    let output = slow.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("created by another process"), "{stderr}");
    assert_eq!(fs::read(&out).unwrap(), fast, "the first result is kept");
    assert_eq!(read_rows(&out, None).len(), 9);
}

// 10. --append with features in another CRS: geometries go in the layer's CRS.
#[test]
fn append_reprojects_into_the_layer_crs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("runs.gpkg");
    run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &out, &[]));
    let wgs84 = d.join("foot_4326.gpkg");
    ogr2ogr(&[
        "-t_srs",
        "EPSG:4326",
        wgs84.to_str().unwrap(),
        footprints().to_str().unwrap(),
    ]);
    run_owned_ok(&args(&raster(), &model(), Some(&wgs84), &out, &["--append"]));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 18);
    let ds = gdal::Dataset::open(&out).unwrap();
    let layer = ds.layer(0).unwrap();
    let srs = gdal::vector::LayerAccess::spatial_ref(&layer).unwrap();
    assert_eq!(srs.auth_code().unwrap(), 32618);
    let geometry = |r: &Row| gdal::vector::Geometry::from_wkt(r.wkt.as_ref().unwrap()).unwrap();
    for (a, b) in rows[..9].iter().zip(&rows[9..]) {
        let (ea, eb) = (geometry(a).envelope(), geometry(b).envelope());
        assert!(eb.MinX > 100_000.0, "appended rows are in metres, not degrees");
        assert!((ea.MinX - eb.MinX).abs() < 1.0 && (ea.MaxY - eb.MaxY).abs() < 1.0);
        assert_eq!(a.text("ClassLabel"), b.text("ClassLabel"));
    }
}

// 11. --summary-json and --report are checked before anything is written; `-` is stdout.
#[test]
fn summary_and_report_paths_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    fs::write(&out, b"previous").unwrap();
    for flag in ["--summary-json", "--report"] {
        let bad = d.join("missing/summary.json");
        let line = err(
            &args(
                &raster(),
                &model(),
                Some(&footprints()),
                &out,
                &["--overwrite", flag, bad.to_str().unwrap()],
            ),
            2,
        );
        assert!(line.contains(flag) && line.contains("does not exist"), "{line}");
        assert_eq!(fs::read(&out).unwrap(), b"previous");
    }
    let output = run_owned_ok(&args(
        &raster(),
        &model(),
        Some(&footprints()),
        &out,
        &["--overwrite", "--summary-json", "-"],
    ));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(json["objects"], 9);
}

// 12. Sizes out of bounds are one-line errors before any work, not aborts.
#[test]
fn sizes_out_of_bounds_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    let line = err(
        &args(
            &raster(),
            &model(),
            Some(&footprints()),
            &out,
            &["--model-arg", "batch_size=1000000000"],
        ),
        2,
    );
    assert!(line.contains("batch_size"), "{line}");
    // A batch too large for memory: the largest that fits is named.
    let line = err(
        &args(
            &raster(),
            &model(),
            Some(&footprints()),
            &out,
            &["--model-arg", "batch_size=60000"],
        ),
        2,
    );
    assert!(line.contains("GiB") && line.contains("or less"), "{line}");
    for (key, value) in [
        ("\"ImageWidth\": 32", "\"ImageWidth\": 100000"),
        ("\"ImageWidth\": 32", "\"ImageWidth\": 1e30"),
    ] {
        let package = color_package(
            d,
            "big.dlpk",
            &[(key, value)],
            &onnx::ColorModelOptions::default(),
            &imagenet(),
        );
        let (tif, _, objects) = colors();
        let line = err(&args(&tif, &package, Some(&objects), &out, &[]), 2);
        assert!(line.contains("ImageWidth"), "{line}");
    }
    let onnx_path = d.join("m.onnx");
    fs::write(
        &onnx_path,
        onnx::color_classifier(
            &palette(),
            &imagenet(),
            &onnx::ColorModelOptions {
                chip: None,
                ..Default::default()
            },
        ),
    )
    .unwrap();
    let line = run_err(
        &[
            "pack",
            "--onnx",
            onnx_path.to_str().unwrap(),
            "--classes",
            "a,b,c,d,e,f",
            "--chip-size",
            "4294967296",
            "-o",
            d.join("p.dlpk").to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("chip size"), "{line}");
    assert!(!out.exists());

    // A whole image of 2,000,000 x 2,000,000 pixels with NoData: classified through a bounded
    // read, in bounded memory.
    let vrt = d.join("huge.vrt");
    let small = fixture("real/RGB.byte.tif");
    let bands: String = (1..=3)
        .map(|b| {
            format!(
                r#"<VRTRasterBand dataType="Byte" band="{b}"><NoDataValue>0</NoDataValue><SimpleSource><SourceFilename relativeToVRT="0">{}</SourceFilename><SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="791" ySize="718"/><DstRect xOff="1000000" yOff="1000000" xSize="791" ySize="718"/></SimpleSource></VRTRasterBand>"#,
                small.display()
            )
        })
        .collect();
    fs::write(
        &vrt,
        format!(r#"<VRTDataset rasterXSize="2000000" rasterYSize="2000000">{bands}</VRTDataset>"#),
    )
    .unwrap();
    let summary = d.join("summary.json");
    run_owned_ok(&args(
        &vrt,
        &model(),
        None,
        &d.join("huge.csv"),
        &["--summary-json", summary.to_str().unwrap()],
    ));
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["classified"], 1);
    assert!(
        json["peak_rss_bytes"].as_u64().unwrap() < 1 << 30,
        "{}",
        json["peak_rss_bytes"]
    );
}

// 13. One unreadable part of the raster costs only the features on it.
#[test]
fn features_on_an_unreadable_part_of_the_raster_get_read_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cog = d.join("cut.tif");
    let status = Command::new("gdal_translate")
        .args([
            "-q",
            "-of",
            "COG",
            "-co",
            "BLOCKSIZE=128",
            "-co",
            "COMPRESS=DEFLATE",
            "-co",
            "OVERVIEWS=NONE",
        ])
        .arg(raster())
        .arg(&cog)
        .status()
        .unwrap();
    assert!(status.success());
    // Cut the file: the tiles at its end (the bottom of the image) are gone.
    let bytes = fs::read(&cog).unwrap();
    fs::write(&cog, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out = d.join("out.gpkg");
    let output = run_owned_ok(&args(&cog, &model(), Some(&footprints()), &out, &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rows = read_rows(&out, None);
    let failed = rows
        .iter()
        .filter(|r| r.text("Status").as_deref() == Some("read_failed"))
        .count();
    let classified = rows.iter().filter(|r| r.text("ClassLabel").is_some()).count();
    assert!(
        failed > 0 && classified > 0,
        "{failed} failed, {classified} classified: {stderr}"
    );
    assert!(stderr.contains("read_failed") && stderr.contains("warning"), "{stderr}");
    assert!(rows
        .iter()
        .all(|r| r.text("ClassLabel").is_some() != (r.text("Status").as_deref() == Some("read_failed"))));
    let line = err(
        &args(
            &cog,
            &model(),
            Some(&footprints()),
            &d.join("strict.gpkg"),
            &["--strict"],
        ),
        2,
    );
    assert!(line.contains("read_failed"), "{line}");
}

// 14 and 15. Long names in Shapefiles are mapped by position; reserved names are refused.
#[test]
fn shapefile_long_field_names_and_reserved_label_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("long.shp");
    let extra = ["--class-label-field", "PredictedClassName"];
    run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &out, &extra));
    let mut more = extra.to_vec();
    more.push("--append");
    run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &out, &more));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 18);
    assert!(
        rows.iter().all(|r| r.text("PredictedC").is_some()),
        "{:?}",
        rows[0].fields.keys()
    );
    for name in ["Status", "fid", "geom", "SOURCEOID", "Confidence"] {
        let line = err(
            &args(
                &raster(),
                &model(),
                Some(&footprints()),
                &d.join("r.gpkg"),
                &["--class-label-field", name],
            ),
            2,
        );
        assert!(line.contains("--class-label-field") && line.contains(name), "{line}");
    }
    assert!(!d.join("r.gpkg").exists());
}

// 16. Output names up to the file system's limit work.
#[test]
fn output_names_at_the_length_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for length in [228, 250] {
        let name = format!("{}.gpkg", "n".repeat(length - 5));
        assert_eq!(name.len(), length);
        let out = d.join(&name);
        run_owned_ok(&args(
            &raster(),
            &model(),
            Some(&footprints()),
            &out,
            &["--qgis-style", "none"],
        ));
        assert_eq!(read_rows(&out, None).len(), 9);
        fs::remove_file(&out).unwrap();
    }
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));
}

// 17. The user's own mistakes are one-line errors with exit 2.
#[test]
fn user_mistakes_are_clear_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A read-only output folder (root ignores permissions, so check with a probe first).
    let locked = d.join("locked");
    fs::create_dir(&locked).unwrap();
    let mut permissions = fs::metadata(&locked).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(&locked, permissions).unwrap();
    if fs::File::create(locked.join("probe")).is_err() {
        let line = err(
            &args(&raster(), &model(), Some(&footprints()), &locked.join("o.gpkg"), &[]),
            2,
        );
        assert!(line.contains("cannot write") || line.contains("not writable"), "{line}");
    }
    // A model whose output is class indices (int64), or one score for six classes.
    let (tif, _, objects) = colors();
    let int64 = write_package(d, "argmax.dlpk", &colors_emd(&[]), &onnx::argmax_classifier(32, 32));
    let line = err(&args(&tif, &int64, Some(&objects), &d.join("a.gpkg"), &[]), 2);
    assert!(line.contains("Int64") && line.contains("float32"), "{line}");
    let single = onnx::dense_classifier(3, 32, 32, vec![0.001; 3 * 32 * 32], vec![0.0]);
    let one = write_package(d, "one.dlpk", &colors_emd(&[]), &single);
    let line = err(&args(&tif, &one, Some(&objects), &d.join("b.gpkg"), &[]), 2);
    assert!(
        line.contains("one score per chip") || line.contains("1 scores per chip"),
        "{line}"
    );
    // Mixed geometry types into a Shapefile.
    let mixed = d.join("mixed.geojson");
    let (x, y) = pixel_to_map(20.0, 20.0);
    fs::write(
        &mixed,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}},{{"type":"Feature","properties":{{}},"geometry":{{"type":"LineString","coordinates":[[{x},{y}],[{},{}]]}}}}]}}"#,
            x + 10.0,
            y - 10.0
        ),
    )
    .unwrap();
    let line = err(
        &args(
            &tif,
            &fixture("synthetic/colors.dlpk"),
            Some(&mixed),
            &d.join("m.shp"),
            &[],
        ),
        2,
    );
    assert!(line.contains("mixed geometry") && line.contains(".gpkg"), "{line}");
    // More columns than a GeoPackage holds.
    let props: Vec<String> = (0..2100).map(|i| format!("\"c{i}\":{i}")).collect();
    let wide = d.join("wide.geojson");
    fs::write(
        &wide,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{{"type":"Feature","properties":{{{}}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}]}}"#,
            props.join(",")
        ),
    )
    .unwrap();
    let line = err(
        &args(
            &tif,
            &fixture("synthetic/colors.dlpk"),
            Some(&wide),
            &d.join("w.gpkg"),
            &[],
        ),
        2,
    );
    assert!(line.contains("column") && line.contains("GPKG"), "{line}");
    // A features table without geometry.
    let table = d.join("table.csv");
    fs::write(&table, "id,name\n1,a\n").unwrap();
    let line = err(
        &args(
            &tif,
            &fixture("synthetic/colors.dlpk"),
            Some(&table),
            &d.join("t.gpkg"),
            &[],
        ),
        2,
    );
    assert!(line.contains("no geometry column"), "{line}");
    // Usage mistakes: one line, exit 2.
    let line = run_err(&["--raster", "x.tif", "--no-such-flag"], 2);
    assert!(line.contains("--no-such-flag") && line.contains("--help"), "{line}");
    let line = run_err(&["-r", "x.tif"], 2);
    assert!(line.contains("--model") && line.contains("--output"), "{line}");
    let files: Vec<String> = files_in(d).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(files.is_empty(), "{files:?}");
}

// 19. Thread counts are bounded.
#[test]
fn absurd_thread_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gpkg");
    for flag in ["--intra-op-threads", "--threads"] {
        let started = Instant::now();
        let line = err(
            &args(&raster(), &model(), Some(&footprints()), &out, &[flag, "100000"]),
            2,
        );
        assert!(line.contains(flag) && line.contains("1024"), "{line}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

// 20. A closed pipe ends the output quietly.
#[test]
fn a_closed_pipe_is_not_a_crash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(["inspect", "--json", fixture("real/textline_cls.dlpk").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "{");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.status.code() == Some(0) || output.status.code().is_none(),
        "{:?}",
        output.status
    );
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

// 24. Progress in logs: plain lines, with the shard's own total.
#[test]
fn progress_lines_for_logs_count_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.gpkg");
    let output = run_owned_ok(&slow_args(
        &points(),
        &out,
        &["--shard", "1/2", "--progress-interval", "1"],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("progress:")).collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(lines.iter().all(|l| l.contains("/1000 objects")), "{lines:?}");
    assert_eq!(read_rows(&out, None).len(), 1000);
}

// 21. An output reads back without GDAL warnings.
#[test]
fn outputs_read_back_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clean.gpkg");
    run_owned_ok(&args(&raster(), &model(), Some(&footprints()), &out, &[]));
    let info = Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(info.status.success());
    assert_eq!(String::from_utf8_lossy(&info.stderr), "");
    let qml = fs::read_to_string(dir.path().join("clean.qml")).unwrap();
    assert!(qml.starts_with("<!DOCTYPE qgis"), "{qml}");
}
