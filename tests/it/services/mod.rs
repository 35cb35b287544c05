//! ArcGIS REST services (image, cached map and feature services, models by URL) against a local
//! fake server.

mod catalog;
mod features;
mod portal;
mod results;
mod secrets;
mod timeouts;

use std::fs;
use std::path::Path;
use std::path::PathBuf;

use crate::support::arcgis::ArcGisServer;
use crate::support::arcgis::Catalog;
use crate::support::arcgis::FileSpec;
use crate::support::arcgis::LayerSpec;
use crate::support::arcgis::Tiling;
use crate::support::*;

/// Asserts that two runs dumped the same chips, naming the first that differs.
fn assert_same_chips(service: &[Chip], local: &[Chip]) {
    assert_eq!(service.len(), local.len(), "chip counts differ");
    for (a, b) in service.iter().zip(local) {
        assert_eq!((&a.0, a.1, a.2), (&b.0, b.1, b.2), "chip names or sizes differ");
        let differing =
            a.3.iter()
                .flatten()
                .zip(b.3.iter().flatten())
                .filter(|(x, y)| x != y)
                .count();
        assert_eq!(
            differing, 0,
            "{}: {differing} values differ from the local image's chip",
            a.0
        );
    }
}

/// Runs a classification with `--dump-chips` and returns the rows and the chips.
fn classify(
    raster: &str,
    model: &str,
    features: &str,
    out: &Path,
    chips: &Path,
    extra: &[&str],
) -> (Vec<Row>, Vec<Chip>) {
    let mut args = vec![
        "-r",
        raster,
        "-m",
        model,
        "-f",
        features,
        "-o",
        out.to_str().unwrap(),
        "--dump-chips",
        chips.to_str().unwrap(),
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    (read_rows(out, None), chips_in(chips))
}

/// The columns a run adds, and the input's, of every row: what must not change with where the
/// inputs come from.
fn results(rows: &[Row], fields: &[&str]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| fields.iter().map(|f| r.text(f)).collect())
        .collect()
}

/// A 6 x 4 chip package (the colour model with 4 x 6 input), for positional rasters.
fn small_chip_package(dir: &Path) -> PathBuf {
    let edits = [
        ("\"ImageWidth\": 32", "\"ImageWidth\": 6"),
        ("\"ImageHeight\": 32", "\"ImageHeight\": 4"),
    ];
    let options = onnx::ColorModelOptions {
        chip: Some((4, 6)),
        ..Default::default()
    };
    color_package(dir, "small.dlpk", &edits, &options, &imagenet())
}

/// A dumped chip: file name, width, height, planes.
type Chip = (String, usize, usize, Vec<Vec<f32>>);

/// The chips a run dumped, in feature order.
fn chips_in(dir: &Path) -> Vec<Chip> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let (w, h, planes) = read_chip(f);
            (f.file_name().unwrap().to_string_lossy().into_owned(), w, h, planes)
        })
        .collect()
}

/// Asserts that a run succeeded.
fn run_ok_with(output: &std::process::Output) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn an_image_server_gives_the_chips_of_the_local_image_pixel_for_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Float32 pixels that encode their own band and position; wider and taller than one
    // exportImage block (512), so chips are cut across blocks and from the clamped edge block.
    let raster = d.join("pos.tif");
    TestRaster::positional(600, 530, 3).write(&raster);
    let features = d.join("f.geojson");
    write_pixel_features(
        &features,
        &[
            "POINT (10.3 7.8)",                                            // window (7, 5)
            "POINT (513.5 300.5)",                                         // (510, 298): across the block edge
            "POLYGON ((590 520,599.5 520,599.5 529.9,590 529.9,590 520))", // (591, 522): edge block
            "POINT (1.2 0.6)",                                             // (-2, -2): partly outside
        ],
    );
    let server = ArcGisServer::start(Catalog {
        image_servers: vec![("Positional".into(), raster.clone())],
        ..Default::default()
    });
    let url = server.service_url("Positional", "ImageServer");
    let package = small_chip_package(d);
    let model = package.to_str().unwrap();
    let feats = features.to_str().unwrap();
    let (local_rows, local_chips) = classify(
        raster.to_str().unwrap(),
        model,
        feats,
        &d.join("local.gpkg"),
        &d.join("local"),
        &[],
    );
    let (rows, chips) = classify(&url, model, feats, &d.join("service.gpkg"), &d.join("service"), &[]);

    assert_eq!(chips.len(), 4);
    assert_same_chips(&chips, &local_chips);
    // And both are the known windows of the positional raster.
    for ((_, w, h, planes), (col0, row0)) in chips.iter().zip([(7i64, 5i64), (510, 298), (591, 522), (-2, -2)]) {
        assert_eq!((*w, *h), (6, 4));
        for (b, plane) in planes.iter().enumerate() {
            for (i, &v) in plane.iter().enumerate() {
                let (col, row) = (col0 + (i % 6) as i64, row0 + (i / 6) as i64);
                let expected = if col < 0 || row < 0 || col >= 600 || row >= 530 {
                    0.0
                } else {
                    TestRaster::value(b, col as usize, row as usize)
                };
                assert_eq!(v, expected, "chip at {col0},{row0} band {b} pixel {i}");
            }
        }
    }
    let fields = ["n", "SourceOID", "ClassLabel", "Confidence", "Status"];
    assert_eq!(results(&rows, &fields), results(&local_rows, &fields));
    // The service was read the way the README says: exportImage, lossless TIFF, nearest
    // neighbour, in the service's own CRS.
    let exports: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/exportImage"))
        .collect();
    assert!(!exports.is_empty());
    for request in &exports {
        for part in [
            "format=tiff",
            "interpolation=RSP_NearestNeighbor",
            "bboxSR=32633",
            "imageSR=32633",
            "f=image",
        ] {
            assert!(request.contains(part), "{request} lacks {part}");
        }
    }
}

