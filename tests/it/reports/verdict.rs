//! What a reviewer reads first and finds again (#23.1, #23.5): the verdict at the top of the
//! report with every warning the run said, the run date and version; each gallery chip with
//! the feature drawn on it and the map coordinates of its centre; every feature named on the
//! map; and a multi-label run counted per class, with a row without a label counted as such.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use gdal::vector::LayerAccess;
use gdal::Dataset;

use crate::support::*;

fn page(path: &Path) -> scraper::Html {
    scraper::Html::parse_document(&fs::read_to_string(path).unwrap())
}

fn attr<'a>(element: &scraper::ElementRef<'a>, name: &str) -> &'a str {
    element.value().attr(name).unwrap_or_default()
}

/// A polygon's envelope and exterior ring.
type Polygon = ([f64; 4], Vec<(f64, f64)>);

/// The synthetic polygons by feature id: envelope (min x, min y, max x, max y) and the exterior
/// ring's vertices, in the raster's CRS (both are UTM 33N).
fn polygons_by_fid() -> BTreeMap<u64, Polygon> {
    let ds = Dataset::open(objects()).unwrap();
    let mut layer = ds.layer_by_name("polygons").unwrap();
    layer
        .features()
        .map(|f| {
            let g = f.geometry().unwrap();
            let e = g.envelope();
            let ring = g.get_geometry(0);
            let vertices = (0..ring.point_count())
                .map(|k| {
                    let (x, y, _) = ring.get_point(k as i32);
                    (x, y)
                })
                .collect();
            (f.fid().unwrap(), ([e.MinX, e.MinY, e.MaxX, e.MaxY], vertices))
        })
        .collect()
}

