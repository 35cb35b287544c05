//! The model with the rules that turn its outputs into labels: batches scored (with test-time
//! augmentation), labels and confidences chosen, counts kept; with `--report`, the objects most
//! worth checking offered to the report's gallery with their chips.

use std::time::Instant;

use anyhow::Result;
use ort::environment::Environment;

use crate::chips::{self, ChipSpec};
use crate::infer::Expected;
use crate::infer::{Classifier, SessionOptions};
use crate::input::features::PixelShape;
use crate::input::features::Problem;
use crate::input::raster::RasterGrid;
use crate::model::arguments::ModelArguments;
use crate::model::definition::{LabelMode, ModelDefinition};
use crate::model::quantize::QuantRecord;
use crate::output::Confidence;
use crate::report::gallery::{location, Gallery, GalleryObject, Outline, Rank, Thumbnail};
use crate::report::summary::RunSummary;
use crate::run::plan::ClassifyPlan;

/// An object offered to the report's gallery: where it comes from, and what it should be.
pub struct Reviewed<'s> {
    /// Position in the input (features), or among the images.
    pub position: usize,
    /// Input feature id.
    pub source_id: Option<i64>,
    /// The image it was classified on, when that says something (several images).
    pub image_id: Option<String>,
    /// Expected class (`--truth-field`).
    pub expected: Option<String>,
    /// Its label, as [`Scorer::label`] gave it.
    pub label: &'s str,
    /// The feature on the raster, to draw over its chip.
    pub shape: Option<&'s PixelShape>,
    /// The raster's grid and the pixel (column, row) of the object's centre, whose map
    /// coordinates the gallery shows.
    pub centre: Option<(&'s RasterGrid, f64, f64)>,
}

/// The model with the rules that turn its outputs into labels.
pub struct Scorer<'a> {
    pub classifier: Classifier,
    pub definition: &'a ModelDefinition,
    arguments: &'a ModelArguments,
    variants: Vec<u8>,
    pub summary: RunSummary,
}

