//! Stage 6, finish: the checks a run makes once every feature went through (none readable, none
//! on the raster), and the output closed with a shard's record.

use anyhow::Result;

use crate::bail_input;
use crate::input::features::{srs_label, Problem};
use crate::input::items::Item;
use crate::messages;
use crate::output::shard::ShardRecord;
use crate::output::style;
use crate::output::OutputSchema;
use crate::report::summary::RunSummary;
use crate::run::fingerprint::RunIdentity;
use crate::run::pipeline::prepare::{self, RecordCounts};
use crate::run::plan::{ClassifyPlan, FeaturesPlan};

/// What the run read, for the checks and the shard's record.
pub struct Read<'a> {
    /// The images.
    pub items: &'a [Item],
    /// The features' CRS as read.
    pub features_srs: Option<String>,
    /// What identifies the run, when it records itself.
    pub identity: Option<&'a RunIdentity>,
    /// Features in the whole input.
    pub features: u64,
    /// Rows per selected feature (runs that record themselves).
    pub row_counts: Option<Vec<u32>>,
    /// The features' content fingerprint (runs that record themselves).
    pub features_content: Option<String>,
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

/// Says on stderr that the features' selection is empty (the output has no rows); with
/// `--strict` that is an error, before the output is committed (an existing one is kept).
pub fn check_selection(plan: &ClassifyPlan, features: &FeaturesPlan, read: &Read<'_>) -> Result<()> {
    if read.features > 0 {
        return Ok(());
    }
    let query = &features.query;
    let flags: Vec<String> = [
        query
            .where_clause
            .as_ref()
            .map(|w| format!("--where {}", messages::quoted(w))),
        query.sql.as_ref().map(|s| format!("--sql {}", messages::quoted(s))),
        plan.inputs.extent.as_ref().map(|_| "--extent".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let what = if flags.is_empty() {
        format!("features {} hold no feature", features.source)
    } else {
        format!("{} selected no feature of {}", flags.join(" and "), features.source)
    };
    if plan.output.strict {
        bail_input!("{what}; with --strict an empty selection is an error and the output is left as it was: widen the selection");
    }
    messages::warning(format_args!("{what}: the output has no rows"));
    Ok(())
}

/// The record a run that records itself (`--shard`, `--resume`) leaves in its output, for
/// `merge` and for a later `--resume`.
pub fn run_record(
    plan: &ClassifyPlan,
    summary: &RunSummary,
    schema: &OutputSchema,
    read: Read<'_>,
) -> Option<ShardRecord> {
    let identity = read.identity?;
    let definition = &plan.model.package.definition;
    let counts = RecordCounts {
        features: read.features,
        rows: summary.objects as u64,
        row_counts: read.row_counts.filter(|counts| counts.iter().any(|&n| n != 1)),
        features_content: read.features_content,
    };
    let qml = schema
        .geometry
        .as_ref()
        .map(|(ty, _)| style::qml(&schema.label_field, *ty, &definition.class_colors(), schema.multi_label));
    Some(prepare::run_record(plan, identity, counts, qml))
}

fn crs_name(wkt: Option<&str>) -> String {
    wkt.map(srs_label).unwrap_or_else(|| "no CRS".into())
}
