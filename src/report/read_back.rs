//! The written output read back once, row by row (memory stays flat however many rows there
//! are), for what the report shows of it: the distribution of confidences, overall and per
//! class; with a truth field, the misclassified rows per class; and each row's geometry, handed
//! to the map as it goes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::gdal_ffi::vector;
use crate::output::{CONFIDENCE_FIELD, IMAGE_ID_FIELD, SOURCE_ID_FIELD, STATUS_FIELD};
use anyhow::Result;
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{Geometry, LayerAccess};
use gdal::Dataset;

/// Bins of a confidence distribution over 0..1.
pub const BINS: usize = 20;

/// A distribution of confidences: counts in [`BINS`] equal bins over 0..1, and moments.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Count per bin; bin `i` holds `i / BINS <= c < (i + 1) / BINS` (1.0 in the last).
    pub bins: [usize; BINS],
    /// Values counted.
    pub count: usize,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution {
            bins: [0; BINS],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
        }
    }
}

impl Distribution {
    /// Counts `c` (0..1).
    pub fn add(&mut self, c: f64) {
        self.bins[((c * BINS as f64).floor().max(0.0) as usize).min(BINS - 1)] += 1;
        self.count += 1;
        self.sum += c;
        self.min = self.min.min(c);
    }

    /// The mean (`None` for no values).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// What the output holds, as the report shows it.
#[derive(Debug, Default)]
pub struct OutputContents {
    /// Rows read.
    pub rows: usize,
    /// Confidences of every labelled row (single-label models; multi-label rows carry text).
    pub overall: Distribution,
    /// Confidences per label.
    pub per_class: BTreeMap<String, Distribution>,
    /// With a truth column: rows whose label differs from it, per label (multi-label: per class
    /// of the set, `""` for rows without a label).
    pub misclassified: BTreeMap<String, usize>,
    /// With a truth column: rows whose label is wrong.
    pub misclassified_rows: usize,
    /// The layer's CRS, as WKT.
    pub crs_wkt: Option<String>,
}

/// The run's layer of the output: `layer`, or the only one (a CSV table).
fn output_layer<'d>(dataset: &'d Dataset, layer: &str) -> Result<gdal::vector::Layer<'d>> {
    Ok(match dataset.layer_by_name(layer) {
        Ok(layer) => layer,
        Err(_) => dataset.layer(0)?,
    })
}

/// The CRS of the run's layer in `output`, and its number of rows.
pub fn layer_info(output: &Path, layer: &str) -> Result<(Option<SpatialRef>, u64)> {
    let dataset = Dataset::open(output)?;
    let layer = output_layer(&dataset, layer)?;
    Ok((layer.spatial_ref(), layer.feature_count()))
}

/// A row of the output as the map draws it.
pub struct RowView<'r> {
    /// Its label (multi-label: the set, `""` for a row without a label).
    pub label: &'r str,
    /// Whether the label differs from the truth field.
    pub misclassified: bool,
    /// What names the row for a person: `SourceOID 274`, its image, or its row number.
    pub name: String,
    /// Its confidence as shown (single-label models).
    pub confidence: Option<f64>,
}

/// Reads every row of `layer` in `output`: label from `label_field`, confidence (unless
/// `multi_label`: then it is every class's score, as text), and, with `wrong_rows` (the rows the
/// run judged wrong against its truth field, by `SourceOID` and `ImageId`), whether the label is
/// wrong; calls `draw` with each labelled row's geometry and what names it. A
/// multi-label row classified without a label (no `Status`) is drawn too, with label `""`.
pub fn read_back(
    output: &Path,
    layer: &str,
    label_field: &str,
    multi_label: bool,
    wrong_rows: Option<&BTreeSet<(i64, String)>>,
    mut draw: impl FnMut(&Geometry, &RowView<'_>),
) -> Result<OutputContents> {
    let dataset = Dataset::open(output)?;
    let mut layer = output_layer(&dataset, layer)?;
    let defn = layer.defn();
    let index = |name: &str| defn.field_index(name).ok();
    let label_index = index(label_field);
    let confidence_index = index(CONFIDENCE_FIELD).filter(|_| !multi_label);
    let (status_index, source_index, image_index) =
        (index(STATUS_FIELD), index(SOURCE_ID_FIELD), index(IMAGE_ID_FIELD));
    let mut contents = OutputContents {
        crs_wkt: layer.spatial_ref().and_then(|s| s.to_wkt().ok()),
        ..OutputContents::default()
    };
    for feature in layer.features() {
        contents.rows += 1;
        let text = |i: Option<usize>| i.and_then(|i| feature.field_as_string(i).ok().flatten());
        let label = text(label_index).unwrap_or_default();
        let unlabelled = multi_label && label.is_empty() && text(status_index).is_none_or(|s| s.is_empty());
        if label.is_empty() && !unlabelled {
            continue;
        }
        let confidence = confidence_index.and_then(|i| feature.field_as_double(i).ok().flatten());
        if let Some(c) = confidence {
            contents.overall.add(c);
            contents.per_class.entry(label.clone()).or_default().add(c);
        }
        let key = || {
            let id = source_index.and_then(|i| feature.field_as_integer64(i).ok().flatten());
            (id.unwrap_or(-1), text(image_index).unwrap_or_default())
        };
        let misclassified = wrong_rows.is_some_and(|wrong| wrong.contains(&key()));
        if misclassified {
            contents.misclassified_rows += 1;
            // Multi-label: counted for each class of the set (a row without a label under "").
            let classes: Vec<&str> = if multi_label {
                label.split(';').collect()
            } else {
                vec![label.as_str()]
            };
            for class in classes {
                *contents.misclassified.entry(class.to_string()).or_default() += 1;
            }
        }
        if let Some(g) = feature.geometry() {
            if vector::has_geometry(g) {
                let name = match (text(source_index), text(image_index)) {
                    (Some(id), _) => format!("SourceOID {id}"),
                    (None, Some(image)) => image,
                    (None, None) => format!("row {}", contents.rows),
                };
                let row = RowView {
                    label: &label,
                    misclassified,
                    name,
                    confidence,
                };
                draw(g, &row);
            }
        }
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_bin_over_zero_to_one() {
        let mut d = Distribution::default();
        for c in [0.0, 0.049, 0.05, 0.5, 0.999, 1.0] {
            d.add(c);
        }
        assert_eq!(d.bins[0], 2);
        assert_eq!(d.bins[1], 1);
        assert_eq!(d.bins[10], 1);
        assert_eq!(d.bins[BINS - 1], 2, "1.0 goes in the last bin");
        assert_eq!(d.count, 6);
        assert_eq!(d.min, 0.0);
        assert!((d.mean().unwrap() - 2.598 / 6.0).abs() < 1e-12);
        assert_eq!(Distribution::default().mean(), None);
    }
}