impl<'a> Scorer<'a> {
    /// Creates the ONNX Runtime session for the plan's model, checked against its definition.
    pub fn new(plan: &'a ClassifyPlan, environment: &Environment) -> Result<Scorer<'a>> {
        let definition = &plan.model.package.definition;
        let options = SessionOptions {
            device: plan.model.device,
            intra_op_threads: plan.model.intra_op_threads,
        };
        let classifier = Classifier::new(
            environment,
            &plan.model.package.onnx,
            &plan.model.package.model_name,
            &Expected::declared_by(definition),
            &options,
        )?;
        let variants = if plan.model.arguments.test_time_augmentation {
            chips::tta::tta_variants(definition.image_space, definition.image_height, definition.image_width)
        } else {
            vec![0]
        };
        let mut summary = RunSummary {
            int8: matches!(QuantRecord::from_emd_text(&plan.model.package.emd_text), Ok(Some(_))),
            multi_label: definition.label_mode == LabelMode::MultiLabel,
            ..RunSummary::default()
        };
        // Multi-label models have one more gallery class: rows without a label.
        if plan.report.html.is_some() && plan.report.chips_per_class > 0 {
            let groups = definition.classes.len() + usize::from(definition.label_mode == LabelMode::MultiLabel);
            summary.gallery = Some(Gallery::new(plan.report.chips_per_class, groups));
        }
        Ok(Scorer {
            classifier,
            definition,
            arguments: &plan.model.arguments,
            variants,
            summary,
        })
    }

    /// Whether objects are offered to the report's gallery ([`Scorer::review`]).
    pub fn reviewing(&self) -> bool {
        self.summary.gallery.is_some()
    }

    /// With `--report`: offers a labelled object to the gallery, with its `scores` and its chip
    /// (`chip`, normalised by `spec`): under its label, or (multi-label) under each class of its
    /// label set, or as a row without a label. Most objects cost a comparison; one the gallery
    /// keeps also a copy of its chip, turned back into raster values and reduced to a thumbnail.
    pub fn review(&mut self, spec: &ChipSpec, chip: &[f32], scores: &[f32], object: Reviewed<'_>) -> Result<()> {
        if self.summary.gallery.is_none() {
            return Ok(());
        }
        let names = &self.definition.classes;
        let offers: Vec<Offer> = match self.definition.label_mode {
            LabelMode::SingleLabel => vec![single_label_offer(scores)],
            LabelMode::MultiLabel => multi_label_offers(scores, self.arguments.threshold),
        };
        let misclassified = match (object.expected.as_deref(), self.summary.truth.as_ref()) {
            (Some(expected), Some(comparison)) => !comparison.is_right(expected, object.label),
            _ => false,
        };
        // Made once, for the first gallery class that keeps the object.
        let mut kept: Option<(Thumbnail, Option<Outline>, Option<String>)> = None;
        for offer in offers {
            let class = offer.class.map_or(String::new(), |c| names[c].name.clone());
            let rank = Rank {
                misclassified,
                confidence: offer.margin.unwrap_or(offer.confidence),
                position: object.position,
            };
            let gallery = self.summary.gallery.as_mut().expect("a gallery");
            if !gallery.admits(&class, rank) {
                continue;
            }
            let (thumbnail, outline, location) = match &kept {
                Some(made) => made.clone(),
                None => {
                    let mut raw = chip.to_vec();
                    spec.denormalize(&mut raw);
                    let made = (
                        Thumbnail::from_chip(&raw, spec.channels(), spec.height, spec.width)?,
                        object.shape.map(|shape| Outline::of(&spec.on_chip(shape))),
                        object.centre.and_then(|(grid, col, row)| location(grid, col, row)),
                    );
                    kept.insert(made).clone()
                }
            };
            let entry = GalleryObject {
                position: object.position,
                source_id: object.source_id,
                image_id: object.image_id.clone(),
                class,
                label: object.label.to_string(),
                confidence: offer.confidence,
                margin: offer.margin,
                runner_up: offer.runner_up.map(|i| (names[i].name.clone(), scores[i] as f64)),
                expected: object.expected.clone(),
                misclassified,
                outline,
                location,
            };
            gallery.insert(entry, thumbnail, &spec.bands);
        }
        Ok(())
    }

    /// Class probabilities for `count` chips, averaged over the test-time augmentation variants.
    pub fn score(&mut self, chips: &[f32], count: usize) -> Result<Vec<f32>> {
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
                    chips::tta::dihedral(src, c, h, w, k, dst);
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

    /// Label and confidence from one chip's probabilities, and the tally; non-finite scores
    /// (NaN, infinity) give no label but [`Problem::NonFiniteScores`].
    pub fn label(&mut self, scores: &[f32]) -> Result<(String, Confidence), Problem> {
        if scores.iter().any(|p| !p.is_finite()) {
            return Err(Problem::NonFiniteScores);
        }
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
                let threshold = self.arguments.threshold;
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
        self.summary.count_label(&label);
        Ok((label, confidence))
    }
}

/// Where an object would stand in one gallery class.
struct Offer {
    /// The class (`None`: a multi-label row without a label).
    class: Option<usize>,
    /// Probability of the class (no label: the highest probability).
    confidence: f64,
    /// Multi-label: distance of `confidence` from the threshold.
    margin: Option<f64>,
    /// The class that came closest after it.
    runner_up: Option<usize>,
}

/// The best class and the runner-up; the first maximum wins, as in [`Scorer::label`].
fn single_label_offer(scores: &[f32]) -> Offer {
    let (mut best, mut second): (usize, Option<usize>) = (0, None);
    for (i, &p) in scores.iter().enumerate().skip(1) {
        if p > scores[best] {
            (best, second) = (i, Some(best));
        } else if second.is_none_or(|s| p > scores[s]) {
            second = Some(i);
        }
    }
    Offer {
        class: Some(best),
        confidence: scores[best] as f64,
        margin: None,
        runner_up: second,
    }
}

/// One offer per class at or over `threshold` (its runner-up: the likeliest class under it),
/// or, with none, one for the row without a label (its likeliest class as runner-up).
fn multi_label_offers(scores: &[f32], threshold: f32) -> Vec<Offer> {
    let below = scores
        .iter()
        .enumerate()
        .filter(|(_, &p)| p < threshold)
        .fold(None, |best: Option<usize>, (i, &p)| match best {
            Some(b) if scores[b] >= p => Some(b),
            _ => Some(i),
        });
    let offers: Vec<Offer> = scores
        .iter()
        .enumerate()
        .filter(|(_, &p)| p >= threshold)
        .map(|(i, &p)| Offer {
            class: Some(i),
            confidence: p as f64,
            margin: Some((p - threshold) as f64),
            runner_up: below,
        })
        .collect();
    if !offers.is_empty() {
        return offers;
    }
    let top = below.map_or(0.0, |b| scores[b]);
    vec![Offer {
        class: None,
        confidence: top as f64,
        margin: Some((threshold - top) as f64),
        runner_up: below,
    }]
}
