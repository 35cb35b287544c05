//! The `.emd` chip rules, checked on rasters whose pixel values encode their position (through
//! `--dump-chips`): the floor rule and zero fill, NoData and alpha, band names, variable crops,
//! blackening, normalisation, cell sizes and overviews.

use std::path::Path;
use std::path::PathBuf;

use crate::support::*;

/// A 6 x 4 chip package (the colour model with 4 x 6 input) with extra `.emd` edits.
fn package(dir: &Path, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut edits = vec![
        ("\"ImageWidth\": 32", "\"ImageWidth\": 6"),
        ("\"ImageHeight\": 32", "\"ImageHeight\": 4"),
    ];
    edits.extend_from_slice(replace);
    let options = onnx::ColorModelOptions {
        chip: Some((4, 6)),
        ..Default::default()
    };
    color_package(dir, name, &edits, &options, &imagenet())
}

/// Runs with --dump-chips and returns the chips in feature order.
fn dump(dir: &Path, raster: &Path, package: &Path, features: &Path) -> Vec<(usize, usize, Vec<Vec<f32>>)> {
    let chips = dir.join(format!("chips-{}", package.file_stem().unwrap().to_string_lossy()));
    let out = dir.join(format!("{}.gpkg", package.file_stem().unwrap().to_string_lossy()));
    run_owned_ok(&classify_args(
        raster,
        package,
        Some(features),
        &out,
        &["--dump-chips", chips.to_str().unwrap(), "--overwrite"],
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&chips).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| read_chip(f)).collect()
}

/// The expected fixed-window chip of the positional raster: value or 0 outside.
fn expected_window(col0: i64, row0: i64, w: usize, h: usize, bands: &[usize], size: (usize, usize)) -> Vec<Vec<f32>> {
    bands
        .iter()
        .map(|&b| {
            (0..w * h)
                .map(|i| {
                    let (col, row) = (col0 + (i % w) as i64, row0 + (i / w) as i64);
                    if col < 0 || row < 0 || col >= size.0 as i64 || row >= size.1 as i64 {
                        0.0
                    } else {
                        TestRaster::value(b, col as usize, row as usize)
                    }
                })
                .collect()
        })
        .collect()
}

fn plane_at(plane: &[f32], i: usize, j: usize) -> f32 {
    plane[j * 6 + i]
}

/// A uniform raster of palette colour `class`, scaled by `factor`, with a 0 and a `255 * factor`
/// pixel in a far corner so that its value range is exactly [0, 255 * factor].
fn uniform_scaled(path: &Path, class: usize, factor: f32) {
    let color = PALETTE[class].1;
    let mut raster = TestRaster::positional(40, 40, 3);
    for (b, plane) in raster.planes.iter_mut().enumerate() {
        plane.iter_mut().for_each(|v| *v = color[b] as f32 * factor);
        plane[0] = 0.0;
        plane[1] = 255.0 * factor;
    }
    raster.write(path);
}

#[test]
fn fixed_window_follows_the_floor_rule_and_zero_fills_outside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("pos.tif");
    TestRaster::positional(30, 20, 3).write(&raster);
    let features = d.join("f.geojson");
    write_pixel_features(
        &features,
        &[
            "POINT (10.3 7.8)",                                  // window col floor(7.3)=7, row floor(5.8)=5
            "POINT (1.2 0.6)",                                   // col -2, row -2: top-left outside
            "POLYGON ((25 15,29.5 15,29.5 19.9,25 19.9,25 15))", // centre (27.25, 17.45): col 24, row 15
            "LINESTRING (2 10,6 12)",                            // envelope centre (4, 11): col 1, row 9
        ],
    );
    let chips = dump(d, &raster, &package(d, "fixed.dlpk", &[]), &features);
    assert_eq!(chips.len(), 4);
    let expected = [(7, 5), (-2, -2), (24, 15), (1, 9)];
    for ((w, h, planes), (col0, row0)) in chips.iter().zip(expected) {
        assert_eq!((*w, *h), (6, 4));
        assert_eq!(
            planes,
            &expected_window(col0, row0, 6, 4, &[0, 1, 2], (30, 20)),
            "window at {col0},{row0}"
        );
    }
    // The second chip really has zeros where the window leaves the raster.
    assert_eq!(chips[1].2[0][0], 0.0);
    assert_eq!(chips[1].2[0][2 * 6 + 2], TestRaster::value(0, 0, 0));
}

