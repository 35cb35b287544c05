//! Output options: --t-srs, dataset creation options, File Geodatabase outputs, --all-scores.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use gdal::vector::Geometry;

use crate::support::*;

/// The colour model's probabilities on a uniform chip of palette colour `class`.
fn probabilities(class: usize) -> Vec<f64> {
    let norm = |c: [f32; 3]| {
        let n = imagenet();
        [0, 1, 2].map(|ch| (c[ch] * n[ch].0 + n[ch].1) as f64)
    };
    let colors: Vec<[f64; 3]> = palette().into_iter().map(norm).collect();
    let weights: Vec<f64> = colors
        .iter()
        .map(|c| (-(0..3).map(|i| (c[i] - colors[class][i]).powi(2)).sum::<f64>()).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

#[test]
fn t_srs_writes_real_footprints_in_degrees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = fixture("real/RGB.byte.foot.gpkg");
    let plain = d.join("plain.gpkg");
    let degrees = d.join("degrees.gpkg");
    run_owned_ok(&real(&features, &plain, &[]));
    run_owned_ok(&real(&features, &degrees, &["--t-srs", "EPSG:4326"]));
    // ogrinfo reports the layer in WGS 84, its extent in degrees (RGB.byte.tif is in Florida's
    // east, UTM 18N).
    let info = Command::new("ogrinfo")
        .args(["-ro", "-so", "-al", degrees.to_str().unwrap()])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("ID[\"EPSG\",4326]"), "{info}");
    let extent = info.lines().find(|l| l.starts_with("Extent:")).unwrap();
    let numbers: Vec<f64> = extent
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 4, "{extent}");
    assert!(numbers[0] > -80.0 && numbers[2] < -76.0, "longitudes: {extent}");
    assert!(numbers[1] > 23.0 && numbers[3] < 27.0, "latitudes: {extent}");
    // Each geometry is the input's reprojected; labels do not change.
    let to_wgs84 = transform(32618, 4326);
    let (a, b) = (read_rows(&plain, None), read_rows(&degrees, None));
    assert_eq!(a.len(), 9);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text("ClassLabel"), y.text("ClassLabel"));
        assert_eq!(x.number("Confidence"), y.number("Confidence"));
        let expected = Geometry::from_wkt(x.wkt.as_ref().unwrap())
            .unwrap()
            .transform(&to_wgs84)
            .unwrap();
        let got = Geometry::from_wkt(y.wkt.as_ref().unwrap()).unwrap();
        let (e, g) = (expected.envelope(), got.envelope());
        for (p, q) in [(e.MinX, g.MinX), (e.MaxX, g.MaxX), (e.MinY, g.MinY), (e.MaxY, g.MaxY)] {
            assert!((p - q).abs() < 1e-9, "{p} vs {q}");
        }
    }
    // CSV: WKT in degrees too.
    let csv = d.join("degrees.csv");
    run_owned_ok(&real(&features, &csv, &["--t-srs", "EPSG:4326"]));
    let wkt = read_csv(&csv)[1].last().unwrap().clone();
    let (lon, lat) = centre(&wkt);
    assert!((-80.0..-76.0).contains(&lon) && (23.0..27.0).contains(&lat), "{wkt}");
    // A table without geometries cannot be reprojected; an unknown CRS is refused upfront.
    let line = run_err(
        &classify_args(
            &fixture("real/dummy_recognition_map.tif"),
            &colors_dlpk(),
            None,
            &d.join("t.csv"),
            &["--t-srs", "EPSG:4326"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--t-srs") && line.contains("table"), "{line}");
    let line = run_err(
        &real(&features, &d.join("x.gpkg"), &["--t-srs", "EPSG:0"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--t-srs \"EPSG:0\""), "{line}");
}

#[test]
fn dataset_creation_options_reach_the_driver() {
    let dir = tempfile::tempdir().unwrap();
    // The GeoPackage version is the SQLite header's user_version (bytes 60..64).
    let version = |path: &Path| {
        let bytes = fs::read(path).unwrap();
        u32::from_be_bytes(bytes[60..64].try_into().unwrap())
    };
    for (option, expected) in [("VERSION=1.2", 10200), ("VERSION=1.3", 10300)] {
        let out = dir.path().join(format!("{}.gpkg", option.replace(['=', '.'], "_")));
        run_owned_ok(&polygons(&out, &["--dsco", option]));
        assert_eq!(version(&out), expected, "{option}");
        assert_eq!(read_rows(&out, None).len(), 16);
    }
    let line = run_err(
        &polygons(&dir.path().join("x.gpkg"), &["--dsco", "VERSION"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--dsco \"VERSION\""), "{line}");
}

#[test]
fn file_geodatabase_outputs_are_folders_written_whole_and_get_layers_added() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gdb = d.join("result.gdb");
    run_owned_ok(&polygons(&gdb, &[]));
    assert!(gdb.is_dir());
    let layers = |path: &Path| -> Vec<String> {
        let ds = gdal::Dataset::open(path).unwrap();
        assert_eq!(ds.driver().short_name(), "OpenFileGDB");
        let mut names: Vec<String> = ds.layers().map(|l| gdal::vector::LayerAccess::name(&l)).collect();
        names.sort();
        names
    };
    assert_eq!(layers(&gdb), vec!["result"]);
    let rows = read_rows(&gdb, Some("result"));
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    // A new layer name adds a layer; the first is kept.
    let points = |out: &Path, extra: &[&str]| {
        let mut all = vec!["--layer", "points", "--nln", "points"];
        all.extend_from_slice(extra);
        classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), out, &all)
    };
    run_owned_ok(&points(&gdb, &[]));
    assert_eq!(layers(&gdb), vec!["points", "result"]);
    assert_eq!(read_rows(&gdb, Some("points")).len(), 16);
    assert_eq!(read_rows(&gdb, Some("result")).len(), 16);
    // The same layer again: refused without --overwrite, the folder untouched.
    let snapshot = |path: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(path)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&gdb);
    let line = run_err(&points(&gdb, &[]).iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(
        line.contains("already has a layer points") && line.contains("--overwrite"),
        "{line}"
    );
    // A run that fails once the output was started (a one-band raster for a three-band model).
    let gray = d.join("gray.tif");
    write_tiff_u8(&gray, 64, 64, &[vec![7u8; 64 * 64]], true, None);
    let line = run_err(
        &classify_args(
            &gray,
            &colors_dlpk(),
            Some(&objects()),
            &gdb,
            &["--layer", "lines", "--nln", "lines"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("band"), "{line}");
    assert_eq!(snapshot(&gdb), before, "the geodatabase is as it was");
    // --overwrite replaces that layer only (lines into "points").
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&objects()),
        &gdb,
        &["--layer", "lines", "--nln", "points", "--overwrite"],
    ));
    assert_eq!(layers(&gdb), vec!["points", "result"]);
    let lines = read_rows(&gdb, Some("points"));
    assert_eq!(lines.len(), 16);
    assert!(
        lines[0].text("name").unwrap().starts_with("lines-"),
        "{:?}",
        lines[0].text("name")
    );
    assert_eq!(read_rows(&gdb, Some("result")).len(), 16);
    // --append adds rows to a layer (64-bit ids are kept as reals in a File Geodatabase).
    run_owned_ok(&polygons(&gdb, &["--append"]));
    assert_eq!(read_rows(&gdb, Some("result")).len(), 32);
    assert_eq!(read_rows(&gdb, Some("points")).len(), 16);
    // Nothing temporary left beside it.
    assert_eq!(files_in(d), vec!["gray.tif", "result.gdb", "result.qml"]);
    // --format names the driver; a file in the way of the folder is refused.
    let named = d.join("named.gdb");
    run_owned_ok(&polygons(&named, &["--format", "OpenFileGDB"]));
    assert_eq!(layers(&named), vec!["named"]);
    let file = d.join("file.gdb");
    fs::write(&file, b"not a geodatabase").unwrap();
    let line = run_err(
        &polygons(&file, &["--overwrite"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("is not a folder"), "{line}");
    assert_eq!(fs::read(&file).unwrap(), b"not a geodatabase");
}

#[test]
fn all_scores_writes_every_class_probability() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names: Vec<&str> = PALETTE.iter().map(|(n, _)| *n).collect();
    for out in [d.join("scores.gpkg"), d.join("scores.csv")] {
        run_owned_ok(&classify_args(
            &colors_tif(),
            &colors_dlpk(),
            Some(&objects()),
            &out,
            &["--layer", "points", "--all-scores"],
        ));
        let (header, rows): (Vec<String>, Vec<BTreeMap<String, String>>) = if out.extension().unwrap() == "csv" {
            let table = read_csv(&out);
            let header = table[0].clone();
            let rows = table[1..]
                .iter()
                .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
                .collect();
            (header, rows)
        } else {
            let rows = read_rows(&out, None)
                .iter()
                .map(|r| {
                    r.fields
                        .keys()
                        .map(|k| (k.clone(), r.text(k).unwrap_or_default()))
                        .collect()
                })
                .collect();
            (field_names(&out), rows)
        };
        let at = header.iter().position(|h| h == "Confidence").unwrap();
        assert_eq!(&header[at + 1..at + 7], names.as_slice(), "{header:?}");
        assert_eq!(header[at + 7], "Status");
        assert_eq!(rows.len(), 16);
        for row in &rows {
            let class = names.iter().position(|n| *n == row["truth"]).unwrap();
            let expected = probabilities(class);
            for (name, p) in names.iter().zip(&expected) {
                let got: f64 = row[*name].parse().unwrap();
                assert!((got - p).abs() < 1e-5, "{name}: {got} vs {p}");
            }
            assert_eq!(row["ClassLabel"], row["truth"]);
            let confidence: f64 = row["Confidence"].parse().unwrap();
            assert!((confidence - expected[class]).abs() < 1e-5);
        }
    }

    // The real model: its classes "0" and "180" as class_0 and class_180, the reference's
    // probabilities.
    let out = d.join("real.gpkg");
    run_owned_ok(&real(&fixture("real/RGB.byte.foot.gpkg"), &out, &["--all-scores"]));
    let reference = reference("textline_cls_RGB.byte.foot.csv");
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 9);
    for row in &rows {
        let fid = row.number("SourceOID").unwrap() as i64;
        let (_, _, p) = &reference[&fid];
        assert!((row.number("class_0").unwrap() - p[0]).abs() < 1e-4, "fid {fid}");
        assert!((row.number("class_180").unwrap() - p[1]).abs() < 1e-4, "fid {fid}");
    }
    assert_matches_reference(&rows, &reference);

    // An input field named like a class is renamed, as on any clash with our columns.
    let features = d.join("clash.gpkg");
    let ogr = Command::new("ogr2ogr")
        .args([
            features.to_str().unwrap(),
            objects().to_str().unwrap(),
            "-sql",
            "SELECT geom, name, truth, weight AS red FROM points",
            "-nln",
            "points",
        ])
        .output()
        .unwrap();
    assert!(ogr.status.success(), "{}", String::from_utf8_lossy(&ogr.stderr));
    let out = d.join("clash_out.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&features),
        &out,
        &["--all-scores"],
    ));
    let fields = field_names(&out);
    assert_eq!(&fields[..3], &["name", "truth", "red_1"], "{fields:?}");
    assert!(fields.contains(&"red".to_string()));
}
