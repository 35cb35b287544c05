//! Stage 3, cut: each chip worker, with its own GDAL datasets (and so its own cached blocks),
//! cuts and normalises the chips of the batches it is handed into recycled buffers.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};

use super::read::FeatureBatch;
use crate::chips::{self, ChipSpec};
use crate::error;
use crate::gdal_ffi::raster_io;
use crate::input::features::{InputFeature, Problem};
use crate::input::items::Item;
use crate::input::raster::{self, Raster, RasterOverrides};
use crate::messages;

/// A batch with its chips cut: chips of the classifiable features, in batch order.
pub struct ChippedBatch {
    /// The window the features belong to.
    pub window: usize,
    /// Features in that window.
    pub window_len: usize,
    /// The features, each with its position in the window.
    pub features: Vec<(usize, InputFeature)>,
    /// The chips, one after another.
    pub chips: Vec<f32>,
    /// Chips in `chips`.
    pub count: usize,
    /// Time spent cutting them.
    pub cut_time: Duration,
}

/// What every chip worker reads with.
#[derive(Clone, Copy)]
pub struct CutContext<'a> {
    /// The images.
    pub items: &'a [Item],
    /// The chip rules on each image.
    pub specs: &'a [ChipSpec],
    /// Bands and NoData read instead of the rasters' own.
    pub overrides: &'a RasterOverrides,
    /// Folder every chip is written to (`--dump-chips`).
    pub dump_chips: Option<&'a Path>,
}

/// One chip worker: cuts the batches of `batches`, sends them to `chips` (taking buffers back
/// from `free`), and stops at the first failure or when the scoring stage stops.
pub fn cut_worker(
    ctx: CutContext<'_>,
    batches: Receiver<FeatureBatch>,
    chips: Sender<Result<ChippedBatch>>,
    free: Receiver<Vec<f32>>,
) {
    // This worker's own datasets, opened when first needed.
    let mut rasters: Vec<Option<Raster>> = ctx.items.iter().map(|_| None).collect();
    let mut scratch = Vec::new();
    for batch in batches {
        let buffer = free.try_recv().unwrap_or_default();
        let result = cut_batch(ctx, &mut rasters, batch, buffer, &mut scratch);
        let failed = result.is_err();
        if chips.send(result).is_err() || failed {
            return;
        }
    }
}

/// Cuts the chips of a batch (each on its feature's item) into `chips`, a recycled buffer. A
/// feature whose pixels cannot be read (a damaged tile) gets [`Problem::ReadFailed`] and no chip;
/// the first few such failures are reported on stderr.
fn cut_batch(
    ctx: CutContext<'_>,
    rasters: &mut [Option<Raster>],
    mut batch: FeatureBatch,
    mut chips: Vec<f32>,
    scratch: &mut Vec<f32>,
) -> Result<ChippedBatch> {
    let started = Instant::now();
    let count = batch.features.iter().filter(|(_, f)| f.shape.is_ok()).count();
    let per_chip = ctx.specs[0].values_per_chip();
    // Every slot is written whole by its read: no need to clear a recycled buffer.
    chips.resize(count * per_chip, 0.0);
    let mut used = 0;
    for (_, feature) in &mut batch.features {
        if feature.shape.is_err() || feature.item.is_none() {
            continue;
        }
        let slot = &mut chips[used * per_chip..(used + 1) * per_chip];
        if cut_one(ctx, rasters, feature, slot, scratch)? {
            used += 1;
        }
    }
    chips.truncate(used * per_chip);
    Ok(ChippedBatch {
        window: batch.window,
        window_len: batch.window_len,
        features: batch.features,
        chips,
        count: used,
        cut_time: started.elapsed(),
    })
}

/// Cuts `feature`'s chip into `slot` and normalises it; returns whether it has one (a feature
/// that cannot be classified has none, and one whose pixels cannot be read is marked so).
fn cut_one(
    ctx: CutContext<'_>,
    rasters: &mut [Option<Raster>],
    feature: &mut InputFeature,
    slot: &mut [f32],
    scratch: &mut Vec<f32>,
) -> Result<bool> {
    let (Ok(shape), Some(item)) = (&feature.shape, feature.item) else {
        return Ok(false);
    };
    let raster = match &mut rasters[item] {
        Some(raster) => raster,
        empty => empty.insert(Raster::open_with(&ctx.items[item].name, ctx.overrides)?),
    };
    let spec = &ctx.specs[item];
    let window = match spec.cut_pixels(raster, shape, slot, scratch) {
        Ok(window) => window,
        // A server that stopped answering ends the run: every later read would wait as long.
        Err(err) if raster::is_unreachable(&err) => return Err(err),
        Err(err) => {
            report_read_failure(feature.index, &err);
            slot.fill(0.0);
            feature.shape = Err(Problem::ReadFailed);
            return Ok(false);
        }
    };
    if let Some(dir) = ctx.dump_chips {
        let name = if ctx.items.len() > 1 {
            format!("chip_{:06}_item{item}.tif", feature.index)
        } else {
            format!("chip_{:06}.tif", feature.index)
        };
        chips::dump::write_chip_tiff(&dir.join(name), slot, spec, window, &raster.grid)?;
    }
    spec.normalize(slot);
    Ok(true)
}

/// Read failures reported one by one on stderr.
const MAX_READ_FAILURE_REPORTS: usize = 10;

/// Says on stderr, for the first [`MAX_READ_FAILURE_REPORTS`] failures, why a feature's pixels
/// could not be read.
fn report_read_failure(index: usize, err: &anyhow::Error) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static REPORTED: AtomicUsize = AtomicUsize::new(0);
    if raster_io::reads_aborted() {
        // Stopped by a signal, not damaged: the run ends without writing this batch.
        return;
    }
    match REPORTED.fetch_add(1, Ordering::Relaxed) {
        n if n < MAX_READ_FAILURE_REPORTS => messages::warning(format_args!(
            "feature {index}: {}; it is written with Status read_failed",
            error::one_line(err)
        )),
        MAX_READ_FAILURE_REPORTS => messages::warning("further read failures are counted, not shown"),
        _ => {}
    }
}