#[test]
fn nodata_and_alpha_masked_pixels_are_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // NoData: the value of pixel (8, 6) in band 0 and (9, 6) in band 1 marks those pixels.
    let mut nodata_raster = TestRaster::positional(30, 20, 3);
    let nodata = -5.0f32;
    nodata_raster.planes[0][6 * 30 + 8] = nodata;
    nodata_raster.planes[1][6 * 30 + 9] = nodata;
    nodata_raster.nodata = Some(nodata as f64);
    let raster = d.join("nodata.tif");
    nodata_raster.write(&raster);
    let features = d.join("f.geojson");
    write_pixel_features(&features, &["POINT (10.3 7.8)"]);
    let chips = dump(d, &raster, &package(d, "nodata.dlpk", &[]), &features);
    let planes = &chips[0].2;
    // Window (7, 5): pixel (8, 6) is chip (1, 1), pixel (9, 6) is chip (2, 1).
    assert_eq!(planes[0][6 + 1], 0.0);
    assert_eq!(planes[1][6 + 2], 0.0);
    assert_eq!(
        planes[1][6 + 1],
        TestRaster::value(1, 8, 6),
        "only the NoData pixel of each band"
    );
    assert_eq!(planes[2][6 + 1], TestRaster::value(2, 8, 6));

    // Alpha (as real RGBA imagery has it, Byte): 0 at (10, 7) and (11, 5); bands 0-2 are read.
    let (w, h) = (30, 20);
    let mut planes: Vec<Vec<u8>> = (0..3)
        .map(|b| (0..w * h).map(|i| (b * 60 + (i % 50) + 1) as u8).collect())
        .collect();
    let mut alpha = vec![255u8; w * h];
    alpha[7 * w + 10] = 0;
    alpha[5 * w + 11] = 0;
    planes.push(alpha);
    let raster = d.join("rgba.tif");
    write_tiff_u8(&raster, w, h, &planes, true, None);
    {
        let ds = gdal::Dataset::open_ex(
            &raster,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        ds.rasterband(4)
            .unwrap()
            .set_color_interpretation(gdal::raster::ColorInterpretation::AlphaBand)
            .unwrap();
    }
    let chips = dump(d, &raster, &package(d, "alpha.dlpk", &[]), &features);
    let chip = &chips[0].2;
    for (b, plane) in chip.iter().enumerate() {
        for j in 0..4 {
            for i in 0..6 {
                let (col, row) = (7 + i, 5 + j);
                let masked = (col, row) == (10, 7) || (col, row) == (11, 5);
                let expected = if masked { 0.0 } else { planes[b][row * w + col] as f32 };
                assert_eq!(plane_at(plane, i, j), expected, "band {b} pixel ({col},{row})");
            }
        }
    }
}

#[test]
fn band_names_select_bands_in_emd_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut raster_spec = TestRaster::positional(30, 20, 4);
    raster_spec.descriptions = vec!["Blue", "Green", "Red", "NIR"];
    let raster = d.join("named.tif");
    raster_spec.write(&raster);
    let features = d.join("f.geojson");
    write_pixel_features(&features, &["POINT (10.3 7.8)"]);
    let pkg = package(
        d,
        "named.dlpk",
        &[("\"ExtractBands\": [0, 1, 2]", "\"ExtractBands\": [\"NIR\", \"red\", 1]")],
    );
    let chips = dump(d, &raster, &pkg, &features);
    assert_eq!(chips[0].2, expected_window(7, 5, 6, 4, &[3, 2, 1], (30, 20)));
}

