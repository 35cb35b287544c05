//! Regression runs and results people can look at: truth comparison and its gate, comparing two
//! runs, the QGIS style, the HTML report. On the synthetic fixtures, whose right labels are known.

mod support;

use std::fs;
use std::path::Path;

use support::*;

fn run_colors(out: &Path, model: &Path, extra: &[&str]) -> std::process::Output {
    let (raster, features) = (fixture("synthetic/colors.tif"), fixture("synthetic/objects.gpkg"));
    let mut extra = extra.to_vec();
    extra.extend(["--layer", "polygons"]);
    run_owned(&classify_args(&raster, model, Some(&features), out, &extra))
}

/// A package whose class names are those of the palette with two swapped (blue <-> green), so
/// that the 6 blue and green polygons of the fixture are labelled wrong: accuracy 10/16.
fn swapped_package(dir: &Path) -> std::path::PathBuf {
    let emd = colors_emd(&[("\"Name\": \"green\"", "\"Name\": \"TMP\"")]);
    let emd = emd
        .replace("\"Name\": \"blue\"", "\"Name\": \"green\"")
        .replace("\"Name\": \"TMP\"", "\"Name\": \"blue\"");
    write_package(
        dir,
        "swapped.dlpk",
        &emd,
        &fs::read(fixture("synthetic/colors.onnx")).unwrap(),
    )
}

#[test]
fn truth_field_reports_accuracy_precision_recall_and_the_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let summary = d.join("s.json");
    let out = run_colors(
        &d.join("o.gpkg"),
        &swapped_package(d),
        &["--truth-field", "truth", "--summary-json", summary.to_str().unwrap()],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("accuracy 0.6250 over 16 compared row(s)"), "{stderr}");
    let s: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let truth = &s["truth"];
    assert_eq!(truth["accuracy"], 0.625);
    let labels: Vec<&str> = truth["confusion_matrix"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["blue", "dark", "green", "red", "white", "yellow"]);
    let m = &truth["confusion_matrix"]["rows_expected_columns_predicted"];
    assert_eq!(
        m[0],
        serde_json::json!([0, 0, 3, 0, 0, 0]),
        "the 3 blue polygons are called green"
    );
    assert_eq!(m[2], serde_json::json!([3, 0, 0, 0, 0, 0]), "and the 3 green ones blue");
    assert_eq!(m[3], serde_json::json!([0, 0, 0, 3, 0, 0]));
    let blue = truth["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "blue")
        .unwrap();
    assert_eq!(
        (blue["precision"].as_f64(), blue["recall"].as_f64()),
        (Some(0.0), Some(0.0))
    );
}

#[test]
fn min_accuracy_fails_the_run_below_the_threshold_but_keeps_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let swapped = swapped_package(d);
    let out = run_colors(
        &d.join("bad.gpkg"),
        &swapped,
        &["--truth-field", "truth", "--min-accuracy", "0.9"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("accuracy 0.6250 is below --min-accuracy 0.9"),
        "{stderr}"
    );
    assert_eq!(
        read_rows(&d.join("bad.gpkg"), None).len(),
        16,
        "the output is written all the same"
    );
    let out = run_colors(
        &d.join("good.gpkg"),
        &fixture("synthetic/colors.dlpk"),
        &["--truth-field", "truth", "--min-accuracy", "0.9"],
    );
    assert!(out.status.success());
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            fixture("synthetic/objects.gpkg").to_str().unwrap(),
            "--layer",
            "polygons",
            "-o",
            d.join("x.gpkg").to_str().unwrap(),
            "--truth-field",
            "expected",
        ],
        2,
    );
    assert!(
        line.contains("--truth-field expected") && line.contains("truth"),
        "{line}"
    );
}

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

