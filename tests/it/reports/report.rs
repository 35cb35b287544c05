//! The truth comparison, the quality gate, and the HTML report rendered in headless Chromium.

use std::fs;
use std::path::Path;

use crate::support::*;

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

/// The pixels of an `img` whose source is a PNG `data:` URI: width, height, RGB.
fn data_uri_pixels(src: &str) -> (usize, usize, Vec<u8>) {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(src.strip_prefix("data:image/png;base64,").expect("a PNG data URI"))
        .unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    pixels.truncate(frame.buffer_size());
    (frame.width as usize, frame.height as usize, pixels)
}

/// A point feature `(n, pixel column, pixel row, truth)` of the colour raster, in EPSG:32633,
/// with the feature id `id`.
fn write_points(path: &Path, points: &[(i64, f64, f64, &str)]) {
    let features: Vec<String> = points
        .iter()
        .map(|(id, col, row, truth)| {
            let (x, y) = pixel_to_map(*col, *row);
            format!(
                r#"{{"type":"Feature","id":{id},"properties":{{"truth":"{truth}"}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
            )
        })
        .collect();
    fs::write(
        path,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
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
fn truth_given_as_class_values_is_matched_by_value_and_unknown_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The polygons with their truth as the .emd's class Value (red 1 ... dark 6) and as a
    // text that is no class.
    let features = d.join("values.gpkg");
    let status = std::process::Command::new("ogr2ogr")
        .arg(&features)
        .arg(objects())
        .args(["-nln", "polygons", "-dialect", "SQLite", "-sql"])
        .arg(
            "SELECT *, CASE truth WHEN 'red' THEN 1 WHEN 'green' THEN 2 WHEN 'blue' THEN 3 \
             WHEN 'yellow' THEN 4 WHEN 'white' THEN 5 ELSE 6 END AS truth_value, \
             'class ' || truth AS truth_text FROM polygons",
        )
        .status()
        .unwrap();
    assert!(status.success());
    let run = |field: &str| {
        let summary = d.join(format!("{field}.json"));
        let out = d.join(format!("{field}.gpkg"));
        let done = run_owned_ok(&classify_args(
            &colors_tif(),
            &colors_dlpk(),
            Some(&features),
            &out,
            &["--truth-field", field, "--summary-json", summary.to_str().unwrap()],
        ));
        let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
        (json["truth"].clone(), String::from_utf8_lossy(&done.stderr).to_string())
    };
    let (truth, stderr) = run("truth_value");
    assert_eq!(truth["accuracy"], 1.0, "{stderr}");
    assert_eq!(truth["matched_by"], "value");
    assert_eq!(truth["confusion_matrix"]["labels"].as_array().unwrap().len(), 6);
    assert!(stderr.contains("matched to classes by their Value"), "{stderr}");
    let (truth, stderr) = run("truth_text");
    assert_eq!(truth["accuracy"], 0.0);
    assert_eq!(truth["unmatched_truth_values"]["class red"], 3);
    let warning = stderr
        .lines()
        .find(|l| l.contains("no class of the model"))
        .expect("a warning");
    assert!(
        warning.contains("\"class red\" (3)") && warning.contains("red = 1"),
        "{warning}"
    );
}

#[test]
fn min_accuracy_fails_the_run_below_the_threshold_but_keeps_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let swapped = swapped_package(d);
    let summary = d.join("bad.json");
    let out = run_colors(
        &d.join("bad.gpkg"),
        &swapped,
        &[
            "--truth-field",
            "truth",
            "--min-accuracy",
            "0.9",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // The summary says what the run was and its verdict (#23.7).
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        (&json["format"], &json["schema_version"], &json["tool"]["version"]),
        (
            &serde_json::json!("classify-objects summary"),
            &serde_json::json!(2),
            &serde_json::json!(env!("CARGO_PKG_VERSION"))
        )
    );
    assert_eq!(
        json["gate"],
        serde_json::json!({"min_accuracy": 0.9, "accuracy": 0.625, "passed": false})
    );
    assert_eq!(json["exit_status"], 3);
    let (started, ended) = (json["started"].as_str().unwrap(), json["ended"].as_str().unwrap());
    assert!(
        started.len() == 20 && started.ends_with('Z') && started <= ended,
        "{started} {ended}"
    );
    assert_eq!(json["model"]["name"], "NearestAverageColour");
    assert_eq!(json["model"]["fingerprint"].as_str().map(str::len), Some(16));
    assert!(json["inputs"]["rasters"][0].as_str().unwrap().ends_with("colors.tif"));
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
fn the_html_report_renders_in_headless_chromium() {
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
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "self-contained: no network, no script"
    );
    let page = dom(&report);
    assert_eq!(
        text(&select(&page, "#accuracy-line")[0]),
        "Accuracy 1.0000, macro F1 1.0000, Cohen's kappa 1.0000 over 16 compared rows."
    );
    assert_eq!(
        select(&page, "#confusion tr").len(),
        7,
        "a row per class and the header"
    );
    // The histogram has axes with ticks, and the count over its one bar.
    let bars: Vec<usize> = select(&page, "#histogram rect.bar")
        .iter()
        .map(|r| r.value().attr("data-count").unwrap().parse().unwrap())
        .collect();
    assert_eq!(bars.iter().sum::<usize>(), 16);
    assert_eq!(bars[19], 16, "every confidence of the fixture is above 0.95");
    let svg = text(&select(&page, "#histogram")[0]);
    assert!(
        svg.contains("16") && svg.contains("0.5") && svg.contains("confidence") && svg.contains("objects"),
        "{svg}"
    );

    let shot = screenshot(&report, 1400, 4200);
    // The embedded map shows the painted patches (yellow is nowhere else on the page but in
    // swatches and chips) and the inline SVG histogram its bar.
    let yellow = count_color(&shot, PALETTE[3].1, 10);
    assert!(yellow > 100_000, "the map image rendered ({yellow} yellow pixels)");
    let bar = count_color(&shot, [70, 130, 180], 10);
    assert!(bar > 3_000, "the confidence histogram rendered ({bar} bar pixels)");
    // Features are drawn over the map: the dark halo of the 16 polygons.
    let halo = count_color(&shot, [20, 20, 20], 6);
    assert!(halo > 16 * 50, "the features are drawn ({halo} halo pixels)");
}

#[test]
fn the_report_gallery_shows_the_objects_to_check_in_order_with_their_chips() {
    // Points on the border between the yellow patch (columns 64-127) and the white one
    // (128-191) of patch row 2 (rows 128-191): a point at column 128 + d + 0.5 gets the 32 x 32
    // window starting at column 112 + d, whose first 16 - d columns are yellow. The colour model
    // sees the average colour, so each point's probabilities are known; d < 0 is called yellow,
    // d > 0 white, the closer to the border the less sure.
    let offsets: [(i64, &str); 9] = [
        (-6, "yellow"),
        (1, "yellow"), // called white: misclassified
        (-3, "yellow"),
        (5, "yellow"),  // misclassified
        (-1, "yellow"), // the least sure yellow
        (-4, "white"),  // called yellow: misclassified, so first, though fairly sure
        (2, "white"),
        (-2, "yellow"),
        (3, "yellow"), // misclassified
    ];
    let mut points: Vec<(i64, f64, f64, &str)> = offsets
        .iter()
        .enumerate()
        .map(|(i, (d, truth))| (100 + i as i64, 128.0 + *d as f64 + 0.5, 160.0, *truth))
        .collect();
    points.push((109, 32.0, 32.0, "red")); // the middle of the red patch (0, 0)
    points.push((110, 96.0, 96.0, "dark")); // and of the dark one (1, 1)
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = d.join("border.geojson");
    write_points(&features, &points);
    let report = d.join("report.html");
    let args = classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&features),
        &d.join("border.gpkg"),
        &[
            "--truth-field",
            "truth",
            "--report",
            report.to_str().unwrap(),
            "--report-chips",
            "3",
        ],
    );
    run_owned_ok(&args);
    let page = dom(&report);

    // Known probabilities: yellow share f of the window, white 1 - f.
    let (yellow, white) = (PALETTE[3].1.map(f64::from), PALETTE[4].1.map(f64::from));
    let probabilities = |d: i64| {
        let f = (16 - d) as f64 / 32.0;
        onnx::expected_probabilities(
            &palette(),
            &imagenet(),
            1.0,
            [0, 1, 2].map(|c| f * yellow[c] + (1.0 - f) * white[c]),
        )
    };
    struct Expected {
        oid: i64,
        d: i64,
        label: &'static str,
        runner_up: &'static str,
        misclassified: bool,
    }
    let chips = |class: &str| {
        select(
            &page,
            &format!("#gallery .gallery-class[data-class=\"{class}\"] figure.chip"),
        )
    };
    let check = |class: &str, expected: &[Expected]| {
        let figures = chips(class);
        let oids: Vec<i64> = figures
            .iter()
            .map(|f| f.value().attr("data-source-oid").unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            oids,
            expected.iter().map(|e| e.oid).collect::<Vec<_>>(),
            "gallery order of {class}"
        );
        for (figure, e) in figures.iter().zip(expected) {
            let a = |name: &str| figure.value().attr(name).unwrap_or_default().to_string();
            let p = probabilities(e.d);
            let (label_k, runner_k) = (3, 4);
            let (p_label, p_runner) = if e.label == "yellow" {
                (p[label_k], p[runner_k])
            } else {
                (p[runner_k], p[label_k])
            };
            assert_eq!(a("data-label"), e.label);
            assert!(
                (a("data-confidence").parse::<f64>().unwrap() - p_label).abs() < 1e-4,
                "{} {} vs {p_label}",
                e.oid,
                a("data-confidence")
            );
            assert_eq!(a("data-runner-up"), e.runner_up);
            assert!((a("data-runner-up-confidence").parse::<f64>().unwrap() - p_runner).abs() < 1e-4);
            assert_eq!(a("data-misclassified"), e.misclassified.to_string());
            assert_eq!(figure.value().classes().any(|c| c == "misclassified"), e.misclassified);
            // The caption, line by line: SourceOID, label and confidence, runner-up, expected.
            let lines: Vec<String> = select_in(figure, "figcaption > div:not(.location)")
                .iter()
                .map(text)
                .collect();
            assert_eq!(lines[0], format!("SourceOID {}", e.oid));
            let shown = |line: &str, prefix: &str| -> f64 {
                line.strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{line:?} starts with {prefix:?}"))
                    .parse()
                    .unwrap()
            };
            assert!(
                (shown(&lines[1], &format!("{} ", e.label)) - p_label).abs() < 2e-4,
                "{lines:?}"
            );
            assert!(
                (shown(&lines[2], &format!("runner-up {} ", e.runner_up)) - p_runner).abs() < 2e-4,
                "{lines:?}"
            );
            let expected_line = e
                .misclassified
                .then(|| format!("expected {}", if e.label == "yellow" { "white" } else { "yellow" }));
            assert_eq!(lines.get(3).cloned(), expected_line, "{lines:?}");
            // The chip as the model saw it before normalisation: 32 x 32, yellow up to column
            // 15 - d, white from 16 - d.
            let img = select_in(figure, "img");
            let (w, h, rgb) = data_uri_pixels(img[0].value().attr("src").unwrap());
            assert_eq!((w, h), (32, 32));
            let at = |col: i64, row: usize| {
                let i = (row * w + col as usize) * 3;
                [rgb[i], rgb[i + 1], rgb[i + 2]]
            };
            for row in [0, 16, 31] {
                assert_eq!(at(15 - e.d, row), PALETTE[3].1, "oid {} column {}", e.oid, 15 - e.d);
                assert_eq!(at(16 - e.d, row), PALETTE[4].1, "oid {} column {}", e.oid, 16 - e.d);
            }
        }
    };
    let e = |oid, d, label, runner_up, misclassified| Expected {
        oid,
        d,
        label,
        runner_up,
        misclassified,
    };
    // Yellow: the misclassified one (expected white) first, then the least sure.
    check(
        "yellow",
        &[
            e(105, -4, "yellow", "white", true),
            e(104, -1, "yellow", "white", false),
            e(107, -2, "yellow", "white", false),
        ],
    );
    // White: three misclassified, lowest confidence first; the right one (d = 2) left out.
    check(
        "white",
        &[
            e(101, 1, "white", "yellow", true),
            e(108, 3, "white", "yellow", true),
            e(103, 5, "white", "yellow", true),
        ],
    );
    let heading = |class: &str| text(&select(&page, &format!(".gallery-class[data-class=\"{class}\"] h3"))[0]);
    assert_eq!(heading("yellow"), "yellow (3 of 5)");
    assert_eq!(heading("white"), "white (3 of 4)");
    assert_eq!(chips("red").len(), 1);
    assert_eq!(chips("red")[0].value().attr("data-source-oid"), Some("109"));
    assert!(chips("green").is_empty() && select(&page, ".gallery-class[data-class=\"green\"]").is_empty());
    let classes: Vec<&str> = select(&page, "#gallery .gallery-class")
        .iter()
        .map(|c| c.value().attr("data-class").unwrap())
        .collect();
    assert_eq!(
        classes,
        vec!["red", "yellow", "white", "dark"],
        ".emd order, classes with objects"
    );

    // The legend: every .emd class with its colour and count, and the misclassified ones.
    let legend: Vec<(String, String, String)> = select(&page, "#legend li.legend-item")
        .iter()
        .map(|li| {
            let swatch = select_in(li, ".swatch")[0].value().attr("style").unwrap().to_string();
            (
                li.value().attr("data-class").unwrap().into(),
                swatch,
                li.value().attr("data-count").unwrap().into(),
            )
        })
        .collect();
    let counts = [
        ("red", 1),
        ("green", 0),
        ("blue", 0),
        ("yellow", 5),
        ("white", 4),
        ("dark", 1),
    ];
    assert_eq!(
        legend,
        counts
            .iter()
            .map(|(name, n)| {
                let [r, g, b] = PALETTE.iter().find(|(p, _)| p == name).unwrap().1;
                (name.to_string(), format!("background:rgb({r},{g},{b})"), n.to_string())
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(text(&select(&page, "#legend-misclassified .count")[0]), "4");
    assert_eq!(
        text(&select(&page, "#accuracy-line")[0]),
        format!(
            "Accuracy {:.4}, macro F1 {:.4}, Cohen's kappa {:.4} over 11 compared rows.",
            7.0 / 11.0,
            // F1: yellow 2*4/(5+7) (TP 4; 5 called, 7 expected), white 2*1/(4+2), red and dark 1.
            (8.0 / 12.0 + 2.0 / 6.0 + 1.0 + 1.0) / 4.0,
            // p_e = (7*5 + 2*4 + 1 + 1) / 121; kappa = (7/11 - p_e) / (1 - p_e).
            (7.0 / 11.0 - 45.0 / 121.0) / (1.0 - 45.0 / 121.0)
        )
    );

    // Run details: versions, model, settings, inputs with their CRS, the exact command line.
    let detail = |key: &str| -> Vec<String> {
        select(&page, &format!("#run-details tr[data-key=\"{key}\"] td"))
            .iter()
            .map(text)
            .collect()
    };
    let version = &detail("version")[0];
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{version}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert_eq!(version, &format!("{} (commit {head})", env!("CARGO_PKG_VERSION")));
    }
    assert_eq!(detail("gdal"), vec![gdal::version::version_info("RELEASE_NAME")]);
    let ort = &detail("onnxruntime")[0];
    assert!(
        ort.starts_with("1.") && ort.split('.').count() == 3 && ort.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{ort}"
    );
    assert_eq!(detail("model-name"), vec!["NearestAverageColour"]);
    assert_eq!(detail("model-kind"), vec!["ONNX AverageColour, single-label"]);
    assert_eq!(detail("chip-size"), vec!["32 x 32 pixels"]);
    assert_eq!(detail("bands"), vec!["1 (Red), 2 (Green), 3 (Blue)"]);
    assert_eq!(detail("batch-size"), vec!["4"]);
    assert_eq!(detail("device"), vec!["cpu"]);
    assert_eq!(detail("provider"), vec!["CPUExecutionProvider"]);
    assert!(detail("threads")[0].parse::<usize>().unwrap() >= 1);
    assert!(detail("throughput")[0].parse::<f64>().unwrap() > 0.0);
    let inputs = detail("input");
    assert_eq!(
        inputs,
        vec![
            format!(
                "{} — EPSG:32633 (WGS 84 / UTM zone 33N)",
                fixture("synthetic/colors.tif").display()
            ),
            format!("{} — EPSG:32633 (WGS 84 / UTM zone 33N)", features.display()),
        ]
    );
    assert_eq!(
        detail("output"),
        vec![format!(
            "{} (layer border, 11 rows) — EPSG:32633 (WGS 84 / UTM zone 33N)",
            d.join("border.gpkg").display()
        )]
    );
    let mut command = vec![env!("CARGO_BIN_EXE_classify-objects").to_string()];
    command.extend(args.iter().cloned());
    assert_eq!(
        detail("command-line"),
        vec![shlex::try_join(command.iter().map(String::as_str)).unwrap()]
    );

    // The map outlines the 4 misclassified points in the highlight colour, and not the others.
    let map = select(&page, "#map");
    let (w, h, rgb) = data_uri_pixels(map[0].value().attr("src").unwrap());
    assert_eq!((w, h), (900, 900), "256 x 256 pixels drawn at 900");
    let highlight = [255u8, 0, 200];
    let near = |col: f64, row: f64, radius: f64| {
        let (cx, cy) = (col * 900.0 / 256.0, row * 900.0 / 256.0);
        (0..w * h)
            .filter(|i| ((i % w) as f64 - cx).hypot((i / w) as f64 - cy) <= radius)
            .filter(|i| rgb[i * 3..i * 3 + 3] == highlight)
            .count()
    };
    assert!(near(128.0, 160.0, 40.0) > 50, "the misclassified points are outlined");
    assert_eq!(near(32.0, 32.0, 40.0), 0, "the red point is not");

    // At 1400 pixels wide the page shows all that, and nothing overflows to the right.
    let shot = screenshot(&report, 1400, 4000);
    let magenta = count_color(&shot, highlight, 12);
    assert!(
        magenta > 4 * 400,
        "misclassified chips are framed and points outlined ({magenta} pixels)"
    );
    assert!(count_color(&shot, PALETTE[3].1, 10) > 100_000, "the map shows");
    let ds = gdal::Dataset::open(&shot).unwrap();
    assert_eq!(ds.raster_size().0, 1400);
    let edge: Vec<u8> = ds
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((1385, 0), (15, 4000), (15, 4000), None)
        .unwrap()
        .data()
        .to_vec();
    assert!(
        edge.iter().all(|&v| v == 0x1f || v == 0xee),
        "only the header and the background at the right edge"
    );
}

#[test]
fn report_chips_are_checked_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = |extra: &[&str]| {
        let mut args = classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture("synthetic/colors.dlpk"),
            Some(&fixture("synthetic/objects.gpkg")),
            &d.join("o.gpkg"),
            extra,
        );
        args.extend(["--layer".to_string(), "polygons".to_string()]);
        args
    };
    let line = run_err(
        &base(&["--report-chips", "4"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(
        line.contains("--report-chips") && line.contains("--report FILE.html"),
        "{line}"
    );
    let report = d.join("r.html");
    let line = run_err(
        &base(&["--report", report.to_str().unwrap(), "--report-chips", "101"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--report-chips 101 is more than 100"), "{line}");
    assert!(!d.join("o.gpkg").exists() && !report.exists());
    // 0: no gallery, the rest of the page as usual.
    run_owned_ok(&base(&["--report", report.to_str().unwrap(), "--report-chips", "0"]));
    let html = fs::read_to_string(&report).unwrap();
    assert!(!html.contains("id=\"gallery\"") && html.contains("id=\"run-details\""));
}

/// The report's marks of misclassified rows (gallery chips, legend count, map outlines) match
/// truth values as the accuracy does: truth given as class `Value`s (yellow = 4, white = 5)
/// marks exactly the rows truth given as names marks (before, every row whose truth was a
/// `Value` was marked, though the accuracy counted it right).
#[test]
fn truth_given_by_class_value_marks_the_same_rows_as_truth_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Border points between yellow and white as in the gallery test: d < 0 is called yellow.
    let points: Vec<(i64, f64, f64, &str, &str)> = vec![
        (1, 128.0 - 6.0 + 0.5, 160.0, "yellow", "4"),
        (2, 128.0 + 1.0 + 0.5, 160.0, "yellow", "4"), // called white: misclassified
        (3, 128.0 - 4.0 + 0.5, 160.0, "white", "5"),  // called yellow: misclassified
        (4, 128.0 + 2.0 + 0.5, 160.0, "white", "5"),
        (5, 32.0, 32.0, "red", "1"),
    ];
    let marks = |by_value: bool| {
        let sub = d.join(if by_value { "value" } else { "name" });
        fs::create_dir_all(&sub).unwrap();
        let features = sub.join("points.geojson");
        let truth: Vec<(i64, f64, f64, &str)> = points
            .iter()
            .map(|&(id, col, row, name, value)| (id, col, row, if by_value { value } else { name }))
            .collect();
        write_points(&features, &truth);
        let report = sub.join("report.html");
        let args = classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture("synthetic/colors.dlpk"),
            Some(&features),
            &sub.join("out.gpkg"),
            &["--truth-field", "truth", "--report", report.to_str().unwrap()],
        );
        run_owned_ok(&args);
        let page = dom(&report);
        let mut chips: Vec<(String, String)> = select(&page, "#gallery figure.chip")
            .iter()
            .map(|f| {
                let a = |name: &str| f.value().attr(name).unwrap_or_default().to_string();
                (a("data-source-oid"), a("data-misclassified"))
            })
            .collect();
        chips.sort();
        let legend = text(&select(&page, "#legend-misclassified .count")[0]);
        let accuracy = text(&select(&page, "#accuracy-line")[0]);
        (chips, legend, accuracy)
    };
    let by_name = marks(false);
    let expected: Vec<(String, String)> = [("1", false), ("2", true), ("3", true), ("4", false), ("5", false)]
        .iter()
        .map(|(oid, wrong)| (oid.to_string(), wrong.to_string()))
        .collect();
    assert_eq!(by_name.0, expected);
    assert_eq!(by_name.1, "2");
    assert!(by_name.2.starts_with("Accuracy 0.6000"), "{}", by_name.2);
    assert_eq!(marks(true), by_name);
}

/// A multi-label model's truth is a set: a row is right when its label set is the expected set
/// (exact-set accuracy), and precision and recall count each class's decision on each row.
/// Everything is recomputed here from the labels the run wrote.
#[test]
fn multi_label_truth_is_scored_as_sets_and_per_class_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let package = multi_label_colors(d);
    let summary = d.join("summary.json");
    let report = d.join("multi.html");
    let out = d.join("multi.gpkg");
    let args = classify_args(
        &fixture("synthetic/colors.tif"),
        &package,
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &[
            "--layer",
            "polygons",
            "--model-arg",
            "threshold=0.6",
            "--truth-field",
            "truth",
            "--summary-json",
            summary.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    run_owned_ok(&args);
    let rows = read_rows(&out, None);
    let sets: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let label = r.text("ClassLabel").unwrap_or_default();
            let set = label.split(';').filter(|c| !c.is_empty()).map(String::from).collect();
            (r.text("truth").unwrap(), set)
        })
        .collect();
    // The test needs rows with two labels and rows with the one expected label.
    assert!(sets.iter().any(|(_, s)| s.len() > 1) && sets.iter().any(|(t, s)| s == &vec![t.clone()]));
    let exact = sets.iter().filter(|(t, s)| s == &vec![t.clone()]).count();
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let truth = &json["truth"];
    assert_eq!(truth["label_sets"], true);
    assert_eq!(truth["compared"], 16);
    assert!(
        (truth["accuracy"].as_f64().unwrap() - exact as f64 / 16.0).abs() < 1e-12,
        "{truth}"
    );
    assert!(truth["kappa"].is_null());
    // The report's legend counts wrong rows (not the classes of their sets).
    let page = dom(&report);
    assert_eq!(
        text(&select(&page, "#legend-misclassified .count")[0]),
        (16 - exact).to_string()
    );
    assert_eq!(
        truth["classes"].as_array().unwrap().len(),
        6,
        "every class is expected somewhere"
    );
    for class in truth["classes"].as_array().unwrap() {
        let name = class["class"].as_str().unwrap();
        let expected = sets.iter().filter(|(t, _)| t == name).count();
        let predicted = sets.iter().filter(|(_, s)| s.iter().any(|c| c == name)).count();
        let both = sets
            .iter()
            .filter(|(t, s)| t == name && s.iter().any(|c| c == name))
            .count();
        assert_eq!(class["support"], expected, "{name}");
        assert_eq!(
            class["precision"].as_f64(),
            (predicted > 0).then(|| both as f64 / predicted as f64),
            "{name}"
        );
        assert_eq!(
            class["recall"].as_f64(),
            (expected > 0).then(|| both as f64 / expected as f64),
            "{name}"
        );
    }
}

/// The report marks the rows the run judged wrong, whatever became of the truth field in the
/// output: cut to 10 characters in a Shapefile (`expected_class` -> `expected_c`), a null
/// written as an empty CSV cell. A null, empty or blank truth is no truth (not compared, not
/// marked), in every format alike.
#[test]
fn report_marks_and_accuracy_agree_whatever_the_output_does_to_the_truth_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = d.join("expected.gpkg");
    // Polygons 1-4 have no truth (null, '', '   ', null), 5 and 6 a wrong one (their painted
    // colour is another), the others their painted colour.
    polygons_by_sql(
        &features,
        "SELECT geom, id, CASE WHEN id IN (1, 4) THEN NULL WHEN id = 2 THEN '' WHEN id = 3 THEN '   ' \
         WHEN id IN (5, 6) THEN (CASE WHEN truth = 'red' THEN 'blue' ELSE 'red' END) ELSE truth END AS expected_class FROM polygons",
    );
    let run = |out: &str| {
        let (summary, report) = (d.join(format!("{out}.json")), d.join(format!("{out}.html")));
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture("synthetic/colors.dlpk"),
            Some(&features),
            &d.join(out),
            &[
                "--truth-field",
                "expected_class",
                "--summary-json",
                summary.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
                "--report-chips",
                "100",
            ],
        ));
        let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
        let page = dom(&report);
        let marked: Vec<String> = select(&page, "#gallery figure.chip[data-misclassified=\"true\"]")
            .iter()
            .map(|f| f.value().attr("data-source-oid").unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let legend = text(&select(&page, "#legend-misclassified .count")[0]);
        (
            json["truth"]["compared"].clone(),
            json["truth"]["accuracy"].clone(),
            marked,
            legend,
        )
    };
    let expected = (
        serde_json::json!(12),
        serde_json::json!(10.0 / 12.0),
        vec!["5".to_string(), "6".to_string()],
        "2".to_string(),
    );
    for out in ["out.gpkg", "out.shp", "out.csv"] {
        assert_eq!(run(out), expected, "{out}");
    }
}