#[test]
fn variable_crop_resamples_the_envelope_and_falls_back_for_large_features_and_points() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("pos.tif");
    TestRaster::positional(30, 20, 3).write(&raster);
    let features = d.join("f.geojson");
    write_pixel_features(
        &features,
        &[
            "POLYGON ((10.2 5.5,13.7 5.5,13.7 7.1,10.2 7.1,10.2 5.5))", // snapped: cols 10..14 (4), rows 5..8 (3)
            "POLYGON ((2 2,14 2,14 12,2 12,2 2))",                      // 12 x 10 > 6 x 4: fixed window
            "POINT (10.3 7.8)",                                         // points: fixed window
        ],
    );
    let pkg = package(d, "variable.dlpk", &[("\"CropSizeFixed\": 1", "\"CropSizeFixed\": 0")]);
    let chips = dump(d, &raster, &pkg, &features);
    // Bilinear resampling of a function linear in col and row is exact, with sample positions
    // (i + 0.5) * 4/6 - 0.5 and (j + 0.5) * 3/4 - 0.5 clamped to the source window.
    let (w, h, planes) = &chips[0];
    assert_eq!((*w, *h), (6, 4));
    for (b, plane) in planes.iter().enumerate() {
        for j in 0..4 {
            for i in 0..6 {
                let fx = ((i as f64 + 0.5) * 4.0 / 6.0 - 0.5).clamp(0.0, 3.0);
                let fy = ((j as f64 + 0.5) * 3.0 / 4.0 - 0.5).clamp(0.0, 2.0);
                let expected = (b * 10000) as f64 + (5.0 + fy) * 100.0 + (10.0 + fx) + 1.0;
                assert!(
                    (plane[j * 6 + i] as f64 - expected).abs() < 1e-2,
                    "band {b} ({i},{j}): {} vs {expected}",
                    plane[j * 6 + i]
                );
            }
        }
    }
    // Too large: centred fixed window, centre (8, 7) -> (5, 5).
    assert_eq!(chips[1].2, expected_window(5, 5, 6, 4, &[0, 1, 2], (30, 20)));
    assert_eq!(chips[2].2, expected_window(7, 5, 6, 4, &[0, 1, 2], (30, 20)));
}

#[test]
fn blackening_keeps_only_pixels_whose_centre_is_inside_polygons() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("pos.tif");
    TestRaster::positional(30, 20, 3).write(&raster);
    let features = d.join("f.geojson");
    write_pixel_features(
        &features,
        &[
            "POLYGON ((8 6,11 6,11 8,8 8,8 6))", // centre (9.5, 7): window (6, 5); keeps cols 8-10, rows 6-7
            "POINT (10.3 7.8)",                  // points are never blackened
        ],
    );
    let pkg = package(
        d,
        "blacken.dlpk",
        &[("\"BlackenAroundFeature\": 0", "\"BlackenAroundFeature\": 1")],
    );
    let chips = dump(d, &raster, &pkg, &features);
    let window = expected_window(6, 5, 6, 4, &[0, 1, 2], (30, 20));
    for (b, plane) in chips[0].2.iter().enumerate() {
        for j in 0..4 {
            for i in 0..6 {
                let inside = (2..=4).contains(&i) && (1..=2).contains(&j);
                let expected = if inside { window[b][j * 6 + i] } else { 0.0 };
                assert_eq!(plane[j * 6 + i], expected, "band {b} pixel ({i},{j})");
            }
        }
    }
    assert_eq!(chips[1].2, expected_window(7, 5, 6, 4, &[0, 1, 2], (30, 20)));
}

