//! The QGIS style beside or inside an output.

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
}
