//! From raw model outputs to class probabilities: softmax for single-label models, sigmoid for
//! multi-label ones.

/// How a model's outputs become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Softmax over the classes (one label per object).
    Softmax,
    /// Sigmoid per class (any number of labels per object).
    Sigmoid,
}

/// Turns one chip's raw model outputs into probabilities in place. Outputs that already are
/// probabilities (softmax: all in 0..1 summing to 1; sigmoid: all in 0..1) are kept as they are.
pub fn activate(row: &mut [f32], activation: Activation) {
    let in_unit = row.iter().all(|v| (0.0..=1.0).contains(v));
    match activation {
        Activation::Softmax => {
            let sum: f32 = row.iter().sum();
            if in_unit && (sum - 1.0).abs() < 1e-3 {
                return;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                total += *v;
            }
            for v in row.iter_mut() {
                *v /= total;
            }
        }
        Activation::Sigmoid => {
            if in_unit {
                return;
            }
            for v in row.iter_mut() {
                *v = 1.0 / (1.0 + (-*v).exp());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_logits_and_probabilities_kept() {
        let mut logits = [1.0f32, 2.0, 3.0];
        activate(&mut logits, Activation::Softmax);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let s: f32 = e.iter().sum();
        for (a, b) in logits.iter().zip(e.iter().map(|v| v / s)) {
            assert!((a - b).abs() < 1e-6);
        }
        let mut probs = [0.2f32, 0.7, 0.1];
        activate(&mut probs, Activation::Softmax);
        assert_eq!(probs, [0.2, 0.7, 0.1]);
        let mut multi = [0.0f32, 2.0];
        activate(&mut multi, Activation::Sigmoid);
        assert!((multi[0] - 0.5).abs() < 1e-6 && (multi[1] - 0.880797).abs() < 1e-5);
    }
}
