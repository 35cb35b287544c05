//! Which features are classified: the processing extent, --where and --sql, open options, --config,
//! sources with several layers.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use gdal::vector::Geometry;

use crate::support::*;

#[test]
fn extent_keeps_exactly_the_features_whose_envelope_centre_is_inside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = read_rows(&objects(), Some("polygons"));
    // In the raster's CRS (the default): the top-left 2 x 2 patches and a bit.
    let extent = (500_000.0, 5_799_744.0, 500_300.0, 5_800_000.0);
    let expected: Vec<String> = input
        .iter()
        .filter(|r| inside(extent, centre(r.wkt.as_ref().unwrap())))
        .map(|r| r.text("name").unwrap())
        .collect();
    assert_eq!(expected.len(), 4, "one polygon per patch: {expected:?}");
    let out = d.join("extent.gpkg");
    run_owned_ok(&polygons(&out, &["--extent", "500000", "5799744", "500300", "5800000"]));
    let rows = read_rows(&out, None);
    assert_eq!(ids(&rows, "name"), expected, "in input order");
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));

    // In another CRS (--extent-crs): the centres are taken into it.
    let to_wgs84 = transform(32633, 4326);
    let (lon0, lat0) = point_in(&to_wgs84, (500_000.0, 5_799_600.0));
    let (lon1, lat1) = point_in(&to_wgs84, (500_400.0, 5_800_000.0));
    let extent = (lon0, lat0, lon1, lat1);
    let expected: Vec<String> = input
        .iter()
        .filter(|r| inside(extent, point_in(&to_wgs84, centre(r.wkt.as_ref().unwrap()))))
        .map(|r| r.text("name").unwrap())
        .collect();
    assert!((5..16).contains(&expected.len()), "some, not all: {expected:?}");
    let bounds = [lon0, lat0, lon1, lat1].map(|v| format!("{v:.9}"));
    let extent_args = [
        "--extent",
        &bounds[0],
        &bounds[1],
        &bounds[2],
        &bounds[3],
        "--extent-crs",
        "EPSG:4326",
    ];
    let single = d.join("wgs84.gpkg");
    run_owned_ok(&polygons(&single, &extent_args));
    let rows = read_rows(&single, None);
    assert_eq!(ids(&rows, "name"), expected);

    // Shards are positions among the features the extent keeps: shards + merge = one run.
    let mut shards = Vec::new();
    for i in 0..2 {
        let shard = d.join(format!("shard{i}.gpkg"));
        let index = format!("{i}/2");
        let mut extra = extent_args.to_vec();
        extra.extend(["--shard", &index]);
        run_owned_ok(&polygons(&shard, &extra));
        // Positions 0, 2, 4, ... and 1, 3, 5, ... of the features inside.
        assert_eq!(read_rows(&shard, None).len(), (expected.len() + 1 - i) / 2);
        shards.push(shard.to_str().unwrap().to_string());
    }
    let merged = d.join("merged.gpkg");
    run_ok(&["merge", &shards[0], &shards[1], "-o", merged.to_str().unwrap()]);
    let merged_rows = read_rows(&merged, None);
    assert_eq!(ids(&merged_rows, "name"), ids(&rows, "name"));
    assert_eq!(ids(&merged_rows, "ClassLabel"), ids(&rows, "ClassLabel"));

    // Not a rectangle, or an unknown CRS: refused before any work.
    let line = run_err(
        &polygons(
            &d.join("bad.gpkg"),
            &["--extent", "500300", "5799744", "500000", "5800000"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--extent") && line.contains("XMIN < XMAX"), "{line}");
    assert!(!d.join("bad.gpkg").exists());
}

#[test]
fn extent_on_two_thousand_real_points_keeps_those_inside_with_the_reference_labels() {
    let dir = tempfile::tempdir().unwrap();
    let points = fixture("real/RGB.byte.bench_points_2000.gpkg");
    // The middle of RGB.byte.tif (EPSG:32618, 300 m pixels).
    let extent = (150_000.0, 2_700_000.0, 250_000.0, 2_800_000.0);
    let expected: BTreeSet<i64> = read_rows(&points, None)
        .iter()
        .filter(|r| inside(extent, centre(r.wkt.as_ref().unwrap())))
        .map(|r| r.fid.unwrap() as i64)
        .collect();
    assert!(
        (100..1900).contains(&expected.len()),
        "{} points inside",
        expected.len()
    );
    let out = dir.path().join("extent.gpkg");
    run_owned_ok(&real(
        &points,
        &out,
        &["--extent", "150000", "2700000", "250000", "2800000"],
    ));
    let rows = read_rows(&out, None);
    let got: BTreeSet<i64> = rows.iter().map(|r| r.number("SourceOID").unwrap() as i64).collect();
    assert_eq!(got, expected);
    assert_eq!(rows.len(), expected.len());
    assert_matches_reference(&rows, &reference("textline_cls_points_2000.csv"));
}

#[test]
fn extent_clips_a_whole_image_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Patch (row 0, column 2) of the painted raster is blue: columns 128..192, rows 0..64.
    let out = d.join("patch.csv");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        None,
        &out,
        &["--extent", "500256", "5799872", "500384", "5800000"],
    ));
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], vec!["ImageId", "ClassLabel", "Confidence", "Status", "WKT"]);
    assert_eq!(rows[1][1], "blue");
    let confidence: f64 = rows[1][2].parse().unwrap();
    assert!((confidence - onnx::expected_confidence(&palette(), &imagenet(), 1.0, 2)).abs() < 1e-5);
    let e = Geometry::from_wkt(&rows[1][4]).unwrap().envelope();
    assert_eq!(
        (e.MinX, e.MinY, e.MaxX, e.MaxY),
        (500_256.0, 5_799_872.0, 500_384.0, 5_800_000.0)
    );
    // Without the extent the whole image is one (mixed) object.
    let whole = d.join("whole.csv");
    run_owned_ok(&classify_args(&colors_tif(), &colors_dlpk(), None, &whole, &[]));
    let e = Geometry::from_wkt(&read_csv(&whole)[1][4]).unwrap().envelope();
    assert_eq!((e.MinX, e.MaxX), (500_000.0, 500_512.0));
    // An extent beside the image: nothing to classify, refused.
    let line = run_err(
        &classify_args(
            &colors_tif(),
            &colors_dlpk(),
            None,
            &d.join("none.csv"),
            &["--extent", "0", "0", "10", "10"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--extent does not overlap"), "{line}");
    assert!(!d.join("none.csv").exists());
}

#[test]
fn where_and_sql_classify_exactly_the_selected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Real points: fid > 1500 are the reference's last 500 rows.
    let points = fixture("real/RGB.byte.bench_points_2000.gpkg");
    let reference = reference("textline_cls_points_2000.csv");
    let out = d.join("where.gpkg");
    run_owned_ok(&real(&points, &out, &["--where", "fid > 1500"]));
    let rows = read_rows(&out, None);
    let fids: Vec<i64> = rows.iter().map(|r| r.number("SourceOID").unwrap() as i64).collect();
    assert_eq!(fids, (1501..=2000).collect::<Vec<i64>>());
    assert_matches_reference(&rows, &reference);

    // The synthetic polygons: id > 3 (ids 1..16).
    let out = d.join("ids.gpkg");
    run_owned_ok(&polygons(&out, &["--where", "id > 3"]));
    let rows = read_rows(&out, None);
    assert_eq!(
        rows.iter().map(|r| r.number("id").unwrap() as i64).collect::<Vec<_>>(),
        (4..=16).collect::<Vec<i64>>()
    );
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));

    // SQL, in the driver's dialect and in OGR SQL: the red points.
    let red: Vec<String> = read_rows(&objects(), Some("points"))
        .iter()
        .filter(|r| r.text("truth").as_deref() == Some("red"))
        .map(|r| r.text("name").unwrap())
        .collect();
    assert_eq!(red.len(), 3);
    for dialect in [None, Some("OGRSQL"), Some("SQLITE")] {
        let out = d.join(format!("sql-{}.gpkg", dialect.unwrap_or("native")));
        let mut args = classify_args(
            &colors_tif(),
            &colors_dlpk(),
            Some(&objects()),
            &out,
            &["--sql", "SELECT * FROM points WHERE truth = 'red'"],
        );
        if let Some(dialect) = dialect {
            args.extend(["--dialect".to_string(), dialect.to_string()]);
        }
        run_owned_ok(&args);
        let rows = read_rows(&out, None);
        assert_eq!(ids(&rows, "name"), red, "{dialect:?}");
        assert!(rows.iter().all(|r| r.text("ClassLabel").as_deref() == Some("red")));
    }
    // Shards of a filtered run merge into the filtered run.
    let mut shards = Vec::new();
    for i in 0..3 {
        let shard = d.join(format!("s{i}.gpkg"));
        let index = format!("{i}/3");
        run_owned_ok(&polygons(&shard, &["--where", "id > 3", "--shard", &index]));
        shards.push(shard.to_str().unwrap().to_string());
    }
    let merged = d.join("merged.gpkg");
    run_ok(&[
        "merge",
        &shards[0],
        &shards[1],
        &shards[2],
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        ids(&read_rows(&merged, None), "name"),
        ids(&read_rows(&d.join("ids.gpkg"), None), "name")
    );

    // Mistakes: one line each, exit 2, nothing written.
    for (extra, needle) in [
        (vec!["--where", "no_such_field > 3"], "--where \"no_such_field > 3\""),
        (vec!["--sql", "SELECT * FROM nowhere"], "--sql"),
        (vec!["--dialect", "SQLITE"], "--dialect is the dialect of --sql"),
        (
            vec!["--sql", "SELECT * FROM points", "--dialect", "COBOL"],
            "--dialect COBOL",
        ),
    ] {
        let out = d.join("bad.gpkg");
        let mut args = classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), &out, &extra);
        if !extra.contains(&"--sql") {
            args.extend(["--layer".to_string(), "polygons".to_string()]);
        }
        let line = run_err(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        assert!(line.contains(needle), "{extra:?}: {line}");
        assert!(!out.exists());
    }
}

