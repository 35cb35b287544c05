//! Output formats and layers: GeoPackage layers added or replaced, Shapefile names, appends
//! reprojected, outputs that read back without warnings.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::*;

#[test]
fn output_formats_layer_names_creation_options_and_append() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (raster, model, features) = (
        fixture("synthetic/colors.tif"),
        fixture("synthetic/colors.dlpk"),
        fixture("synthetic/objects.gpkg"),
    );
    let base = |out: &Path, extra: &[&str]| {
        let mut args = classify_args(&raster, &model, Some(&features), out, extra);
        args.extend(["--layer".to_string(), "polygons".to_string()]);
        args
    };
    let go = |args: Vec<String>| {
        run_owned_ok(&args);
    };
    // By extension and by --format: every row, with labels.
    for (name, extra) in [
        ("a.geojson", vec![]),
        ("b.fgb", vec![]),
        ("c.shp", vec![]),
        ("d.json", vec!["--format", "GeoJSON", "--lco", "RFC7946=YES"]),
        ("e.tab", vec!["--format", "MapInfo File"]),
    ] {
        let out = d.join(name);
        go(base(&out, &extra));
        let rows = read_rows(&out, None);
        assert_eq!(rows.len(), 16, "{name}");
        assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")), "{name}");
    }
    // The Shapefile moved as a whole family, with nothing temporary left.
    let names = files_in(d);
    for ext in ["shp", "shx", "dbf", "prj"] {
        assert!(names.contains(&format!("c.{ext}")), "{names:?}");
    }
    // So did MapInfo's .tab with its .dat, .map and .id.
    for ext in ["tab", "dat", "map", "id"] {
        assert!(names.contains(&format!("e.{ext}")), "{names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("partial") || n.contains(".lock")),
        "{names:?}"
    );
    // Overwriting a Shapefile replaces its whole family: a stale spatial index does not survive.
    fs::write(d.join("c.qix"), b"stale index of an older c.shp").unwrap();
    go(base(&d.join("c.shp"), &["--overwrite"]));
    assert!(!d.join("c.qix").exists(), "{:?}", files_in(d));
    assert_eq!(read_rows(&d.join("c.shp"), None).len(), 16);

    // RFC 7946 output is in WGS 84 whatever the input CRS.
    let text = fs::read_to_string(d.join("d.json")).unwrap();
    assert!(
        text.contains("\"coordinates\": [ [ [ 15."),
        "{}",
        &text[..300.min(text.len())]
    );

    // Layer name, then append twice: 16 + 16 rows in one layer.
    let out = d.join("runs.gpkg");
    go(base(&out, &["--layer-name", "classified_objects"]));
    go(base(&out, &["--layer-name", "classified_objects", "--append"]));
    let rows = read_rows(&out, Some("classified_objects"));
    assert_eq!(rows.len(), 32);
    assert_eq!(rows[16].text("name"), rows[0].text("name"));

    // Appending a different schema is refused and leaves the output untouched.
    let before = fs::read(&out).unwrap();
    let args = base(
        &out,
        &[
            "--layer-name",
            "classified_objects",
            "--append",
            "--class-label-field",
            "Other",
        ],
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = run_err(&refs, 2);
    assert!(
        line.contains("Other is missing") && line.contains("runs.gpkg"),
        "{line}"
    );
    assert_eq!(fs::read(&out).unwrap(), before);

    // CSV append checks the header too.
    let csv = d.join("table.csv");
    go(base(&csv, &[]));
    go(base(&csv, &["--append"]));
    assert_eq!(read_csv(&csv).len(), 33);
}

#[test]
fn formats_that_add_columns_or_keep_no_geometry_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // KML adds Name and Description (and more) to the columns this run makes; a spreadsheet
    // keeps no geometry.
    for (name, format, geometry) in [
        ("a.kml", "KML", true),
        ("b.kml", "LIBKML", true),
        ("c.xlsx", "XLSX", false),
        ("d.ods", "ODS", false),
    ] {
        let out = d.join(name);
        let done = run_owned_ok(&polygons(&out, &["--format", format]));
        let rows = read_rows(&out, None);
        assert_eq!(rows.len(), 16, "{format}");
        assert!(
            rows.iter()
                .all(|r| r.text("ClassLabel").is_some() && r.text("ClassLabel") == r.text("truth")),
            "{format}"
        );
        assert!(
            rows.iter().all(|r| r.number("Confidence").is_some_and(|c| c > 0.5)),
            "{format}"
        );
        assert_eq!(rows.iter().all(|r| r.wkt.is_some()), geometry, "{format}");
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(stderr.contains("keeps no geometry"), !geometry, "{format}: {stderr}");
    }
}

