//! The real model on the real rasters and features, against the independent Python reference (GDAL,
//! numpy, onnxruntime).

use crate::support::*;

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

/// Reference rows: fid -> (label, confidence).
fn reference(name: &str) -> Vec<(u64, String, f64)> {
    read_csv(&fixture(&format!("reference/{name}")))
        .into_iter()
        .skip(1)
        .map(|cells| (cells[0].parse().unwrap(), cells[1].clone(), cells[2].parse().unwrap()))
        .collect()
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