#[test]
fn an_empty_selection_is_said_and_strict_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gpkg");
    run_owned_ok(&polygons(&out, &[]));
    assert_eq!(read_rows(&out, None).len(), 16);
    let far_away = ["--extent", "0", "0", "10", "10", "--extent-crs", "EPSG:4326"];
    let selections: [&[&str]; 3] = [
        &["--where", "id > 1000"],
        &far_away,
        &["--sql", "SELECT * FROM polygons WHERE id < 0"],
    ];
    for selection in selections {
        let mut extra = vec!["--overwrite", "--strict"];
        extra.extend_from_slice(selection);
        let args = match selection[0] {
            // --sql and --layer exclude each other.
            "--sql" => classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), &out, &extra),
            _ => polygons(&out, &extra),
        };
        let line = run_err(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        assert_mentions(
            &line,
            &[selection[0], "selected no feature", "--strict", "left as it was"],
        );
        assert_eq!(
            read_rows(&out, None).len(),
            16,
            "{selection:?}: the previous output is kept"
        );
    }
    // Without --strict: a warning, and an output without rows.
    let quiet_out = dir.path().join("empty.gpkg");
    let done = run_owned_ok(&polygons(&quiet_out, &["--where", "id > 1000"]));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("warning: --where \"id > 1000\" selected no feature")
            && stderr.contains("the output has no rows"),
        "{stderr}"
    );
    assert_eq!(read_rows(&quiet_out, None).len(), 0);
}

