//! `--bands` and `--nodata`: the raster read as if it had only the listed bands, with another
//! NoData.

use std::path::Path;
use std::path::PathBuf;

use gdal::spatial_ref::SpatialRef;

use crate::support::*;

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