#[test]
fn real_image_and_feature_services_classify_like_the_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = fixture("real/RGB.byte.tif");
    let features = fixture("real/RGB.byte.foot.gpkg");
    let server = ArcGisServer::start(Catalog {
        image_servers: vec![("RGB".into(), raster.clone())],
        feature_layers: vec![("Footprints".into(), LayerSpec::new(features.clone(), None, 4))],
        ..Default::default()
    });
    let model = fixture("real/textline_cls.dlpk");
    let model = model.to_str().unwrap();
    let (local_rows, local_chips) = classify(
        raster.to_str().unwrap(),
        model,
        features.to_str().unwrap(),
        &d.join("local.gpkg"),
        &d.join("local"),
        &[],
    );
    // A token given with the URLs goes with every request.
    let layer_url = format!("{}/0?token=t0k3n", server.service_url("Footprints", "FeatureServer"));
    let (rows, chips) = classify(
        &format!("{}?token=t0k3n", server.service_url("RGB", "ImageServer")),
        model,
        &layer_url,
        &d.join("service.gpkg"),
        &d.join("service"),
        &[],
    );
    // 9 footprints, 4 per page: three pages, every feature classified once, in order.
    assert_eq!(rows.len(), 9);
    assert_eq!(chips.len(), 9);
    assert_same_chips(&chips, &local_chips);
    let fields = [
        "id",
        "filename",
        "val",
        "SourceOID",
        "ClassLabel",
        "Confidence",
        "Status",
    ];
    assert_eq!(results(&rows, &fields), results(&local_rows, &fields));
    // Every footprint was classified (one self-intersecting polygon is flagged, as locally).
    assert!(rows.iter().all(|r| r.text("ClassLabel").is_some()), "{rows:?}");
    for offset in ["resultOffset=4", "resultOffset=8"] {
        assert!(
            server.count(offset) >= 1,
            "no page at {offset}: {:?}",
            server.requests()
        );
    }
    assert_eq!(server.count("resultOffset=12"), 0);
    assert!(
        server.count("orderByFields=OBJECTID ASC") >= 3,
        "{:?}",
        server.requests()
    );
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.contains("/exportImage")));
    assert!(requests.iter().any(|r| r.contains("returnCountOnly=true")));
    for request in &requests {
        assert!(request.contains("token=t0k3n"), "{request} lacks the token");
    }
}