#[test]
fn normalization_stats_and_data_range_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = d.join("f.geojson");
    write_pixel_features(&features, &["POINT (20 20)"]);

    // NormalizationStats min 0, max 255, mean 0.5, std 0.25: x * 1/(255 * 0.25) - 2.
    let custom: [(f32, f32); 3] = [(1.0 / (255.0 * 0.25), -2.0); 3];
    let stats = r#""NormalizationStats": {"band_min_values": [0, 0, 0], "band_max_values": [255, 255, 255],
        "scaled_mean_values": [0.5, 0.5, 0.5], "scaled_std_values": [0.25, 0.25, 0.25]},
  "Classes""#;
    let options = onnx::ColorModelOptions {
        sharpness: 0.05,
        ..Default::default()
    };
    let pkg = color_package(d, "stats.dlpk", &[("\"Classes\"", stats)], &options, &custom);
    let raster = d.join("yellow.tif");
    uniform_scaled(&raster, 3, 1.0);
    let out = d.join("stats.gpkg");
    run_owned_ok(&classify_args(&raster, &pkg, Some(&features), &out, &[]));
    let row = &read_rows(&out, None)[0];
    assert_eq!(row.text("ClassLabel").as_deref(), Some("yellow"));
    let expected = onnx::expected_confidence(&palette(), &custom, 0.05, 3);
    assert!(
        (row.number("Confidence").unwrap() - expected).abs() < 1e-5,
        "{:?} vs {expected}",
        row.number("Confidence")
    );

    // DataRange [0, 255] on a raster whose values run 0..1000: rescaled back to the palette.
    let pkg = color_package(
        d,
        "range.dlpk",
        &[("\"Classes\"", "\"DataRange\": [0, 255],\n  \"Classes\"")],
        &Default::default(),
        &imagenet(),
    );
    let raster = d.join("blue_x4.tif");
    uniform_scaled(&raster, 2, 1000.0 / 255.0);
    let out = d.join("range.gpkg");
    run_owned_ok(&classify_args(&raster, &pkg, Some(&features), &out, &[]));
    let row = &read_rows(&out, None)[0];
    assert_eq!(row.text("ClassLabel").as_deref(), Some("blue"));
    let expected = onnx::expected_confidence(&palette(), &imagenet(), 1.0, 2);
    assert!((row.number("Confidence").unwrap() - expected).abs() < 1e-4);
}

#[test]
fn four_band_models_without_statistics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("pos.tif");
    TestRaster::positional(30, 20, 4).write(&raster);
    let edits = [
        ("\"ImageWidth\": 32", "\"ImageWidth\": 6"),
        ("\"ImageHeight\": 32", "\"ImageHeight\": 4"),
        ("\"ExtractBands\": [0, 1, 2]", "\"ExtractBands\": [0, 1, 2, 3]"),
    ];
    let options = onnx::ColorModelOptions {
        chip: Some((4, 6)),
        dynamic_channels: true,
        ..Default::default()
    };
    let pkg = color_package(d, "four.dlpk", &edits, &options, &imagenet());
    let line = run_err(
        &[
            "-r",
            raster.to_str().unwrap(),
            "-m",
            pkg.to_str().unwrap(),
            "-o",
            d.join("o.gpkg").to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("NormalizationStats") && line.contains("4 band"), "{line}");
}

