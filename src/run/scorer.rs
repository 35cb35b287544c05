//! The model with the rules that turn its outputs into labels: batches scored (with test-time
//! augmentation), labels and confidences chosen, counts kept.

use std::time::Instant;

use anyhow::Result;
use ort::environment::Environment;

use crate::chips;
use crate::infer::{Classifier, SessionOptions};
use crate::input::features::Problem;
use crate::model::arguments::ModelArguments;
use crate::model::definition::{LabelMode, ModelDefinition};
use crate::output::Confidence;
use crate::report::summary::RunSummary;
use crate::run::plan::ClassifyPlan;

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
        let definition = &plan.package.definition;
        let options = SessionOptions {
            device: plan.device,
            intra_op_threads: plan.intra_op_threads,
        };
        let classifier = Classifier::new(
            environment,
            &plan.package.onnx,
            &plan.package.model_name,
            &definition.expected_io(),
            &options,
        )?;
        let variants = if plan.model_arguments.test_time_augmentation {
            chips::tta::tta_variants(definition.image_space, definition.image_height, definition.image_width)
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
        *self.summary.labels.entry(label.clone()).or_default() += 1;
        Ok((label, confidence))
    }
}
