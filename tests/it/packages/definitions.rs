//! Real Esri model definitions, and a definition given as JSON text.

use std::fs;
use std::path::Path;
use std::process::Command;

use classify_objects::exit_code;
use classify_objects::BandSelector;
use classify_objects::ImageSpace;
use classify_objects::ModelDefinition;

use crate::support::*;

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

#[test]
fn a_model_definition_given_as_json_reads_its_model_from_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let emd = fs::read_to_string(fixture("synthetic/colors.emd")).unwrap();
    assert!(emd.contains("\"ModelFile\": \"colors.onnx\""));
    let run_in = |cwd: &Path, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_classify-objects"))
            .current_dir(cwd)
            .args([
                "-r",
                colors_tif().to_str().unwrap(),
                "-m",
                &emd,
                "-f",
                objects().to_str().unwrap(),
                "--layer",
                "points",
                "-o",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    // Run from the folder holding colors.onnx: the same rows as the package.
    let json = d.join("json.gpkg");
    let output = run_in(&fixture("synthetic"), &json);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let package = d.join("package.gpkg");
    run_owned_ok(&classify_args(
        &colors_tif(),
        &colors_dlpk(),
        Some(&objects()),
        &package,
        &["--layer", "points"],
    ));
    let (a, b) = (read_rows(&json, None), read_rows(&package, None));
    assert_eq!(a.len(), 16);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text("ClassLabel"), x.text("truth"));
        assert_eq!(
            (x.text("ClassLabel"), x.number("Confidence")),
            (y.text("ClassLabel"), y.number("Confidence"))
        );
    }
    // From another folder, colors.onnx is not there: one line naming it.
    let output = run_in(d, &d.join("elsewhere.gpkg"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("colors.onnx") && stderr.contains("(--model JSON)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Not JSON: the parser's message.
    let line = run_err(
        &classify_args(
            &colors_tif(),
            Path::new("{\"Framework\": "),
            None,
            &d.join("x.csv"),
            &[],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        2,
    );
    assert!(line.contains("is not valid JSON"), "{line}");
}
