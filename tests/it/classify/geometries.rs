//! Geometries and pixels that are not the usual: 3-D, measured and curved geometries, NaN pixels
//! and non-finite scores, and features that cannot be classified (written with a Status and
//! counted).

use std::fs;
use std::path::Path;

use crate::support::*;

/// Features over the synthetic raster: two good ones and one of each problem, in this order.
fn problem_features(path: &Path) {
    let (x, y) = (500_064.0, 5_799_936.0); // centre of patch (0, 0): red
    let (x2, y2) = (500_320.0, 5_799_936.0); // patch (0, 2): blue
    let features = [
        format!(
            r#"{{"type":"Feature","properties":{{"n":"good"}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
        ),
        r#"{"type":"Feature","properties":{"n":"null"},"geometry":null}"#.to_string(),
        r#"{"type":"Feature","properties":{"n":"empty"},"geometry":{"type":"GeometryCollection","geometries":[]}}"#
            .to_string(),
        format!(
            r#"{{"type":"Feature","properties":{{"n":"bowtie"}},"geometry":{{"type":"Polygon","coordinates":[[[{x},{y}],[{},{}],[{},{y}],[{x},{}],[{x},{y}]]]}}}}"#,
            x + 20.0,
            y + 20.0,
            x + 20.0,
            y + 20.0
        ),
        r#"{"type":"Feature","properties":{"n":"outside"},"geometry":{"type":"Point","coordinates":[400000,5000000]}}"#
            .to_string(),
        format!(
            r#"{{"type":"Feature","properties":{{"n":"good2"}},"geometry":{{"type":"Point","coordinates":[{x2},{y2}]}}}}"#
        ),
    ];
    fs::write(
        path,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
}

// 2. 3-D, measured and curved geometries are classified like their 2-D shapes.
#[test]
fn three_d_measured_and_curved_geometries_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flat = d.join("flat.gpkg");
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &flat, &[]));
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
        run_owned_ok(&args(&real_raster(), &real_model(), Some(&input), &out, &[]));
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

#[test]
fn problem_features_are_written_with_a_status_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = d.join("problems.geojson");
    problem_features(&features);
    let out = d.join("out.gpkg");
    let output = run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&features),
        &out,
        &[],
    ));
    let rows = read_rows(&out, None);
    let got: Vec<(String, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.text("n").unwrap(), r.text("ClassLabel"), r.text("Status")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("good".into(), Some("red".into()), None),
            ("null".into(), None, Some("null_geometry".into())),
            ("empty".into(), None, Some("empty_geometry".into())),
            ("bowtie".into(), Some("red".into()), Some("invalid_geometry".into())),
            ("outside".into(), None, Some("outside_raster".into())),
            ("good2".into(), Some("blue".into()), None),
        ]
    );
    assert!(rows[1].number("Confidence").is_none());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("6 object(s), 3 classified, 3 not classified"),
        "{stderr}"
    );
    assert!(!stderr.contains("Self-intersection"), "GEOS chatter is muted: {stderr}");
    assert!(
        stderr.contains("empty_geometry: 1, invalid_geometry: 1, null_geometry: 1, outside_raster: 1"),
        "{stderr}"
    );

    // --strict: the first problem feature is fatal, and nothing is written.
    let strict_out = d.join("strict.gpkg");
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            features.to_str().unwrap(),
            "-o",
            strict_out.to_str().unwrap(),
            "--strict",
        ],
        2,
    );
    assert!(
        line.contains("feature 1") && line.contains("null_geometry") && line.contains("--strict"),
        "{line}"
    );
    assert!(!strict_out.exists());
}

#[test]
fn polygons_of_many_vertices_are_checked_for_validity_at_once() {
    // Jagged outlines of 100,000 vertices in the middle of colors.tif (GEOS's own check takes
    // about 20 s on each): one simple, one crossing itself (two far vertices swapped).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 100_000;
    let mut state = 7u64;
    let mut jag = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut outline: Vec<(f64, f64)> = (0..n)
        .map(|k| {
            let angle = k as f64 / n as f64 * std::f64::consts::TAU;
            let r = 40.0 * (0.7 + 0.3 * jag());
            (128.0 + r * angle.cos(), 128.0 + r * angle.sin())
        })
        .collect();
    let wkt = |points: &[(f64, f64)]| {
        let mut text: Vec<String> = points.iter().map(|(x, y)| format!("{x} {y}")).collect();
        text.push(text[0].clone());
        format!("POLYGON (({}))", text.join(","))
    };
    let simple = wkt(&outline);
    outline.swap(10, n / 2);
    let crossing = wkt(&outline);
    let features = d.join("jagged.geojson");
    write_pixel_features(&features, &[&simple, &crossing]);
    let out = d.join("out.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&features),
        &out,
        &[],
    ));
    let statuses: Vec<Option<String>> = read_rows(&out, None).iter().map(|r| r.text("Status")).collect();
    assert_eq!(statuses, vec![None, Some("invalid_geometry".to_string())]);
}