fn assert_style_of_colour_classes(qml: &str) {
    assert!(qml.contains(r#"type="categorizedSymbol" attr="Colour""#), "{qml}");
    for (name, [r, g, b]) in PALETTE {
        assert!(qml.contains(&format!(r#"<category value="{name}""#)), "{name}");
        assert!(qml.contains(&format!(r#"value="{r},{g},{b},160""#)), "fill of {name}");
    }
    assert!(qml.contains(r#"type="fill""#), "polygons get fill symbols");
}

#[test]
fn outputs_carry_a_qgis_style_beside_them_and_stay_one_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("styled.gpkg");
    assert!(run_colors(
        &out,
        &fixture("synthetic/colors.dlpk"),
        &["--class-label-field", "Colour"]
    )
    .status
    .success());
    // styled.qml beside the output: QGIS loads it as the layer's default style.
    let qml = std::fs::read_to_string(dir.path().join("styled.qml")).expect("a .qml beside the output");
    assert_style_of_colour_classes(&qml);
    // The GeoPackage holds the one layer: plain conversions work and leave nothing else.
    let ds = gdal::Dataset::open(&out).unwrap();
    assert_eq!(ds.layer_count(), 1);
    for target in ["converted.geojson", "converted.csv"] {
        let status = std::process::Command::new("ogr2ogr")
            .current_dir(dir.path())
            .args([target, "styled.gpkg"])
            .status()
            .unwrap();
        assert!(status.success(), "ogr2ogr {target} styled.gpkg");
    }
    assert!(!dir.path().join("layer_styles.csv").exists());
    // --qgis-style none: no style at all.
    let plain = dir.path().join("plain.gpkg");
    assert!(
        run_colors(&plain, &fixture("synthetic/colors.dlpk"), &["--qgis-style", "none"])
            .status
            .success()
    );
    assert!(!dir.path().join("plain.qml").exists());
}

#[test]
fn an_embedded_style_is_written_as_qgis_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("styled.gpkg");
    assert!(run_colors(
        &out,
        &fixture("synthetic/colors.dlpk"),
        &[
            "--class-label-field",
            "Colour",
            "--qgis-style",
            "embedded",
            "--lco",
            "GEOMETRY_NAME=shape"
        ]
    )
    .status
    .success());
    assert!(!dir.path().join("styled.qml").exists());
    let ds = gdal::Dataset::open(&out).unwrap();
    let mut styles = ds.layer_by_name("layer_styles").expect("a layer_styles table");
    use gdal::vector::LayerAccess;
    let rows: Vec<(String, String, String, i32)> = styles
        .features()
        .map(|f| {
            let idx = |n: &str| f.field_index(n).unwrap();
            (
                f.field_as_string(idx("f_table_name")).unwrap().unwrap(),
                f.field_as_string(idx("f_geometry_column")).unwrap().unwrap(),
                f.field_as_string(idx("styleQML")).unwrap().unwrap(),
                f.field_as_integer(idx("useAsDefault")).unwrap().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 1);
    let (table, geometry, qml, default) = &rows[0];
    assert_eq!((table.as_str(), geometry.as_str(), *default), ("styled", "shape", 1));
    assert_style_of_colour_classes(qml);
    // GDAL reads the file without a word.
    let info = std::process::Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success() && !stderr.contains("Warning"), "{stderr}");
}

/// Pixels of `png` within `tolerance` of `rgb`.
fn count_color(png: &Path, rgb: [u8; 3], tolerance: i32) -> usize {
    let ds = gdal::Dataset::open(png).unwrap();
    let (w, h) = ds.raster_size();
    let bands: Vec<Vec<u8>> = (1..=3)
        .map(|b| {
            ds.rasterband(b)
                .unwrap()
                .read_as::<u8>((0, 0), (w, h), (w, h), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect();
    (0..w * h)
        .filter(|&i| (0..3).all(|b| (bands[b][i] as i32 - rgb[b] as i32).abs() <= tolerance))
        .count()
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's chromium is needed for this test: scripts/setup.sh --test installs it (make test runs that)");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let report = d.join("report.html");
    let out = run_colors(
        &d.join("o.gpkg"),
        &fixture("synthetic/colors.dlpk"),
        &["--truth-field", "truth", "--report", report.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained: no network"
    );
    assert!(html.contains("Accuracy <b>1.0000</b> over 16 rows"));

    let screenshot = d.join("shot.png");
    let profile = d.join("profile");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1000,2600",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", screenshot.display()),
            &format!("file://{}", report.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success() && screenshot.exists(), "chromium took a screenshot");
    // The embedded map shows the painted patches (yellow is nowhere else on the page but in a
    // 12 px swatch) and the inline SVG histogram its bar.
    let yellow = count_color(&screenshot, PALETTE[3].1, 10);
    assert!(yellow > 20_000, "the map image rendered ({yellow} yellow pixels)");
    let bar = count_color(&screenshot, [70, 130, 180], 10);
    assert!(bar > 1_000, "the confidence histogram rendered ({bar} bar pixels)");
    // Features are drawn over the map: the dark halo of the 16 points.
    let halo = count_color(&screenshot, [20, 20, 20], 6);
    assert!(halo > 16 * 20, "the features are drawn ({halo} halo pixels)");
}
