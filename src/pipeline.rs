//! The run: features -> chips -> inference -> output, as a pipeline.
//!
//! One thread reads features in order and groups them into batches; worker threads (each with
//! its own GDAL dataset) cut and normalise the chips; the calling thread restores the batch
//! order, runs the model and writes the rows. Channels are bounded, so memory stays flat however
//! many features there are, and chip reading overlaps inference.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use crossbeam_channel::bounded;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Geometry, OGRwkbGeometryType};

use crate::arguments::ModelArguments;
use crate::bail_input;
use crate::chips::{self, ChipSpec};
use crate::emd::{LabelMode, ModelDefinition};
use crate::features::{FeatureSource, InputFeature, Problem};
use crate::inference::{self, Classifier, SessionOptions};
use crate::items::Item;
use crate::output::{Confidence, OutputRow, OutputSchema, OutputWriter};
use crate::plan::{ClassifyPlan, FeaturesPlan};
use crate::raster::Raster;
use ort::environment::Environment;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Objects (features or images) read.
    pub objects: usize,
    /// Objects classified.
    pub classified: usize,
    /// Objects with a problem, by status code (all but `invalid_geometry` are not classified).
    pub problems: BTreeMap<&'static str, usize>,
    /// Classified objects per label.
    pub labels: BTreeMap<String, usize>,
    /// Labels against the `--truth-field`, when given.
    pub truth: Option<crate::truth::Confusion>,
    /// The ONNX Runtime execution provider that ran the model.
    pub execution_provider: &'static str,
    /// Time spent in the model (including test-time augmentation).
    pub inference_time: Duration,
    /// Time the feature reader spent reading and placing features.
    pub read_time: Duration,
    /// Time the chip workers spent cutting chips, added over workers.
    pub chip_time: Duration,
    /// Time spent writing output rows.
    pub write_time: Duration,
    /// Wall-clock time of the whole run.
    pub total_time: Duration,
    /// Chips per inference batch.
    pub batch_size: usize,
    /// Chip worker threads.
    pub threads: usize,
    /// ONNX Runtime intra-op threads (0: its default).
    pub intra_op_threads: usize,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: Option<u64>,
}

impl RunSummary {
    /// Objects per second over the whole run.
    pub fn throughput(&self) -> f64 {
        self.objects as f64 / self.total_time.as_secs_f64().max(1e-9)
    }

    /// The summary as JSON, for `--summary-json`.
    pub fn to_json(&self, output: &str) -> serde_json::Value {
        serde_json::json!({
            "output": output,
            "objects": self.objects,
            "classified": self.classified,
            "not_classified": self.objects - self.classified,
            "problems": self.problems,
            "labels": self.labels,
            "execution_provider": self.execution_provider,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "intra_op_threads": self.intra_op_threads,
            "seconds": {
                "total": self.total_time.as_secs_f64(),
                "inference": self.inference_time.as_secs_f64(),
                "read_features": self.read_time.as_secs_f64(),
                "cut_chips_all_workers": self.chip_time.as_secs_f64(),
                "write": self.write_time.as_secs_f64(),
            },
            "objects_per_second": self.throughput(),
            "peak_rss_bytes": self.peak_rss_bytes,
            "truth": self.truth.as_ref().map(|t| t.to_json()),
        })
    }
}

/// Runs `plan` and returns what it did; the output exists only if this returns `Ok`.
pub fn run(plan: ClassifyPlan) -> Result<RunSummary> {
    let started = Instant::now();
    let environment = inference::init_runtime(&plan.ort_library)?;
    let mut summary = match &plan.features {
        Some(features) => classify_features(&plan, &environment, features)?,
        None => classify_images(&plan, Scorer::new(&plan, &environment)?)?,
    };
    plan.output.commit()?;
    summary.total_time = started.elapsed();
    summary.batch_size = plan.model_arguments.batch_size;
    summary.threads = plan.threads;
    summary.intra_op_threads = plan.intra_op_threads;
    summary.peak_rss_bytes = crate::progress::peak_rss_bytes();
    Ok(summary)
}

