//! Stage 6, finish: the checks a run makes once every feature went through (none readable, none
//! on the raster), and the output closed with a shard's record.

use anyhow::Result;

use crate::bail_input;
use crate::input::features::{srs_label, Problem};
use crate::input::items::Item;
use crate::output::shard::{Fingerprint, ShardRecord};
use crate::output::style;
use crate::output::OutputSchema;
use crate::report::summary::RunSummary;
use crate::run::plan::{ClassifyPlan, FeaturesPlan};

/// What the run read, for the checks and the shard's record.
pub struct Read<'a> {
    /// The images.
    pub items: &'a [Item],
    /// The features' CRS as read.
    pub features_srs: Option<String>,
    /// What identifies the features' layer.
    pub source_identity: &'a str,
    /// Features in the whole input.
    pub features: u64,
    /// Rows per selected feature (shard runs).
    pub row_counts: Option<Vec<u32>>,
}

/// Fails a run whose features could not be read from the raster at all, or of which none falls
/// on it (with what to check).
pub fn check_outcome(summary: &RunSummary, features: &FeaturesPlan, read: &Read<'_>) -> Result<()> {
    let names = || {
        read.items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unread = summary.problems.get(Problem::ReadFailed.code()).copied().unwrap_or(0);
    if summary.objects > summary.resumed && unread == summary.objects - summary.resumed {
        anyhow::bail!(
            "the pixels of none of the {unread} features could be read from {} (see the warnings above); check that the raster is complete and reachable",
            names()
        );
    }
    let missed = ["outside_raster", "reprojection_failed"]
        .iter()
        .filter_map(|k| summary.problems.get(k))
        .sum::<usize>();
    if summary.objects > 0 && missed == summary.objects {
        bail_input!(
            "none of the {} features of {} fall on raster {} (features in {}, raster in {}); if the features' coordinates are in another CRS than declared, give it with --features-crs",
            summary.objects,
            features.source,
            names(),
            crs_name(read.features_srs.as_deref()),
            crs_name(read.items[0].grid.srs_wkt.as_deref())
        );
    }
    Ok(())
}

/// The record a `--shard` run leaves in its output for `merge`.
pub fn shard_record(
    plan: &ClassifyPlan,
    summary: &RunSummary,
    schema: &OutputSchema,
    read: Read<'_>,
) -> Option<ShardRecord> {
    let shard = plan.scale_out.shard?;
    let definition = &plan.model.package.definition;
    Some(ShardRecord {
        index: shard.index,
        count: shard.count,
        features: read.features,
        rows: summary.objects as u64,
        row_counts: read.row_counts.filter(|counts| counts.iter().any(|&n| n != 1)),
        fingerprint: fingerprint(plan, read.source_identity),
        layer: plan.output.layer.given.then(|| plan.output.layer.name.clone()),
        label_field: plan.output.label_field.clone(),
        style: plan.output.style,
        qml: schema
            .geometry
            .as_ref()
            .map(|(ty, _)| style::qml(&schema.label_field, *ty, &definition.class_colors())),
    })
}

/// The fingerprint of a shard run: the features (layer, columns, count), the rasters (names and
/// grids), the model (its definition and bytes) and the options that shape the output; equal
/// for every shard of one run, whatever machine it ran on.
fn fingerprint(plan: &ClassifyPlan, features: &str) -> String {
    let mut print = Fingerprint::default();
    print.add(features.as_bytes());
    for raster in &plan.inputs.rasters {
        print.add(raster.as_bytes());
    }
    print.add(format!("{:?}", plan.model.package.definition).as_bytes());
    print.add(&plan.model.package.onnx);
    print.add(
        format!(
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
        )
        .as_bytes(),
    );
    print.hex()
}

fn crs_name(wkt: Option<&str>) -> String {
    wkt.map(srs_label).unwrap_or_else(|| "no CRS".into())
}
