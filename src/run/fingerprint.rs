//! What identifies a run by content, part by part: the model (its definition and bytes), the
//! rasters (their files sampled, not their paths), the features (layer, columns, CRS; their
//! content as read after the filters is added once they are read) and the options that shape the
//! output. Equal for every shard of one run on any machine; a resumed output must have been
//! written by the same run, and `merge` takes shards of one run only. The parts are kept
//! separately so that a refusal can say what differs.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::digest::Fingerprint;
use crate::input::identity;
use crate::input::raster::Raster;
use crate::model::ModelPackage;
use crate::run::plan::ClassifyPlan;

/// The parts of a run's identity, by name (`model`, `rasters`, `features`, `options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// Each part's fingerprint.
    pub parts: BTreeMap<String, String>,
}

/// The model's fingerprint: its definition and its ONNX bytes.
pub fn model_fingerprint(package: &ModelPackage) -> String {
    Fingerprint::default()
        .add(package.emd_text.as_bytes())
        .add(&package.onnx)
        .hex()
}

impl RunIdentity {
    /// The identity of the run `plan` describes, whose features' layer is `features`.
    pub fn of(plan: &ClassifyPlan, features: &str) -> Result<RunIdentity> {
        let mut parts = BTreeMap::new();
        parts.insert("model".to_string(), model_fingerprint(&plan.model.package));
        let mut rasters = Fingerprint::default();
        for name in &plan.inputs.rasters {
            identity::add_raster(&mut rasters, &Raster::open_with(name, &plan.inputs.raster_overrides)?);
        }
        parts.insert("rasters".to_string(), rasters.hex());
        parts.insert(
            "features".to_string(),
            Fingerprint::default().add(features.as_bytes()).hex(),
        );
        parts.insert("options".to_string(), options(plan));
        Ok(RunIdentity { parts })
    }

    /// The whole identity as one fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut print = Fingerprint::default();
        for (name, part) in &self.parts {
            print.add(name.as_bytes()).add(part.as_bytes());
        }
        print.hex()
    }

    /// The parts in which `recorded` differs from this identity, in words.
    pub fn differences(&self, recorded: &BTreeMap<String, String>) -> Vec<String> {
        self.parts
            .iter()
            .filter(|(name, part)| recorded.get(*name) != Some(part))
            .map(|(name, _)| match name.as_str() {
                "model" => "another model".to_string(),
                "rasters" => "other rasters (or rasters changed since)".to_string(),
                "features" => "other features".to_string(),
                _ => "other options (label field, processing mode, augmentation, threshold, filters, extent, bands, NoData, output CRS, scores, cell size)".to_string(),
            })
            .collect()
    }
}

/// The options that shape the output.
fn options(plan: &ClassifyPlan) -> String {
    let text = format!(
        "{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}",
        plan.output.label_field,
        plan.inputs.processing_mode,
        plan.model.arguments.test_time_augmentation,
        plan.model.arguments.threshold,
        plan.inputs.features.as_ref().map(|f| &f.query),
        plan.inputs.extent,
        plan.inputs.raster_overrides,
        plan.output.layer.target_srs,
        plan.output.all_scores,
        plan.chips.cell_size,
        plan.chips.resampling as u32,
    );
    Fingerprint::default().add(text.as_bytes()).hex()
}
