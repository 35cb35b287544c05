//! Chips are cut in raster-block order and rows still leave in input order; remote COGs are read
//! about tile by tile.

use std::fs;
use std::path::Path;
use std::process::Command;

use gdal::Metadata;

use crate::support::*;

/// `(SourceOID, ClassLabel, Confidence)` of every row, in output order.
fn answers(path: &Path) -> Vec<(String, Option<String>, Option<f64>)> {
    read_rows(path, None)
        .iter()
        .map(|r| {
            (
                r.text("SourceOID").unwrap(),
                r.text("ClassLabel"),
                r.number("Confidence"),
            )
        })
        .collect()
}

#[test]
fn features_in_any_order_give_the_same_rows_in_their_own_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let points = fixture("real/RGB.byte.bench_points_2000.gpkg");
    // The same points in a shuffled order, each with its original id in `orig`.
    let shuffled = d.join("shuffled.gpkg");
    let status = Command::new("ogr2ogr")
        .args(["-dialect", "SQLite", "-sql"])
        .arg("SELECT fid * 1 AS orig, geom FROM points ORDER BY (fid * 7919) % 2003")
        .arg(&shuffled)
        .arg(&points)
        .status()
        .unwrap();
    assert!(status.success());
    let (a, b) = (d.join("ordered.gpkg"), d.join("shuffled_out.gpkg"));
    let model = fixture("real/textline_cls.dlpk");
    run_owned_ok(&classify_args(
        &fixture("real/RGB.byte.tif"),
        &model,
        Some(&points),
        &a,
        &[],
    ));
    run_owned_ok(&classify_args(
        &fixture("real/RGB.byte.tif"),
        &model,
        Some(&shuffled),
        &b,
        &["--threads", "2"],
    ));
    let original = |r: &Row| r.text("orig").unwrap();
    let input_order: Vec<String> = read_rows(&shuffled, None).iter().map(original).collect();
    let output = read_rows(&b, None);
    let output_order: Vec<String> = output.iter().map(original).collect();
    assert_eq!(output.len(), 2000);
    assert!(output_order == input_order, "rows leave in the input's order");
    let sorted: Vec<String> = (1..=2000).map(|i| i.to_string()).collect();
    assert!(output_order != sorted, "the input really is shuffled");
    // ... with the same answers as in the original order.
    let ordered = answers(&a);
    let by_id: std::collections::HashMap<&String, &(String, Option<String>, Option<f64>)> =
        ordered.iter().map(|r| (&r.0, r)).collect();
    for row in &output {
        let other = by_id[&original(row)];
        assert_eq!(row.text("ClassLabel"), other.1, "feature {}", original(row));
        match (row.number("Confidence"), other.2) {
            (Some(x), Some(y)) => assert!((x - y).abs() < 1e-5, "feature {}", original(row)),
            (x, y) => assert_eq!(x, y, "feature {}", original(row)),
        }
    }
}

#[test]
fn a_remote_cog_is_fetched_about_tile_by_tile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 3164 x 2872 COG of 256 x 256 DEFLATE tiles (RGB.byte, four times larger).
    let cog = d.join("big.tif");
    let status = Command::new("gdal_translate")
        .args(["-q", "-outsize", "400%", "400%", "-r", "bilinear", "-of", "COG"])
        .args([
            "-co",
            "BLOCKSIZE=256",
            "-co",
            "COMPRESS=DEFLATE",
            "-co",
            "OVERVIEWS=NONE",
        ])
        .arg(fixture("real/RGB.byte.tif"))
        .arg(&cog)
        .status()
        .unwrap();
    assert!(status.success());
    // 40 of the points: a small part of the image's tiles.
    let few = d.join("few.gpkg");
    let status = Command::new("ogr2ogr")
        .args(["-limit", "40"])
        .arg(&few)
        .arg(fixture("real/RGB.byte.bench_points_2000.gpkg"))
        .status()
        .unwrap();
    assert!(status.success());

    // The tiles the chips touch, and their compressed sizes from the file's own index.
    let emd: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixture("real/textline_cls.emd")).unwrap()).unwrap();
    let (w, h) = (
        emd["ImageWidth"].as_i64().unwrap(),
        emd["ImageHeight"].as_i64().unwrap(),
    );
    let ds = gdal::Dataset::open(&cog).unwrap();
    let gt = ds.geo_transform().unwrap();
    let (width, height) = ds.raster_size();
    let band = ds.rasterband(1).unwrap();
    let (bw, bh) = band.block_size();
    let mut touched = std::collections::BTreeSet::new();
    for row in read_rows(&few, None) {
        let point = gdal::vector::Geometry::from_wkt(row.wkt.as_ref().unwrap()).unwrap();
        let (x, y, _) = point.get_point(0);
        let (cx, cy) = ((x - gt[0]) / gt[1], (y - gt[3]) / gt[5]);
        let (c0, r0) = (
            (cx - w as f64 / 2.0).floor() as i64,
            (cy - h as f64 / 2.0).floor() as i64,
        );
        let (c1, r1) = ((c0 + w).min(width as i64) - 1, (r0 + h).min(height as i64) - 1);
        for by in (r0.max(0) / bh as i64)..=(r1 / bh as i64) {
            for bx in (c0.max(0) / bw as i64)..=(c1 / bw as i64) {
                touched.insert((bx, by));
            }
        }
    }
    let tile_bytes: usize = touched
        .iter()
        .map(|(bx, by)| {
            band.metadata_item(&format!("BLOCK_SIZE_{bx}_{by}"), "TIFF")
                .expect("the tile's size in the TIFF index")
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    let tiles = (width.div_ceil(bw)) * (height.div_ceil(bh));
    assert!(touched.len() * 2 < tiles, "{} of {tiles} tiles touched", touched.len());

    let server = RangeServer::start(d);
    let url = format!("/vsicurl/http://127.0.0.1:{}/big.tif", server.port);
    let summary = d.join("summary.json");
    let out = d.join("out.gpkg");
    run_owned_ok(&classify_args(
        Path::new(&url),
        &fixture("real/textline_cls.dlpk"),
        Some(&few),
        &out,
        &["--summary-json", summary.to_str().unwrap()],
    ));
    assert_eq!(read_rows(&out, None).len(), 40);
    let served = server.bytes_served.load(std::sync::atomic::Ordering::SeqCst);
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let reported = json["network"]["bytes_fetched"].as_u64().unwrap() as usize;
    let requests = json["network"]["requests"].as_u64().unwrap();
    assert!(requests > 0 && reported > 0, "{json}");
    // The summary says what the server sent.
    assert!(
        reported.abs_diff(served) * 20 <= served,
        "reported {reported}, served {served}"
    );
    eprintln!(
        "fetched {served} bytes in {requests} requests for {} tiles of {tile_bytes} compressed bytes ({:.2}x)",
        touched.len(),
        served as f64 / tile_bytes as f64
    );
    assert!(
        served * 10 <= tile_bytes * 13,
        "fetched {served} bytes for {} tiles of {tile_bytes} compressed bytes ({:.2}x)",
        touched.len(),
        served as f64 / tile_bytes as f64
    );
}
