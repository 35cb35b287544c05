//! The written output read back once, row by row (memory stays flat however many rows there
//! are), for what the report shows of it: the distribution of confidences, overall and per
//! class; with a truth field, the misclassified rows per class; and each row's geometry, handed
//! to the map as it goes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::gdal_ffi::vector;
use crate::output::CONFIDENCE_FIELD;
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
    /// With a truth column: rows whose label differs from it, per label.
    pub misclassified: BTreeMap<String, usize>,
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

/// Reads every row of `layer` in `output`: label from `label_field`, confidence (unless
/// `multi_label`: then it is every class's score, as text), and, with `truth_column`, whether
/// the label is wrong; calls `geometry` with each labelled row's geometry, label and whether it
/// is misclassified.
pub fn read_back(
    output: &Path,
    layer: &str,
    label_field: &str,
    multi_label: bool,
    truth_column: Option<&str>,
    mut geometry: impl FnMut(&Geometry, &str, bool),
) -> Result<OutputContents> {
    let dataset = Dataset::open(output)?;
    let mut layer = output_layer(&dataset, layer)?;
    let defn = layer.defn();
    let label_index = defn.field_index(label_field).ok();
    let confidence_index = defn.field_index(CONFIDENCE_FIELD).ok().filter(|_| !multi_label);
    let truth_index = truth_column.and_then(|name| defn.field_index(name).ok());
    let mut contents = OutputContents {
        crs_wkt: layer.spatial_ref().and_then(|s| s.to_wkt().ok()),
        ..OutputContents::default()
    };
    for feature in layer.features() {
        contents.rows += 1;
        let Some(label) = label_index
            .and_then(|i| feature.field_as_string(i).ok().flatten())
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if let Some(c) = confidence_index.and_then(|i| feature.field_as_double(i).ok().flatten()) {
            contents.overall.add(c);
            contents.per_class.entry(label.clone()).or_default().add(c);
        }
        let expected = truth_index.and_then(|i| feature.field_as_string(i).ok().flatten());
        let misclassified = expected.is_some_and(|e| e != label);
        if misclassified {
            *contents.misclassified.entry(label.clone()).or_default() += 1;
        }
        if let Some(g) = feature.geometry() {
            if vector::has_geometry(g) {
                geometry(g, &label, misclassified);
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
