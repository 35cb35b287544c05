//! Stage 5, write: a complete window's rows, in input order, with each feature's label,
//! confidence and status; counts and the truth comparison kept on the way.

use std::time::Instant;

use anyhow::Result;

use super::window::{Done, Window};
use crate::bail_input;
use crate::input::features::Problem;
use crate::input::items::Item;
use crate::output;
use crate::output::{OutputRow, OutputWriter};
use crate::run::scorer::Scorer;

/// What the write stage works with.
pub struct WriteContext<'a> {
    /// The images (a row names its image when there are several).
    pub items: &'a [Item],
    /// With `--strict`, the features' name: a feature that cannot be classified is an error.
    pub strict: Option<&'a str>,
    /// Position of the truth field.
    pub truth: Option<usize>,
}

/// Writes a complete window's rows in input order.
pub fn write_window(
    ctx: &WriteContext<'_>,
    scorer: &mut Scorer<'_>,
    writer: &mut OutputWriter,
    window: Window,
) -> Result<()> {
    for done in window.done.into_iter().flatten() {
        write_row(ctx, scorer, writer, done)?;
    }
    Ok(())
}

fn write_row(ctx: &WriteContext<'_>, scorer: &mut Scorer<'_>, writer: &mut OutputWriter, done: Done) -> Result<()> {
    let Done {
        feature,
        labelled,
        problem,
        scores,
    } = done;
    scorer.summary.objects += 1;
    // An invalid polygon is classified all the same, and flagged.
    let problem = problem.or(feature.flag);
    if let (Some(problem), Some(source)) = (problem, ctx.strict) {
        bail_input!(
            "feature {} (fid {}) of {source} cannot be classified: {}; fix or remove it, or run without --strict to write it with a Status",
            feature.index,
            feature.fid.map_or("none".to_string(), |f| f.to_string()),
            problem.code()
        );
    }
    if let Some(problem) = problem {
        *scorer.summary.problems.entry(problem.code()).or_default() += 1;
    }
    let expected = ctx
        .truth
        .and_then(|i| feature.fields.get(i))
        .and_then(Option::as_ref)
        .map(output::field_text);
    let (label, confidence) = labelled.map_or((None, None), |(l, c)| (Some(l), Some(c)));
    // With several items, each row says which image it was classified on.
    let image_id = feature
        .item
        .filter(|_| ctx.items.len() > 1)
        .map(|i| ctx.items[i].id.clone());
    if let (Some(expected), Some(predicted), Some(confusion)) = (&expected, &label, scorer.summary.truth.as_mut()) {
        if !confusion.record(expected, predicted) {
            let key = (feature.fid.unwrap_or(-1), image_id.clone().unwrap_or_default());
            scorer.summary.wrong_rows.insert(key);
        }
    }
    let started = Instant::now();
    writer.write(&OutputRow {
        geometry_wkb: feature.geometry_wkb,
        source_id: feature.fid,
        image_id,
        fields: feature.fields,
        label,
        confidence,
        status: problem.map(Problem::code),
        scores,
    })?;
    scorer.summary.write_time += started.elapsed();
    Ok(())
}