/// The model with the rules that turn its outputs into labels.
struct Scorer<'a> {
    classifier: Classifier,
    definition: &'a ModelDefinition,
    arguments: &'a ModelArguments,
    variants: Vec<u8>,
    summary: RunSummary,
}

impl<'a> Scorer<'a> {
    /// Creates the ONNX Runtime session for the plan's model, checked against its definition.
    fn new(plan: &'a ClassifyPlan, environment: &Environment) -> Result<Scorer<'a>> {
        let definition = &plan.package.definition;
        let options = SessionOptions {
            device: plan.device,
            intra_op_threads: plan.intra_op_threads,
        };
        let classifier = Classifier::new(
            environment,
            &plan.package.onnx,
            &plan.package.model_name,
            definition,
            &options,
        )?;
        let variants = if plan.model_arguments.test_time_augmentation {
            chips::tta_variants(definition.image_space, definition.image_height, definition.image_width)
        } else {
            vec![0]
        };
        Ok(Scorer {
            classifier,
            definition,
            arguments: &plan.model_arguments,
            variants,
            summary: RunSummary::default(),
        })
    }

    /// Class probabilities for `count` chips, averaged over the test-time augmentation variants.
    fn score(&mut self, chips: &[f32], count: usize) -> Result<Vec<f32>> {
        let started = Instant::now();
        let (c, h, w) = (
            self.classifier.channels,
            self.definition.image_height,
            self.definition.image_width,
        );
        let per_chip = c * h * w;
        let mut mean = self.classifier.predict(chips, count)?;
        if self.variants.len() > 1 {
            let mut transformed = vec![0.0; chips.len()];
            for &k in &self.variants[1..] {
                for (src, dst) in chips.chunks_exact(per_chip).zip(transformed.chunks_exact_mut(per_chip)) {
                    chips::dihedral(src, c, h, w, k, dst);
                }
                let scores = self.classifier.predict(&transformed, count)?;
                mean.iter_mut().zip(&scores).for_each(|(m, s)| *m += s);
            }
            let n = self.variants.len() as f32;
            mean.iter_mut().for_each(|m| *m /= n);
        }
        self.summary.inference_time += started.elapsed();
        Ok(mean)
    }

    /// Label and confidence from one chip's probabilities, and the tally.
    fn label(&mut self, scores: &[f32]) -> (String, Confidence) {
        self.summary.classified += 1;
        let names = &self.definition.classes;
        let (label, confidence) = match self.definition.label_mode {
            LabelMode::SingleLabel => {
                // First maximum wins, as numpy/torch argmax.
                let (best, p) =
                    scores.iter().enumerate().fold(
                        (0, f32::NEG_INFINITY),
                        |(bi, bp), (i, &p)| if p > bp { (i, p) } else { (bi, bp) },
                    );
                (names[best].name.clone(), Confidence::Single(p as f64))
            }
            LabelMode::MultiLabel => {
                let threshold = self.arguments.score_threshold;
                let label = scores
                    .iter()
                    .zip(names)
                    .filter(|(&p, _)| p >= threshold)
                    .map(|(_, c)| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(";");
                let all = scores.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(";");
                (label, Confidence::Multi(all))
            }
        };
        *self.summary.labels.entry(label.clone()).or_default() += 1;
        (label, confidence)
    }
}

/// A batch of features in input order, numbered.
struct FeatureBatch {
    seq: usize,
    features: Vec<InputFeature>,
}

/// A batch with its chips cut: chips of the classifiable features, in order.
struct ChippedBatch {
    seq: usize,
    features: Vec<InputFeature>,
    chips: Vec<f32>,
    count: usize,
    cut_time: Duration,
}

/// Classifies every feature. The ONNX Runtime session is created while the reader and chip
/// workers already fill the pipeline, so its start-up cost overlaps theirs.
fn classify_features(plan: &ClassifyPlan, environment: &Environment, features: &FeaturesPlan) -> Result<RunSummary> {
    let items = crate::items::for_features(&plan.rasters, plan.processing_mode)?;
    let definition = &plan.package.definition;
    let specs = items
        .iter()
        .map(|item| Raster::open(&item.name).and_then(|raster| ChipSpec::new(definition, &raster)))
        .collect::<Result<Vec<_>>>()?;
    let mut source = FeatureSource::open(
        &features.source,
        features.layer.as_deref(),
        features.crs_override.as_deref(),
    )?;
    source.selection.shard = plan.shard;
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
    if plan.resume && plan.output.appending {
        source.selection.done = crate::output::written_source_ids(&plan.output, &plan.layer.name)?;
    }
    for item in &items {
        source.transform_to(&item.grid, &item.name)?;
    }
    let (features_srs, grid_srs) = (source.srs_wkt.clone(), items[0].grid.srs_wkt.clone());

    let mut schema = OutputSchema {
        input_fields: source.fields.clone(),
        label_field: plan.label_field.clone(),
        multi_label: definition.label_mode == LabelMode::MultiLabel,
        with_source_id: true,
        with_image_id: items.len() > 1,
        geometry: Some((source.geometry_type, source.srs_wkt.clone())),
        style: Some(crate::style::ClassColors::from_definition(definition)),
    };
    schema.resolve_clashes();
    let mut writer = OutputWriter::create(&plan.output, &plan.format, &schema, &plan.layer)?;

    let batch_size = plan.model_arguments.batch_size;
    let threads = plan.threads;
    let (specs, items) = (&specs, &items);
    let dump_chips = plan.dump_chips.as_deref();
    let strict = plan.strict;
    let progress = crate::progress::Progress::new(source.count, plan.quiet);
    let progress = &progress;
    let consumed = std::thread::scope(|scope| -> Result<RunSummary> {
        let (feature_tx, feature_rx) = bounded::<FeatureBatch>(threads * 2);
        // Chip buffers go back to the workers once scored: no allocation (nor page faults) per batch.
        let (free_tx, free_rx) = bounded::<Vec<f32>>(threads * 4);
        let (chip_tx, chip_rx) = bounded::<Result<ChippedBatch>>(threads * 2);

        let reader = scope.spawn(move || -> Result<Duration> {
            // Busy time: the whole loop less the time spent waiting for room in the channel.
            let started = Instant::now();
            let mut waiting = Duration::ZERO;
            let mut seq = 0;
            let mut pending = Vec::with_capacity(batch_size);
            let mut send = |pending: &mut Vec<InputFeature>| -> Result<()> {
                let batch = FeatureBatch {
                    seq,
                    features: std::mem::replace(pending, Vec::with_capacity(batch_size)),
                };
                seq += 1;
                let wait = Instant::now();
                let sent = feature_tx.send(batch).map_err(|_| anyhow!("the chip workers stopped"));
                waiting += wait.elapsed();
                sent
            };
            source.for_each(items, |feature| {
                pending.push(feature);
                if pending.len() == batch_size {
                    send(&mut pending)?;
                }
                Ok(())
            })?;
            if !pending.is_empty() {
                send(&mut pending)?;
            }
            Ok(started.elapsed().saturating_sub(waiting))
        });

        for _ in 0..threads {
            let (feature_rx, chip_tx, free_rx) = (feature_rx.clone(), chip_tx.clone(), free_rx.clone());
            scope.spawn(move || {
                // This worker's own datasets, opened when first needed.
                let mut rasters: Vec<Option<Raster>> = items.iter().map(|_| None).collect();
                let mut scratch = Vec::new();
                for batch in feature_rx {
                    let buffer = free_rx.try_recv().unwrap_or_default();
                    let result = cut_batch(items, &mut rasters, specs, batch, buffer, &mut scratch, dump_chips);
                    let failed = result.is_err();
                    if chip_tx.send(result).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop((feature_rx, chip_tx));
        let mut scorer = Scorer::new(plan, environment)?;
        if truth.is_some() {
            scorer.summary.truth = Some(crate::truth::Confusion::default());
        }

        // Batches arrive in any order; rows leave in input order.
        let mut waiting: BTreeMap<usize, ChippedBatch> = BTreeMap::new();
        let mut next = 0;
        let mut consume = || -> Result<()> {
            for item in chip_rx.iter() {
                let batch = item?;
                waiting.insert(batch.seq, batch);
                while let Some(batch) = waiting.remove(&next) {
                    crate::interrupt::check()?;
                    progress.advance(batch.features.len() as u64);
                    scorer.summary.chip_time += batch.cut_time;
                    let strict = strict.then_some(features.source.as_str());
                    let buffer = write_batch(&mut scorer, &mut writer, batch, items, strict, truth)?;
                    let _ = free_tx.try_send(buffer);
                    next += 1;
                }
            }
            Ok(())
        };
        let consumed = consume();
        drop(chip_rx);
        let read = reader.join().map_err(|_| anyhow!("the feature reader panicked"))?;
        consumed?;
        let mut summary = scorer.summary;
        summary.read_time = read?;
        summary.execution_provider = scorer.classifier.execution_provider;
        Ok(summary)
    });
    progress.finish();
    let summary = consumed?;
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
    writer.finish()?;
    Ok(summary)
}

fn crs_name(wkt: Option<&str>) -> String {
    wkt.map(crate::features::srs_label).unwrap_or_else(|| "no CRS".into())
}

/// Cuts the chips of a batch (each on its feature's item) into `chips`, a recycled buffer.
fn cut_batch(
    items: &[Item],
    rasters: &mut [Option<Raster>],
    specs: &[ChipSpec],
    batch: FeatureBatch,
    mut chips: Vec<f32>,
    scratch: &mut Vec<f32>,
    dump_chips: Option<&std::path::Path>,
) -> Result<ChippedBatch> {
    let started = Instant::now();
    let count = batch.features.iter().filter(|f| f.shape.is_ok()).count();
    let per_chip = specs[0].values_per_chip();
    chips.clear();
    chips.resize(count * per_chip, 0.0);
    let mut slots = chips.chunks_exact_mut(per_chip);
    for feature in &batch.features {
        if let (Ok(shape), Some(item)) = (&feature.shape, feature.item) {
            let slot = slots.next().expect("one slot per classifiable feature");
            let raster = match &mut rasters[item] {
                Some(raster) => raster,
                empty => empty.insert(Raster::open(&items[item].name)?),
            };
            let spec = &specs[item];
            let window = spec.cut_pixels(raster, shape, slot, scratch)?;
            if let Some(dir) = dump_chips {
                let name = if items.len() > 1 {
                    format!("chip_{:06}_item{item}.tif", feature.index)
                } else {
                    format!("chip_{:06}.tif", feature.index)
                };
                chips::write_chip_tiff(&dir.join(name), slot, spec, window, &raster.grid)?;
            }
            spec.normalize(slot);
        }
    }
    Ok(ChippedBatch {
        seq: batch.seq,
        features: batch.features,
        chips,
        count,
        cut_time: started.elapsed(),
    })
}

/// Scores a batch and writes its rows; with `strict` (the features' name), a feature that cannot
/// be classified is an error. Returns the chip buffer for reuse.
fn write_batch(
    scorer: &mut Scorer<'_>,
    writer: &mut OutputWriter,
    batch: ChippedBatch,
    items: &[Item],
    strict: Option<&str>,
    truth: Option<usize>,
) -> Result<Vec<f32>> {
    let scores = if batch.count > 0 {
        scorer.score(&batch.chips, batch.count)?
    } else {
        Vec::new()
    };
    let classes = scorer.definition.classes.len();
    let mut per_chip = scores.chunks_exact(classes);
    for feature in batch.features {
        scorer.summary.objects += 1;
        let problem = feature.shape.as_ref().err().copied().or(feature.flag);
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
        let (label, confidence) = match feature.shape {
            Ok(_) => {
                let (label, confidence) = scorer.label(per_chip.next().expect("scores for every chip"));
                (Some(label), Some(confidence))
            }
            Err(_) => (None, None),
        };
        if let (Some(i), Some(predicted), Some(confusion)) = (truth, &label, scorer.summary.truth.as_mut()) {
            if let Some(Some(expected)) = feature.fields.get(i) {
                confusion.record(&crate::output::field_text(expected), predicted);
            }
        }
        let status = problem.map(Problem::code);
        let started = Instant::now();
        writer.write(&OutputRow {
            geometry_wkb: feature.geometry_wkb,
            source_id: feature.fid.map(|id| id as i64),
            // With several items, each row says which image it was classified on.
            image_id: feature.item.filter(|_| items.len() > 1).map(|i| items[i].name.clone()),
            fields: feature.fields,
            label,
            confidence,
            status,
        })?;
        scorer.summary.write_time += started.elapsed();
    }
    Ok(batch.chips)
}

/// No features: every raster is one object, resampled whole to the chip size. Rasters that are
/// all georeferenced give their extents as polygons (in the first raster's CRS); otherwise the
/// output is a table of image ids.
fn classify_images(plan: &ClassifyPlan, mut scorer: Scorer<'_>) -> Result<RunSummary> {
    // A first pass checks every image (bands, georeferencing) without keeping it open, so that a
    // folder of many images never holds more than one batch of datasets.
    let mut all_georeferenced = true;
    let mut target_wkt = None;
    let mut specs = Vec::with_capacity(plan.rasters.len());
    for (i, name) in plan.rasters.iter().enumerate() {
        let raster = Raster::open(name)?;
        specs.push(ChipSpec::new(scorer.definition, &raster)?);
        all_georeferenced &= raster.grid.georeferenced;
        if i == 0 {
            target_wkt = raster.grid.srs_wkt.clone();
        }
    }
    let target_wkt = target_wkt.filter(|_| all_georeferenced);
    let schema = OutputSchema {
        input_fields: Vec::new(),
        label_field: plan.label_field.clone(),
        multi_label: scorer.definition.label_mode == LabelMode::MultiLabel,
        with_source_id: false,
        with_image_id: true,
        geometry: all_georeferenced.then(|| (OGRwkbGeometryType::wkbPolygon, target_wkt.clone())),
        style: Some(crate::style::ClassColors::from_definition(scorer.definition)),
    };
    let mut writer = OutputWriter::create(&plan.output, &plan.format, &schema, &plan.layer)?;
    let target_srs = target_wkt.as_deref().map(SpatialRef::from_wkt).transpose()?;

    let batch_size = plan.model_arguments.batch_size;
    let per_chip = plan.package.definition.extract_bands.len()
        * plan.package.definition.image_width
        * plan.package.definition.image_height;
    for (group, group_specs) in plan.rasters.chunks(batch_size).zip(specs.chunks(batch_size)) {
        crate::interrupt::check()?;
        let rasters = group
            .iter()
            .map(|name| Raster::open(name))
            .collect::<Result<Vec<_>>>()?;
        let mut chips = vec![0.0; group.len() * per_chip];
        for ((raster, spec), slot) in rasters.iter().zip(group_specs).zip(chips.chunks_exact_mut(per_chip)) {
            spec.whole_image(raster, slot)?;
        }
        let scores = scorer.score(&chips, group.len())?;
        for (raster, scores) in rasters.iter().zip(scores.chunks_exact(scorer.definition.classes.len())) {
            scorer.summary.objects += 1;
            let (label, confidence) = scorer.label(scores);
            let geometry_wkb = match &target_srs {
                Some(target) => Some(extent_in(raster, target)?),
                None => None,
            };
            writer.write(&OutputRow {
                geometry_wkb,
                image_id: Some(raster.name.clone()),
                label: Some(label),
                confidence: Some(confidence),
                ..OutputRow::default()
            })?;
        }
    }
    writer.finish()?;
    scorer.summary.execution_provider = scorer.classifier.execution_provider;
    Ok(scorer.summary)
}

/// The raster's footprint as a WKB polygon in `target`'s CRS.
fn extent_in(raster: &Raster, target: &SpatialRef) -> Result<Vec<u8>> {
    let ring = raster
        .grid
        .extent_ring()
        .iter()
        .map(|(x, y)| format!("{x} {y}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut polygon = Geometry::from_wkt(&format!("POLYGON(({ring}))"))?;
    // `grid.spatial_ref()` is already in x/y order; the target gets the same.
    if let Some(own) = raster.grid.spatial_ref() {
        let mut target = target.clone();
        target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        if own.to_wkt().ok() != target.to_wkt().ok() {
            polygon = polygon.transform(&CoordTransform::new(&own, &target)?)?;
        }
    }
    Ok(polygon.wkb()?)
}
