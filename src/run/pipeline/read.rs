//! Stage 2, read: one thread reads the features in input order and gathers them into windows
//! (of about [`WINDOW_SECONDS`] of work, up to [`WINDOW_FEATURES`]); each window is sorted by
//! raster block (Z-order), so that chips sharing blocks are cut one after another and each block
//! is decoded about once whatever the input order, and split into one stretch per chip worker.
//! Rows an earlier run wrote (`--resume`) are counted here, not classified again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use crossbeam_channel::Sender;

use crate::bail_input;
use crate::chips::ChipSpec;
use crate::input::features::{FeatureSource, InputFeature};
use crate::input::items::Item;
use crate::output;
use crate::output::resume::WrittenRow;
use crate::report::summary::RunSummary;
use crate::report::truth::Confusion;
use crate::run::interrupt;
use crate::run::progress::Progress;

/// Features read before their chips are cut, at most: a window is sorted by raster block so that
/// chips that share blocks are cut one after another (each block decoded about once), while the
/// rows keep the input order.
pub const WINDOW_FEATURES: usize = 65_536;
/// Features in the first window, and the fewest in any: one batch per chip worker. Windows grow
/// with the run's speed, up to [`WINDOW_SECONDS`] of work each, so that rows are written (and
/// committed) every few seconds whether the model is slow or the reading is.
pub fn smallest_window(batch_size: usize, workers: usize) -> usize {
    (batch_size * workers).clamp(1, WINDOW_FEATURES)
}
/// Seconds of work a window holds, about. A window is read block by block, so with a block cache
/// much smaller than the image each window decodes every block it touches once: the longer the
/// windows, the fewer blocks decoded twice (a 64 MB cache on `bench/large.sh` ran at 0.66x the
/// speed of an unlimited one with 2-second windows, 0.82x with 10-second ones), but a stopped run
/// loses the window it was in.
pub const WINDOW_SECONDS: f64 = 10.0;
/// Bytes of geometries held in one window, at most (large polygons make smaller windows).
pub const WINDOW_BYTES: usize = 64 << 20;

/// Features to cut and score together, each with its position in its window.
pub struct FeatureBatch {
    /// The window the features belong to.
    pub window: usize,
    /// Features in that window.
    pub window_len: usize,
    /// The features, each with its position in the window.
    pub features: Vec<(usize, InputFeature)>,
}

/// What the reader works with.
pub struct ReadContext<'a> {
    /// The features.
    pub source: FeatureSource,
    /// The images they are placed on.
    pub items: &'a [Item],
    /// The chip rules on each image (for the locality order).
    pub specs: &'a [ChipSpec],
    /// Features per batch.
    pub batch_size: usize,
    /// One queue per chip worker.
    pub queues: Vec<Sender<FeatureBatch>>,
    /// Rows an earlier run wrote, skipped.
    pub written: &'a [WrittenRow],
    /// Position of the truth field, to count the skipped rows' truth.
    pub truth: Option<usize>,
    /// The comparison the skipped rows' truth is counted in.
    pub comparison: Option<Confusion>,
    /// Whether the run records itself (rows per feature are then counted).
    pub record: bool,
    /// Whether labels are sets of classes (a multi-label model), for counting the skipped rows.
    pub multi_label: bool,
    /// Features in the next window, set by the scoring stage from the run's speed.
    pub window_size: &'a AtomicUsize,
    /// Progress on stderr.
    pub progress: &'a Progress,
}

/// What the feature reader did.
pub struct ReaderReport {
    /// Time it was busy (not waiting for room in the queue).
    pub busy: Duration,
    /// The rows an earlier run wrote, counted.
    pub resumed: RunSummary,
    /// Features in the whole input.
    pub features: u64,
    /// Rows per selected feature (runs that record themselves).
    pub row_counts: Option<Vec<u32>>,
    /// The features' content fingerprint, when the run records itself.
    pub features_content: Option<String>,
}