/// The numbers of an SVG path's `d`, in order.
fn path_numbers(d: &str) -> Vec<f64> {
    d.split(|c: char| c.is_ascii_alphabetic() || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn a_failed_gate_and_every_warning_are_at_the_top_of_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let swapped = swapped_package(d);
    // A style the user keeps beside the output: the run leaves it and warns.
    let out = d.join("bad.shp");
    fs::write(d.join("bad.qml"), "<qgis><!-- mine --></qgis>").unwrap();
    let report = d.join("bad.html");
    let run = run_colors(
        &out,
        &swapped,
        &[
            "--truth-field",
            "truth",
            "--min-accuracy",
            "0.9",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    let html = page(&report);
    let verdict = select(&html, "main > section#verdict");
    assert_eq!(verdict.len(), 1, "the verdict is a section of the page");
    let first = select(&html, "main > section").into_iter().next().unwrap();
    assert_eq!(attr(&first, "id"), "verdict", "the verdict comes first");
    assert_eq!(attr(&verdict[0], "data-exit-status"), "3");
    assert!(attr(&verdict[0], "class").contains("failed"));
    assert_eq!(
        text(&select(&html, "#verdict-line")[0]),
        "Failed: accuracy 0.6250 is below --min-accuracy 0.9 (exit 3)"
    );
    let date = text(&select(&html, "#run-date")[0]);
    assert!(
        date.contains(&format!("classify-objects {}", env!("CARGO_PKG_VERSION")))
            && date
                .split_whitespace()
                .nth(2)
                .is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "{date}"
    );
    // Every warning printed is listed, word for word.
    let printed: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("classify-objects: warning: "))
        .collect();
    assert!(printed.iter().any(|w| w.contains("no QGIS style written")), "{stderr}");
    let listed: Vec<String> = select(&html, "#warnings li").iter().map(text).collect();
    let printed: Vec<String> = printed
        .iter()
        .map(|w| w.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(listed, printed);
    assert_eq!(
        fs::read_to_string(d.join("bad.qml")).unwrap(),
        "<qgis><!-- mine --></qgis>"
    );

    // A run that passes says so, and that it had no warning.
    let good = d.join("good.html");
    let run = run_colors(
        &d.join("good.gpkg"),
        &colors_dlpk(),
        &[
            "--truth-field",
            "truth",
            "--min-accuracy",
            "0.9",
            "--report",
            good.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let html = page(&good);
    assert_eq!(
        text(&select(&html, "#verdict-line")[0]),
        "Passed: accuracy 1.0000 ≥ --min-accuracy 0.9 (exit 0)"
    );
    assert_eq!(select(&html, "#warnings-none").len(), 1);
}

#[test]
fn gallery_chips_show_their_feature_and_where_it_is_and_the_map_names_every_feature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (out, report) = (d.join("out.gpkg"), d.join("r.html"));
    let run = run_colors(
        &out,
        &colors_dlpk(),
        &["--report", report.to_str().unwrap(), "--report-chips", "100"],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let html = page(&report);
    let polygons = polygons_by_fid();
    let chips = select(&html, "figure.chip");
    assert_eq!(chips.len(), 16, "every polygon is in the gallery");
    // colors.tif: origin (500000, 5800000), 2 m pixels; 32 x 32 chips cut at a fixed size.
    let to_pixel = |(x, y): (f64, f64)| ((x - 500_000.0) / 2.0, (5_800_000.0 - y) / 2.0);
    for chip in chips {
        let fid: u64 = attr(&chip, "data-source-oid").parse().unwrap();
        let (envelope, ring) = &polygons[&fid];
        let centre = ((envelope[0] + envelope[2]) / 2.0, (envelope[1] + envelope[3]) / 2.0);
        // Its coordinates: the centre of the feature's envelope, to a tenth of a pixel.
        let location = text(&select_in(&chip, ".location")[0]);
        let xy: Vec<f64> = location.split(", ").map(|v| v.parse().unwrap()).collect();
        assert!(
            (xy[0] - centre.0).abs() <= 0.05 && (xy[1] - centre.1).abs() <= 0.05,
            "SourceOID {fid}: {location} vs {centre:?}"
        );
        // The chip window: columns from floor(cx - 16), rows from floor(cy - 16).
        let (cx, cy) = to_pixel(centre);
        let (col, row) = ((cx - 16.0).floor(), (cy - 16.0).floor());
        let svg = &select_in(&chip, "svg.outline")[0];
        assert_eq!(attr(svg, "viewBox"), "0 0 32 32");
        let cross = path_numbers(attr(&select_in(svg, "path.centre")[0], "d"));
        let drawn_centre = ((cross[0] + cross[2]) / 2.0, cross[1]);
        assert!(
            (drawn_centre.0 - (cx - col)).abs() < 0.01 && (drawn_centre.1 - (cy - row)).abs() < 0.01,
            "SourceOID {fid}: cross at {drawn_centre:?}, feature centre at {:?}",
            (cx - col, cy - row)
        );
        // The outline: the polygon's vertices, in the chip's pixels.
        let outline = path_numbers(attr(&select_in(svg, "path:not(.centre)")[0], "d"));
        let drawn: Vec<(f64, f64)> = outline.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        let expected: Vec<(f64, f64)> = ring
            .iter()
            .map(|&p| {
                let (x, y) = to_pixel(p);
                (x - col, y - row)
            })
            .collect();
        assert_eq!(drawn.len(), expected.len(), "SourceOID {fid}");
        for (a, b) in drawn.iter().zip(&expected) {
            assert!(
                (a.0 - b.0).abs() < 0.01 && (a.1 - b.1).abs() < 0.01,
                "SourceOID {fid}: {a:?} vs {b:?}"
            );
        }
    }
    // The map names every feature on hover, with its label and confidence, at its centre.
    let rows = read_rows(&out, None);
    let tips = select(&html, "svg.map-tips circle");
    assert_eq!(tips.len(), rows.len());
    let map = &select(&html, "img#map")[0];
    let scale = 256.0 / attr(map, "width").parse::<f64>().unwrap();
    for row in &rows {
        let fid = row.number("SourceOID").unwrap() as u64;
        let said = format!(
            "SourceOID {fid}: {} {:.4}",
            row.text("ClassLabel").unwrap(),
            row.number("Confidence").unwrap()
        );
        let tip = tips
            .iter()
            .find(|t| text(t) == said)
            .unwrap_or_else(|| panic!("no tip says {said}"));
        let (envelope, _) = &polygons[&fid];
        let (cx, cy) = to_pixel(((envelope[0] + envelope[2]) / 2.0, (envelope[1] + envelope[3]) / 2.0));
        let (x, y): (f64, f64) = (attr(tip, "cx").parse().unwrap(), attr(tip, "cy").parse().unwrap());
        assert!((x - cx / scale).abs() < 0.1 && (y - cy / scale).abs() < 0.1, "{said}");
    }
}

#[test]
fn a_multi_label_report_counts_each_label_and_rows_without_one() {
    // The colour model read as multi-label (sigmoid over its scores): at 0.6 some polygons get
    // two labels; at 0.99 some get none.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let package = multi_label_colors(d);
    let mut seen_two = false;
    let mut seen_none = false;
    for threshold in ["0.6", "0.99"] {
        let (out, report, json) = (
            d.join(format!("m{threshold}.gpkg")),
            d.join(format!("m{threshold}.html")),
            d.join(format!("m{threshold}.json")),
        );
        let run = run_colors(
            &out,
            &package,
            &[
                "--model-arg",
                &format!("threshold={threshold}"),
                "--report",
                report.to_str().unwrap(),
                "--summary-json",
                json.to_str().unwrap(),
            ],
        );
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        // Counts from the rows: each label of a row, and the rows without one.
        let rows = read_rows(&out, None);
        let mut per_class: BTreeMap<String, u64> = BTreeMap::new();
        let mut none = 0;
        for row in &rows {
            let label = row.text("ClassLabel").unwrap_or_default();
            if label.is_empty() {
                none += 1;
            }
            seen_two |= label.contains(';');
            for class in label.split(';').filter(|c| !c.is_empty()) {
                *per_class.entry(class.to_string()).or_default() += 1;
            }
        }
        seen_none |= none > 0;
        let summary: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(summary["labels"], serde_json::json!(per_class), "threshold {threshold}");
        assert_eq!(summary["no_label"], none, "threshold {threshold}");
        let sets: u64 = summary["label_sets"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(sets, rows.len() as u64);
        // The report: the legend and the classes table say the same; shares are of rows.
        let html = page(&report);
        for item in select(&html, "#legend li.legend-item") {
            let class = attr(&item, "data-class");
            let expected = if class.is_empty() {
                none
            } else {
                per_class.get(class).copied().unwrap_or(0)
            };
            assert_eq!(attr(&item, "data-count"), expected.to_string(), "legend {class:?}");
        }
        assert_eq!(select(&html, "#legend li.legend-item").len(), PALETTE.len() + 1);
        for row in select(&html, "table#classes tr[data-class]") {
            let class = attr(&row, "data-class");
            let n = if class.is_empty() {
                none
            } else {
                per_class.get(class).copied().unwrap_or(0)
            };
            let cells: Vec<String> = select_in(&row, "td").iter().map(text).collect();
            assert_eq!(cells[1], n.to_string(), "classes table {class:?}");
            assert_eq!(
                cells[2],
                format!("{:.1} %", 100.0 * n as f64 / rows.len() as f64),
                "share of rows {class:?}"
            );
        }
        // A marker per row, and a gallery per class present (rows without a label too).
        assert_eq!(select(&html, "svg.map-tips circle").len(), rows.len());
        let galleries: Vec<String> = select(&html, "div.gallery-class")
            .iter()
            .map(|g| attr(g, "data-class").to_string())
            .collect();
        let mut expected: Vec<String> = PALETTE
            .iter()
            .map(|(name, _)| name.to_string())
            .filter(|c| per_class.contains_key(c))
            .collect();
        if none > 0 {
            expected.push(String::new());
        }
        assert_eq!(galleries, expected, "threshold {threshold}");
        for gallery in select(&html, "div.gallery-class") {
            let class = attr(&gallery, "data-class");
            for chip in select_in(&gallery, "figure.chip") {
                let label = attr(&chip, "data-label");
                assert!(
                    label.split(';').any(|l| l == class),
                    "a chip under {class:?} has labels {label:?}"
                );
            }
        }
    }
    assert!(seen_two && seen_none, "both thresholds do what they are for");
}

#[test]
fn a_raster_the_map_cannot_read_leaves_the_report_without_a_map_not_the_run_failed() {
    // colors.tif in 16 x 16 compressed tiles, a third of its tiles overwritten with noise.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let damaged = d.join("damaged.tif");
    let status = std::process::Command::new("gdal_translate")
        .args(["-q", "-co", "TILED=YES", "-co", "BLOCKXSIZE=16", "-co", "BLOCKYSIZE=16"])
        .args(["-co", "COMPRESS=DEFLATE"])
        .arg(colors_tif())
        .arg(&damaged)
        .status()
        .unwrap();
    assert!(status.success());
    let mut bytes = fs::read(&damaged).unwrap();
    let n = bytes.len();
    let mut state = 12345u64;
    for b in &mut bytes[n / 3..2 * n / 3] {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (state >> 56) as u8;
    }
    fs::write(&damaged, bytes).unwrap();
    let (out, report) = (d.join("out.gpkg"), d.join("r.html"));
    let run = run_owned(&classify_args(
        &damaged,
        &colors_dlpk(),
        Some(&objects()),
        &out,
        &["--layer", "polygons", "--report", report.to_str().unwrap()],
    ));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the report has no map"), "{stderr}");
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().any(|r| r.text("Status").as_deref() == Some("read_failed")));
    let html = page(&report);
    assert!(select(&html, "img#map").is_empty());
    assert_eq!(select(&html, "#map-problem").len(), 1);
    let listed: Vec<String> = select(&html, "#warnings li").iter().map(text).collect();
    assert!(listed.iter().any(|w| w.contains("read")), "{listed:?}");
}

#[test]
fn a_gate_with_nothing_compared_says_so_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (out, report, json) = (d.join("none.gpkg"), d.join("none.html"), d.join("none.json"));
    let run = run_colors(
        &out,
        &colors_dlpk(),
        &[
            "--where",
            "1 = 0",
            "--truth-field",
            "truth",
            "--min-accuracy",
            "0.5",
            "--report",
            report.to_str().unwrap(),
            "--summary-json",
            json.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("warning: no row was compared with --truth-field truth")
            && stderr.contains(
                "error: no row was compared with the truth field, so the run does not reach --min-accuracy 0.5"
            ),
        "{stderr}"
    );
    assert!(!stderr.contains("0.0000"), "no accuracy is made up: {stderr}");
    let html = page(&report);
    assert!(text(&select(&html, "#verdict-line")[0]).starts_with("Failed: no row was compared with the truth field"));
    let summary: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        summary["gate"],
        serde_json::json!({"min_accuracy": 0.5, "accuracy": null, "passed": false})
    );
}

#[test]
fn the_map_names_features_on_its_edge_and_rows_of_a_reprojected_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A polygon over the raster's bottom-right corner (its centre off the raster), in UTM 33N
    // as the raster.
    let corner = d.join("corner.geojson");
    fs::write(
        &corner,
        r#"{"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
            "features": [{"type": "Feature", "id": 1, "properties": {},
              "geometry": {"type": "Polygon", "coordinates": [[[500490, 5799470], [500540, 5799470],
                [500540, 5799500], [500490, 5799500], [500490, 5799470]]]}}]}"#,
    )
    .unwrap();
    let (out, report) = (d.join("corner.gpkg"), d.join("corner.html"));
    let run = run_owned(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&corner),
        &out,
        &["--report", report.to_str().unwrap()],
    ));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let rows = read_rows(&out, None);
    assert!(rows[0].text("ClassLabel").is_some());
    let html = page(&report);
    let tips = select(&html, "svg.map-tips circle");
    assert_eq!(tips.len(), 1, "the corner polygon is named");
    let width: f64 = attr(&select(&html, "img#map")[0], "width").parse().unwrap();
    let x: f64 = attr(&tips[0], "cx").parse().unwrap();
    assert!(x >= width - 1.5 && x < width, "at the right edge: {x} of {width}");

    // A CSV table in --t-srs: its rows are placed in that CRS.
    let (csv, report) = (d.join("table.csv"), d.join("table.html"));
    let run = run_colors(
        &csv,
        &colors_dlpk(),
        &["--t-srs", "EPSG:3857", "--report", report.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(select(&page(&report), "svg.map-tips circle").len(), 16);
}
