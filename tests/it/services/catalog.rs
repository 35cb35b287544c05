//! An image service with a catalog, processed item by item as Esri's tool does with
//! PROCESS_ITEMS_SEPARATELY: each catalog item read alone (its footprint, a lock-raster mosaic
//! rule), one row per feature and item, `ImageId` the item's name.

use std::fs;
use std::path::Path;

use crate::support::arcgis::{ArcGisServer, Catalog};
use crate::support::*;

/// Two items of the synthetic raster on its pixel grid, full height, overlapping on columns
/// 96..160: a = columns 0..160, b = columns 96..256.
fn tiles(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a, b) = (dir.join("a.tif"), dir.join("b.tif"));
    write_tile(&fixture("synthetic/colors.tif"), 0, 0, 160, 256, &a);
    write_tile(&fixture("synthetic/colors.tif"), 96, 0, 160, 256, &b);
    (a, b)
}

fn classify(raster: &[&str], mode: &str, out: &Path) -> Vec<Row> {
    let (model, features) = (fixture("synthetic/colors.dlpk"), fixture("synthetic/objects.gpkg"));
    let mut args: Vec<&str> = Vec::new();
    for r in raster {
        args.extend(["-r", r]);
    }
    args.extend([
        "-m",
        model.to_str().unwrap(),
        "-f",
        features.to_str().unwrap(),
        "--layer",
        "points",
        "--processing-mode",
        mode,
        "-o",
        out.to_str().unwrap(),
    ]);
    run_ok(&args);
    read_rows(out, None)
}

#[test]
fn items_separately_on_an_image_service_give_one_row_per_feature_and_catalog_item() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("tiles")).unwrap();
    let (a, b) = tiles(&d.join("tiles"));
    let server = ArcGisServer::start(Catalog {
        image_catalogs: vec![("Tiles".into(), vec![("a".into(), a.clone()), ("b".into(), b.clone())])],
        ..Default::default()
    });
    let url = server.service_url("Tiles", "ImageServer");
    let local = classify(
        &[a.to_str().unwrap(), b.to_str().unwrap()],
        "PROCESS_ITEMS_SEPARATELY",
        &d.join("local.gpkg"),
    );
    // Esri's label, as its tool shows it.
    let rows = classify(&[&url], "Process all raster items separately", &d.join("service.gpkg"));
    let key = |rows: &[Row], image: &dyn Fn(Option<String>) -> Option<String>| -> Vec<Vec<Option<String>>> {
        rows.iter()
            .map(|r| {
                vec![
                    r.text("name"),
                    image(r.text("ImageId")),
                    r.text("ClassLabel"),
                    r.text("Confidence"),
                    r.text("Status"),
                ]
            })
            .collect()
    };
    let (a_name, b_name) = (a.display().to_string(), b.display().to_string());
    let local_as_items = key(&local, &|id| {
        id.map(|id| {
            if id == a_name {
                "a".into()
            } else if id == b_name {
                "b".into()
            } else {
                id
            }
        })
    });
    assert!(rows.len() > 16, "some features lie on both items: {}", rows.len());
    assert_eq!(key(&rows, &|id| id), local_as_items);
    // Each item was read alone: its footprint, its pixels only.
    let exports: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/exportImage"))
        .collect();
    assert!(
        exports.iter().any(|r| r.contains("\"lockRasterIds\":[1]")),
        "{exports:?}"
    );
    assert!(
        exports.iter().any(|r| r.contains("\"lockRasterIds\":[2]")),
        "{exports:?}"
    );
    assert!(
        exports.iter().all(|r| r.contains("esriMosaicLockRaster")),
        "{exports:?}"
    );
    // As a mosaic (the default), one row per feature.
    let mosaic = classify(&[&url], "process_as_mosaicked_image", &d.join("mosaic.gpkg"));
    assert_eq!(mosaic.len(), 16);
    assert!(mosaic.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
}

#[test]
fn a_wrong_processing_mode_lists_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gpkg");
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "--processing-mode",
            "separately",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        line.contains("PROCESS_AS_MOSAICKED_IMAGE (\"Process as mosaicked image\") or PROCESS_ITEMS_SEPARATELY (\"Process all raster items separately\")"),
        "{line}"
    );
    assert!(!out.exists());
}

/// A catalog larger than one query page is read whole: every id (unpaged), then the items a
/// page of ids at a time; the rows are those of a catalog read in one query.
#[test]
fn a_catalog_larger_than_one_page_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("tiles")).unwrap();
    let (a, b) = tiles(&d.join("tiles"));
    let items = vec![("a".into(), a.clone()), ("b".into(), b.clone())];
    let rows_with_page = |page: usize| {
        let server = ArcGisServer::start(Catalog {
            image_catalogs: vec![("Tiles".into(), items.clone())],
            catalog_page: Some(page),
            ..Default::default()
        });
        let url = server.service_url("Tiles", "ImageServer");
        let rows = classify(&[&url], "PROCESS_ITEMS_SEPARATELY", &d.join(format!("page{page}.gpkg")));
        let queries: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|r| r.contains("/ImageServer/query") && r.contains("objectIds=") && r.contains("outFields"))
            .collect();
        let rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.text("name"),
                    r.text("ImageId"),
                    r.text("ClassLabel"),
                    r.text("Confidence"),
                ]
            })
            .collect();
        (rows, queries)
    };
    let (whole, whole_queries) = rows_with_page(1000);
    let (paged, paged_queries) = rows_with_page(1);
    assert!(whole.iter().any(|r| r[1].as_deref() == Some("b")), "{whole:?}");
    assert_eq!(paged, whole);
    assert_eq!(whole_queries.len(), 1, "{whole_queries:?}");
    assert_eq!(paged_queries.len(), 2, "{paged_queries:?}");
}
