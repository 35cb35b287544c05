//! The run with features: features -> chips -> inference -> output, as a pipeline.
//!
//! One thread reads features in order and gathers them into windows (of about
//! [`WINDOW_SECONDS`] of work, up to [`WINDOW_FEATURES`]);
//! each window is sorted by raster block (Z-order), so that chips sharing blocks are cut one after
//! another and each block is decoded about once whatever the input order, and split into one
//! stretch per worker thread. Workers (each with its own GDAL dataset and thus its own cached
//! blocks) cut and normalise the chips; the calling thread runs the model on batches as they
//! come, keeps each feature's outcome, and writes a window's rows in input order once it is
//! complete. Queues are bounded and chip buffers recycled, so memory stays flat however many
//! features there are, and chip reading overlaps inference.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use crossbeam_channel::bounded;
use ort::environment::Environment;

use crate::bail_input;
use crate::chips::{self, ChipSpec};
use crate::input::features::{FeatureSource, InputFeature, Problem};
use crate::input::items::Item;
use crate::input::raster::{Raster, RasterOverrides};
use crate::model::definition::LabelMode;
use crate::output::resume::written_rows;
use crate::output::shard::{Fingerprint, ShardRecord};
use crate::output::target::Start;
use crate::output::{Column, Confidence, OutputRow, OutputSchema, OutputWriter};
use crate::report::summary::RunSummary;
use crate::run::plan::{ClassifyPlan, FeaturesPlan};
use crate::run::scorer::Scorer;

/// Features read before their chips are cut, at most: a window is sorted by raster block so that
/// chips that share blocks are cut one after another (each block decoded about once), while the
/// rows keep the input order.
pub const WINDOW_FEATURES: usize = 65_536;
/// Features in the first window, and the fewest in any: windows grow with the run's speed, up to
/// [`WINDOW_SECONDS`] of work each, so that rows are written (and committed) every few seconds
/// whether the model is slow or the reading is.
pub const FIRST_WINDOW_FEATURES: usize = 256;
/// Seconds of work a window holds, about. A window is read block by block, so with a block cache
/// much smaller than the image each window decodes every block it touches once: the longer the
/// windows, the fewer blocks decoded twice (a 64 MB cache on `bench/large.sh` ran at 0.66x the
/// speed of an unlimited one with 2-second windows, 0.82x with 10-second ones), but a stopped run
/// loses the window it was in.
pub const WINDOW_SECONDS: f64 = 10.0;
/// Bytes of geometries held in one window, at most (large polygons make smaller windows).
pub const WINDOW_BYTES: usize = 64 << 20;

/// Features to cut and score together, each with its position in its window.
struct FeatureBatch {
    window: usize,
    window_len: usize,
    features: Vec<(usize, InputFeature)>,
}

/// A batch with its chips cut: chips of the classifiable features, in batch order.
struct ChippedBatch {
    window: usize,
    window_len: usize,
    features: Vec<(usize, InputFeature)>,
    chips: Vec<f32>,
    count: usize,
    cut_time: Duration,
}

/// What became of one feature: its label and confidence, or why it has none.
struct Done {
    feature: InputFeature,
    labelled: Option<(String, Confidence)>,
    problem: Option<Problem>,
    /// Every class's probability, for `--all-scores`, when classified.
    scores: Option<Vec<f64>>,
}

/// The features of one window as they are scored, in input order.
struct Window {
    done: Vec<Option<Done>>,
    filled: usize,
}

impl Window {
    fn new(len: usize) -> Window {
        Window {
            done: (0..len).map(|_| None).collect(),
            filled: 0,
        }
    }

    fn complete(&self) -> bool {
        self.filled == self.done.len()
    }
}

/// Groups features into windows, sorts each by raster block, and hands each worker its stretch.
struct WindowDispatch<'a> {
    batch_size: usize,
    queues: &'a [crossbeam_channel::Sender<FeatureBatch>],
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
        let (id, len) = (self.next_id, window.len());
        self.next_id += 1;
        let mut order: Vec<(u64, usize)> = window
            .iter()
            .enumerate()
            .map(|(i, f)| (locality_key(f, self.specs, self.items), i))
            .collect();
        order.sort_unstable();
        let mut slots: Vec<Option<InputFeature>> = window.into_iter().map(Some).collect();
        let workers = self.queues.len();
        let stretch = len.div_ceil(workers);
        let mut batches: Vec<std::collections::VecDeque<FeatureBatch>> = order
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
            .collect();
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

