//! The gate: the int8 model against the fp32 one on the held-out chips — label agreement (each
//! label's decision at the threshold, for a multi-label model), the change in confidence — and
//! their speed, measured here with the two models taking turns batch by batch.

use std::time::Instant;

use anyhow::Result;

use crate::infer::Classifier;
use crate::model::definition::{ClassInfo, LabelMode};
use crate::model::quantize::record::TruthFigures;
use crate::report::truth::Confusion;
use crate::run::interrupt;
use crate::run::quantize::sample::Chips;

/// How two models' probabilities compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Label decisions equal.
    pub agreeing: usize,
    /// Label decisions compared.
    pub compared: usize,
    /// Mean |int8 - fp32| confidence.
    pub mean_delta: f64,
    /// Largest |int8 - fp32| confidence.
    pub max_delta: f64,
}

impl Agreement {
    /// Share of decisions equal.
    pub fn share(&self) -> f64 {
        self.agreeing as f64 / self.compared.max(1) as f64
    }
}

/// Compares `int8` with `fp32` probabilities (`classes` per chip): single-label, the top label
/// and its probability (the `Confidence` a run writes); multi-label, each class's decision at
/// `threshold` and its probability. A non-finite int8 score disagrees.
pub fn compare(fp32: &[f32], int8: &[f32], classes: usize, mode: LabelMode, threshold: f32) -> Agreement {
    let (mut agreeing, mut compared, mut sum, mut max) = (0usize, 0usize, 0f64, 0f64);
    let mut delta = |a: f32, b: f32| {
        let d = if b.is_finite() { f64::from((a - b).abs()) } else { 1.0 };
        sum += d;
        max = max.max(d);
    };
    for (f, q) in fp32.chunks_exact(classes).zip(int8.chunks_exact(classes)) {
        match mode {
            LabelMode::SingleLabel => {
                let (fl, fp) = top(f);
                let (ql, qp) = top(q);
                compared += 1;
                agreeing += usize::from(fl == ql && qp.is_finite());
                delta(fp, qp);
            }
            LabelMode::MultiLabel => {
                for (&a, &b) in f.iter().zip(q) {
                    compared += 1;
                    agreeing += usize::from((a >= threshold) == (b >= threshold) && b.is_finite());
                    delta(a, b);
                }
            }
        }
    }
    Agreement {
        agreeing,
        compared,
        mean_delta: sum / compared.max(1) as f64,
        max_delta: max,
    }
}

/// Accuracy of the `fp32` and `int8` top labels (single-label probabilities, `classes` in the
/// model's output order) against `truth`, one value per chip (`None`: not compared); truth
/// values are matched to classes as a run's `--truth-field` matches them (name, else `Value`).
pub fn accuracy(
    fp32: &[f32],
    int8: &[f32],
    classes: &[ClassInfo],
    truth: &[Option<String>],
    field: &str,
) -> TruthFigures {
    let matcher = || Confusion::for_classes(classes.iter().map(|c| (c.name.clone(), c.value)), false);
    let (mut fp32_confusion, mut int8_confusion) = (matcher(), matcher());
    let n = classes.len().max(1);
    let name = |scores: &[f32]| classes.get(top(scores).0).map_or(String::new(), |c| c.name.clone());
    for ((f, q), expected) in fp32.chunks_exact(n).zip(int8.chunks_exact(n)).zip(truth) {
        if let Some(expected) = expected {
            fp32_confusion.record(expected, &name(f));
            int8_confusion.record(expected, &name(q));
        }
    }
    TruthFigures {
        field: field.to_string(),
        compared: fp32_confusion.total(),
        fp32_accuracy: fp32_confusion.accuracy().unwrap_or(0.0),
        int8_accuracy: int8_confusion.accuracy().unwrap_or(0.0),
        unmatched: fp32_confusion.unmatched_count(),
    }
}

/// The first maximum and its value, as a run labels.
fn top(scores: &[f32]) -> (usize, f32) {
    scores.iter().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |(bi, bp), (i, &p)| if p > bp { (i, p) } else { (bi, bp) },
    )
}