#[test]
fn an_image_server_opens_with_the_size_cell_size_crs_bands_type_and_nodata_of_the_image() {
    let raster = fixture("real/RGB.byte.tif");
    let server = ArcGisServer::start(Catalog {
        image_servers: vec![("RGB".into(), raster.clone())],
        ..Default::default()
    });
    let url = server.service_url("RGB", "ImageServer");
    let service = classify_objects::open_source(&url, classify_objects::SourceKind::Raster).unwrap();
    let local = gdal::Dataset::open(&raster).unwrap();
    assert_eq!(service.raster_size(), (791, 718));
    let (a, b) = (service.geo_transform().unwrap(), local.geo_transform().unwrap());
    for i in 0..6 {
        assert!(
            (a[i] - b[i]).abs() <= 1e-9 * b[i].abs().max(1.0),
            "geotransform {a:?} vs {b:?}"
        );
    }
    assert_eq!(service.spatial_ref().unwrap().auth_code().unwrap(), 32618);
    assert_eq!(service.raster_count(), 3);
    for b in 1..=3 {
        let (served, own) = (service.rasterband(b).unwrap(), local.rasterband(b).unwrap());
        assert_eq!(served.band_type(), gdal::raster::GdalDataType::UInt8);
        assert_eq!(served.no_data_value(), Some(0.0));
        let read = |band: &gdal::raster::RasterBand| {
            band.read_as::<u8>((0, 0), (791, 718), (791, 718), None)
                .unwrap()
                .data()
                .to_vec()
        };
        let (x, y) = (read(&served), read(&own));
        assert_eq!(x.iter().zip(&y).filter(|(p, q)| p != q).count(), 0, "band {b} differs");
    }
    // Opened once per process: the description was asked for once, whatever opens it again.
    let again = classify_objects::open_source(&url, classify_objects::SourceKind::Raster).unwrap();
    assert_eq!(again.raster_size(), (791, 718));
    assert_eq!(server.count("/ImageServer?f=json"), 1, "{:?}", server.requests());
}