// 6. A multi-layer GeoPackage keeps its other layers; an input is never the output.
#[test]
fn geopackage_layers_are_added_or_replaced_and_inputs_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, dlpk, objects) = colors();
    let out = d.join("project.gpkg");
    ogr2ogr(&[
        "-nln",
        "survey",
        out.to_str().unwrap(),
        objects.to_str().unwrap(),
        "polygons",
    ]);
    // A run adds its layer (named after the file) and keeps "survey".
    run_owned_ok(&args(&tif, &dlpk, Some(&objects), &out, &[]));
    let ds = gdal::Dataset::open(&out).unwrap();
    let mut names: Vec<String> = ds.layers().map(|l| gdal::vector::LayerAccess::name(&l)).collect();
    names.sort();
    assert_eq!(names, vec!["project", "survey"]);
    drop(ds);
    assert_eq!(read_rows(&out, Some("project")).len(), 16);
    // The same layer again needs --overwrite, which replaces that layer only.
    let line = err(&args(&tif, &dlpk, Some(&objects), &out, &[]), 2);
    assert!(line.contains("layer project") && line.contains("--overwrite"), "{line}");
    run_owned_ok(&args(
        &tif,
        &dlpk,
        Some(&objects),
        &out,
        &["--overwrite", "--model-arg", "batch_size=3"],
    ));
    assert_eq!(read_rows(&out, Some("project")).len(), 16);
    assert!(!read_rows(&out, Some("survey")).is_empty());
    // Another layer name adds a layer.
    run_owned_ok(&args(&tif, &dlpk, Some(&objects), &out, &["--layer-name", "second"]));
    assert_eq!(read_rows(&out, Some("second")).len(), 16);

    // The features file, the raster or the package as the output: refused, input untouched.
    let features = d.join("in.gpkg");
    fs::copy(&objects, &features).unwrap();
    let before = fs::read(&features).unwrap();
    let line = err(&args(&tif, &dlpk, Some(&features), &features, &["--overwrite"]), 2);
    assert!(line.contains("features") && line.contains("destroy"), "{line}");
    assert_eq!(fs::read(&features).unwrap(), before);
    let link = d.join("same.gpkg");
    fs::hard_link(&features, &link).unwrap();
    let line = err(&args(&tif, &dlpk, Some(&features), &link, &["--overwrite"]), 2);
    assert!(line.contains("features"), "{line}");
    assert_eq!(fs::read(&features).unwrap(), before);
}

// 10. --append with features in another CRS: geometries go in the layer's CRS.
#[test]
fn append_reprojects_into_the_layer_crs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("runs.gpkg");
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &[]));
    let wgs84 = d.join("foot_4326.gpkg");
    ogr2ogr(&[
        "-t_srs",
        "EPSG:4326",
        wgs84.to_str().unwrap(),
        footprints().to_str().unwrap(),
    ]);
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&wgs84), &out, &["--append"]));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 18);
    let ds = gdal::Dataset::open(&out).unwrap();
    let layer = ds.layer(0).unwrap();
    let srs = gdal::vector::LayerAccess::spatial_ref(&layer).unwrap();
    assert_eq!(srs.auth_code().unwrap(), 32618);
    let geometry = |r: &Row| gdal::vector::Geometry::from_wkt(r.wkt.as_ref().unwrap()).unwrap();
    for (a, b) in rows[..9].iter().zip(&rows[9..]) {
        let (ea, eb) = (geometry(a).envelope(), geometry(b).envelope());
        assert!(eb.MinX > 100_000.0, "appended rows are in metres, not degrees");
        assert!((ea.MinX - eb.MinX).abs() < 1.0 && (ea.MaxY - eb.MaxY).abs() < 1.0);
        assert_eq!(a.text("ClassLabel"), b.text("ClassLabel"));
    }
}