#[test]
fn sql_that_writes_is_refused_before_the_features_are_opened() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let copy = d.join("copy.gpkg");
    let exported = d.join("exported.geojson");
    let missing = d.join("no-such-features.gpkg");
    for (features, flag, text, needle) in [
        (
            objects(),
            "--sql",
            format!("VACUUM INTO '{}'", copy.display()),
            "starts with VACUUM",
        ),
        (
            objects(),
            "--sql",
            format!("SELECT * FROM points; VACUUM INTO '{}'", copy.display()),
            "more than one statement",
        ),
        (
            objects(),
            "--sql",
            "WITH p AS (SELECT * FROM points) DELETE FROM points".to_string(),
            "holds DELETE",
        ),
        (
            objects(),
            "--sql",
            format!(
                "SELECT *, ExportGeoJSON2('points', 'geom', '{}') FROM points",
                exported.display()
            ),
            "calls ExportGeoJSON2()",
        ),
        (
            objects(),
            "--where",
            format!("1=1) ; VACUUM INTO '{}' --", copy.display()),
            "holds a ';'",
        ),
        // Checked before the features are opened: not "not found".
        (
            missing.clone(),
            "--sql",
            format!("VACUUM INTO '{}'", copy.display()),
            "starts with VACUUM",
        ),
    ] {
        let out = d.join("out.gpkg");
        let mut args = classify_args(&colors_tif(), &colors_dlpk(), Some(&features), &out, &[flag, &text]);
        if flag == "--where" {
            args.extend(["--layer".to_string(), "points".to_string()]);
        }
        let line = run_err(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        assert!(line.contains(flag) && line.contains(needle), "{text}: {line}");
        assert!(line.contains("only statements that read"), "{line}");
        assert!(!copy.exists() && !exported.exists() && !out.exists(), "{text}");
    }
    // A column named like a keyword is read when quoted.
    let out = d.join("quoted.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&objects()),
        &out,
        &[
            "--sql",
            "SELECT \"name\" AS \"update\", * FROM points WHERE truth = 'red' -- not an UPDATE",
        ],
    ));
    assert_eq!(read_rows(&out, None).len(), 3);
}

