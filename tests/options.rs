//! Esri environments and GDAL conventions (#15), each on real or painted data with a known
//! answer: the processing extent, the output CRS, the parallel processing factor as a
//! percentage, a model definition given as JSON, attribute filters and SQL, open, dataset
//! creation and configuration options, sources with several layers, File Geodatabase outputs,
//! band and NoData overrides, and every class's probability.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::Geometry;
use support::*;

fn colors_tif() -> PathBuf {
    fixture("synthetic/colors.tif")
}

fn colors_dlpk() -> PathBuf {
    fixture("synthetic/colors.dlpk")
}

fn objects() -> PathBuf {
    fixture("synthetic/objects.gpkg")
}

/// A classification of the synthetic polygons with `extra` flags.
fn polygons(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--layer", "polygons"];
    all.extend_from_slice(extra);
    classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), out, &all)
}

/// The centre of a WKT geometry's envelope.
fn centre(wkt: &str) -> (f64, f64) {
    let e = Geometry::from_wkt(wkt).unwrap().envelope();
    ((e.MinX + e.MaxX) / 2.0, (e.MinY + e.MaxY) / 2.0)
}

/// The transformation between two EPSG codes, in x/y (longitude/latitude) order.
fn transform(from: u32, to: u32) -> CoordTransform {
    let mut a = SpatialRef::from_epsg(from).unwrap();
    let mut b = SpatialRef::from_epsg(to).unwrap();
    a.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    b.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    CoordTransform::new(&a, &b).unwrap()
}

fn point_in(t: &CoordTransform, (x, y): (f64, f64)) -> (f64, f64) {
    let (mut xs, mut ys) = ([x], [y]);
    t.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    (xs[0], ys[0])
}

/// `(xmin, ymin, xmax, ymax)` contains `(x, y)` as the README says: min included, max excluded.
fn inside((xmin, ymin, xmax, ymax): (f64, f64, f64, f64), (x, y): (f64, f64)) -> bool {
    (xmin..xmax).contains(&x) && (ymin..ymax).contains(&y)
}

fn ids(rows: &[Row], field: &str) -> Vec<String> {
    rows.iter().map(|r| r.text(field).unwrap()).collect()
}

/// fid -> (label, confidence, [p_0, p_180]) of the independent Python reference.
fn reference(name: &str) -> BTreeMap<i64, (String, f64, Vec<f64>)> {
    read_csv(&fixture(&format!("reference/{name}")))
        .into_iter()
        .skip(1)
        .map(|c| {
            (
                c[0].parse().unwrap(),
                (
                    c[1].clone(),
                    c[2].parse().unwrap(),
                    c[3..].iter().map(|p| p.parse().unwrap()).collect(),
                ),
            )
        })
        .collect()
}

/// The real model on the real raster, with `features` and `extra` flags.
fn real(features: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--model-arg", "batch_size=16"];
    all.extend_from_slice(extra);
    classify_args(
        &fixture("real/RGB.byte.tif"),
        &fixture("real/textline_cls.dlpk"),
        Some(features),
        out,
        &all,
    )
}

/// Each output row's label and confidence are the reference's for its SourceOID.
fn assert_matches_reference(rows: &[Row], reference: &BTreeMap<i64, (String, f64, Vec<f64>)>) {
    for row in rows {
        let fid = row.number("SourceOID").unwrap() as i64;
        let (label, confidence, _) = &reference[&fid];
        assert_eq!(row.text("ClassLabel").as_deref(), Some(label.as_str()), "fid {fid}");
        assert!(
            (row.number("Confidence").unwrap() - confidence).abs() < 1e-4,
            "fid {fid}"
        );
    }
}

