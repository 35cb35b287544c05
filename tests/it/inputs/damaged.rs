//! Inputs that are missing, damaged or do not fit: missing files, damaged features, unreadable
//! raster parts, features that cannot be placed.

use std::fs;
use std::process::Command;

use crate::support::*;

// 4. A damaged features file fails the run instead of being read up to the damage.
#[test]
fn a_damaged_features_file_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let damaged = d.join("damaged.gpkg");
    let mut bytes = fs::read(bench_points()).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b = 0xA5;
    }
    fs::write(&damaged, bytes).unwrap();
    let out = d.join("out.gpkg");
    let line = err(&args(&real_raster(), &real_model(), Some(&damaged), &out, &[]), 2);
    assert!(line.contains("damaged.gpkg") && line.contains("damaged"), "{line}");
    assert_eq!(files_in(d), vec!["damaged.gpkg"]);
}

// 13. One unreadable part of the raster costs only the features on it.
#[test]
fn features_on_an_unreadable_part_of_the_raster_get_read_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cog = d.join("cut.tif");
    let status = Command::new("gdal_translate")
        .args([
            "-q",
            "-of",
            "COG",
            "-co",
            "BLOCKSIZE=128",
            "-co",
            "COMPRESS=DEFLATE",
            "-co",
            "OVERVIEWS=NONE",
        ])
        .arg(real_raster())
        .arg(&cog)
        .status()
        .unwrap();
    assert!(status.success());
    // Cut the file: the tiles at its end (the bottom of the image) are gone.
    let bytes = fs::read(&cog).unwrap();
    fs::write(&cog, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out = d.join("out.gpkg");
    let output = run_owned_ok(&args(&cog, &real_model(), Some(&footprints()), &out, &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rows = read_rows(&out, None);
    let failed = rows
        .iter()
        .filter(|r| r.text("Status").as_deref() == Some("read_failed"))
        .count();
    let classified = rows.iter().filter(|r| r.text("ClassLabel").is_some()).count();
    assert!(
        failed > 0 && classified > 0,
        "{failed} failed, {classified} classified: {stderr}"
    );
    assert!(stderr.contains("read_failed") && stderr.contains("warning"), "{stderr}");
    assert!(rows
        .iter()
        .all(|r| r.text("ClassLabel").is_some() != (r.text("Status").as_deref() == Some("read_failed"))));
    let line = err(
        &args(
            &cog,
            &real_model(),
            Some(&footprints()),
            &d.join("strict.gpkg"),
            &["--strict"],
        ),
        2,
    );
    assert!(line.contains("read_failed"), "{line}");
}

#[test]
fn a_raster_whose_pixels_cannot_be_read_at_all_fails_with_or_without_features() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cog = d.join("cut.tif");
    let status = Command::new("gdal_translate")
        .args(["-q", "-of", "COG", "-co", "BLOCKSIZE=128", "-co", "COMPRESS=NONE"])
        .args(["-co", "OVERVIEWS=NONE"])
        .arg(colors_tif())
        .arg(&cog)
        .status()
        .unwrap();
    assert!(status.success());
    // The header is kept, every tile cut.
    let bytes = fs::read(&cog).unwrap();
    fs::write(&cog, &bytes[..bytes.len() / 5]).unwrap();
    for (out, features) in [(d.join("images.csv"), None), (d.join("features.gpkg"), Some(objects()))] {
        let previous = previous_output(&out);
        let mut extra = vec!["--overwrite"];
        if features.is_some() {
            extra.extend(["--layer", "polygons"]);
        }
        let line = err(&args(&cog, &colors_dlpk(), features.as_deref(), &out, &extra), 1);
        assert_mentions(&line, &["none of the", "could be read", "cut.tif"]);
        assert_eq!(fs::read(&out).unwrap(), previous, "{}", out.display());
    }
}

#[test]
fn missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = fails(d, &["-r", "/no/such/raster.tif", "-m", &arg(colors_dlpk())]);
    assert_mentions(&line, &["/no/such/raster.tif", "does not exist"]);
    let not_raster = fixture("README.md");
    let line = fails(d, &["-r", not_raster.to_str().unwrap(), "-m", &arg(colors_dlpk())]);
    assert_mentions(&line, &["README.md", "not recognized", "gdalinfo"]);
    let line = fails(d, &["-r", &arg(colors_tif()), "-m", "/no/such/model.dlpk"]);
    assert_mentions(&line, &["/no/such/model.dlpk", ".dlpk"]);
    let line = fails(
        d,
        &[
            "-r",
            &arg(colors_tif()),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            "/no/such/features.gpkg",
        ],
    );
    assert_mentions(&line, &["/no/such/features.gpkg", "does not exist"]);
    let line = fails(
        d,
        &[
            "-r",
            &arg(colors_tif()),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            &arg(colors_tif()),
        ],
    );
    assert_mentions(&line, &["colors.tif", "not recognized", "ogrinfo"]);
    let line = fails(
        d,
        &[
            "-r",
            &arg(colors_tif()),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            &arg(objects()),
            "--layer",
            "roads",
        ],
    );
    assert_mentions(&line, &["roads", "polygons", "--layer"]);
}

#[test]
fn features_that_cannot_be_placed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The real mislabelled case: UTM coordinates in a GeoJSON file without a CRS member, which
    // GDAL reads as WGS 84. Nothing lands on the raster; --features-crs fixes it.
    let jsons = d.join("foot.geojson");
    let foot = read_rows(&fixture("real/RGB.byte.foot.gpkg"), None);
    let features: Vec<String> = foot
        .iter()
        .map(|r| {
            let g = gdal::vector::Geometry::from_wkt(r.wkt.as_ref().unwrap()).unwrap();
            format!(
                "{{\"type\":\"Feature\",\"properties\":{{}},\"geometry\":{}}}",
                g.json().unwrap()
            )
        })
        .collect();
    fs::write(
        &jsons,
        format!(
            "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
            features.join(",")
        ),
    )
    .unwrap();
    let real = fixture("real/RGB.byte.tif").to_str().unwrap().to_string();
    let textline = fixture("real/textline_cls.dlpk").to_str().unwrap().to_string();
    let line = fails(d, &["-r", &real, "-m", &textline, "-f", jsons.to_str().unwrap()]);
    assert_mentions(
        &line,
        &["none of the 9 features", "EPSG:4326", "EPSG:32618", "--features-crs"],
    );
    let out = d.join("fixed.gpkg");
    run_ok(&[
        "-r",
        &real,
        "-m",
        &textline,
        "-f",
        jsons.to_str().unwrap(),
        "--features-crs",
        "EPSG:32618",
        "-o",
        out.to_str().unwrap(),
    ]);
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r.text("ClassLabel").is_some()));

    // Features without any CRS over a georeferenced raster.
    let no_crs = d.join("no_crs.csv");
    fs::write(&no_crs, "id,WKT\n1,\"POINT (500064 5799936)\"\n").unwrap();
    let line = fails(
        d,
        &[
            "-r",
            &arg(colors_tif()),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            no_crs.to_str().unwrap(),
        ],
    );
    assert_mentions(
        &line,
        &[
            "no_crs.csv",
            "no coordinate reference system",
            "--features-crs",
            "EPSG:32633",
        ],
    );
    let line = fails(
        d,
        &[
            "-r",
            &arg(colors_tif()),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            no_crs.to_str().unwrap(),
            "--features-crs",
            "EPSG:999999",
        ],
    );
    assert_mentions(&line, &["EPSG:999999", "--features-crs"]);
}