#[test]
fn a_cached_map_server_gives_the_chips_of_the_local_image_from_its_finest_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = fixture("synthetic/colors.tif");
    // 64-pixel tiles, three levels, the tile origin 5 tiles and 40 pixels left of and 6 tiles
    // and 24 pixels above the image: the service's extent starts inside a tile that is not the
    // first of its coarser levels' tiles, and the image is cut out of them.
    let tiling = Tiling {
        tile: 64,
        levels: 2,
        offset: (5 * 64 + 40, 6 * 64 + 24),
        missing: &[],
    };
    let server = ArcGisServer::start(Catalog {
        map_servers: vec![("Colors".into(), raster.clone(), tiling)],
        ..Default::default()
    });
    let model = fixture("synthetic/colors.dlpk");
    let features = fixture("synthetic/objects.gpkg");
    let layer = ["--layer", "polygons"];
    let (local_rows, local_chips) = classify(
        raster.to_str().unwrap(),
        model.to_str().unwrap(),
        features.to_str().unwrap(),
        &d.join("local.gpkg"),
        &d.join("local"),
        &layer,
    );
    let (rows, chips) = classify(
        &format!("{}?token=t0k3n", server.service_url("Colors", "MapServer")),
        model.to_str().unwrap(),
        features.to_str().unwrap(),
        &d.join("service.gpkg"),
        &d.join("service"),
        &layer,
    );
    assert_eq!(chips.len(), 16);
    assert_same_chips(&chips, &local_chips);
    let fields = ["id", "truth", "SourceOID", "ClassLabel", "Confidence", "Status"];
    assert_eq!(results(&rows, &fields), results(&local_rows, &fields));
    for row in &rows {
        assert_eq!(row.text("ClassLabel"), row.text("truth"), "{row:?}");
    }
    // Chips are cut at the cell size of the finest level, from its tiles only.
    let tiles: Vec<String> = server.requests().into_iter().filter(|r| r.contains("/tile/")).collect();
    assert!(!tiles.is_empty());
    assert!(tiles.iter().all(|t| t.contains("/MapServer/tile/2/")), "{tiles:?}");
    assert!(tiles.iter().all(|t| t.ends_with("?token=t0k3n")), "{tiles:?}");
    // The dumped chips sit where the local ones do (the cut to the service's extent is right).
    let first = |dir: &str| {
        let ds = gdal::Dataset::open(d.join(dir).join(&chips[0].0)).unwrap();
        ds.geo_transform().unwrap()
    };
    assert_eq!(first("service"), first("local"));

    // Without features the service is one image: exactly the local image's extent (read through
    // the coarser levels of the cache), named by its URL.
    let whole = |raster: &str, out: &Path| {
        run_ok(&["-r", raster, "-m", model.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        read_rows(out, None)
    };
    let url = server.service_url("Colors", "MapServer");
    let image = whole(&url, &d.join("whole_service.gpkg"));
    let local_image = whole(raster.to_str().unwrap(), &d.join("whole_local.gpkg"));
    assert_eq!(image.len(), 1);
    assert_eq!(image[0].wkt, local_image[0].wkt);
    assert_eq!(image[0].text("ImageId").as_deref(), Some(url.as_str()));
    assert!(server.count("/MapServer/tile/0/") + server.count("/MapServer/tile/1/") > 0);
}

#[test]
fn a_tile_the_cache_lacks_is_a_read_failure_not_black_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Tile origin 360 columns left of and 408 rows above the image, 64-pixel tiles: the chip
    // of the point at pixel (100, 100) (columns and rows 84..116) needs tiles 6..7 of rows 7..8,
    // the one at (20, 20) (4..36) tiles 5..6 of row 6. Tile (row 8, column 7) is missing.
    let tiling = Tiling {
        tile: 64,
        levels: 2,
        offset: (360, 408),
        missing: &[(2, 8, 7)],
    };
    let server = ArcGisServer::start(Catalog {
        map_servers: vec![("Colors".into(), fixture("synthetic/colors.tif"), tiling)],
        ..Default::default()
    });
    let features = d.join("points.geojson");
    write_pixel_features(&features, &["POINT (100 100)", "POINT (20 20)"]);
    let out = d.join("out.gpkg");
    let output = run_ok(&[
        "-r",
        &server.service_url("Colors", "MapServer"),
        "-m",
        fixture("synthetic/colors.dlpk").to_str().unwrap(),
        "-f",
        features.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_rows(&out, None);
    assert_eq!(rows[0].text("Status").as_deref(), Some("read_failed"));
    assert_eq!(rows[0].text("ClassLabel"), None);
    assert_eq!(rows[1].text("Status"), None);
    assert!(rows[1].text("ClassLabel").is_some());
    assert!(String::from_utf8_lossy(&output.stderr).contains("read_failed: 1"));
    assert!(server.count("/tile/2/8/7") >= 1);
}

#[test]
fn a_cached_map_server_opens_as_the_image_at_every_level_of_its_cache() {
    let raster = fixture("synthetic/colors.tif");
    let tiling = Tiling {
        tile: 64,
        levels: 2,
        offset: (5 * 64 + 40, 6 * 64 + 24),
        missing: &[],
    };
    let server = ArcGisServer::start(Catalog {
        map_servers: vec![("Colors".into(), raster.clone(), tiling)],
        ..Default::default()
    });
    let url = server.service_url("Colors", "MapServer");
    let service = classify_objects::open_source(&url, classify_objects::SourceKind::Raster).unwrap();
    let local = gdal::Dataset::open(&raster).unwrap();
    assert_eq!(service.raster_size(), local.raster_size());
    assert_eq!(service.raster_count(), 3);
    assert_eq!(service.geo_transform().unwrap(), local.geo_transform().unwrap());
    let read = |band: &gdal::raster::RasterBand| {
        let (w, h) = band.size();
        band.read_as::<u8>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .data()
            .to_vec()
    };
    for b in 1..=3 {
        let served = service.rasterband(b).unwrap();
        let full = read(&local.rasterband(b).unwrap());
        let differing = |a: &[u8], b: &[u8]| a.len().max(b.len()) - a.iter().zip(b).filter(|(x, y)| x == y).count();
        assert_eq!(differing(&read(&served), &full), 0, "band {b} at full resolution");
        // The coarser levels are the overviews (GDAL's VRT shows those of at least 128 pixels:
        // here the first); the server samples the pixel centre of each 2 x 2 block, so overview
        // pixel (i, j) is image pixel (2 i + 1, 2 j + 1).
        assert_eq!(served.overview_count().unwrap(), 1);
        let overview = served.overview(0).unwrap();
        assert_eq!(overview.size(), (128, 128));
        let expected: Vec<u8> = (0..128 * 128)
            .map(|i| {
                let (col, row) = (i % 128, i / 128);
                full[(row * 2 + 1) * 256 + col * 2 + 1]
            })
            .collect();
        assert_eq!(differing(&read(&overview), &expected), 0, "band {b}, overview 2x");
    }
}

#[test]
fn a_feature_layer_larger_than_one_page_is_classified_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = fixture("synthetic/colors.tif");
    let features = fixture("synthetic/objects.gpkg");
    let server = ArcGisServer::start(Catalog {
        feature_layers: vec![("Objects".into(), LayerSpec::new(features.clone(), Some("points"), 5))],
        ..Default::default()
    });
    let model = fixture("synthetic/colors.dlpk");
    let local = d.join("local.gpkg");
    run_owned_ok(&classify_args(
        &raster,
        &model,
        Some(&features),
        &local,
        &["--layer", "points"],
    ));
    let out = d.join("service.gpkg");
    let url = format!("{}/0", server.service_url("Objects", "FeatureServer"));
    run_ok(&[
        "-r",
        raster.to_str().unwrap(),
        "-m",
        model.to_str().unwrap(),
        "-f",
        &url,
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_rows(&out, None);
    // 16 points, 5 per page: four pages.
    assert_eq!(rows.len(), 16);
    let fields = [
        "id",
        "name",
        "truth",
        "weight",
        "SourceOID",
        "ClassLabel",
        "Confidence",
        "Status",
    ];
    assert_eq!(results(&rows, &fields), results(&read_rows(&local, None), &fields));
    for row in &rows {
        assert_eq!(row.text("ClassLabel"), row.text("truth"), "{row:?}");
    }
    // The output geometry is the input's, coordinate for coordinate.
    let wkts = |rows: &[Row]| rows.iter().map(|r| r.wkt.clone()).collect::<Vec<_>>();
    assert_eq!(wkts(&rows), wkts(&read_rows(&local, None)));
    for offset in [5, 10, 15] {
        assert!(
            server.count(&format!("resultOffset={offset}")) >= 1,
            "no page at {offset}"
        );
    }
    assert_eq!(server.count("resultOffset=20"), 0);
}

#[test]
fn a_feature_layer_whose_paging_repeats_a_page_fails_instead_of_classifying_part_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = ArcGisServer::start(Catalog {
        feature_layers: vec![(
            "Broken".into(),
            LayerSpec {
                ignore_offset: true,
                ..LayerSpec::new(fixture("synthetic/objects.gpkg"), Some("points"), 5)
            },
        )],
        ..Default::default()
    });
    let out = d.join("out.gpkg");
    let url = format!("{}/0", server.service_url("Broken", "FeatureServer"));
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            &url,
            "-o",
            out.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        line.contains("holds 16 features but its pages gave 5, OBJECTID 6, 7,"),
        "{line}"
    );
    assert!(!out.exists());
}

#[test]
fn a_model_given_by_url_is_downloaded_once_and_checked_like_a_local_package() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let package = fs::read(fixture("synthetic/colors.dlpk")).unwrap();
    let half = package[..package.len() / 2].to_vec();
    let item = "sharing/rest/content/items/0123abcd/data";
    let server = ArcGisServer::start(Catalog {
        files: vec![
            (
                item.into(),
                FileSpec {
                    bytes: package.clone(),
                    cut: None,
                },
            ),
            (
                "sharing/rest/content/items/damaged/data".into(),
                FileSpec { bytes: half, cut: None },
            ),
            (
                "sharing/rest/content/items/cut/data".into(),
                FileSpec {
                    bytes: package.clone(),
                    cut: Some(package.len() / 3),
                },
            ),
        ],
        ..Default::default()
    });
    let cache = d.join("cache");
    let raster = fixture("synthetic/colors.tif");
    let features = fixture("synthetic/objects.gpkg");
    let run_with = |model: &str, out: &Path| {
        run(&[
            "-r",
            raster.to_str().unwrap(),
            "-m",
            model,
            "-f",
            features.to_str().unwrap(),
            "--layer",
            "polygons",
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
    };
    let url = format!("{}?token=secret-1", server.file_url(item));
    let first = run_with(&url, &d.join("first.gpkg"));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stderr).contains("downloading model"));
    assert!(
        !String::from_utf8_lossy(&first.stderr).contains("secret-1"),
        "the token is not printed"
    );
    assert_eq!(server.count(item), 1);
    // The same output as the local package.
    let local = d.join("local.gpkg");
    run_owned_ok(&classify_args(
        &raster,
        &fixture("synthetic/colors.dlpk"),
        Some(&features),
        &local,
        &["--layer", "polygons"],
    ));
    let fields = ["id", "SourceOID", "ClassLabel", "Confidence", "Status"];
    assert_eq!(
        results(&read_rows(&d.join("first.gpkg"), None), &fields),
        results(&read_rows(&local, None), &fields)
    );
    // In the cache: the package, byte for byte, and the URL it came from (without the token).
    let models = cache.join("models");
    let names = files_in(&models);
    assert_eq!(names.len(), 2, "{names:?}");
    let dlpk = names.iter().find(|n| n.ends_with(".dlpk")).unwrap();
    assert_eq!(fs::read(models.join(dlpk)).unwrap(), package);
    let record = fs::read_to_string(models.join(dlpk.replace(".dlpk", ".url"))).unwrap();
    assert_eq!(record.trim_end(), server.file_url(item));
    // A second run (with a newer token, and the cache folder from the environment) asks the
    // server nothing.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args([
            "-r",
            raster.to_str().unwrap(),
            "-m",
            &format!("{}?token=secret-2", server.file_url(item)),
            "-f",
            features.to_str().unwrap(),
            "--layer",
            "polygons",
            "-o",
            d.join("second.gpkg").to_str().unwrap(),
        ])
        .env("CLASSIFY_OBJECTS_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(!String::from_utf8_lossy(&second.stderr).contains("downloading"));
    assert_eq!(server.count(item), 1, "{:?}", server.requests());
    assert_eq!(read_rows(&d.join("second.gpkg"), None).len(), 16);

    // A cached copy damaged later is named, and downloaded again once deleted.
    let cached = models.join(dlpk);
    fs::write(&cached, b"not a package any more").unwrap();
    let output = run_with(&url, &d.join("third.gpkg"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cached model {}", server.file_url(item)))
            && stderr.contains("delete it to download it again"),
        "{stderr}"
    );
    fs::remove_file(&cached).unwrap();
    run_ok_with(&run_with(&url, &d.join("fourth.gpkg")));
    assert_eq!(server.count(item), 2);
    assert_eq!(fs::read(&cached).unwrap(), package);

    // A damaged package (half of it) and a transfer cut short are refused, and nothing of
    // them stays in the cache.
    for (which, expected) in [("damaged", "is not a readable zip archive"), ("cut", "failed")] {
        let url = server.file_url(&format!("sharing/rest/content/items/{which}/data"));
        let out = d.join(format!("{which}.gpkg"));
        let output = run_with(&url, &out);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{which}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("classify-objects: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(
            errors[0].contains(expected) && errors[0].contains(&url),
            "{}",
            errors[0]
        );
        assert!(!out.exists());
        assert_eq!(files_in(&models), names, "{which} left something in the cache");
    }
}

#[test]
fn services_that_cannot_be_read_as_asked_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = ArcGisServer::start(Catalog {
        image_servers: vec![("RGB".into(), fixture("real/RGB.byte.tif"))],
        dynamic_map_servers: vec!["Streets".into()],
        feature_layers: vec![
            (
                "Objects".into(),
                LayerSpec::new(fixture("synthetic/objects.gpkg"), Some("points"), 5),
            ),
            (
                "Unpaged".into(),
                LayerSpec {
                    no_paging: true,
                    ..LayerSpec::new(fixture("synthetic/objects.gpkg"), Some("points"), 5)
                },
            ),
        ],
        ..Default::default()
    });
    let model = fixture("synthetic/colors.dlpk");
    let features = fixture("synthetic/objects.gpkg");
    let out = d.join("out.gpkg");
    let attempt = |raster: &str, features: &str| {
        run_err(
            &[
                "-r",
                raster,
                "-m",
                model.to_str().unwrap(),
                "-f",
                features,
                "-o",
                out.to_str().unwrap(),
            ],
            2,
        )
    };
    let local = features.to_str().unwrap();
    let line = attempt(&server.service_url("Streets", "MapServer"), local);
    assert!(line.contains("has no tile cache"), "{line}");
    let layer = format!("{}/0", server.service_url("Objects", "FeatureServer"));
    let line = attempt(&layer, local);
    assert!(line.contains("is a feature layer; give it to --features"), "{line}");
    let line = attempt(
        fixture("synthetic/colors.tif").to_str().unwrap(),
        &server.service_url("RGB", "ImageServer"),
    );
    assert!(line.contains("is an image or map service, not a layer"), "{line}");
    let line = attempt(
        &format!("{}?token=s3cr3t", server.service_url("Missing", "ImageServer")),
        local,
    );
    assert!(line.contains("answered: Invalid URL (code 400)"), "{line}");
    assert!(
        line.contains("ImageServer?token=***") && !line.contains("s3cr3t"),
        "{line}"
    );
    let line = attempt(
        fixture("synthetic/colors.tif").to_str().unwrap(),
        &format!("{}/0", server.service_url("Unpaged", "FeatureServer")),
    );
    assert!(
        line.contains("holds 16 features but returns at most 5 per request and cannot page"),
        "{line}"
    );
    assert!(!out.exists());
}
