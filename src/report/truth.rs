//! Comparing labels with the expected class carried by the input features (`--truth-field`):
//! accuracy, per-class precision and recall, and the confusion matrix, for regression runs that
//! must fail when a model gets worse (`--min-accuracy`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

/// Counts of (expected, predicted) label pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confusion {
    counts: BTreeMap<(String, String), usize>,
}

/// Precision and recall of one class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScores {
    /// Class label.
    pub class: String,
    /// Rows expected to be this class.
    pub support: usize,
    /// Of the rows predicted as this class, the share that is right (`None` if none predicted).
    pub precision: Option<f64>,
    /// Of the rows expected as this class, the share found (`None` if none expected).
    pub recall: Option<f64>,
}

impl Confusion {
    /// Records one classified row.
    pub fn record(&mut self, expected: &str, predicted: &str) {
        *self
            .counts
            .entry((expected.to_string(), predicted.to_string()))
            .or_default() += 1;
    }

    /// Adds the counts of `other`.
    pub fn absorb(&mut self, other: &Confusion) {
        for (pair, n) in &other.counts {
            *self.counts.entry(pair.clone()).or_default() += n;
        }
    }

    /// Rows compared.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Share of rows whose label is the expected one (`None` when nothing was compared).
    pub fn accuracy(&self) -> Option<f64> {
        let total = self.total();
        let correct: usize = self.counts.iter().filter(|((e, p), _)| e == p).map(|(_, n)| n).sum();
        (total > 0).then(|| correct as f64 / total as f64)
    }

    /// Every class that was expected or predicted, sorted.
    pub fn classes(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.counts.keys().flat_map(|(e, p)| [e, p]).collect();
        set.into_iter().cloned().collect()
    }

    /// Count of rows expected as `expected` and predicted as `predicted`.
    pub fn count(&self, expected: &str, predicted: &str) -> usize {
        self.counts
            .get(&(expected.to_string(), predicted.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Precision and recall per class.
    pub fn per_class(&self) -> Vec<ClassScores> {
        self.classes()
            .into_iter()
            .map(|class| {
                let true_positive = self.count(&class, &class);
                let expected: usize = self
                    .counts
                    .iter()
                    .filter(|((e, _), _)| *e == class)
                    .map(|(_, n)| n)
                    .sum();
                let predicted: usize = self
                    .counts
                    .iter()
                    .filter(|((_, p), _)| *p == class)
                    .map(|(_, n)| n)
                    .sum();
                ClassScores {
                    support: expected,
                    precision: (predicted > 0).then(|| true_positive as f64 / predicted as f64),
                    recall: (expected > 0).then(|| true_positive as f64 / expected as f64),
                    class,
                }
            })
            .collect()
    }

    /// The comparison as JSON (for `--summary-json`).
    pub fn to_json(&self) -> Value {
        let classes = self.classes();
        json!({
            "compared": self.total(),
            "accuracy": self.accuracy(),
            "classes": self.per_class().iter().map(|c| json!({
                "class": c.class, "support": c.support, "precision": c.precision, "recall": c.recall,
            })).collect::<Vec<_>>(),
            "confusion_matrix": {
                "labels": classes,
                "rows_expected_columns_predicted": classes.iter()
                    .map(|e| classes.iter().map(|p| self.count(e, p)).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            },
        })
    }

    /// The comparison as text for the terminal.
    pub fn render_text(&self) -> String {
        let classes = self.classes();
        let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).clamp(5, 24);
        let mut out = format!(
            "accuracy {} over {} compared row(s)\n",
            self.accuracy().map_or("-".into(), |a| format!("{a:.4}")),
            self.total()
        );
        out.push_str(&format!(
            "{:<width$}  {:>9}  {:>9}  {:>7}\n",
            "class", "precision", "recall", "support"
        ));
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        for c in self.per_class() {
            out.push_str(&format!(
                "{:<width$}  {:>9}  {:>9}  {:>7}\n",
                c.class,
                show(c.precision),
                show(c.recall),
                c.support
            ));
        }
        out.push_str(&format!(
            "confusion (rows: expected, columns: predicted)\n{:<width$}",
            ""
        ));
        for p in &classes {
            out.push_str(&format!("  {p:>width$}"));
        }
        out.push('\n');
        for e in &classes {
            out.push_str(&format!("{e:<width$}"));
            for p in &classes {
                out.push_str(&format!("  {:>width$}", self.count(e, p)));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_from_a_known_confusion() {
        let mut c = Confusion::default();
        for (e, p, n) in [
            ("a", "a", 8),
            ("a", "b", 2),
            ("b", "b", 5),
            ("b", "a", 1),
            ("c", "b", 4),
        ] {
            for _ in 0..n {
                c.record(e, p);
            }
        }
        assert_eq!(c.total(), 20);
        assert_eq!(c.accuracy(), Some(13.0 / 20.0));
        let per = c.per_class();
        assert_eq!(
            per[0],
            ClassScores {
                class: "a".into(),
                support: 10,
                precision: Some(8.0 / 9.0),
                recall: Some(0.8)
            }
        );
        assert_eq!(
            per[1],
            ClassScores {
                class: "b".into(),
                support: 6,
                precision: Some(5.0 / 11.0),
                recall: Some(5.0 / 6.0)
            }
        );
        assert_eq!(
            per[2],
            ClassScores {
                class: "c".into(),
                support: 4,
                precision: None,
                recall: Some(0.0)
            }
        );
        assert_eq!(
            c.to_json()["confusion_matrix"]["rows_expected_columns_predicted"],
            json!([[8, 2, 0], [1, 5, 0], [0, 4, 0]])
        );
        assert!(c.render_text().starts_with("accuracy 0.6500 over 20"));
    }
}
