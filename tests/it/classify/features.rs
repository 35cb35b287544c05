//! Features of every kind classified end to end on the synthetic raster painted so that each label
//! is known: points, lines and polygons, reprojection, the output schema, batch sizes and threads,
//! activations, CSV output, augmentation.

use std::path::Path;

use crate::support::*;

/// Every row: label = truth, confidence as computed from the palette, input attributes and
/// geometry unchanged, rows in input order.
fn assert_classified_like_truth(output: &Path, input: &Path, layer: &str) {
    let inputs = read_rows(input, Some(layer));
    let rows = read_rows(output, None);
    assert_eq!(rows.len(), inputs.len(), "one output row per input feature");
    assert_eq!(rows.len(), 16);
    for (row, input) in rows.iter().zip(&inputs) {
        let truth = input.text("truth").unwrap();
        assert_eq!(
            row.text("ClassLabel").as_deref(),
            Some(truth.as_str()),
            "row {:?}",
            row.text("name")
        );
        let confidence = row.number("Confidence").unwrap();
        assert!(
            (confidence - expected_confidence(&truth)).abs() < 1e-5,
            "{confidence} for {truth}"
        );
        assert!(confidence > 0.0 && confidence <= 1.0);
        assert_eq!(row.text("Status"), None, "classified rows have no status");
        for field in ["id", "name", "truth", "weight"] {
            assert_eq!(row.text(field), input.text(field), "attribute {field} kept");
        }
        assert_eq!(
            row.number("SourceOID"),
            input.fid.map(|f| f as f64),
            "source feature id kept"
        );
        assert_eq!(row.wkb, input.wkb, "geometry unchanged");
    }
}

fn expected_confidence(label: &str) -> f64 {
    let class = PALETTE.iter().position(|(n, _)| *n == label).expect("a palette label");
    onnx::expected_confidence(&palette(), &imagenet(), 1.0, class)
}

#[test]
fn polygons_points_and_lines_get_the_painted_colour() {
    let dir = tempfile::tempdir().unwrap();
    let features = fixture("synthetic/objects.gpkg");
    for layer in ["polygons", "points", "lines"] {
        let out = dir.path().join(format!("{layer}.gpkg"));
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture("synthetic/colors.dlpk"),
            Some(&features),
            &out,
            &["--layer", layer],
        ));
        assert_classified_like_truth(&out, &features, layer);
    }
}

#[test]
fn output_schema_has_input_fields_then_ours() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fields.gpkg");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--class-label-field", "Colour", "--layer", "polygons"],
    ));
    assert_eq!(
        field_names(&out),
        vec![
            "id",
            "name",
            "truth",
            "weight",
            "SourceOID",
            "Colour",
            "Confidence",
            "Status"
        ]
    );
    // The output keeps the input CRS and opens with ogrinfo's library.
    let ds = gdal::Dataset::open(&out).unwrap();
    let layer = ds.layer(0).unwrap();
    use gdal::vector::LayerAccess;
    assert_eq!(layer.spatial_ref().unwrap().auth_code().unwrap(), 32633);
    assert_eq!(layer.name(), "fields");
}

#[test]
fn features_in_another_crs_are_reprojected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wgs84.gpkg");
    let features = fixture("synthetic/objects_4326.geojson");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&features),
        &out,
        &[],
    ));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    for row in &rows {
        assert_eq!(row.text("ClassLabel"), row.text("truth"));
    }
    // Geometry stays in the features' own CRS (WGS 84 degrees, not UTM metres).
    let ds = gdal::Dataset::open(&out).unwrap();
    use gdal::vector::LayerAccess;
    assert_eq!(ds.layer(0).unwrap().spatial_ref().unwrap().auth_code().unwrap(), 4326);
    assert!(
        rows[0].wkt.as_ref().unwrap().starts_with("POLYGON ((15."),
        "{:?}",
        rows[0].wkt
    );
}

#[test]
fn a_bare_emd_next_to_its_model_works_like_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gpkg"), dir.path().join("b.gpkg"));
    for (model, out) in [("synthetic/colors.emd", &a), ("synthetic/colors.dlpk", &b)] {
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture(model),
            Some(&fixture("synthetic/objects.gpkg")),
            out,
            &["--layer", "points"],
        ));
    }
    let (ra, rb) = (read_rows(&a, None), read_rows(&b, None));
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.text("ClassLabel"), y.text("ClassLabel"));
        assert_eq!(x.number("Confidence"), y.number("Confidence"));
    }
}

#[test]
fn batch_sizes_and_thread_counts_give_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (batch, threads) in [("1", "1"), ("3", "2"), ("16", "4"), ("7", "3")] {
        let out = dir.path().join(format!("b{batch}t{threads}.gpkg"));
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &fixture("synthetic/colors.dlpk"),
            Some(&fixture("synthetic/objects.gpkg")),
            &out,
            &[
                "--model-arg",
                &format!("batch_size={batch}"),
                "--threads",
                threads,
                "--layer",
                "polygons",
            ],
        ));
        let rows: Vec<(Option<String>, Option<String>, Option<f64>)> = read_rows(&out, None)
            .iter()
            .map(|r| (r.text("name"), r.text("ClassLabel"), r.number("Confidence")))
            .collect();
        results.push(rows);
    }
    for other in &results[1..] {
        assert_eq!(&results[0], other);
    }
}

#[test]
fn softmax_models_are_not_softmaxed_twice_and_fixed_batches_are_padded() {
    let dir = tempfile::tempdir().unwrap();
    let emd = colors_emd(&[]);
    let variants = [
        (
            "softmax.dlpk",
            onnx::ColorModelOptions {
                softmax: true,
                ..Default::default()
            },
        ),
        (
            "fixed_batch.dlpk",
            onnx::ColorModelOptions {
                batch: onnx::Dim::Fixed(5),
                ..Default::default()
            },
        ),
        (
            "dynamic_chip.dlpk",
            onnx::ColorModelOptions {
                chip: None,
                ..Default::default()
            },
        ),
    ];
    for (name, options) in variants {
        let model = onnx::color_classifier(&palette(), &imagenet(), &options);
        let package = write_package(dir.path(), name, &emd, &model);
        let out = dir.path().join(format!("{name}.gpkg"));
        run_owned_ok(&classify_args(
            &fixture("synthetic/colors.tif"),
            &package,
            Some(&fixture("synthetic/objects.gpkg")),
            &out,
            &["--model-arg", "batch_size=3", "--layer", "polygons"],
        ));
        assert_classified_like_truth(&out, &fixture("synthetic/objects.gpkg"), "polygons");
    }
}

#[test]
fn csv_output_for_features_carries_wkt() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("objects.csv");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--layer", "points"],
    ));
    let rows = read_csv(&out);
    assert_eq!(
        rows[0],
        vec![
            "SourceOID",
            "ClassLabel",
            "Confidence",
            "Status",
            "id",
            "name",
            "truth",
            "weight",
            "WKT"
        ]
    );
    assert_eq!(rows.len(), 17);
    for row in &rows[1..] {
        assert_eq!(row[1], row[6], "label equals truth");
        assert!(row[8].starts_with("POINT ("), "{}", row[8]);
    }
}

#[test]
fn test_time_augmentation_runs_and_is_invariant_on_uniform_chips() {
    // On a uniform chip every dihedral variant is the same chip: the mean equals the plain answer.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tta.gpkg");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &[
            "--model-arguments",
            "batch_size 5;test_time_augmentation true",
            "--layer",
            "polygons",
        ],
    ));
    assert_classified_like_truth(&out, &fixture("synthetic/objects.gpkg"), "polygons");
}