/// Reads every feature into windows for the chip workers.
pub fn read_features(mut ctx: ReadContext<'_>) -> Result<ReaderReport> {
    // Busy time: the whole loop less the time spent waiting for room in the queues.
    let started = Instant::now();
    // Rows an earlier run wrote: counted here, not classified again.
    let mut resumed = RunSummary {
        truth: ctx.comparison.take(),
        multi_label: ctx.multi_label,
        ..RunSummary::default()
    };
    let mut skipped = 0;
    let mut row_counts = RowCounts::new(ctx.record);
    let mut windows = WindowDispatch {
        batch_size: ctx.batch_size,
        queues: &ctx.queues,
        specs: ctx.specs,
        items: ctx.items,
        next_id: 0,
        waiting: Duration::ZERO,
        pending: Vec::new(),
        pending_bytes: 0,
        size: ctx.window_size,
    };
    let (items, written) = (ctx.items, ctx.written);
    let total = ctx.source.for_each(items, &interrupt::check, |feature| {
        row_counts.count(feature.index);
        if let Some(row) = written.get(skipped) {
            check_resumed_row(row, &feature, items, skipped)?;
            skipped += 1;
            let expected = ctx.truth.and_then(|i| feature.fields.get(i).cloned().flatten());
            let expected = expected.as_ref().map(output::field_text);
            let key = (
                row.source_id.flatten().unwrap_or(-1),
                row.image_id.clone().flatten().unwrap_or_default(),
            );
            resumed.count_written(row.label.as_deref(), row.status.as_deref(), expected.as_deref(), key);
            ctx.progress.advance_continued(1);
            return Ok(());
        }
        windows.push(feature)
    })?;
    windows.flush()?;
    if skipped < ctx.written.len() {
        bail_input!(
            "the output being resumed has {} rows but this run makes only {skipped} before it; resume with the same features, rasters and options as the run that wrote it",
            ctx.written.len()
        );
    }
    Ok(ReaderReport {
        busy: started.elapsed().saturating_sub(windows.waiting),
        resumed,
        features: total,
        row_counts: row_counts.counts,
        features_content: ctx.source.content.as_ref().map(|c| c.hex()),
    })
}

/// Refuses to continue an output whose committed row `n` is not the row this run writes first
/// at that position: the same feature (`SourceOID`) on the same image (`ImageId`). Rows
/// deleted, reordered or written from other features would otherwise leave duplicates and
/// gaps.
fn check_resumed_row(row: &WrittenRow, feature: &InputFeature, items: &[Item], n: usize) -> Result<()> {
    let image = feature.item.filter(|_| items.len() > 1).map(|i| items[i].id.clone());
    let mismatch = match (&row.source_id, &row.image_id) {
        (Some(id), _) if *id != feature.fid => Some(format!(
            "SourceOID {} where this run's feature is {}",
            id.map_or("empty".into(), |i| i.to_string()),
            feature.fid.map_or("without an id".into(), |i| i.to_string())
        )),
        (_, Some(written)) if written.is_some() && *written != image => Some(format!(
            "image {} where this run's is {}",
            written.as_deref().unwrap_or("-"),
            image.as_deref().unwrap_or("-")
        )),
        _ => None,
    };
    match mismatch {
        Some(what) => bail_input!(
            "the output being resumed holds at row {} {what}: its rows are not the first rows this run writes (rows deleted or reordered, or other features or options); resume only the run that wrote it, or pass --overwrite to start over",
            n + 1
        ),
        None => Ok(()),
    }
}

/// Rows per selected feature, for a shard's record: consecutive rows of one feature share its
/// position (a feature on several items has a row per item).
struct RowCounts {
    counts: Option<Vec<u32>>,
    last_index: Option<usize>,
}

impl RowCounts {
    fn new(shard: bool) -> RowCounts {
        RowCounts {
            counts: shard.then(Vec::new),
            last_index: None,
        }
    }

