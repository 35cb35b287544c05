//! Stage 4, score: the calling thread runs the model on batches as the chip workers finish them
//! (in the order that reads the raster best), files each feature's outcome in its window, and
//! hands each window to the write stage once it is complete, in input order. The next windows
//! are sized from the speed so far.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};

use super::cut::ChippedBatch;
use super::read::{WINDOW_FEATURES, WINDOW_SECONDS};
use super::window::{Done, Window};
use super::write::{write_window, WriteContext};
use crate::chips::ChipSpec;
use crate::input::features::InputFeature;
use crate::input::items::Item;
use crate::output;
use crate::output::OutputWriter;
use crate::run::interrupt;
use crate::run::progress::Progress;
use crate::run::scorer::{Reviewed, Scorer};

/// What the scoring stage works with.
pub struct ScoreContext<'a> {
    /// The images.
    pub items: &'a [Item],
    /// The chip rules on each image.
    pub specs: &'a [ChipSpec],
    /// Position of the truth field.
    pub truth: Option<usize>,
    /// Keep every class's probability (`--all-scores`).
    pub all_scores: bool,
    /// How complete windows are written.
    pub write: WriteContext<'a>,
    /// Progress on stderr.
    pub progress: &'a Progress,
    /// Features in the next window, for the reader.
    pub window_size: &'a AtomicUsize,
    /// The fewest features in a window: a batch per chip worker.
    pub smallest_window: usize,
}

/// Scores every batch from `chips` and writes the windows as they complete; buffers go back
/// through `free`.
pub fn score_and_write(
    ctx: &ScoreContext<'_>,
    scorer: &mut Scorer<'_>,
    writer: &mut OutputWriter,
    chips: &Receiver<Result<ChippedBatch>>,
    free: &Sender<Vec<f32>>,
) -> Result<()> {
    let mut windows: BTreeMap<usize, Window> = BTreeMap::new();
    let mut next_window = 0;
    let (mut first_batch, mut rows_written) = (None, 0usize);
    for item in chips.iter() {
        let batch = match (item, interrupt::check()) {
            (_, Err(stopped)) => {
                return keep_scored_prefix(ctx, scorer, writer, windows.get_mut(&next_window), stopped)
            }
            (batch, Ok(())) => batch?,
        };
        let first_batch = *first_batch.get_or_insert_with(Instant::now);
        scorer.summary.chip_time += batch.cut_time;
        let window = windows
            .entry(batch.window)
            .or_insert_with(|| Window::new(batch.window_len));
        let scored = batch.features.len() as u64;
        score_batch(ctx, scorer, batch.features, &batch.chips, batch.count, window)?;
        ctx.progress.advance(scored);
        // The chip buffer goes back to the workers for reuse.
        let _ = free.try_send(batch.chips);
        while windows.get(&next_window).is_some_and(Window::complete) {
            let window = windows.remove(&next_window).expect("a complete window");
            rows_written += window.done.len();
            write_window(&ctx.write, scorer, writer, window)?;
            writer.checkpoint()?;
            next_window += 1;
            // The next windows hold about WINDOW_SECONDS of work at the speed so far (a slow
            // model gets small ones: a stopped run loses little).
            let rate = rows_written as f64 / first_batch.elapsed().as_secs_f64().max(1e-3);
            let size = (rate * WINDOW_SECONDS) as usize;
            ctx.window_size
                .store(size.clamp(ctx.smallest_window, WINDOW_FEATURES), Ordering::Relaxed);
        }
    }
    // The reader and the workers stopped on a signal before the last windows were complete.
    if let (false, Err(stopped)) = (windows.is_empty(), interrupt::check()) {
        return keep_scored_prefix(ctx, scorer, writer, windows.get_mut(&next_window), stopped);
    }
    if let Some((id, window)) = windows.iter().next() {
        anyhow::bail!(
            "window {id} of features ended with {} of {} rows",
            window.filled,
            window.done.len()
        );
    }
    Ok(())
}

/// A run stopped by a signal: the rows scored in input order (the first rows of the next
/// window) are written and committed, then `stopped` is returned.
fn keep_scored_prefix(
    ctx: &ScoreContext<'_>,
    scorer: &mut Scorer<'_>,
    writer: &mut OutputWriter,
    window: Option<&mut Window>,
    stopped: anyhow::Error,
) -> Result<()> {
    if let Some(window) = window {
        write_window(&ctx.write, scorer, writer, window.take_scored_prefix())?;
        writer.checkpoint()?;
    }
    Err(stopped)
}

/// Scores a batch's `count` chips and files each feature's outcome in its window.
fn score_batch(
    ctx: &ScoreContext<'_>,
    scorer: &mut Scorer<'_>,
    features: Vec<(usize, InputFeature)>,
    chips: &[f32],
    count: usize,
    window: &mut Window,
) -> Result<()> {
    let scores = if count > 0 {
        scorer.score(chips, count)?
    } else {
        Vec::new()
    };
    let classes = scorer.definition.classes.len();
    let mut per_chip = scores.chunks_exact(classes);
    let mut chip_values = chips.chunks_exact(ctx.specs[0].values_per_chip().max(1));
    for (position, feature) in features {
        let scores = feature
            .shape
            .is_ok()
            .then(|| per_chip.next().expect("scores for every chip"));
        let chip = feature.shape.is_ok().then(|| chip_values.next()).flatten();
        let mut problem = feature.shape.as_ref().err().copied();
        let labelled = match scores.map(|s| scorer.label(s)) {
            Some(Ok(labelled)) => Some(labelled),
            Some(Err(p)) => {
                problem = Some(p);
                None
            }
            None => None,
        };
        if let (Some((label, _)), Some(scores), Some(chip)) = (&labelled, scores, chip) {
            offer_to_gallery(ctx, scorer, &feature, label, (chip, scores))?;
        }
        // Every class's probability (--all-scores) of a classified row.
        let scores = scores
            .filter(|_| ctx.all_scores && labelled.is_some())
            .map(|s| s.iter().map(|&p| f64::from(p)).collect());
        window.done[position] = Some(Done {
            feature,
            labelled,
            problem,
            scores,
        });
        window.filled += 1;
    }
    Ok(())
}

/// With `--report`: the object is offered to the gallery of objects most worth checking, with
/// its chip.
fn offer_to_gallery(
    ctx: &ScoreContext<'_>,
    scorer: &mut Scorer<'_>,
    feature: &InputFeature,
    label: &str,
    (chip, scores): (&[f32], &[f32]),
) -> Result<()> {
    let Some(item) = feature.item.filter(|_| scorer.reviewing()) else {
        return Ok(());
    };
    let expected = ctx
        .truth
        .and_then(|i| feature.fields.get(i))
        .and_then(Option::as_ref)
        .map(output::field_text);
    let shape = feature.shape.as_ref().ok();
    let object = Reviewed {
        position: feature.index,
        source_id: feature.fid,
        image_id: (ctx.items.len() > 1).then(|| ctx.items[item].id.clone()),
        expected,
        label,
        shape,
        centre: shape.map(|s| {
            let [x0, y0, x1, y1] = s.envelope;
            (&ctx.items[item].grid, (x0 + x1) / 2.0, (y0 + y1) / 2.0)
        }),
    };
    scorer.review(&ctx.specs[item], chip, scores, object)
}