/// `--truth-field TRUTH` names the field `TRUTH`, not `truth`, when the features have both.
#[test]
fn the_truth_field_of_the_exact_name_wins_over_one_differing_in_case() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Points on the middle of patches (0, 0) red, (1, 1) dark and (2, 2) white: `truth` right,
    // `TRUTH` says dark for all (right once).
    let features = d.join("both.geojson");
    let points: Vec<String> = [(1, 32.0, 32.0, "red"), (2, 96.0, 96.0, "dark"), (3, 160.0, 160.0, "white")]
        .iter()
        .map(|(id, col, row, truth)| {
            let (x, y) = pixel_to_map(*col, *row);
            format!(
                r#"{{"type":"Feature","id":{id},"properties":{{"truth":"{truth}","TRUTH":"dark"}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
            )
        })
        .collect();
    fs::write(
        &features,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            points.join(",")
        ),
    )
    .unwrap();
    let accuracy = |field: &str| {
        let summary = d.join(format!("{field}.json"));
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture("synthetic/colors.dlpk"),
            Some(&features),
            &d.join(format!("{field}.geojson")),
            &["--truth-field", field, "--summary-json", summary.to_str().unwrap()],
        ));
        let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
        json["truth"]["accuracy"].as_f64().unwrap()
    };
    assert_eq!(accuracy("truth"), 1.0);
    assert_eq!(accuracy("TRUTH"), 1.0 / 3.0);
}