/// Probabilities of every chip of `chips`, in batches of `batch`.
pub fn predict(classifier: &mut Classifier, chips: &Chips, batch: usize) -> Result<Vec<f32>> {
    let per_chip = chips.data.len() / chips.count.max(1);
    let mut scores = Vec::with_capacity(chips.count * classifier.classes);
    for start in (0..chips.count).step_by(batch.max(1)) {
        interrupt::check()?;
        let n = batch.min(chips.count - start);
        scores.extend(classifier.predict(&chips.data[start * per_chip..(start + n) * per_chip], n)?);
    }
    Ok(scores)
}

/// Rounds of the speed measurement.
pub const ROUNDS: usize = 3;

/// Seconds per chip of each model over `chips`, after a batch to warm each up: [`ROUNDS`] passes
/// in which the two models take turns batch by batch, so that both see the same load (on a
/// shared machine, a whole fp32 pass and a whole int8 pass a minute apart do not).
pub fn time_both(fp32: &mut Classifier, int8: &mut Classifier, chips: &Chips, batch: usize) -> Result<(f64, f64)> {
    let per_chip = chips.data.len() / chips.count.max(1);
    let batch = batch.max(1);
    let warm = batch.min(chips.count);
    fp32.predict(&chips.data[..warm * per_chip], warm)?;
    int8.predict(&chips.data[..warm * per_chip], warm)?;
    let (mut fp32_seconds, mut int8_seconds) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        for start in (0..chips.count).step_by(batch) {
            interrupt::check()?;
            let n = batch.min(chips.count - start);
            let data = &chips.data[start * per_chip..(start + n) * per_chip];
            let started = Instant::now();
            fp32.predict(data, n)?;
            fp32_seconds += started.elapsed().as_secs_f64();
            let started = Instant::now();
            int8.predict(data, n)?;
            int8_seconds += started.elapsed().as_secs_f64();
        }
    }
    let n = (chips.count.max(1) * ROUNDS) as f64;
    Ok((fp32_seconds / n, int8_seconds / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_label_agreement_is_on_the_top_label() {
        let fp32 = [0.6, 0.4, 0.2, 0.8, 0.5, 0.5];
        let int8 = [0.55, 0.45, 0.6, 0.4, 0.5, 0.5];
        let a = compare(&fp32, &int8, 2, LabelMode::SingleLabel, 0.5);
        // Chip 1 keeps label 0, chip 2 flips, chip 3 ties the same way (first maximum).
        assert_eq!((a.agreeing, a.compared), (2, 3));
        assert!((a.max_delta - 0.2).abs() < 1e-6);
        assert!((a.mean_delta - (0.05 + 0.2 + 0.0) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn accuracy_is_against_truth_matched_by_name_or_value() {
        let classes: Vec<ClassInfo> = [("cat", 1), ("dog", 2)]
            .iter()
            .map(|&(name, value)| ClassInfo {
                value: Some(value),
                name: name.into(),
                color: None,
            })
            .collect();
        let fp32 = [0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4];
        let int8 = [0.8, 0.2, 0.6, 0.4, 0.7, 0.3, 0.5, 0.5];
        let truth = [
            Some("cat".to_string()),
            Some("2".to_string()),
            Some("bird".to_string()),
            None,
        ];
        let t = accuracy(&fp32, &int8, &classes, &truth, "truth");
        // Three chips have truth: fp32 is right on cat and on 2 (dog), int8 only on cat; "bird"
        // is no class (wrong for both); the fourth chip is not compared.
        assert_eq!((t.compared, t.unmatched), (3, 1));
        assert!((t.fp32_accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.int8_accuracy - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn multi_label_agreement_is_per_decision() {
        let fp32 = [0.9, 0.49, 0.1];
        let int8 = [0.8, 0.51, f32::NAN];
        let a = compare(&fp32, &int8, 3, LabelMode::MultiLabel, 0.5);
        assert_eq!((a.agreeing, a.compared), (1, 3));
        assert_eq!(a.max_delta, 1.0);
    }
}