/// Classifies every feature. The ONNX Runtime session is created while the reader and chip
/// workers already fill the pipeline, so its start-up cost overlaps theirs.
pub fn classify_features(
    plan: &ClassifyPlan,
    environment: &Environment,
    features: &FeaturesPlan,
) -> Result<RunSummary> {
    let items = crate::input::items::for_features(&plan.rasters, plan.processing_mode)?;
    let definition = &plan.package.definition;
    let overrides = &plan.raster_overrides;
    let specs = items
        .iter()
        .map(|item| {
            let raster = Raster::open_with(&item.name, overrides)?;
            let spec = ChipSpec::new(definition, &raster)?;
            Ok(match plan.cell_size {
                Some(cell) => spec.at_cell_size(cell, raster.grid.cell_size(), plan.resampling),
                None => spec,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    warn_outside_trained_cell_sizes(definition, plan.cell_size, &items, plan.quiet);
    let mut source = FeatureSource::open_with(&features.source, &features.query)?;
    source.selection.shard = plan.shard;
    // The extent's CRS is the first raster's unless given.
    source.extent = plan
        .extent
        .as_ref()
        .map(|e| e.with_default_crs(items[0].grid.srs_wkt.as_deref()));
    let truth =
        match &plan.truth_field {
            None => None,
            Some(name) => {
                match source.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name)) {
                    Some(i) => Some(i),
                    None => bail_input!(
                "--truth-field {name} is not a field of {} (fields: {}); name the field holding the expected class",
                features.source,
                source.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
                }
            }
        };
    // Continuing a run: the rows it wrote are the first rows of this run's output, skipped.
    let written = if plan.output.start == Start::Resume {
        written_rows(&plan.output, &plan.format, &plan.layer.name, &plan.label_field)?
    } else {
        Vec::new()
    };
    for item in &items {
        source.transform_to(&item.grid, &item.name)?;
    }
    let (features_srs, grid_srs) = (source.srs_wkt.clone(), items[0].grid.srs_wkt.clone());
    let source_identity = format!(
        "{}|{:?}|{}|{:?}",
        source.layer_name,
        source
            .fields
            .iter()
            .map(|f| (&f.name, f.field_type))
            .collect::<Vec<_>>(),
        source.geometry_type,
        source.srs_wkt
    );

    let mut schema = OutputSchema {
        input_fields: source
            .fields
            .iter()
            .map(|f| Column {
                name: f.name.clone(),
                field_type: f.field_type,
                width: f.width,
                precision: f.precision,
            })
            .collect(),
        label_field: plan.label_field.clone(),
        multi_label: definition.label_mode == LabelMode::MultiLabel,
        with_source_id: true,
        with_image_id: items.len() > 1,
        geometry: Some((source.geometry_type, source.srs_wkt.clone())),
        style: Some(definition.class_colors()),
        score_fields: Vec::new(),
    };
    if plan.all_scores {
        schema.set_score_fields(&definition.class_names());
    }
    schema.resolve_clashes();
    let mut writer = OutputWriter::create(&plan.output, &plan.format, &schema, &plan.layer, plan.style)?;

    let batch_size = plan.model_arguments.batch_size;
    // Batches in flight, bounded by memory: large batches mean fewer of them, and fewer workers.
    let batch_bytes = definition.values_per_chip() * std::mem::size_of::<f32>() * batch_size;
    let in_flight = (crate::run::plan::PIPELINE_CHIP_BUDGET / batch_bytes.max(1)).clamp(1, plan.threads * 2);
    let threads = plan.threads.min(in_flight);
    let (specs, items) = (&specs, &items);
    let dump_chips = plan.dump_chips.as_deref();
    let strict = plan.strict;
    let total = source.expected_count().map(|n| source.selection.size(n));
    let progress = crate::run::progress::Progress::new(total, plan.quiet, plan.progress_interval);
    let progress = &progress;
    let written = &written;
    let window_size = &AtomicUsize::new(FIRST_WINDOW_FEATURES);
    let consumed = std::thread::scope(|scope| -> Result<(RunSummary, u64, Option<Vec<u32>>)> {
        // One queue per worker: each gets its own stretch of every window, so that neighbouring
        // chips, which share raster blocks, are cut by one worker from one block cache.
        let (worker_txs, worker_rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| bounded::<FeatureBatch>(2)).unzip();
        // Chip buffers go back to the workers once scored: no allocation (nor page faults) per batch.
        let (free_tx, free_rx) = bounded::<Vec<f32>>(in_flight);
        let (chip_tx, chip_rx) = bounded::<Result<ChippedBatch>>(in_flight);

        let reader = scope.spawn(move || -> Result<ReaderReport> {
            // Busy time: the whole loop less the time spent waiting for room in the queues.
            let started = Instant::now();
            // Rows an earlier run wrote: counted here, not classified again.
            let mut resumed = RunSummary::default();
            let mut skipped = 0;
            let mut row_counts = plan.shard.map(|_| Vec::<u32>::new());
            let mut windows = WindowDispatch {
                batch_size,
                queues: &worker_txs,
                specs,
                items,
                next_id: 0,
                waiting: Duration::ZERO,
                pending: Vec::new(),
                pending_bytes: 0,
                size: window_size,
            };
            let mut last_index = None;
            let total = source.for_each(items, &crate::run::interrupt::check, |feature| {
                if let Some(counts) = row_counts.as_mut() {
                    // Rows per feature: consecutive rows of one feature share its position.
                    match counts.last_mut() {
                        Some(n) if last_index == Some(feature.index) => *n += 1,
                        _ => counts.push(1u32),
                    }
                    last_index = Some(feature.index);
                }
                if let Some(row) = written.get(skipped) {
                    skipped += 1;
                    let expected = truth.and_then(|i| feature.fields.get(i).cloned().flatten());
                    let expected = expected.as_ref().map(crate::output::field_text);
                    resumed.count_written(row.label.as_deref(), row.status.as_deref(), expected.as_deref());
                    progress.advance(1);
                    return Ok(());
                }
                windows.push(feature)
            })?;
            windows.flush()?;
            if skipped < written.len() {
                bail_input!(
                    "the output being resumed has {} rows but this run makes only {skipped} before it; resume with the same features, rasters and options as the run that wrote it",
                    written.len()
                );
            }
            Ok(ReaderReport {
                busy: started.elapsed().saturating_sub(windows.waiting),
                resumed,
                features: total,
                row_counts,
            })
        });

        for feature_rx in worker_rxs {
            let (chip_tx, free_rx) = (chip_tx.clone(), free_rx.clone());
            scope.spawn(move || {
                // This worker's own datasets, opened when first needed.
                let mut rasters: Vec<Option<Raster>> = items.iter().map(|_| None).collect();
                let mut scratch = Vec::new();
                for batch in feature_rx {
                    let buffer = free_rx.try_recv().unwrap_or_default();
                    let result = cut_batch(
                        (items, overrides),
                        &mut rasters,
                        specs,
                        batch,
                        buffer,
                        &mut scratch,
                        dump_chips,
                    );
                    let failed = result.is_err();
                    if chip_tx.send(result).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(chip_tx);
        let mut scorer = Scorer::new(plan, environment)?;
        if truth.is_some() {
            scorer.summary.truth = Some(crate::report::truth::Confusion::default());
        }

        // Batches are scored as they come, in the order that reads the raster best; rows wait
        // for their window to be complete and leave in input order.
        let mut windows: BTreeMap<usize, Window> = BTreeMap::new();
        let mut next_window = 0;
        let (mut first_batch, mut rows_written) = (None, 0usize);
        let mut consume = || -> Result<()> {
            for item in chip_rx.iter() {
                let batch = item?;
                crate::run::interrupt::check()?;
                let first_batch = *first_batch.get_or_insert_with(Instant::now);
                scorer.summary.chip_time += batch.cut_time;
                let window = windows
                    .entry(batch.window)
                    .or_insert_with(|| Window::new(batch.window_len));
                let buffer = score_batch(
                    &mut scorer,
                    batch.features,
                    (batch.chips, batch.count),
                    window,
                    (items, specs, truth, plan.all_scores),
                )?;
                let _ = free_tx.try_send(buffer);
                while windows.get(&next_window).is_some_and(Window::complete) {
                    let window = windows.remove(&next_window).expect("a complete window");
                    let strict = strict.then_some(features.source.as_str());
                    progress.advance(window.done.len() as u64);
                    rows_written += window.done.len();
                    write_window(&mut scorer, &mut writer, window, items, strict, truth)?;
                    writer.checkpoint()?;
                    next_window += 1;
                    // The next windows hold about WINDOW_SECONDS of work at the speed so far.
                    let rate = rows_written as f64 / first_batch.elapsed().as_secs_f64().max(1e-3);
                    let size = (rate * WINDOW_SECONDS) as usize;
                    window_size.store(size.clamp(FIRST_WINDOW_FEATURES, WINDOW_FEATURES), Ordering::Relaxed);
                }
            }
            if let Some((id, window)) = windows.iter().next() {
                anyhow::bail!(
                    "window {id} of features ended with {} of {} rows",
                    window.filled,
                    window.done.len()
                );
            }
            Ok(())
        };
        let consumed = consume();
        drop(chip_rx);
        let read = reader.join().map_err(|_| anyhow!("the feature reader panicked"))?;
        // The consumer's error first: when it stops, the reader only sees a closed channel.
        consumed?;
        let report = read?;
        let mut summary = scorer.summary;
        summary.absorb(report.resumed);
        summary.read_time = report.busy;
        summary.execution_provider = scorer.classifier.execution_provider;
        Ok((summary, report.features, report.row_counts))
    });
    progress.finish();
    let (mut summary, features_read, row_counts) = match consumed {
        Ok(done) => done,
        Err(err) if plan.resume && err.chain().any(|c| c.is::<crate::error::Interrupted>()) => {
            // Interrupted with --resume: keep what was written, for the next --resume.
            writer.finish(None)?;
            return Err(anyhow::Error::new(crate::error::Interrupted::KeptForResume));
        }
        Err(err) => return Err(err),
    };
    summary.truth_column = truth.map(|i| schema.input_fields[i].name.clone());
    let unread = summary.problems.get(Problem::ReadFailed.code()).copied().unwrap_or(0);
    if summary.objects > summary.resumed && unread == summary.objects - summary.resumed {
        anyhow::bail!(
            "the pixels of none of the {unread} features could be read from {} (see the warnings above); check that the raster is complete and reachable",
            items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
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
            items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
            crs_name(features_srs.as_deref()),
            crs_name(grid_srs.as_deref())
        );
    }
    let record = plan.shard.map(|(index, count)| ShardRecord {
        index,
        count,
        features: features_read,
        rows: summary.objects as u64,
        row_counts: row_counts.filter(|counts| counts.iter().any(|&n| n != 1)),
        fingerprint: fingerprint(plan, &source_identity),
        layer: plan.layer.given.then(|| plan.layer.name.clone()),
        label_field: plan.label_field.clone(),
        style: plan.style,
        qml: schema
            .geometry
            .as_ref()
            .map(|(ty, _)| crate::output::style::qml(&schema.label_field, *ty, &definition.class_colors())),
    });
    writer.finish(record.as_ref())?;
    Ok(summary)
}

/// What the feature reader did.
struct ReaderReport {
    /// Time it was busy (not waiting for room in the queue).
    busy: Duration,
    /// The rows an earlier run wrote, counted.
    resumed: RunSummary,
    /// Features in the whole input.
    features: u64,
    /// Rows per selected feature (shard runs).
    row_counts: Option<Vec<u32>>,
}

/// One warning line when the cell size chips are cut at is outside the `.emd`'s `MinCellSize` ..
/// `MaxCellSize` (the model was trained at other resolutions).
fn warn_outside_trained_cell_sizes(
    definition: &crate::model::ModelDefinition,
    cell_size: Option<f64>,
    items: &[Item],
    quiet: bool,
) {
    let effective = cell_size.unwrap_or_else(|| items[0].grid.cell_size().0);
    let (min, max) = definition.cell_size_range;
    let below = min.filter(|&m| effective < m * 0.999);
    let above = max.filter(|&m| effective > m * 1.001);
    if quiet || (below.is_none() && above.is_none()) {
        return;
    }
    let range = match (min, max) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => String::new(),
    };
    eprintln!(
        "classify-objects: warning: chips are cut at a cell size of {effective} but the model was trained for {range} (MinCellSize/MaxCellSize); results may be poor: set --cell-size within it"
    );
}

/// The fingerprint of a shard run: the features (layer, columns, count), the rasters (names and
/// grids), the model (its definition and bytes) and the options that shape the output; equal
/// for every shard of one run, whatever machine it ran on.
fn fingerprint(plan: &ClassifyPlan, features: &str) -> String {
    let mut print = Fingerprint::default();
    print.add(features.as_bytes());
    for raster in &plan.rasters {
        print.add(raster.as_bytes());
    }
    print.add(format!("{:?}", plan.package.definition).as_bytes());
    print.add(&plan.package.onnx);
    print.add(
        format!(
            "{}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}",
            plan.label_field,
            plan.processing_mode,
            plan.model_arguments.test_time_augmentation,
            plan.model_arguments.threshold,
            plan.features.as_ref().map(|f| &f.query),
            plan.extent,
            plan.raster_overrides,
            plan.t_srs,
            plan.all_scores,
            plan.cell_size,
            plan.resampling as u32,
        )
        .as_bytes(),
    );
    print.hex()
}

fn crs_name(wkt: Option<&str>) -> String {
    wkt.map(crate::input::features::srs_label)
        .unwrap_or_else(|| "no CRS".into())
}

/// Cuts the chips of a batch (each on its feature's item) into `chips`, a recycled buffer. A
/// feature whose pixels cannot be read (a damaged tile) gets [`Problem::ReadFailed`] and no chip;
/// the first few such failures are reported on stderr.
fn cut_batch(
    (items, overrides): (&[Item], &RasterOverrides),
    rasters: &mut [Option<Raster>],
    specs: &[ChipSpec],
    mut batch: FeatureBatch,
    mut chips: Vec<f32>,
    scratch: &mut Vec<f32>,
    dump_chips: Option<&std::path::Path>,
) -> Result<ChippedBatch> {
    let started = Instant::now();
    let count = batch.features.iter().filter(|(_, f)| f.shape.is_ok()).count();
    let per_chip = specs[0].values_per_chip();
    // Every slot is written whole by its read: no need to clear a recycled buffer.
    chips.resize(count * per_chip, 0.0);
    let mut used = 0;
    for (_, feature) in &mut batch.features {
        let (Ok(shape), Some(item)) = (&feature.shape, feature.item) else {
            continue;
        };
        let slot = &mut chips[used * per_chip..(used + 1) * per_chip];
        let raster = match &mut rasters[item] {
            Some(raster) => raster,
            empty => empty.insert(Raster::open_with(&items[item].name, overrides)?),
        };
        let spec = &specs[item];
        let window = match spec.cut_pixels(raster, shape, slot, scratch) {
            Ok(window) => window,
            Err(err) => {
                report_read_failure(feature.index, &err);
                slot.fill(0.0);
                feature.shape = Err(Problem::ReadFailed);
                continue;
            }
        };
        if let Some(dir) = dump_chips {
            let name = if items.len() > 1 {
                format!("chip_{:06}_item{item}.tif", feature.index)
            } else {
                format!("chip_{:06}.tif", feature.index)
            };
            chips::dump::write_chip_tiff(&dir.join(name), slot, spec, window, &raster.grid)?;
        }
        spec.normalize(slot);
        used += 1;
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

/// Says on stderr, for the first [`MAX_READ_FAILURE_REPORTS`] failures, why a feature's pixels
/// could not be read.
fn report_read_failure(index: usize, err: &anyhow::Error) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static REPORTED: AtomicUsize = AtomicUsize::new(0);
    if crate::input::raster::ABORT.load(Ordering::SeqCst) {
        // Stopped by a signal, not damaged: the run ends without writing this batch.
        return;
    }
    match REPORTED.fetch_add(1, Ordering::Relaxed) {
        n if n < MAX_READ_FAILURE_REPORTS => eprintln!(
            "classify-objects: warning: feature {index}: {}; it is written with Status read_failed",
            crate::error::one_line(err)
        ),
        MAX_READ_FAILURE_REPORTS => {
            eprintln!("classify-objects: warning: further read failures are counted, not shown")
        }
        _ => {}
    }
}

/// Read failures reported one by one on stderr.
const MAX_READ_FAILURE_REPORTS: usize = 10;

/// Scores a batch and files each feature's outcome in its window. Returns the chip buffer for
/// reuse.
fn score_batch(
    scorer: &mut Scorer<'_>,
    features: Vec<(usize, InputFeature)>,
    (chips, count): (Vec<f32>, usize),
    window: &mut Window,
    (items, specs, truth, all_scores): (&[Item], &[ChipSpec], Option<usize>, bool),
) -> Result<Vec<f32>> {
    let scores = if count > 0 {
        scorer.score(&chips, count)?
    } else {
        Vec::new()
    };
    let classes = scorer.definition.classes.len();
    let mut per_chip = scores.chunks_exact(classes);
    let mut chip_values = chips.chunks_exact(specs[0].values_per_chip().max(1));
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
        // --report: the objects most worth checking, offered to the gallery with their chips.
        if let (true, Some(_), Some(scores), Some(chip), Some(item)) =
            (scorer.reviewing(), &labelled, scores, chip, feature.item)
        {
            let expected = truth
                .and_then(|i| feature.fields.get(i))
                .and_then(Option::as_ref)
                .map(crate::output::field_text);
            let object = crate::run::scorer::Reviewed {
                position: feature.index,
                source_id: feature.fid,
                image_id: (items.len() > 1).then(|| items[item].name.clone()),
                expected,
            };
            scorer.review(&specs[item], chip, scores, object)?;
        }
        // Every class's probability (--all-scores) of a classified row.
        let scores = scores
            .filter(|_| all_scores && labelled.is_some())
            .map(|s| s.iter().map(|&p| f64::from(p)).collect());
        window.done[position] = Some(Done {
            feature,
            labelled,
            problem,
            scores,
        });
        window.filled += 1;
    }
    Ok(chips)
}

/// Writes a complete window's rows in input order; with `strict` (the features' name), a
/// feature that cannot be classified is an error.
fn write_window(
    scorer: &mut Scorer<'_>,
    writer: &mut OutputWriter,
    window: Window,
    items: &[Item],
    strict: Option<&str>,
    truth: Option<usize>,
) -> Result<()> {
    for done in window.done.into_iter().flatten() {
        let Done {
            feature,
            labelled,
            problem,
            scores,
        } = done;
        scorer.summary.objects += 1;
        // An invalid polygon is classified all the same, and flagged.
        let problem = problem.or(feature.flag);
        if let (Some(problem), Some(source)) = (problem, strict) {
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
        let expected = truth
            .and_then(|i| feature.fields.get(i))
            .and_then(Option::as_ref)
            .map(crate::output::field_text);
        let (label, confidence) = labelled.map_or((None, None), |(l, c)| (Some(l), Some(c)));
        if let (Some(expected), Some(predicted), Some(confusion)) = (&expected, &label, scorer.summary.truth.as_mut()) {
            confusion.record(expected, predicted);
        }
        let status = problem.map(Problem::code);
        let started = Instant::now();
        writer.write(&OutputRow {
            geometry_wkb: feature.geometry_wkb,
            source_id: feature.fid,
            // With several items, each row says which image it was classified on.
            image_id: feature.item.filter(|_| items.len() > 1).map(|i| items[i].name.clone()),
            fields: feature.fields,
            label,
            confidence,
            status,
            scores,
        })?;
        scorer.summary.write_time += started.elapsed();
    }
    Ok(())
}
