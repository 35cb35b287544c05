//! The run with features: features -> chips -> inference -> output, as a pipeline of named
//! stages: [`prepare`] (images, chip rules, features, writer), [`read`] (one thread reads the
//! features into windows sorted by raster block), [`cut`] (worker threads cut and normalise
//! chips, each from its own datasets), [`score`] (the calling thread runs the model on batches as
//! they come), [`write`] (a window's rows in input order once it is complete) and [`finish`]
//! (the checks on the whole run and a shard's record); a [`window`] holds what became of
//! each feature between scoring and writing. Queues are bounded and chip buffers
//! recycled, so memory stays flat however many features there are, and chip reading overlaps
//! inference.

pub mod cut;
pub mod finish;
pub mod prepare;
pub mod read;
pub mod score;
pub mod window;
pub mod write;

use std::sync::atomic::AtomicUsize;

use anyhow::{anyhow, Result};
use crossbeam_channel::bounded;
use ort::environment::Environment;

use crate::chips::ChipSpec;
use crate::error::Interrupted;
use crate::input::features::FeatureSource;
use crate::input::items::Item;
use crate::model::definition::LabelMode;
use crate::output::resume::WrittenRow;
use crate::output::OutputWriter;
use crate::report::summary::RunSummary;
use crate::report::truth::Confusion;
use crate::run::plan::chips::PIPELINE_CHIP_BUDGET;
use crate::run::plan::{ClassifyPlan, FeaturesPlan};
use crate::run::progress::Progress;
use crate::run::scorer::Scorer;
use cut::{ChippedBatch, CutContext};
use prepare::Prepared;
use read::{FeatureBatch, ReadContext, ReaderReport};
use score::ScoreContext;
use write::WriteContext;

/// Classifies every feature. The ONNX Runtime session is created while the reader and chip
/// workers already fill the pipeline, so its start-up cost overlaps theirs.
pub fn classify_features(
    plan: &ClassifyPlan,
    environment: &Environment,
    features: &FeaturesPlan,
) -> Result<RunSummary> {
    let Prepared {
        items,
        specs,
        source,
        truth,
        written,
        schema,
        mut writer,
        identity,
    } = prepare::prepare(plan, features)?;
    let features_srs = source.srs_wkt.clone();
    let total = source.expected_count().map(|n| source.selection.size(n));
    let mut progress = Progress::new(total, plan.report.progress_interval);
    let stages = Stages {
        plan,
        environment,
        features,
        items: &items,
        specs: &specs,
        truth,
        progress: &progress,
    };
    let ran = stages.run(source, &written, &mut writer);
    progress.finish();
    let (summary, report) = match ran {
        Ok(done) => done,
        Err(err) if plan.scale_out.resume && err.chain().any(|c| c.is::<Interrupted>()) => {
            // Interrupted with --resume: keep what was written, for the next --resume.
            writer.finish(None)?;
            return Err(anyhow::Error::new(Interrupted::KeptForResume));
        }
        Err(err) => return Err(err),
    };
    let read = finish::Read {
        items: &items,
        features_srs,
        identity: identity.as_ref(),
        features: report.features,
        row_counts: report.row_counts,
        features_content: report.features_content,
    };
    finish::check_selection(plan, features, &read)?;
    finish::check_outcome(&summary, features, &read)?;
    let record = finish::run_record(plan, &summary, &schema, read);
    Progress::stage(
        plan.report.progress_interval,
        format_args!("{} objects scored; finishing the output", summary.objects),
    );
    writer.finish(record.as_ref())?;
    Ok(summary)
}

/// The reading, cutting and scoring stages of one run, and what they share.
struct Stages<'a> {
    plan: &'a ClassifyPlan,
    environment: &'a Environment,
    features: &'a FeaturesPlan,
    items: &'a [Item],
    specs: &'a [ChipSpec],
    truth: Option<usize>,
    progress: &'a Progress,
}