#[test]
fn extent_keeps_exactly_the_features_whose_envelope_centre_is_inside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = read_rows(&objects(), Some("polygons"));
    // In the raster's CRS (the default): the top-left 2 x 2 patches and a bit.
    let extent = (500_000.0, 5_799_744.0, 500_300.0, 5_800_000.0);
    let expected: Vec<String> = input
        .iter()
        .filter(|r| inside(extent, centre(r.wkt.as_ref().unwrap())))
        .map(|r| r.text("name").unwrap())
        .collect();
    assert_eq!(expected.len(), 4, "one polygon per patch: {expected:?}");
    let out = d.join("extent.gpkg");
    run_owned_ok(&polygons(&out, &["--extent", "500000", "5799744", "500300", "5800000"]));
    let rows = read_rows(&out, None);
    assert_eq!(ids(&rows, "name"), expected, "in input order");
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));

    // In another CRS (--extent-crs): the centres are taken into it.
    let to_wgs84 = transform(32633, 4326);
    let (lon0, lat0) = point_in(&to_wgs84, (500_000.0, 5_799_600.0));
    let (lon1, lat1) = point_in(&to_wgs84, (500_400.0, 5_800_000.0));
    let extent = (lon0, lat0, lon1, lat1);
    let expected: Vec<String> = input
        .iter()
        .filter(|r| inside(extent, point_in(&to_wgs84, centre(r.wkt.as_ref().unwrap()))))
        .map(|r| r.text("name").unwrap())
        .collect();
    assert!((5..16).contains(&expected.len()), "some, not all: {expected:?}");
    let bounds = [lon0, lat0, lon1, lat1].map(|v| format!("{v:.9}"));
    let extent_args = [
        "--extent",
        &bounds[0],
        &bounds[1],
        &bounds[2],
        &bounds[3],
        "--extent-crs",
        "EPSG:4326",
    ];
    let single = d.join("wgs84.gpkg");
    run_owned_ok(&polygons(&single, &extent_args));
    let rows = read_rows(&single, None);
    assert_eq!(ids(&rows, "name"), expected);

    // Shards are positions among the features the extent keeps: shards + merge = one run.
    let mut shards = Vec::new();
    for i in 0..2 {
        let shard = d.join(format!("shard{i}.gpkg"));
        let index = format!("{i}/2");
        let mut extra = extent_args.to_vec();
        extra.extend(["--shard", &index]);
        run_owned_ok(&polygons(&shard, &extra));
        // Positions 0, 2, 4, ... and 1, 3, 5, ... of the features inside.
        assert_eq!(read_rows(&shard, None).len(), (expected.len() + 1 - i) / 2);
        shards.push(shard.to_str().unwrap().to_string());
    }
    let merged = d.join("merged.gpkg");
    run_ok(&["merge", &shards[0], &shards[1], "-o", merged.to_str().unwrap()]);
    let merged_rows = read_rows(&merged, None);
    assert_eq!(ids(&merged_rows, "name"), ids(&rows, "name"));
    assert_eq!(ids(&merged_rows, "ClassLabel"), ids(&rows, "ClassLabel"));

    // Not a rectangle, or an unknown CRS: refused before any work.
    let line = run_err(
        &polygons(
            &d.join("bad.gpkg"),
            &["--extent", "500300", "5799744", "500000", "5800000"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--extent") && line.contains("XMIN < XMAX"), "{line}");
    assert!(!d.join("bad.gpkg").exists());
}

#[test]
fn extent_on_two_thousand_real_points_keeps_those_inside_with_the_reference_labels() {
    let dir = tempfile::tempdir().unwrap();
    let points = fixture("real/RGB.byte.bench_points_2000.gpkg");
    // The middle of RGB.byte.tif (EPSG:32618, 300 m pixels).
    let extent = (150_000.0, 2_700_000.0, 250_000.0, 2_800_000.0);
    let expected: BTreeSet<i64> = read_rows(&points, None)
        .iter()
        .filter(|r| inside(extent, centre(r.wkt.as_ref().unwrap())))
        .map(|r| r.fid.unwrap() as i64)
        .collect();
    assert!(
        (100..1900).contains(&expected.len()),
        "{} points inside",
        expected.len()
    );
    let out = dir.path().join("extent.gpkg");
    run_owned_ok(&real(
        &points,
        &out,
        &["--extent", "150000", "2700000", "250000", "2800000"],
    ));
    let rows = read_rows(&out, None);
    let got: BTreeSet<i64> = rows.iter().map(|r| r.number("SourceOID").unwrap() as i64).collect();
    assert_eq!(got, expected);
    assert_eq!(rows.len(), expected.len());
    assert_matches_reference(&rows, &reference("textline_cls_points_2000.csv"));
}

#[test]
fn extent_clips_a_whole_image_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Patch (row 0, column 2) of the painted raster is blue: columns 128..192, rows 0..64.
    let out = d.join("patch.csv");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        None,
        &out,
        &["--extent", "500256", "5799872", "500384", "5800000"],
    ));
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], vec!["ImageId", "ClassLabel", "Confidence", "Status", "WKT"]);
    assert_eq!(rows[1][1], "blue");
    let confidence: f64 = rows[1][2].parse().unwrap();
    assert!((confidence - onnx::expected_confidence(&palette(), &imagenet(), 1.0, 2)).abs() < 1e-5);
    let e = Geometry::from_wkt(&rows[1][4]).unwrap().envelope();
    assert_eq!(
        (e.MinX, e.MinY, e.MaxX, e.MaxY),
        (500_256.0, 5_799_872.0, 500_384.0, 5_800_000.0)
    );
    // Without the extent the whole image is one (mixed) object.
    let whole = d.join("whole.csv");
    run_owned_ok(&classify_args(&colors_tif(), &colors_dlpk(), None, &whole, &[]));
    let e = Geometry::from_wkt(&read_csv(&whole)[1][4]).unwrap().envelope();
    assert_eq!((e.MinX, e.MaxX), (500_000.0, 500_512.0));
    // An extent beside the image: nothing to classify, refused.
    let line = run_err(
        &classify_args(
            &colors_tif(),
            &colors_dlpk(),
            None,
            &d.join("none.csv"),
            &["--extent", "0", "0", "10", "10"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--extent does not overlap"), "{line}");
    assert!(!d.join("none.csv").exists());
}

#[test]
fn t_srs_writes_real_footprints_in_degrees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = fixture("real/RGB.byte.foot.gpkg");
    let plain = d.join("plain.gpkg");
    let degrees = d.join("degrees.gpkg");
    run_owned_ok(&real(&features, &plain, &[]));
    run_owned_ok(&real(&features, &degrees, &["--t-srs", "EPSG:4326"]));
    // ogrinfo reports the layer in WGS 84, its extent in degrees (RGB.byte.tif is in Florida's
    // east, UTM 18N).
    let info = Command::new("ogrinfo")
        .args(["-ro", "-so", "-al", degrees.to_str().unwrap()])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("ID[\"EPSG\",4326]"), "{info}");
    let extent = info.lines().find(|l| l.starts_with("Extent:")).unwrap();
    let numbers: Vec<f64> = extent
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 4, "{extent}");
    assert!(numbers[0] > -80.0 && numbers[2] < -76.0, "longitudes: {extent}");
    assert!(numbers[1] > 23.0 && numbers[3] < 27.0, "latitudes: {extent}");
    // Each geometry is the input's reprojected; labels do not change.
    let to_wgs84 = transform(32618, 4326);
    let (a, b) = (read_rows(&plain, None), read_rows(&degrees, None));
    assert_eq!(a.len(), 9);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text("ClassLabel"), y.text("ClassLabel"));
        assert_eq!(x.number("Confidence"), y.number("Confidence"));
        let expected = Geometry::from_wkt(x.wkt.as_ref().unwrap())
            .unwrap()
            .transform(&to_wgs84)
            .unwrap();
        let got = Geometry::from_wkt(y.wkt.as_ref().unwrap()).unwrap();
        let (e, g) = (expected.envelope(), got.envelope());
        for (p, q) in [(e.MinX, g.MinX), (e.MaxX, g.MaxX), (e.MinY, g.MinY), (e.MaxY, g.MaxY)] {
            assert!((p - q).abs() < 1e-9, "{p} vs {q}");
        }
    }
    // CSV: WKT in degrees too.
    let csv = d.join("degrees.csv");
    run_owned_ok(&real(&features, &csv, &["--t-srs", "EPSG:4326"]));
    let wkt = read_csv(&csv)[1].last().unwrap().clone();
    let (lon, lat) = centre(&wkt);
    assert!((-80.0..-76.0).contains(&lon) && (23.0..27.0).contains(&lat), "{wkt}");
    // A table without geometries cannot be reprojected; an unknown CRS is refused upfront.
    let line = run_err(
        &classify_args(
            &fixture("real/dummy_recognition_map.tif"),
            &colors_dlpk(),
            None,
            &d.join("t.csv"),
            &["--t-srs", "EPSG:4326"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--t-srs") && line.contains("table"), "{line}");
    let line = run_err(
        &real(&features, &d.join("x.gpkg"), &["--t-srs", "EPSG:0"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--t-srs \"EPSG:0\""), "{line}");
}

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
fn a_model_definition_given_as_json_reads_its_model_from_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let emd = fs::read_to_string(fixture("synthetic/colors.emd")).unwrap();
    assert!(emd.contains("\"ModelFile\": \"colors.onnx\""));
    let run_in = |cwd: &Path, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_classify-objects"))
            .current_dir(cwd)
            .args([
                "-r",
                colors_tif().to_str().unwrap(),
                "-m",
                &emd,
                "-f",
                objects().to_str().unwrap(),
                "--layer",
                "points",
                "-o",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    // Run from the folder holding colors.onnx: the same rows as the package.
    let json = d.join("json.gpkg");
    let output = run_in(&fixture("synthetic"), &json);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let package = d.join("package.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&objects()),
        &package,
        &["--layer", "points"],
    ));
    let (a, b) = (read_rows(&json, None), read_rows(&package, None));
    assert_eq!(a.len(), 16);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text("ClassLabel"), x.text("truth"));
        assert_eq!(
            (x.text("ClassLabel"), x.number("Confidence")),
            (y.text("ClassLabel"), y.number("Confidence"))
        );
    }
    // From another folder, colors.onnx is not there: one line naming it.
    let output = run_in(d, &d.join("elsewhere.gpkg"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("colors.onnx") && stderr.contains("(--model JSON)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Not JSON: the parser's message.
    let line = run_err(
        &classify_args(
            &colors_tif(),
            Path::new("{\"Framework\": "),
            None,
            &d.join("x.csv"),
            &[],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("is not valid JSON"), "{line}");
}

#[test]
fn where_and_sql_classify_exactly_the_selected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Real points: fid > 1500 are the reference's last 500 rows.
    let points = fixture("real/RGB.byte.bench_points_2000.gpkg");
    let reference = reference("textline_cls_points_2000.csv");
    let out = d.join("where.gpkg");
    run_owned_ok(&real(&points, &out, &["--where", "fid > 1500"]));
    let rows = read_rows(&out, None);
    let fids: Vec<i64> = rows.iter().map(|r| r.number("SourceOID").unwrap() as i64).collect();
    assert_eq!(fids, (1501..=2000).collect::<Vec<i64>>());
    assert_matches_reference(&rows, &reference);

    // The synthetic polygons: id > 3 (ids 1..16).
    let out = d.join("ids.gpkg");
    run_owned_ok(&polygons(&out, &["--where", "id > 3"]));
    let rows = read_rows(&out, None);
    assert_eq!(
        rows.iter().map(|r| r.number("id").unwrap() as i64).collect::<Vec<_>>(),
        (4..=16).collect::<Vec<i64>>()
    );
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));

    // SQL, in the driver's dialect and in OGR SQL: the red points.
    let red: Vec<String> = read_rows(&objects(), Some("points"))
        .iter()
        .filter(|r| r.text("truth").as_deref() == Some("red"))
        .map(|r| r.text("name").unwrap())
        .collect();
    assert_eq!(red.len(), 3);
    for dialect in [None, Some("OGRSQL"), Some("SQLITE")] {
        let out = d.join(format!("sql-{}.gpkg", dialect.unwrap_or("native")));
        let mut args = classify_args(
            &colors_tif(),
            &colors_dlpk(),
            Some(&objects()),
            &out,
            &["--sql", "SELECT * FROM points WHERE truth = 'red'"],
        );
        if let Some(dialect) = dialect {
            args.extend(["--dialect".to_string(), dialect.to_string()]);
        }
        run_owned_ok(&args);
        let rows = read_rows(&out, None);
        assert_eq!(ids(&rows, "name"), red, "{dialect:?}");
        assert!(rows.iter().all(|r| r.text("ClassLabel").as_deref() == Some("red")));
    }
    // Shards of a filtered run merge into the filtered run.
    let mut shards = Vec::new();
    for i in 0..3 {
        let shard = d.join(format!("s{i}.gpkg"));
        let index = format!("{i}/3");
        run_owned_ok(&polygons(&shard, &["--where", "id > 3", "--shard", &index]));
        shards.push(shard.to_str().unwrap().to_string());
    }
    let merged = d.join("merged.gpkg");
    run_ok(&[
        "merge",
        &shards[0],
        &shards[1],
        &shards[2],
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        ids(&read_rows(&merged, None), "name"),
        ids(&read_rows(&d.join("ids.gpkg"), None), "name")
    );

    // Mistakes: one line each, exit 2, nothing written.
    for (extra, needle) in [
        (vec!["--where", "no_such_field > 3"], "--where \"no_such_field > 3\""),
        (vec!["--sql", "SELECT * FROM nowhere"], "--sql"),
        (vec!["--dialect", "SQLITE"], "--dialect is the dialect of --sql"),
        (
            vec!["--sql", "SELECT * FROM points", "--dialect", "COBOL"],
            "--dialect COBOL",
        ),
    ] {
        let out = d.join("bad.gpkg");
        let mut args = classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), &out, &extra);
        if !extra.contains(&"--sql") {
            args.extend(["--layer".to_string(), "polygons".to_string()]);
        }
        let line = run_err(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        assert!(line.contains(needle), "{extra:?}: {line}");
        assert!(!out.exists());
    }
}

#[test]
fn open_options_read_points_from_a_csv_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut table = String::from("name,easting,northing,truth\n");
    for row in read_rows(&objects(), Some("points")) {
        let (x, y) = centre(row.wkt.as_ref().unwrap());
        table.push_str(&format!(
            "{},{x},{y},{}\n",
            row.text("name").unwrap(),
            row.text("truth").unwrap()
        ));
    }
    let csv = d.join("points.csv");
    fs::write(&csv, table).unwrap();
    let out = d.join("out.gpkg");
    let base = |extra: &[&str]| {
        let mut all = vec!["--features-crs", "EPSG:32633"];
        all.extend_from_slice(extra);
        classify_args(&colors_tif(), &colors_dlpk(), Some(&csv), &out, &all)
    };
    // Without open options the CSV driver sees no geometry.
    let line = run_err(&base(&[]).iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(line.contains("no geometry column"), "{line}");
    run_owned_ok(&base(&[
        "--oo",
        "X_POSSIBLE_NAMES=easting",
        "--oo",
        "Y_POSSIBLE_NAMES=northing",
    ]));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    let line = run_err(
        &base(&["--oo", "X_POSSIBLE_NAMES"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--oo \"X_POSSIBLE_NAMES\" is not KEY=VALUE"), "{line}");
}

#[test]
fn dataset_creation_options_reach_the_driver() {
    let dir = tempfile::tempdir().unwrap();
    // The GeoPackage version is the SQLite header's user_version (bytes 60..64).
    let version = |path: &Path| {
        let bytes = fs::read(path).unwrap();
        u32::from_be_bytes(bytes[60..64].try_into().unwrap())
    };
    for (option, expected) in [("VERSION=1.2", 10200), ("VERSION=1.3", 10300)] {
        let out = dir.path().join(format!("{}.gpkg", option.replace(['=', '.'], "_")));
        run_owned_ok(&polygons(&out, &["--dsco", option]));
        assert_eq!(version(&out), expected, "{option}");
        assert_eq!(read_rows(&out, None).len(), 16);
    }
    let line = run_err(
        &polygons(&dir.path().join("x.gpkg"), &["--dsco", "VERSION"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--dsco \"VERSION\""), "{line}");
}

#[test]
fn config_options_reach_gdal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A copy of the painted raster whose .aux.xml (GDAL's PAM) moves it one patch (128 m) east.
    let raster = d.join("shifted.tif");
    fs::copy(colors_tif(), &raster).unwrap();
    fs::write(
        d.join("shifted.tif.aux.xml"),
        "<PAMDataset><GeoTransform>500128, 2, 0, 5800000, 0, -2</GeoTransform></PAMDataset>\n",
    )
    .unwrap();
    let classify = |out: &Path, extra: &[&str]| {
        let mut all = vec!["--layer", "points"];
        all.extend_from_slice(extra);
        run_owned_ok(&classify_args(&raster, &colors_dlpk(), Some(&objects()), out, &all));
        read_rows(out, None)
    };
    let shifted = classify(&d.join("pam.gpkg"), &[]);
    assert!(
        shifted
            .iter()
            .any(|r| r.text("ClassLabel").is_some() && r.text("ClassLabel") != r.text("truth")),
        "the .aux.xml moves the raster"
    );
    let rows = classify(&d.join("nopam.gpkg"), &["--config", "GDAL_PAM_ENABLED", "NO"]);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    assert!(d.join("shifted.tif.aux.xml").exists());
}

#[test]
fn a_source_with_several_layers_needs_layer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = run_err(
        &classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), &d.join("o.gpkg"), &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(
        line.contains("3 layers with geometries (polygons, points, lines)") && line.contains("--layer"),
        "{line}"
    );
    assert!(!d.join("o.gpkg").exists());
    // One layer with geometries and a table without (a style table): the layer is taken.
    let styled = d.join("styled.gpkg");
    run_owned_ok(&polygons(&styled, &["--qgis-style", "embedded"]));
    let listed = Command::new("ogrinfo")
        .args(["-ro", "-q", styled.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("layer_styles"));
    let again = d.join("again.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&styled),
        &again,
        &[],
    ));
    assert_eq!(read_rows(&again, None).len(), 16);
}

#[test]
fn file_geodatabase_outputs_are_folders_written_whole_and_get_layers_added() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gdb = d.join("result.gdb");
    run_owned_ok(&polygons(&gdb, &[]));
    assert!(gdb.is_dir());
    let layers = |path: &Path| -> Vec<String> {
        let ds = gdal::Dataset::open(path).unwrap();
        assert_eq!(ds.driver().short_name(), "OpenFileGDB");
        let mut names: Vec<String> = ds.layers().map(|l| gdal::vector::LayerAccess::name(&l)).collect();
        names.sort();
        names
    };
    assert_eq!(layers(&gdb), vec!["result"]);
    let rows = read_rows(&gdb, Some("result"));
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    // A new layer name adds a layer; the first is kept.
    let points = |out: &Path, extra: &[&str]| {
        let mut all = vec!["--layer", "points", "--nln", "points"];
        all.extend_from_slice(extra);
        classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), out, &all)
    };
    run_owned_ok(&points(&gdb, &[]));
    assert_eq!(layers(&gdb), vec!["points", "result"]);
    assert_eq!(read_rows(&gdb, Some("points")).len(), 16);
    assert_eq!(read_rows(&gdb, Some("result")).len(), 16);
    // The same layer again: refused without --overwrite, the folder untouched.
    let snapshot = |path: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(path)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&gdb);
    let line = run_err(&points(&gdb, &[]).iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(
        line.contains("already has a layer points") && line.contains("--overwrite"),
        "{line}"
    );
    // A run that fails once the output was started (a one-band raster for a three-band model).
    let gray = d.join("gray.tif");
    write_tiff_u8(&gray, 64, 64, &[vec![7u8; 64 * 64]], true, None);
    let line = run_err(
        &classify_args(
            &gray,
            &colors_dlpk(),
            Some(&objects()),
            &gdb,
            &["--layer", "lines", "--nln", "lines"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("band"), "{line}");
    assert_eq!(snapshot(&gdb), before, "the geodatabase is as it was");
    // --overwrite replaces that layer only (lines into "points").
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&objects()),
        &gdb,
        &["--layer", "lines", "--nln", "points", "--overwrite"],
    ));
    assert_eq!(layers(&gdb), vec!["points", "result"]);
    let lines = read_rows(&gdb, Some("points"));
    assert_eq!(lines.len(), 16);
    assert!(
        lines[0].text("name").unwrap().starts_with("lines-"),
        "{:?}",
        lines[0].text("name")
    );
    assert_eq!(read_rows(&gdb, Some("result")).len(), 16);
    // --append adds rows to a layer (64-bit ids are kept as reals in a File Geodatabase).
    run_owned_ok(&polygons(&gdb, &["--append"]));
    assert_eq!(read_rows(&gdb, Some("result")).len(), 32);
    assert_eq!(read_rows(&gdb, Some("points")).len(), 16);
    // Nothing temporary left beside it.
    assert_eq!(files_in(d), vec!["gray.tif", "result.gdb", "result.qml"]);
    // --format names the driver; a file in the way of the folder is refused.
    let named = d.join("named.gdb");
    run_owned_ok(&polygons(&named, &["--format", "OpenFileGDB"]));
    assert_eq!(layers(&named), vec!["named"]);
    let file = d.join("file.gdb");
    fs::write(&file, b"not a geodatabase").unwrap();
    let line = run_err(
        &polygons(&file, &["--overwrite"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("is not a folder"), "{line}");
    assert_eq!(fs::read(&file).unwrap(), b"not a geodatabase");
}

/// A 6 x 4 chip package (the colour model with a 4 x 6 input), for chips read back exactly.
fn small_package(dir: &Path) -> PathBuf {
    small_package_with(dir, "small.dlpk", &[])
}

/// [`small_package`] with more `.emd` edits.
fn small_package_with(dir: &Path, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let options = onnx::ColorModelOptions {
        chip: Some((4, 6)),
        ..Default::default()
    };
    let mut edits = vec![
        ("\"ImageWidth\": 32", "\"ImageWidth\": 6"),
        ("\"ImageHeight\": 32", "\"ImageHeight\": 4"),
    ];
    edits.extend_from_slice(replace);
    color_package(dir, name, &edits, &options, &imagenet())
}

/// The chip dumped for the one point at pixel (10, 10) of a positional raster, with `extra`.
fn dumped_chip(dir: &Path, raster: &Path, name: &str, extra: &[&str]) -> Vec<Vec<f32>> {
    dumped_chip_of(dir, raster, &small_package(dir), name, extra)
}

/// [`dumped_chip`] with the package `package`.
fn dumped_chip_of(dir: &Path, raster: &Path, package: &Path, name: &str, extra: &[&str]) -> Vec<Vec<f32>> {
    let features = dir.join("point.geojson");
    write_pixel_features(&features, &["POINT (10 10)"]);
    let chips = dir.join(format!("chips-{name}"));
    let mut all = vec!["--dump-chips", chips.to_str().unwrap()];
    all.extend_from_slice(extra);
    run_owned_ok(&classify_args(
        raster,
        package,
        Some(&features),
        &dir.join(format!("{name}.gpkg")),
        &all,
    ));
    let (w, h, planes) = read_chip(&chips.join("chip_000000.tif"));
    assert_eq!((w, h), (6, 4));
    planes
}

/// The fixed window around pixel (10, 10): columns 7..13, rows 8..12, of `bands` (0-based).
fn window(bands: &[usize]) -> Vec<Vec<f32>> {
    bands
        .iter()
        .map(|&b| (0..24).map(|i| TestRaster::value(b, 7 + i % 6, 8 + i / 6)).collect())
        .collect()
}

#[test]
fn bands_pick_and_order_the_raster_bands_the_model_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("positional.tif");
    TestRaster::positional(30, 20, 4).write(&raster);
    assert_eq!(dumped_chip(d, &raster, "plain", &[]), window(&[0, 1, 2]));
    assert_eq!(
        dumped_chip(d, &raster, "reversed", &["--bands", "3,2,1"]),
        window(&[2, 1, 0])
    );
    assert_eq!(
        dumped_chip(d, &raster, "fourth", &["--bands", "4,4,2"]),
        window(&[3, 3, 1])
    );
    // Band names are those of the bands listed: ExtractBands ["Green", "NIR", 1] over
    // --bands 4,3,2 (NIR, Red, Green) reads Green, NIR and Red.
    let named = d.join("named.tif");
    TestRaster {
        descriptions: vec!["Blue", "Green", "Red", "NIR"],
        ..TestRaster::positional(30, 20, 4)
    }
    .write(&named);
    let by_name = small_package_with(
        d,
        "names.dlpk",
        &[(
            "\"ExtractBands\": [0, 1, 2]",
            "\"ExtractBands\": [\"Green\", \"NIR\", 1]",
        )],
    );
    assert_eq!(
        dumped_chip_of(d, &named, &by_name, "names", &["--bands", "4,3,2"]),
        window(&[1, 3, 2])
    );
    let line = run_err(
        &classify_args(
            &raster,
            &small_package(d),
            None,
            &d.join("x.csv"),
            &["--bands", "5,1,2"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(
        line.contains("--bands 5,1,2 names band 5") && line.contains("4 band(s)"),
        "{line}"
    );
    let line = run_err(
        &classify_args(&raster, &small_package(d), None, &d.join("x.csv"), &["--bands", "0,1"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--bands 0,1"), "{line}");

    // An alpha band stays the mask of the bands read, listed or not: an RGBA Byte raster whose
    // pixel (9, 9) is transparent (chip pixel (2, 1)).
    let rgba = d.join("rgba.tif");
    let value = |b: usize, col: usize, row: usize| (1 + b * 60 + (row * 30 + col) % 50) as u8;
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver.create_with_band_type::<u8, _>(&rgba, 30, 20, 4).unwrap();
        ds.set_geo_transform(&[500_000.0, 2.0, 0.0, 5_800_000.0, 0.0, -2.0])
            .unwrap();
        ds.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap()).unwrap();
        for b in 0..4 {
            let mut band = ds.rasterband(b + 1).unwrap();
            let plane: Vec<u8> = (0..600)
                .map(|i| match b {
                    3 if i == 9 * 30 + 9 => 0,
                    3 => 255,
                    _ => value(b, i % 30, i / 30),
                })
                .collect();
            if b == 3 {
                band.set_color_interpretation(gdal::raster::ColorInterpretation::AlphaBand)
                    .unwrap();
            }
            band.write((0, 0), (30, 20), &mut gdal::raster::Buffer::new((30, 20), plane))
                .unwrap();
        }
    }
    let masked = |bands: [usize; 3]| -> Vec<Vec<f32>> {
        bands
            .iter()
            .map(|&b| {
                (0..24)
                    .map(|i| {
                        if i == 8 {
                            0.0
                        } else {
                            f32::from(value(b, 7 + i % 6, 8 + i / 6))
                        }
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(dumped_chip(d, &rgba, "rgba", &[]), masked([0, 1, 2]));
    assert_eq!(dumped_chip(d, &rgba, "bgr", &["--bands", "3,2,1"]), masked([2, 1, 0]));

    // On the painted raster, swapping red and blue swaps the labels of red and blue patches.
    let out = d.join("swapped.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&objects()),
        &out,
        &["--layer", "points", "--bands", "3,2,1"],
    ));
    let rows = read_rows(&out, None);
    let swapped: Vec<(String, String)> = rows
        .iter()
        .filter(|r| matches!(r.text("truth").as_deref(), Some("red" | "blue")))
        .map(|r| (r.text("truth").unwrap(), r.text("ClassLabel").unwrap()))
        .collect();
    assert!(!swapped.is_empty());
    for (truth, label) in swapped {
        assert_eq!(label, if truth == "red" { "blue" } else { "red" });
    }
}

#[test]
fn nodata_overrides_the_rasters_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("positional.tif");
    TestRaster::positional(30, 20, 3).write(&raster);
    // The value of band 1 at (9, 9): chip pixel (2, 1) of channel 0.
    let value = TestRaster::value(0, 9, 9);
    let mut expected = window(&[0, 1, 2]);
    expected[0][6 + 2] = 0.0;
    assert_eq!(
        dumped_chip(d, &raster, "nodata", &["--nodata", &value.to_string()]),
        expected
    );
    // A raster that declares it as NoData: zero as declared, the value again with --nodata none.
    let declared = d.join("declared.tif");
    TestRaster {
        nodata: Some(value as f64),
        ..TestRaster::positional(30, 20, 3)
    }
    .write(&declared);
    assert_eq!(dumped_chip(d, &declared, "declared", &[]), expected);
    assert_eq!(
        dumped_chip(d, &declared, "none", &["--nodata", "none"]),
        window(&[0, 1, 2])
    );
    let line = run_err(
        &classify_args(
            &raster,
            &small_package(d),
            None,
            &d.join("x.csv"),
            &["--nodata", "zero"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--nodata zero is not a number"), "{line}");
}

/// The colour model's probabilities on a uniform chip of palette colour `class`.
fn probabilities(class: usize) -> Vec<f64> {
    let norm = |c: [f32; 3]| {
        let n = imagenet();
        [0, 1, 2].map(|ch| (c[ch] * n[ch].0 + n[ch].1) as f64)
    };
    let colors: Vec<[f64; 3]> = palette().into_iter().map(norm).collect();
    let weights: Vec<f64> = colors
        .iter()
        .map(|c| (-(0..3).map(|i| (c[i] - colors[class][i]).powi(2)).sum::<f64>()).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

#[test]
fn all_scores_writes_every_class_probability() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names: Vec<&str> = PALETTE.iter().map(|(n, _)| *n).collect();
    for out in [d.join("scores.gpkg"), d.join("scores.csv")] {
        run_owned_ok(&classify_args(
            &colors_tif(),
            &colors_dlpk(),
            Some(&objects()),
            &out,
            &["--layer", "points", "--all-scores"],
        ));
        let (header, rows): (Vec<String>, Vec<BTreeMap<String, String>>) = if out.extension().unwrap() == "csv" {
            let table = read_csv(&out);
            let header = table[0].clone();
            let rows = table[1..]
                .iter()
                .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
                .collect();
            (header, rows)
        } else {
            let rows = read_rows(&out, None)
                .iter()
                .map(|r| {
                    r.fields
                        .keys()
                        .map(|k| (k.clone(), r.text(k).unwrap_or_default()))
                        .collect()
                })
                .collect();
            (field_names(&out), rows)
        };
        let at = header.iter().position(|h| h == "Confidence").unwrap();
        assert_eq!(&header[at + 1..at + 7], names.as_slice(), "{header:?}");
        assert_eq!(header[at + 7], "Status");
        assert_eq!(rows.len(), 16);
        for row in &rows {
            let class = names.iter().position(|n| *n == row["truth"]).unwrap();
            let expected = probabilities(class);
            for (name, p) in names.iter().zip(&expected) {
                let got: f64 = row[*name].parse().unwrap();
                assert!((got - p).abs() < 1e-5, "{name}: {got} vs {p}");
            }
            assert_eq!(row["ClassLabel"], row["truth"]);
            let confidence: f64 = row["Confidence"].parse().unwrap();
            assert!((confidence - expected[class]).abs() < 1e-5);
        }
    }

    // The real model: its classes "0" and "180" as class_0 and class_180, the reference's
    // probabilities.
    let out = d.join("real.gpkg");
    run_owned_ok(&real(&fixture("real/RGB.byte.foot.gpkg"), &out, &["--all-scores"]));
    let reference = reference("textline_cls_RGB.byte.foot.csv");
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 9);
    for row in &rows {
        let fid = row.number("SourceOID").unwrap() as i64;
        let (_, _, p) = &reference[&fid];
        assert!((row.number("class_0").unwrap() - p[0]).abs() < 1e-4, "fid {fid}");
        assert!((row.number("class_180").unwrap() - p[1]).abs() < 1e-4, "fid {fid}");
    }
    assert_matches_reference(&rows, &reference);

    // An input field named like a class is renamed, as on any clash with our columns.
    let features = d.join("clash.gpkg");
    let ogr = Command::new("ogr2ogr")
        .args([
            features.to_str().unwrap(),
            objects().to_str().unwrap(),
            "-sql",
            "SELECT geom, name, truth, weight AS red FROM points",
            "-nln",
            "points",
        ])
        .output()
        .unwrap();
    assert!(ogr.status.success(), "{}", String::from_utf8_lossy(&ogr.stderr));
    let out = d.join("clash_out.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&features),
        &out,
        &["--all-scores"],
    ));
    let fields = field_names(&out);
    assert_eq!(&fields[..3], &["name", "truth", "red_1"], "{fields:?}");
    assert!(fields.contains(&"red".to_string()));
}