#[test]
fn cell_size_cuts_chips_at_that_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2 m pixels; a 6 x 4 chip at 4 m covers 12 x 8 raster pixels, twice the footprint.
    let raster = d.join("positional.tif");
    TestRaster::positional(40, 30, 3).write(&raster);
    let features = d.join("points.geojson");
    write_pixel_features(&features, &["POINT (20.2 15.3)"]);
    let pkg = package(d, "p.dlpk", &[]);
    let native = dump(d, &raster, &pkg, &features);
    let read = |extra: &[&str], name: &str| {
        let chips = d.join(name);
        let mut args = vec!["--dump-chips", chips.to_str().unwrap(), "--overwrite"];
        args.extend_from_slice(extra);
        run_owned_ok(&classify_args(
            &raster,
            &pkg,
            Some(&features),
            &d.join(format!("{name}.gpkg")),
            &args,
        ));
        let path = chips.join("chip_000000.tif");
        let ds = gdal::Dataset::open(&path).unwrap();
        (ds.geo_transform().unwrap(), read_chip(&path))
    };
    let (gt_native, _) = read(&[], "native");
    let (gt, (w, h, planes)) = read(&["--cell-size", "4"], "coarse");
    let (_, (_, _, nearest)) = read(&["--cell-size", "4", "--resampling", "nearest"], "nearest");
    assert_eq!((w, h), (6, 4));
    // Twice the cell size: twice the ground footprint, on the 4 m grid from the raster's origin.
    assert_eq!((gt[1], gt[5]), (4.0, -4.0));
    assert_eq!((gt_native[1], gt_native[5]), (2.0, -2.0));
    // The chip centre (20.2, 15.3) in 4 m cells is (10.1, 7.65): the window starts at column
    // floor(10.1 - 3) = 7 and row floor(7.65 - 2) = 5 of the 4 m grid: raster pixel (14, 10).
    assert_eq!((gt[0], gt[3]), pixel_to_map(14.0, 10.0));
    for b in 0..3 {
        for j in 0..h {
            for i in 0..w {
                let (col, row) = (14 + 2 * i, 10 + 2 * j);
                // Nearest: the raster pixel under the chip pixel's centre.
                assert_eq!(
                    nearest[b][j * w + i],
                    TestRaster::value(b, col + 1, row + 1),
                    "nearest {b} {i} {j}"
                );
                // Bilinear: the positional values are linear, so the resampled value is the value
                // at the chip pixel's centre, between four raster pixel centres.
                let expected = TestRaster::value(b, col, row) + 0.5 + 100.0 * 0.5;
                assert!(
                    (planes[b][j * w + i] - expected).abs() < 1e-3,
                    "bilinear {b} {i} {j}: {} vs {expected}",
                    planes[b][j * w + i]
                );
            }
        }
    }
    // At the raster's own cell size, the usual chip.
    assert_eq!(native[0].2, expected_window(17, 13, 6, 4, &[0, 1, 2], (40, 30)));
    let line = run_err(
        &classify_args(
            &raster,
            &pkg,
            Some(&features),
            &d.join("bad.gpkg"),
            &["--cell-size", "0"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--cell-size"), "{line}");
}

#[test]
fn cell_sizes_whose_chips_cover_more_than_the_raster_or_less_than_a_pixel_are_refused() {
    // colors.tif: 256 x 256 pixels of 2 m, chips 32 x 32: from 0.002 to 16 (256 * 2 / 32).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gpkg");
    for cell in ["1e300", "1e-300", "16.001", "0.00199"] {
        let line = run_err(
            &polygons(&out, &["--cell-size", cell])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            2,
        );
        assert_mentions(
            &line,
            &["--cell-size", "colors.tif", "from 0.002", "to 16 ", "32x32 chip"],
        );
        assert!(!out.exists());
    }
    // The ends of the range are accepted.
    for cell in ["16", "0.002"] {
        run_owned_ok(&polygons(&out, &["--cell-size", cell, "--overwrite"]));
        assert_eq!(read_rows(&out, None).len(), 16);
    }
}

#[test]
fn coarser_cell_sizes_read_the_overviews() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raster = d.join("with_overview.tif");
    TestRaster::positional(40, 30, 3).write(&raster);
    // A 2x overview whose pixels are marked (7), so that reading it shows.
    let status = std::process::Command::new("gdaladdo")
        .args(["-q", "-r", "nearest"])
        .arg(&raster)
        .arg("2")
        .status()
        .unwrap();
    assert!(status.success());
    {
        let ds = gdal::Dataset::open_ex(
            &raster,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_RASTER | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        for b in 1..=3 {
            let overview = ds.rasterband(b).unwrap().overview(0).unwrap();
            let (w, h) = overview.size();
            let mut marked = gdal::raster::Buffer::new((w, h), vec![7.0f32; w * h]);
            let mut overview = overview;
            overview.write((0, 0), (w, h), &mut marked).unwrap();
        }
    }
    let features = d.join("points.geojson");
    write_pixel_features(&features, &["POINT (20.2 15.3)"]);
    let pkg = package(d, "p.dlpk", &[]);
    let chips = d.join("chips");
    run_owned_ok(&classify_args(
        &raster,
        &pkg,
        Some(&features),
        &d.join("o.gpkg"),
        &[
            "--dump-chips",
            chips.to_str().unwrap(),
            "--cell-size",
            "4",
            "--resampling",
            "nearest",
        ],
    ));
    let (_, _, planes) = read_chip(&chips.join("chip_000000.tif"));
    assert!(planes.iter().flatten().all(|&v| v == 7.0), "{:?}", &planes[0][..6]);
}

#[test]
fn the_trained_cell_size_is_compared_in_the_rasters_units() {
    // colors.tif has 2 m pixels in EPSG:32633; the same image in degrees (EPSG:4326, about
    // 0.000018 x 0.000029 degrees a pixel at 52.3 N). The package was trained at 0.3 in
    // EPSG:3857 (0.3 web-mercator metres: about 0.18 ground metres there).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let degrees = d.join("degrees.tif");
    let status = std::process::Command::new("gdalwarp")
        .args(["-q", "-t_srs", "EPSG:4326", "-r", "near"])
        .arg(colors_tif())
        .arg(&degrees)
        .status()
        .unwrap();
    assert!(status.success());
    let trained = r#"{"x": 0.3, "y": 0.3, "spatialReference": {"wkid": 102100, "latestWkid": 3857}}"#;
    let emd = colors_emd(&[(
        "\"ImageWidth\": 32,",
        &format!("\"MinCellSize\": {trained}, \"MaxCellSize\": {trained}, \"ImageWidth\": 32,"),
    )]);
    let package = write_package(
        d,
        "trained.dlpk",
        &emd,
        &std::fs::read(fixture("synthetic/colors.onnx")).unwrap(),
    );
    let warning = |raster: &Path, extra: &[&str]| {
        let out = d.join("out.gpkg");
        let mut all = vec!["--overwrite"];
        all.extend_from_slice(extra);
        let done = run_owned_ok(&classify_args(raster, &package, Some(&objects()), &out, &all));
        let stderr = String::from_utf8_lossy(&done.stderr).to_string();
        stderr.lines().find(|l| l.contains("trained for")).map(str::to_string)
    };
    // Degrees: the advice is a size in degrees (0.3 x cos(52.3 N) = 0.18 ground metres: about
    // 1.7e-6 degrees of latitude, 2.7e-6 of longitude), and following it silences the warning.
    let line = warning(&degrees, &["--layer", "polygons"]).expect("a warning on the degree raster");
    assert!(line.contains("0.3 in EPSG:3857"), "{line}");
    let advice: f64 = line.rsplit("--cell-size ").next().unwrap().trim().parse().unwrap();
    assert!((1.6e-6..2.8e-6).contains(&advice), "{line}");
    assert_eq!(
        warning(&degrees, &["--layer", "polygons", "--cell-size", &advice.to_string()]),
        None
    );
    // Metres (EPSG:32633): 0.3 web-mercator metres are about 0.18 m here.
    let line = warning(&colors_tif(), &["--layer", "polygons"]).expect("a warning on the metre raster");
    let advice: f64 = line.rsplit("--cell-size ").next().unwrap().trim().parse().unwrap();
    assert!((0.17..0.19).contains(&advice), "{line}");

    // Trained in UTM zone 33 (Europe), used on imagery in UTM zone 18 (North Carolina, 300 m
    // pixels): zone 33's distortion there means nothing; 300 m are 300 m, and 30 m are 30 m.
    for (size, expected) in [("300", None), ("30", Some(30.0))] {
        let trained = format!(r#"{{"x": {size}, "y": {size}, "spatialReference": {{"wkid": 32633}}}}"#);
        let emd = colors_emd(&[(
            "\"ImageWidth\": 32,",
            &format!("\"MinCellSize\": {trained}, \"MaxCellSize\": {trained}, \"ImageWidth\": 32,"),
        )]);
        let package = write_package(
            d,
            "zone33.dlpk",
            &emd,
            &std::fs::read(fixture("synthetic/colors.onnx")).unwrap(),
        );
        let out = d.join("zone18.gpkg");
        let done = run_owned_ok(&classify_args(
            &real_raster(),
            &package,
            Some(&footprints()),
            &out,
            &["--overwrite"],
        ));
        let stderr = String::from_utf8_lossy(&done.stderr).to_string();
        let line = stderr.lines().find(|l| l.contains("trained for"));
        let advice = line.map(|l| l.rsplit("--cell-size ").next().unwrap().trim().parse::<f64>().unwrap());
        assert_eq!(advice, expected, "{stderr}");
    }
}