impl Stages<'_> {
    /// Runs the stages on their threads until every feature is written (or one fails); returns
    /// the summary and what the reader did.
    fn run(
        &self,
        source: FeatureSource,
        written: &[WrittenRow],
        writer: &mut OutputWriter,
    ) -> Result<(RunSummary, ReaderReport)> {
        let plan = self.plan;
        let batch_size = plan.model.arguments.batch_size;
        // Batches in flight, bounded by memory: large batches mean fewer of them, and fewer workers.
        let batch_bytes = plan.model.package.definition.values_per_chip() * std::mem::size_of::<f32>() * batch_size;
        let in_flight = (PIPELINE_CHIP_BUDGET / batch_bytes.max(1)).clamp(1, plan.chips.threads * 2);
        let threads = plan.chips.threads.min(in_flight);
        let smallest_window = read::smallest_window(batch_size, threads);
        let window_size = &AtomicUsize::new(smallest_window);
        std::thread::scope(|scope| {
            // One queue per worker: each gets its own stretch of every window, so that
            // neighbouring chips, which share raster blocks, are cut by one worker from one
            // block cache.
            let (worker_txs, worker_rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| bounded::<FeatureBatch>(2)).unzip();
            // Chip buffers go back to the workers once scored: no allocation (nor page faults)
            // per batch.
            let (free_tx, free_rx) = bounded::<Vec<f32>>(in_flight);
            let (chip_tx, chip_rx) = bounded::<Result<ChippedBatch>>(in_flight);
            let read = ReadContext {
                source,
                items: self.items,
                specs: self.specs,
                batch_size,
                queues: worker_txs,
                written,
                truth: self.truth,
                comparison: self.truth.map(|_| truth_comparison(plan)),
                record: prepare::records_itself(plan),
                multi_label: plan.model.package.definition.label_mode == LabelMode::MultiLabel,
                window_size,
                progress: self.progress,
            };
            let reader = scope.spawn(move || read::read_features(read));
            let cut = CutContext {
                items: self.items,
                specs: self.specs,
                overrides: &plan.inputs.raster_overrides,
                dump_chips: plan.chips.dump_chips.as_deref(),
            };
            for batches in worker_rxs {
                let (chips, free) = (chip_tx.clone(), free_rx.clone());
                scope.spawn(move || cut::cut_worker(cut, batches, chips, free));
            }
            drop(chip_tx);
            let scored = self.score((window_size, smallest_window), writer, &chip_rx, &free_tx);
            drop(chip_rx);
            let read = reader.join().map_err(|_| anyhow!("the feature reader panicked"))?;
            // The scoring stage's error first: when it stops, the reader only sees a closed channel.
            let mut summary = scored?;
            let mut report = read?;
            summary.absorb(std::mem::take(&mut report.resumed));
            summary.read_time = report.busy;
            Ok((summary, report))
        })
    }

    /// The scoring and writing stages, on the calling thread: the session is created here, while
    /// the reader and the workers already fill the pipeline.
    fn score(
        &self,
        (window_size, smallest_window): (&AtomicUsize, usize),
        writer: &mut OutputWriter,
        chips: &crossbeam_channel::Receiver<Result<ChippedBatch>>,
        free: &crossbeam_channel::Sender<Vec<f32>>,
    ) -> Result<RunSummary> {
        let plan = self.plan;
        let mut scorer = Scorer::new(plan, self.environment)?;
        if self.truth.is_some() {
            scorer.summary.truth = Some(truth_comparison(plan));
        }
        let ctx = ScoreContext {
            items: self.items,
            specs: self.specs,
            truth: self.truth,
            all_scores: plan.output.all_scores,
            write: WriteContext {
                items: self.items,
                strict: plan.output.strict.then_some(self.features.source.as_str()),
                truth: self.truth,
            },
            progress: self.progress,
            window_size,
            smallest_window,
        };
        score::score_and_write(&ctx, &mut scorer, writer, chips, free)?;
        let mut summary = scorer.summary;
        summary.execution_provider = scorer.classifier.execution_provider;
        Ok(summary)
    }
}

/// The comparison with `--truth-field`, matching truth values to the model's classes.
fn truth_comparison(plan: &ClassifyPlan) -> Confusion {
    let classes = &plan.model.package.definition.classes;
    let multi_label = plan.model.package.definition.label_mode == LabelMode::MultiLabel;
    Confusion::for_classes(classes.iter().map(|c| (c.name.clone(), c.value)), multi_label)
}