    fn count(&mut self, index: usize) {
        let Some(counts) = self.counts.as_mut() else {
            return;
        };
        match counts.last_mut() {
            Some(n) if self.last_index == Some(index) => *n += 1,
            _ => counts.push(1),
        }
        self.last_index = Some(index);
    }
}

/// Groups features into windows, sorts each by raster block, and hands each worker its stretch.
struct WindowDispatch<'a> {
    batch_size: usize,
    queues: &'a [Sender<FeatureBatch>],
    specs: &'a [ChipSpec],
    items: &'a [Item],
    next_id: usize,
    waiting: Duration,
    pending: Vec<InputFeature>,
    pending_bytes: usize,
    /// Features in the next window, set by the consumer from the run's speed.
    size: &'a AtomicUsize,
}

impl WindowDispatch<'_> {
    fn push(&mut self, feature: InputFeature) -> Result<()> {
        self.pending_bytes += feature.geometry_wkb.as_ref().map_or(0, Vec::len);
        self.pending.push(feature);
        if self.pending.len() >= self.size.load(Ordering::Relaxed) || self.pending_bytes >= WINDOW_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the pending window: sorted by block, cut into one stretch per worker, each in
    /// batches, the workers' batches interleaved so that every worker has work.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let window = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let id = self.next_id;
        self.next_id += 1;
        let mut batches = self.stretches(id, window);
        while batches.iter().any(|b| !b.is_empty()) {
            for (worker, queue) in batches.iter_mut().enumerate() {
                if let Some(batch) = queue.pop_front() {
                    let wait = Instant::now();
                    let sent = self.queues[worker].send(batch);
                    self.waiting += wait.elapsed();
                    sent.map_err(|_| anyhow!("the chip workers stopped"))?;
                }
            }
        }
        Ok(())
    }

    /// Window `id` sorted by block and cut into one stretch of batches per worker.
    fn stretches(&self, id: usize, window: Vec<InputFeature>) -> Vec<VecDeque<FeatureBatch>> {
        let len = window.len();
        let mut order: Vec<(u64, usize)> = window
            .iter()
            .enumerate()
            .map(|(i, f)| (locality_key(f, self.specs, self.items), i))
            .collect();
        order.sort_unstable();
        let mut slots: Vec<Option<InputFeature>> = window.into_iter().map(Some).collect();
        let stretch = len.div_ceil(self.queues.len());
        order
            .chunks(stretch.max(1))
            .map(|part| {
                part.chunks(self.batch_size)
                    .map(|chunk| FeatureBatch {
                        window: id,
                        window_len: len,
                        features: chunk
                            .iter()
                            .map(|&(_, i)| (i, slots[i].take().expect("each feature once")))
                            .collect(),
                    })
                    .collect()
            })
            .collect()
    }
}

/// The order a feature's chip is best read in: its image, then the Morton (Z-order) code of the
/// raster block under its chip's centre, so that features sorted by it walk the raster block by
/// block. Features without a chip come first.
fn locality_key(feature: &InputFeature, specs: &[ChipSpec], items: &[Item]) -> u64 {
    let (Ok(shape), Some(item)) = (&feature.shape, feature.item) else {
        return 0;
    };
    let spec = &specs[item];
    let (window, _) = spec.window_for(shape);
    let cx = (window.col as f64 + window.width as f64 / 2.0).max(0.0);
    let cy = (window.row as f64 + window.height as f64 / 2.0).max(0.0);
    let (bw, bh) = items[item].grid.block;
    let (bx, by) = ((cx / bw as f64) as u64, (cy / bh as f64) as u64);
    1 + ((item as u64) << 44) + morton(bx.min(0x3f_ffff), by.min(0x3f_ffff))
}

/// Interleaves the bits of `x` and `y` (22 bits each): the Z-order curve.
fn morton(x: u64, y: u64) -> u64 {
    let spread = |mut v: u64| {
        let mut out = 0;
        for bit in 0..22 {
            out |= (v & 1) << (2 * bit);
            v >>= 1;
        }
        out
    };
    spread(x) | (spread(y) << 1)
}
