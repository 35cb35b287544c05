//! The independent Python reference (GDAL, numpy, onnxruntime; `fixtures/reference/`) and the
//! check that a run's rows match it.

use std::collections::BTreeMap;

use super::{fixture, read_csv, Row};

/// fid -> (label, confidence, [p_0, p_180]) of the independent Python reference.
pub fn reference(name: &str) -> BTreeMap<i64, (String, f64, Vec<f64>)> {
    read_csv(&fixture(&format!("reference/{name}")))
        .into_iter()
        .skip(1)
        .map(|c| {
            (
                c[0].parse().unwrap(),
                (
                    c[1].clone(),
                    c[2].parse().unwrap(),
                    c[3..].iter().map(|p| p.parse().unwrap()).collect(),
                ),
            )
        })
        .collect()
}

/// Each output row's label and confidence are the reference's for its SourceOID.
pub fn assert_matches_reference(rows: &[Row], reference: &BTreeMap<i64, (String, f64, Vec<f64>)>) {
    for row in rows {
        let fid = row.number("SourceOID").unwrap() as i64;
        let (label, confidence, _) = &reference[&fid];
        assert_eq!(row.text("ClassLabel").as_deref(), Some(label.as_str()), "fid {fid}");
        assert!(
            (row.number("Confidence").unwrap() - confidence).abs() < 1e-4,
            "fid {fid}"
        );
    }
}