// 14 and 15. Long names in Shapefiles are mapped by position; reserved names are refused.
#[test]
fn shapefile_long_field_names_and_reserved_label_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("long.shp");
    let extra = ["--class-label-field", "PredictedClassName"];
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &extra));
    let mut more = extra.to_vec();
    more.push("--append");
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &more));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 18);
    assert!(
        rows.iter().all(|r| r.text("PredictedC").is_some()),
        "{:?}",
        rows[0].fields.keys()
    );
    for name in ["Status", "fid", "geom", "SOURCEOID", "Confidence"] {
        let line = err(
            &args(
                &real_raster(),
                &real_model(),
                Some(&footprints()),
                &d.join("r.gpkg"),
                &["--class-label-field", name],
            ),
            2,
        );
        assert!(line.contains("--class-label-field") && line.contains(name), "{line}");
    }
    assert!(!d.join("r.gpkg").exists());
}

// 21. An output reads back without GDAL warnings.
#[test]
fn outputs_read_back_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clean.gpkg");
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &[]));
    let info = Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(info.status.success());
    assert_eq!(String::from_utf8_lossy(&info.stderr), "");
    let qml = fs::read_to_string(dir.path().join("clean.qml")).unwrap();
    assert!(qml.starts_with("<!DOCTYPE qgis"), "{qml}");
}

// Input columns named like ours keep out of our names even where a format cuts names: in a
// Shapefile (10 characters) the input's `ClassLabel` becomes `ClassLab_1`, so `ClassLabel` is the
// run's label, which is what `compare`, styles and readers of the file take it to be.
#[test]
fn shapefile_input_columns_named_like_ours_leave_our_names_to_us() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = d.join("theirs.gpkg");
    polygons_by_sql(
        &features,
        "SELECT geom, id, truth, 'theirs' AS ClassLabel, 7.5 AS Confidence, 'long' AS ClassLabelOld FROM polygons",
    );
    let (raster, model) = (fixture("synthetic/colors.tif"), fixture("synthetic/colors.dlpk"));
    let (shp, gpkg) = (d.join("out.shp"), d.join("out.gpkg"));
    for out in [&shp, &gpkg] {
        run_owned_ok(&classify_args(&raster, &model, Some(&features), out, &[]));
    }
    let (shp_rows, gpkg_rows) = (read_rows(&shp, None), read_rows(&gpkg, None));
    assert_eq!(shp_rows.len(), 16);
    for (s, g) in shp_rows.iter().zip(&gpkg_rows) {
        // The painted colour is the truth: the run's label is in ClassLabel in both files.
        assert_eq!(s.text("ClassLabel"), s.text("truth"), "{:?}", s.fields);
        assert_eq!(s.text("ClassLabel"), g.text("ClassLabel"));
        // A .dbf keeps 15 significant digits.
        assert!((s.number("Confidence").unwrap() - g.number("Confidence").unwrap()).abs() < 1e-12);
        assert_eq!(s.text("ClassLab_1").as_deref(), Some("theirs"), "{:?}", s.fields.keys());
        assert_eq!(s.number("Confiden_1"), Some(7.5));
        assert_eq!(s.text("ClassLab_2").as_deref(), Some("long"));
        assert_eq!(g.text("ClassLabel_1").as_deref(), Some("theirs"));
    }
    // compare reads the run's labels from both: nothing changed.
    let unchanged = |a: &Path| {
        let out = run_ok(&["compare", a.to_str().unwrap(), gpkg.to_str().unwrap(), "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (json["compared"].as_u64(), json["changed_count"].as_u64()),
            (Some(16), Some(0))
        );
    };
    unchanged(&shp);
    // Shards written as GeoPackages (the input's column is ClassLabel_1 there) merged into a
    // Shapefile: the same columns as a single run's Shapefile.
    let shards: Vec<_> = (0..2).map(|i| d.join(format!("shard{i}.gpkg"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        let which = format!("{i}/2");
        run_owned_ok(&classify_args(
            &raster,
            &model,
            Some(&features),
            shard,
            &["--shard", &which],
        ));
    }
    let merged = d.join("merged.shp");
    run_ok(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    let merged_rows = read_rows(&merged, None);
    let columns = |rows: &[Row]| rows[0].fields.keys().cloned().collect::<Vec<_>>();
    assert_eq!(columns(&merged_rows), columns(&shp_rows));
    for (m, s) in merged_rows.iter().zip(&shp_rows) {
        assert_eq!(m.text("ClassLabel"), s.text("ClassLabel"));
        assert_eq!(m.text("ClassLab_1").as_deref(), Some("theirs"));
    }
    unchanged(&merged);
}
