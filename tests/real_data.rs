//! Real model, real raster, real vectors: classify-objects against an independent Python
//! implementation of the same chip rules (`fixtures/reference/make_reference.py`), and the real
//! Esri `.emd` files.

mod support;

use std::fs;

use classify_objects::exit_code;
use classify_objects::{BandSelector, ImageSpace, ModelDefinition};
use support::*;

/// Reference rows: fid -> (label, confidence).
fn reference(name: &str) -> Vec<(u64, String, f64)> {
    read_csv(&fixture(&format!("reference/{name}")))
        .into_iter()
        .skip(1)
        .map(|cells| (cells[0].parse().unwrap(), cells[1].clone(), cells[2].parse().unwrap()))
        .collect()
}

fn compare_with_reference(features: &str, reference_csv: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gpkg");
    run_owned_ok(&classify_args(
        &fixture("real/RGB.byte.tif"),
        &fixture("real/textline_cls.dlpk"),
        Some(&fixture(features)),
        &out,
        &["--model-arg", "batch_size=16"],
    ));
    let rows = read_rows(&out, None);
    let expected = reference(reference_csv);
    assert_eq!(rows.len(), expected.len());
    let mut labels = std::collections::BTreeMap::new();
    for (row, (fid, label, confidence)) in rows.iter().zip(&expected) {
        assert_eq!(row.number("SourceOID"), Some(*fid as f64), "rows in input order");
        assert_eq!(
            row.text("ClassLabel").as_deref(),
            Some(label.as_str()),
            "label of feature {fid}"
        );
        let got = row.number("Confidence").unwrap();
        assert!(
            (got - confidence).abs() < 1e-4,
            "confidence of feature {fid}: {got} vs reference {confidence}"
        );
        assert!(
            (0.5..=1.0).contains(&got),
            "top probability of two classes is in 0.5..1"
        );
        *labels.entry(label.clone()).or_insert(0) += 1;
    }
    assert!(
        labels.len() == 2 || expected.len() < 10,
        "both classes occur on real data: {labels:?}"
    );
}

#[test]
fn footprint_polygons_match_the_python_reference() {
    compare_with_reference("real/RGB.byte.foot.gpkg", "textline_cls_RGB.byte.foot.csv");
}

#[test]
fn shapefile_box_matches_the_python_reference() {
    compare_with_reference("real/box.shp", "textline_cls_box.csv");
}

#[test]
fn two_thousand_points_match_the_python_reference() {
    compare_with_reference("real/RGB.byte.bench_points_2000.gpkg", "textline_cls_points_2000.csv");
}

#[test]
fn real_esri_definitions_parse_or_are_refused_clearly() {
    let dir = fixture("esri_emd");
    let mut accepted = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("emd") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let model_type = serde_json::from_str::<serde_json::Value>(&text).unwrap()["ModelType"]
            .as_str()
            .unwrap()
            .to_string();
        match ModelDefinition::parse(&text, &name) {
            Ok(definition) => {
                assert_eq!(model_type, "ObjectClassification", "{name}");
                accepted.push((name, definition));
            }
            Err(err) => {
                assert_ne!(model_type, "ObjectClassification", "{name} should parse: {err}");
                assert_eq!(exit_code(&err), 2);
                let message = err.to_string();
                assert!(
                    message.contains(&model_type) && message.contains("ObjectClassification"),
                    "{message}"
                );
            }
        }
    }
    accepted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(accepted.len(), 2);
    let (_, keras) = &accepted[0];
    assert_eq!(
        keras.model_configuration.as_deref(),
        Some("KerasClassifier"),
        "object form of ModelConfiguration"
    );
    assert_eq!(
        keras.model_file.as_deref(),
        Some("Damage_Classification_Model_V7.h5"),
        ".\\ stripped"
    );
    assert!(keras.blacken_around_feature && keras.crop_size_fixed);
    assert_eq!((keras.image_width, keras.image_height), (256, 256));
    assert_eq!(keras.class_names(), vec!["undamaged", "damaged"]);
    let (_, woolsey) = &accepted[1];
    assert_eq!((woolsey.image_width, woolsey.image_height), (600, 600));
    assert_eq!(woolsey.class_names(), vec!["Damaged", "Undamaged"]);
    assert_eq!(woolsey.classes[0].value, Some(1));
    assert_eq!(woolsey.classes[1].color, Some([158, 187, 171]));
    assert_eq!(woolsey.image_space, ImageSpace::MapSpace);
    assert_eq!(
        woolsey.extract_bands,
        vec![BandSelector::Index(0), BandSelector::Index(1), BandSelector::Index(2)]
    );
}

#[test]
fn a_real_definition_naming_a_keras_model_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let emd = fs::read(fixture(
        "esri_emd/examples__keras__object_classification__HouseDamageClassifier_ProBuiltin.emd",
    ))
    .unwrap();
    let package = dir.path().join("keras.dlpk");
    write_zip(
        &package,
        &[("HouseDamage.emd", &emd), ("Damage_Classification_Model_V7.h5", b"HDF")],
    );
    let out = dir.path().join("out.gpkg");
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            package.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        line.contains("Keras") && line.contains("export the model to ONNX"),
        "{line}"
    );
    assert!(!out.exists());
}
