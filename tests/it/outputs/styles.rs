//! The QGIS style beside or inside an output.

use gdal::vector::LayerAccess;

use crate::support::*;

fn assert_style_of_colour_classes(qml: &str) {
    assert!(qml.contains(r#"type="categorizedSymbol" attr="Colour""#), "{qml}");
    for (name, [r, g, b]) in PALETTE {
        assert!(qml.contains(&format!(r#"<category value="{name}""#)), "{name}");
        assert!(qml.contains(&format!(r#"value="{r},{g},{b},160""#)), "fill of {name}");
    }
    assert!(qml.contains(r#"type="fill""#), "polygons get fill symbols");
}

#[test]
fn outputs_carry_a_qgis_style_beside_them_and_stay_one_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("styled.gpkg");
    assert!(run_colors(
        &out,
        &fixture("synthetic/colors.dlpk"),
        &["--class-label-field", "Colour"]
    )
    .status
    .success());
    // styled.qml beside the output: QGIS loads it as the layer's default style.
    let qml = std::fs::read_to_string(dir.path().join("styled.qml")).expect("a .qml beside the output");
    assert_style_of_colour_classes(&qml);
    // The GeoPackage holds the one layer: plain conversions work and leave nothing else.
    let ds = gdal::Dataset::open(&out).unwrap();
    assert_eq!(ds.layer_count(), 1);
    for target in ["converted.geojson", "converted.csv"] {
        let status = std::process::Command::new("ogr2ogr")
            .current_dir(dir.path())
            .args([target, "styled.gpkg"])
            .status()
            .unwrap();
        assert!(status.success(), "ogr2ogr {target} styled.gpkg");
    }
    assert!(!dir.path().join("layer_styles.csv").exists());
    // --qgis-style none: no style at all.
    let plain = dir.path().join("plain.gpkg");
    assert!(
        run_colors(&plain, &fixture("synthetic/colors.dlpk"), &["--qgis-style", "none"])
            .status
            .success()
    );
    assert!(!dir.path().join("plain.qml").exists());
}

#[test]
fn an_embedded_style_is_written_as_qgis_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("styled.gpkg");
    assert!(run_colors(
        &out,
        &fixture("synthetic/colors.dlpk"),
        &[
            "--class-label-field",
            "Colour",
            "--qgis-style",
            "embedded",
            "--lco",
            "GEOMETRY_NAME=shape"
        ]
    )
    .status
    .success());
    assert!(!dir.path().join("styled.qml").exists());
    let ds = gdal::Dataset::open(&out).unwrap();
    let mut styles = ds.layer_by_name("layer_styles").expect("a layer_styles table");
    use gdal::vector::LayerAccess;
    let rows: Vec<(String, String, String, i32)> = styles
        .features()
        .map(|f| {
            let idx = |n: &str| f.field_index(n).unwrap();
            (
                f.field_as_string(idx("f_table_name")).unwrap().unwrap(),
                f.field_as_string(idx("f_geometry_column")).unwrap().unwrap(),
                f.field_as_string(idx("styleQML")).unwrap().unwrap(),
                f.field_as_integer(idx("useAsDefault")).unwrap().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 1);
    let (table, geometry, qml, default) = &rows[0];
    assert_eq!((table.as_str(), geometry.as_str(), *default), ("styled", "shape", 1));
    assert_style_of_colour_classes(qml);
    // GDAL reads the file without a word.
    let info = std::process::Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success() && !stderr.contains("Warning"), "{stderr}");
    // The layer replaced twice still has one style of this program's.
    for _ in 0..2 {
        let run = run_colors(
            &out,
            &fixture("synthetic/colors.dlpk"),
            &[
                "--class-label-field",
                "Colour",
                "--qgis-style",
                "embedded",
                "--overwrite",
            ],
        );
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let ds = gdal::Dataset::open(&out).unwrap();
    assert_eq!(ds.layer_by_name("layer_styles").unwrap().feature_count(), 1);
}

/// The attribute a categorized style colours by, or the rules of a rule-based one:
/// `(field, Some(class))` per class rule, `(field, None)` for the rule of rows without a label.
fn style_rules(qml: &str) -> Vec<(String, Option<String>)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    qml.split("<rule ")
        .skip(1)
        .map(|rule| {
            let filter = unescape(rule.split("filter=\"").nth(1).unwrap().split('"').next().unwrap());
            let field = filter.split('"').nth(1).unwrap().to_string();
            let class = filter
                .strip_prefix("array_contains(string_to_array(")
                .map(|rest| rest.rsplit(", '").next().unwrap().trim_end_matches("')").to_string());
            assert!(class.is_some() || filter.starts_with("coalesce("), "{filter}");
            (field, class)
        })
        .collect()
}

#[test]
fn every_row_of_a_multi_label_run_is_drawn_by_its_style() {
    // The colour model read as multi-label (sigmoid over its scores, threshold 0.6): some
    // polygons get two labels ("green;dark").
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let package = multi_label_colors(d);
    for (name, extra) in [
        ("multi.gpkg", vec![]),
        ("shape.shp", vec!["--class-label-field", "MultiLabelClasses"]),
    ] {
        let out = d.join(name);
        let mut all = vec!["--model-arg", "threshold=0.6"];
        all.extend(extra);
        run_owned_ok(&args(&colors_tif(), &package, Some(&objects()), &out, &all));
        let qml = std::fs::read_to_string(out.with_extension("qml")).unwrap();
        assert!(qml.contains(r#"type="RuleRenderer""#), "{qml}");
        let rules = style_rules(&qml);
        assert_eq!(rules.len(), PALETTE.len() + 1, "a rule per class and one for no label");
        let field = &rules[0].0;
        assert!(rules.iter().all(|(f, _)| f == field));
        let rows = read_rows(&out, None);
        let columns: Vec<&String> = rows[0].fields.keys().collect();
        assert!(
            columns.contains(&field),
            "the style's field {field} is a column: {columns:?}"
        );
        assert!(
            rows.iter().any(|r| r.text(field).is_some_and(|l| l.contains(';'))),
            "some rows have two labels"
        );
        for row in &rows {
            let labels: Vec<String> = row
                .text(field)
                .unwrap_or_default()
                .split(';')
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            let drawn = rules.iter().any(|(_, class)| match class {
                Some(class) => labels.contains(class),
                None => labels.is_empty(),
            });
            assert!(drawn, "{name}: row with labels {labels:?} matches no rule");
        }
    }
}

#[test]
fn a_style_names_the_field_as_written_and_belongs_to_one_layer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let attr = |qml_path: &std::path::Path| {
        let qml = std::fs::read_to_string(qml_path).unwrap();
        qml.split("attr=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    // A Shapefile keeps 10 characters, a File Geodatabase replaces the space.
    for (name, field, written) in [
        ("long.shp", "VeryLongClassLabelName", "VeryLongCl"),
        ("spaced.gdb", "Class Label", "Class_Label"),
        // Names a Shapefile holds in Latin-1 until reopened.
        ("umlaut.shp", "ÜÜÜÜÜÜLabel", "ÜÜÜÜÜÜLabe"),
    ] {
        let out = d.join(name);
        run_owned_ok(&polygons(&out, &["--class-label-field", field]));
        let qml = attr(&out.with_extension("qml"));
        assert_eq!(qml, written);
        let rows = read_rows(&out, None);
        assert!(
            rows[0].fields.iter().any(|(n, _)| *n == qml),
            "{qml} is a column of {name}"
        );
    }
    // One style per layer: a second layer of n.gpkg, or n.shp beside it, never replaces the
    // n.qml of layer n; the second layer's style goes into layer_styles, the Shapefile goes
    // without one (said).
    let gpkg = d.join("n.gpkg");
    run_owned_ok(&polygons(&gpkg, &[]));
    let first = std::fs::read(d.join("n.qml")).unwrap();
    let second = run_owned_ok(&polygons(
        &gpkg,
        &["--layer-name", "second", "--class-label-field", "Second"],
    ));
    assert!(String::from_utf8_lossy(&second.stderr).contains("layer_styles"));
    assert_eq!(std::fs::read(d.join("n.qml")).unwrap(), first);
    let ds = gdal::Dataset::open(&gpkg).unwrap();
    let mut styles = ds
        .layer_by_name("layer_styles")
        .expect("the second layer's style inside");
    let column = styles.defn().field_index("f_table_name").unwrap();
    let tables: Vec<String> = styles
        .features()
        .map(|f| f.field_as_string(column).unwrap().unwrap())
        .collect();
    assert_eq!(tables, vec!["second"]);
    let shp = run_owned_ok(&polygons(&d.join("n.shp"), &[]));
    assert!(String::from_utf8_lossy(&shp.stderr).contains("no QGIS style written"));
    assert_eq!(std::fs::read(d.join("n.qml")).unwrap(), first);
    // A style the user wrote beside an output is kept through --overwrite.
    let mine = d.join("mine.gpkg");
    run_owned_ok(&polygons(&mine, &[]));
    std::fs::write(d.join("mine.qml"), "<qgis>my own style</qgis>").unwrap();
    run_owned_ok(&polygons(&mine, &["--overwrite"]));
    assert_eq!(
        std::fs::read_to_string(d.join("mine.qml")).unwrap(),
        "<qgis>my own style</qgis>"
    );
    // The run's own style is replaced with its output.
    run_owned_ok(&polygons(&gpkg, &["--overwrite", "--class-label-field", "Renamed"]));
    assert_eq!(attr(&d.join("n.qml")), "Renamed");
}

#[test]
fn a_run_keeps_styles_it_did_not_write_and_knows_its_own_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A File Geodatabase output beside the user's own u.qml: kept, with a warning.
    let mine = "<qgis><!-- mine --></qgis>";
    std::fs::write(d.join("u.qml"), mine).unwrap();
    let run = run_colors(&d.join("u.gdb"), &colors_dlpk(), &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no QGIS style written: "));
    assert_eq!(std::fs::read_to_string(d.join("u.qml")).unwrap(), mine);
    // n.gpkg's style stays when n.gdb is written beside it.
    assert!(run_colors(&d.join("n.gpkg"), &colors_dlpk(), &[]).status.success());
    let gpkg_style = std::fs::read_to_string(d.join("n.qml")).unwrap();
    assert!(run_colors(&d.join("n.gdb"), &colors_dlpk(), &[]).status.success());
    assert_eq!(std::fs::read_to_string(d.join("n.qml")).unwrap(), gpkg_style);
    // A Shapefile's style is stamped with the output's layer, not the temporary one, so a later
    // run replaces it: a multi-label run over it gets its rule-based style.
    let shp = d.join("f.shp");
    assert!(run_colors(&shp, &colors_dlpk(), &[]).status.success());
    let qml = std::fs::read_to_string(d.join("f.qml")).unwrap();
    assert!(qml.contains("value=\"f.shp|f\""), "{qml}");
    let multi = multi_label_colors(d);
    let run = run_colors(&shp, &multi, &["--overwrite", "--model-arg", "threshold=0.6"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && !stderr.contains("QGIS style"), "{stderr}");
    let qml = std::fs::read_to_string(d.join("f.qml")).unwrap();
    assert!(qml.contains(r#"type="RuleRenderer""#), "{qml}");
}