#[test]
fn open_options_read_points_from_a_csv_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut table = String::from("name,easting,northing,truth\n");
    for row in read_rows(&objects(), Some("points")) {
        let (x, y) = centre(row.wkt.as_ref().unwrap());
        table.push_str(&format!(
            "{},{x},{y},{}\n",
            row.text("name").unwrap(),
            row.text("truth").unwrap()
        ));
    }
    let csv = d.join("points.csv");
    fs::write(&csv, table).unwrap();
    let out = d.join("out.gpkg");
    let base = |extra: &[&str]| {
        let mut all = vec!["--features-crs", "EPSG:32633"];
        all.extend_from_slice(extra);
        classify_args(&colors_tif(), &colors_dlpk(), Some(&csv), &out, &all)
    };
    // Without open options the CSV driver sees no geometry.
    let line = run_err(&base(&[]).iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(line.contains("no geometry column"), "{line}");
    run_owned_ok(&base(&[
        "--oo",
        "X_POSSIBLE_NAMES=easting",
        "--oo",
        "Y_POSSIBLE_NAMES=northing",
    ]));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    let line = run_err(
        &base(&["--oo", "X_POSSIBLE_NAMES"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("--oo \"X_POSSIBLE_NAMES\" is not KEY=VALUE"), "{line}");
}

#[test]
fn config_options_reach_gdal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A copy of the painted raster whose .aux.xml (GDAL's PAM) moves it one patch (128 m) east.
    let raster = d.join("shifted.tif");
    fs::copy(colors_tif(), &raster).unwrap();
    fs::write(
        d.join("shifted.tif.aux.xml"),
        "<PAMDataset><GeoTransform>500128, 2, 0, 5800000, 0, -2</GeoTransform></PAMDataset>\n",
    )
    .unwrap();
    let classify = |out: &Path, extra: &[&str]| {
        let mut all = vec!["--layer", "points"];
        all.extend_from_slice(extra);
        run_owned_ok(&classify_args(&raster, &colors_dlpk(), Some(&objects()), out, &all));
        read_rows(out, None)
    };
    let shifted = classify(&d.join("pam.gpkg"), &[]);
    assert!(
        shifted
            .iter()
            .any(|r| r.text("ClassLabel").is_some() && r.text("ClassLabel") != r.text("truth")),
        "the .aux.xml moves the raster"
    );
    let rows = classify(&d.join("nopam.gpkg"), &["--config", "GDAL_PAM_ENABLED", "NO"]);
    assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")));
    assert!(d.join("shifted.tif.aux.xml").exists());
}

#[test]
fn a_source_with_several_layers_needs_layer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = run_err(
        &classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), &d.join("o.gpkg"), &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        2,
    );
    assert!(
        line.contains("3 layers with geometries (polygons, points, lines)") && line.contains("--layer"),
        "{line}"
    );
    assert!(!d.join("o.gpkg").exists());
    // One layer with geometries and a table without (a style table): the layer is taken.
    let styled = d.join("styled.gpkg");
    run_owned_ok(&polygons(&styled, &["--qgis-style", "embedded"]));
    let listed = Command::new("ogrinfo")
        .args(["-ro", "-q", styled.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("layer_styles"));
    let again = d.join("again.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&styled),
        &again,
        &[],
    ));
    assert_eq!(read_rows(&again, None).len(), 16);
}
