//! The images a run reads: mosaics, items processed separately, folders, COGs over HTTP, the real
//! RGBA orthophoto.

use std::fs;
use std::path::Path;

use crate::support::*;

/// Two tiles of the synthetic raster, full height, overlapping on columns 96..160:
/// A = columns 0..160, B = columns 96..256.
fn tiles(dir: &Path) -> (String, String) {
    let (a, b) = (dir.join("tiles/a.tif"), dir.join("tiles/b.tif"));
    fs::create_dir_all(dir.join("tiles")).unwrap();
    write_tile(&fixture("synthetic/colors.tif"), 0, 0, 160, 256, &a);
    write_tile(&fixture("synthetic/colors.tif"), 96, 0, 160, 256, &b);
    (a.to_str().unwrap().to_string(), b.to_str().unwrap().to_string())
}

fn classify(args: &[&str], out: &Path) -> Vec<Row> {
    let (model, features) = (fixture("synthetic/colors.dlpk"), fixture("synthetic/objects.gpkg"));
    let mut full: Vec<&str> = args.to_vec();
    full.extend([
        "-m",
        model.to_str().unwrap(),
        "-f",
        features.to_str().unwrap(),
        "--layer",
        "points",
    ]);
    full.extend(["-o", out.to_str().unwrap()]);
    run_ok(&full);
    read_rows(out, None)
}

#[test]
fn several_images_are_mosaicked_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = tiles(dir.path());
    let rows = classify(&["-r", &a, "-r", &b], &dir.path().join("mosaic.gpkg"));
    assert_eq!(rows.len(), 16, "one row per feature");
    for row in &rows {
        assert_eq!(
            row.text("ClassLabel"),
            row.text("truth"),
            "the mosaic gives back the whole raster"
        );
        assert_eq!(row.text("ImageId"), None, "no image id column for a single mosaic");
    }
    // A folder of the same images is the same input.
    let rows = classify(
        &["-r", dir.path().join("tiles").to_str().unwrap()],
        &dir.path().join("folder.gpkg"),
    );
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
}

#[test]
fn items_separately_give_one_row_per_feature_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = tiles(dir.path());
    let rows = classify(
        &["-r", &a, "-r", &b, "--processing-mode", "PROCESS_ITEMS_SEPARATELY"],
        &dir.path().join("items.gpkg"),
    );
    // Points sit at pixel column 32/96/160/224 +- 4: column-0 points are on A only, column-3 on
    // B only, column-1 and column-2 points (x in 92..100 and 156..164) fall on both.
    let points = read_rows(&fixture("synthetic/objects.gpkg"), Some("points"));
    let mut expected = Vec::new();
    for p in &points {
        let g = gdal::vector::Geometry::from_wkt(p.wkt.as_ref().unwrap()).unwrap();
        let col = (g.get_point(0).0 - 500_000.0) / 2.0;
        for (name, lo, hi) in [(&a, 0.0, 160.0), (&b, 96.0, 256.0)] {
            if col >= lo && col <= hi {
                expected.push((p.text("name").unwrap(), name.clone()));
            }
        }
    }
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.text("name").unwrap(), r.text("ImageId").unwrap()))
        .collect();
    assert_eq!(got, expected, "rows in feature order, then item order");
    assert!(got.len() > 16, "some features lie on both items");
    // Where the 32 px chip lies inside the item, the label is the painted truth.
    for row in &rows {
        let g = gdal::vector::Geometry::from_wkt(row.wkt.as_ref().unwrap()).unwrap();
        let col = (g.get_point(0).0 - 500_000.0) / 2.0;
        let (lo, hi) = if row.text("ImageId").as_deref() == Some(a.as_str()) {
            (0.0, 160.0)
        } else {
            (96.0, 256.0)
        };
        if col - 16.0 >= lo && col + 16.0 <= hi {
            assert_eq!(row.text("ClassLabel"), row.text("truth"), "{:?}", row.text("name"));
        }
    }
}

#[test]
fn folders_are_searched_by_extension_and_recursively_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("photos/sub")).unwrap();
    write_tiff_u8(
        &d.join("photos/blue.tif"),
        40,
        30,
        &uniform_planes(40, 30, PALETTE[2].1),
        false,
        None,
    );
    write_tiff_u8(
        &d.join("photos/sub/red.tif"),
        40,
        30,
        &uniform_planes(40, 30, PALETTE[0].1),
        false,
        None,
    );
    fs::write(d.join("photos/notes.txt"), "not an image").unwrap();
    let model = fixture("synthetic/colors.dlpk");
    let out = d.join("flat.csv");
    run_ok(&[
        "-r",
        d.join("photos").to_str().unwrap(),
        "-m",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 2, "only the top folder's image");
    assert!(rows[1][0].ends_with("photos/blue.tif") && rows[1][1] == "blue");
    let out = d.join("deep.csv");
    run_ok(&[
        "-r",
        d.join("photos").to_str().unwrap(),
        "--recursive",
        "-m",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_csv(&out);
    let labels: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].rsplit('/').next().unwrap(), r[1].as_str()))
        .collect();
    assert_eq!(labels, vec![("blue.tif", "blue"), ("red.tif", "red")]);
    let line = run_err(
        &[
            "-r",
            d.join("photos").to_str().unwrap(),
            "--extensions",
            "png",
            "-m",
            model.to_str().unwrap(),
            "-o",
            d.join("x.csv").to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("holds no image with extension png"), "{line}");
}

#[test]
fn a_cloud_optimized_geotiff_is_read_over_http_with_range_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let served = d.join("www");
    fs::create_dir_all(&served).unwrap();
    let source = gdal::Dataset::open(fixture("synthetic/colors.tif")).unwrap();
    let cog = gdal::DriverManager::get_driver_by_name("COG").unwrap();
    source
        .create_copy(&cog, served.join("colors_cog.tif"), &Default::default())
        .unwrap();
    let server = RangeServer::start(&served);
    let url = format!("/vsicurl/http://127.0.0.1:{}/colors_cog.tif", server.port);
    let out = d.join("remote.gpkg");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args([
            "-r",
            &url,
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            fixture("synthetic/objects.gpkg").to_str().unwrap(),
            "--layer",
            "polygons",
            "-o",
            out.to_str().unwrap(),
        ])
        .env("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
        .env("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".tif")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    assert!(
        server.range_requests.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "GDAL read the COG by ranges"
    );
}

#[test]
fn the_real_rgba_orthophoto_with_a_web_mercator_polygon_matches_the_python_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ortho.gpkg");
    let area = fixture("real/dummy_fotomap_area_3857.gpkg");
    run_ok(&[
        "-r",
        fixture("real/dummy_fotomap_small.tif").to_str().unwrap(),
        "-m",
        fixture("real/textline_cls.dlpk").to_str().unwrap(),
        "-f",
        area.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_rows(&out, None);
    let input = read_rows(&area, None);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].wkb, input[0].wkb, "the polygon is kept as given, in EPSG:3857");
    let ds = gdal::Dataset::open(&out).unwrap();
    use gdal::vector::LayerAccess;
    assert_eq!(ds.layer(0).unwrap().spatial_ref().unwrap().auth_code().unwrap(), 3857);
    let reference = read_csv(&fixture("reference/textline_cls_fotomap_area_3857.csv"));
    assert_eq!(rows[0].text("ClassLabel").as_deref(), Some(reference[1][1].as_str()));
    let p: f64 = reference[1][2].parse().unwrap();
    assert!((rows[0].number("Confidence").unwrap() - p).abs() < 1e-4);
}
