//! Comparing labels with the expected class carried by the input features (`--truth-field`):
//! accuracy, Cohen's kappa, per-class precision, recall and F1 (and their macro average), and the
//! confusion matrix, for regression runs that must fail when a model gets worse
//! (`--min-accuracy`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

/// Counts of (expected, predicted) label pairs. A truth value is matched to the model's classes
/// by name (exactly, else ignoring case), or by the class `Value` when it is one (`1` for the
/// class whose `Value` is 1); values that match no class are counted as they are and listed by
/// [`Confusion::unmatched`]. For a multi-label model a truth value is a set of classes (names or
/// values joined by `;` or `,`): a row is right when its label set is exactly the expected set
/// (the accuracy is exact-set accuracy), and precision, recall and F1 count each class's
/// decision on each row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confusion {
    /// (expected, predicted) labels, sets written sorted and `;`-joined, and their counts.
    counts: BTreeMap<(String, String), usize>,
    /// The model's classes: name and `Value`.
    classes: Vec<(String, Option<i64>)>,
    /// Whether labels are sets (multi-label models).
    multi_label: bool,
    /// Truth values matched by a class name.
    by_name: usize,
    /// Truth values matched by a class `Value`.
    by_value: usize,
    /// Truth values that are no class of the model, with their counts.
    unmatched: BTreeMap<String, usize>,
    /// Multi-label: per class, rows where it was expected and predicted, predicted only, and
    /// expected only.
    decisions: BTreeMap<String, [usize; 3]>,
}

/// How a truth value names a class.
enum Matched {
    /// By its name.
    Name(String),
    /// By its `Value`.
    Value(String),
    /// No class: kept as it is.
    None(String),
}

/// Precision, recall and F1 of one class.
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
    /// Harmonic mean of precision and recall, `2 TP / (2 TP + FP + FN)`: 0 when the class was
    /// expected or predicted but never both at once.
    pub f1: f64,
}

impl Confusion {
    /// A comparison with the model's `classes` (name and `Value`), to match truth values to;
    /// `multi_label` for a model whose labels are sets.
    pub fn for_classes(classes: impl IntoIterator<Item = (String, Option<i64>)>, multi_label: bool) -> Confusion {
        Confusion {
            classes: classes.into_iter().collect(),
            multi_label,
            ..Confusion::default()
        }
    }

    /// Records one classified row whose truth field holds `expected`; whether its label is
    /// right. A single-label row whose truth is empty (or only spaces) has no truth, as a null
    /// field: it is not compared (and is not wrong); for a multi-label model it is the empty set.
    pub fn record(&mut self, expected: &str, predicted: &str) -> bool {
        if !self.judges(expected) {
            return true;
        }
        let right = self.is_right(expected, predicted);
        if !self.multi_label {
            let expected = match self.class_of(expected) {
                Matched::Name(name) => {
                    self.by_name += 1;
                    name
                }
                Matched::Value(name) => {
                    self.by_value += 1;
                    name
                }
                Matched::None(value) => {
                    *self.unmatched.entry(value.clone()).or_default() += 1;
                    value
                }
            };
            *self.counts.entry((expected, predicted.to_string())).or_default() += 1;
            return right;
        }
        let mut expected_set = Vec::new();
        for part in split_set(expected, &[';', ',']) {
            match self.class_of(part) {
                Matched::Name(name) => {
                    self.by_name += 1;
                    expected_set.push(name);
                }
                Matched::Value(name) => {
                    self.by_value += 1;
                    expected_set.push(name);
                }
                Matched::None(value) => {
                    *self.unmatched.entry(value.clone()).or_default() += 1;
                    expected_set.push(value);
                }
            }
        }
        let expected_set: BTreeSet<String> = expected_set.into_iter().collect();
        let predicted_set: BTreeSet<String> = split_set(predicted, &[';']).map(String::from).collect();
        for class in expected_set.union(&predicted_set) {
            let slot = match (expected_set.contains(class), predicted_set.contains(class)) {
                (true, true) => 0,
                (false, true) => 1,
                _ => 2,
            };
            self.decisions.entry(class.clone()).or_default()[slot] += 1;
        }
        let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(";");
        *self
            .counts
            .entry((join(&expected_set), join(&predicted_set)))
            .or_default() += 1;
        right
    }

    /// Whether a row whose truth field holds `expected` is compared at all: not a single-label
    /// row with an empty truth.
    fn judges(&self, expected: &str) -> bool {
        self.multi_label || !expected.trim().is_empty()
    }

    /// Whether `predicted` is the right label for a row whose truth field holds `expected`, as
    /// [`Confusion::record`] counts it (the report marks the rows that are not).
    pub fn is_right(&self, expected: &str, predicted: &str) -> bool {
        if !self.judges(expected) {
            return true;
        }
        let name = |value: &str| match self.class_of(value) {
            Matched::Name(n) | Matched::Value(n) | Matched::None(n) => n,
        };
        if !self.multi_label {
            return name(expected) == predicted;
        }
        let expected: BTreeSet<String> = split_set(expected, &[';', ',']).map(name).collect();
        let predicted: BTreeSet<String> = split_set(predicted, &[';']).map(String::from).collect();
        expected == predicted
    }

    /// The class a truth value stands for: by name, else by `Value`; as it is when neither.
    fn class_of(&self, expected: &str) -> Matched {
        if self.classes.is_empty() || self.classes.iter().any(|(name, _)| name == expected) {
            return Matched::Name(expected.to_string());
        }
        let trimmed = expected.trim();
        if let Some((name, _)) = self.classes.iter().find(|(name, _)| name.eq_ignore_ascii_case(trimmed)) {
            return Matched::Name(name.clone());
        }
        let number = trimmed.parse::<f64>().ok().filter(|v| v.fract() == 0.0);
        match self
            .classes
            .iter()
            .find(|(_, value)| value.is_some_and(|v| Some(v as f64) == number))
        {
            Some((name, _)) => Matched::Value(name.clone()),
            None => Matched::None(expected.to_string()),
        }
    }

    /// Adds the counts of `other`.
    pub fn absorb(&mut self, other: &Confusion) {
        for (pair, n) in &other.counts {
            *self.counts.entry(pair.clone()).or_default() += n;
        }
        self.by_name += other.by_name;
        self.by_value += other.by_value;
        for (value, n) in &other.unmatched {
            *self.unmatched.entry(value.clone()).or_default() += n;
        }
        for (class, counts) in &other.decisions {
            let mine = self.decisions.entry(class.clone()).or_default();
            for (m, o) in mine.iter_mut().zip(counts) {
                *m += o;
            }
        }
    }

    /// How the truth values were matched to the classes: `"name"`, `"value"` (every matched
    /// value was a class `Value`) or `"name and value"`.
    pub fn matched_by(&self) -> &'static str {
        match (self.by_value, self.by_name) {
            (0, _) => "name",
            (_, 0) => "value",
            _ => "name and value",
        }
    }

    /// Rows whose truth value matches no class.
    pub fn unmatched_count(&self) -> usize {
        self.unmatched.values().sum()
    }

    /// One line naming the truth values that match no class, `None` when all do.
    pub fn unmatched_warning(&self) -> Option<String> {
        if self.unmatched.is_empty() {
            return None;
        }
        let mut shown: Vec<String> = self
            .unmatched
            .iter()
            .take(8)
            .map(|(v, n)| format!("\"{v}\" ({n})"))
            .collect();
        if self.unmatched.len() > 8 {
            shown.push(format!("and {} more", self.unmatched.len() - 8));
        }
        let classes: Vec<String> = self
            .classes
            .iter()
            .take(12)
            .map(|(name, value)| match value {
                Some(v) => format!("{name} = {v}"),
                None => name.clone(),
            })
            .collect();
        Some(format!(
            "truth values that are no class of the model, by name or Value: {}; they count as wrong (classes: {})",
            shown.join(", "),
            classes.join(", ")
        ))
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

    /// Cohen's kappa (single-label models; `None` for label sets): agreement beyond chance, `(p_o - p_e) / (1 - p_e)` with `p_o` the accuracy
    /// and `p_e` the agreement expected from the expected and predicted class frequencies alone.
    /// `None` when nothing was compared, or when chance agreement is certain (`p_e = 1`: one
    /// class only, on both sides).
    pub fn kappa(&self) -> Option<f64> {
        if self.multi_label {
            return None;
        }
        let total = self.total() as f64;
        let observed = self.accuracy()?;
        let chance: f64 = self
            .classes()
            .iter()
            .map(|class| {
                let expected: usize = self
                    .counts
                    .iter()
                    .filter(|((e, _), _)| e == class)
                    .map(|(_, n)| n)
                    .sum();
                let predicted: usize = self
                    .counts
                    .iter()
                    .filter(|((_, p), _)| p == class)
                    .map(|(_, n)| n)
                    .sum();
                (expected as f64 / total) * (predicted as f64 / total)
            })
            .sum();
        (chance < 1.0).then(|| (observed - chance) / (1.0 - chance))
    }

    /// Mean of the per-class F1 over every class expected or predicted (`None` when nothing was
    /// compared).
    pub fn macro_f1(&self) -> Option<f64> {
        let scores = self.per_class();
        (!scores.is_empty()).then(|| scores.iter().map(|c| c.f1).sum::<f64>() / scores.len() as f64)
    }

    /// Precision, recall and F1 per class (multi-label: of each class's decision on each row).
    pub fn per_class(&self) -> Vec<ClassScores> {
        if self.multi_label {
            return self
                .decisions
                .iter()
                .map(|(class, &[both, predicted_only, expected_only])| ClassScores {
                    class: class.clone(),
                    support: both + expected_only,
                    precision: (both + predicted_only > 0).then(|| both as f64 / (both + predicted_only) as f64),
                    recall: (both + expected_only > 0).then(|| both as f64 / (both + expected_only) as f64),
                    f1: 2.0 * both as f64 / (2 * both + predicted_only + expected_only).max(1) as f64,
                })
                .collect();
        }
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
                // 2 TP + FP + FN = expected + predicted, never 0 for a class that appears.
                let f1 = 2.0 * true_positive as f64 / (expected + predicted).max(1) as f64;
                ClassScores {
                    support: expected,
                    precision: (predicted > 0).then(|| true_positive as f64 / predicted as f64),
                    recall: (expected > 0).then(|| true_positive as f64 / expected as f64),
                    f1,
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
            "matched_by": self.matched_by(),
            "unmatched_truth_values": self.unmatched,
            "label_sets": self.multi_label,
            "accuracy": self.accuracy(),
            "kappa": self.kappa(),
            "macro_f1": self.macro_f1(),
            "classes": self.per_class().iter().map(|c| json!({
                "class": c.class, "support": c.support, "precision": c.precision, "recall": c.recall, "f1": c.f1,
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
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        let mut out = format!(
            "{} {} over {} compared row(s)\nmacro F1 {}, Cohen's kappa {}\n",
            if self.multi_label {
                "exact-set accuracy"
            } else {
                "accuracy"
            },
            show(self.accuracy()),
            self.total(),
            show(self.macro_f1()),
            show(self.kappa()),
        );
        if self.by_value > 0 {
            out.push_str(&format!(
                "truth values matched to classes by their Value ({})\n",
                self.matched_by()
            ));
        }
        out.push_str(&format!(
            "{:<width$}  {:>9}  {:>9}  {:>9}  {:>7}\n",
            "class", "precision", "recall", "F1", "support"
        ));
        for c in self.per_class() {
            out.push_str(&format!(
                "{:<width$}  {:>9}  {:>9}  {:>9}  {:>7}\n",
                c.class,
                show(c.precision),
                show(c.recall),
                show(Some(c.f1)),
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

/// The non-empty, trimmed parts of `text` between any of `separators`.
fn split_set<'t>(text: &'t str, separators: &'t [char]) -> impl Iterator<Item = &'t str> + 't {
    text.split(separators).map(str::trim).filter(|part| !part.is_empty())
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
                recall: Some(0.8),
                // TP 8, FP 1 (a b row called a), FN 2: 16 / 19.
                f1: 16.0 / 19.0,
            }
        );
        assert_eq!(
            per[1],
            ClassScores {
                class: "b".into(),
                support: 6,
                precision: Some(5.0 / 11.0),
                recall: Some(5.0 / 6.0),
                // TP 5, FP 2 + 4, FN 1: 10 / 17.
                f1: 10.0 / 17.0,
            }
        );
        assert_eq!(
            per[2],
            ClassScores {
                class: "c".into(),
                support: 4,
                precision: None,
                recall: Some(0.0),
                f1: 0.0,
            }
        );
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(c.macro_f1(), (16.0 / 19.0 + 10.0 / 17.0 + 0.0) / 3.0));
        // Expected a 10, b 6, c 4; predicted a 9, b 11, c 0 (of 20):
        // p_e = (10 * 9 + 6 * 11 + 4 * 0) / 400 = 0.39, kappa = (0.65 - 0.39) / 0.61.
        assert!(close(c.kappa(), 0.26 / 0.61), "{:?}", c.kappa());
        assert!(
            close(c.to_json()["kappa"].as_f64(), 0.26 / 0.61)
                && close(c.to_json()["macro_f1"].as_f64(), (16.0 / 19.0 + 10.0 / 17.0) / 3.0),
            "{}",
            c.to_json()
        );
        assert_eq!(
            c.to_json()["confusion_matrix"]["rows_expected_columns_predicted"],
            json!([[8, 2, 0], [1, 5, 0], [0, 4, 0]])
        );
        assert!(c.render_text().starts_with("accuracy 0.6500 over 20"));
        assert!(
            c.render_text().contains("macro F1 0.4768, Cohen's kappa 0.4262"),
            "{}",
            c.render_text()
        );
    }

    #[test]
    fn kappa_is_one_for_perfect_agreement_zero_at_chance_and_undefined_for_one_class() {
        let mut perfect = Confusion::default();
        let mut chance = Confusion::default();
        let mut single = Confusion::default();
        for (e, p) in [("a", "a"), ("b", "b"), ("a", "a"), ("b", "b")] {
            perfect.record(e, p);
        }
        // Predictions independent of the truth: every pair equally often.
        for (e, p) in [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")] {
            chance.record(e, p);
        }
        for _ in 0..3 {
            single.record("a", "a");
        }
        assert_eq!(perfect.kappa(), Some(1.0));
        assert_eq!(perfect.macro_f1(), Some(1.0));
        assert_eq!(chance.kappa(), Some(0.0));
        assert_eq!(chance.macro_f1(), Some(0.5));
        assert_eq!(single.kappa(), None, "p_e = 1");
        assert_eq!(single.accuracy(), Some(1.0));
        assert_eq!(Confusion::default().kappa(), None);
        assert_eq!(Confusion::default().macro_f1(), None);
    }

    #[test]
    fn truth_values_match_classes_by_name_or_value() {
        let classes = [("red".to_string(), Some(1)), ("blue".to_string(), Some(2))];
        let mut c = Confusion::for_classes(classes.clone(), false);
        for (expected, predicted) in [("1", "red"), ("2", "red"), ("2.0", "blue"), ("Blue", "blue")] {
            c.record(expected, predicted);
        }
        assert_eq!(c.accuracy(), Some(0.75));
        assert_eq!(c.classes(), vec!["blue".to_string(), "red".to_string()]);
        assert_eq!(c.matched_by(), "name and value");
        assert!(c.unmatched_warning().is_none());
        let mut by_value = Confusion::for_classes(classes.clone(), false);
        by_value.record("1", "red");
        assert_eq!(by_value.matched_by(), "value");
        let mut odd = Confusion::for_classes(classes, false);
        odd.record("7", "red");
        odd.record("forest", "red");
        let warning = odd.unmatched_warning().unwrap();
        assert!(
            warning.contains("\"7\" (1)") && warning.contains("\"forest\" (1)") && warning.contains("red = 1"),
            "{warning}"
        );
        assert_eq!(odd.accuracy(), Some(0.0));
    }

    #[test]
    fn multi_label_truth_is_a_set_scored_per_class_decision() {
        let classes = [
            ("Roof".to_string(), Some(1)),
            ("tree".to_string(), Some(2)),
            ("paved".to_string(), Some(3)),
        ];
        let mut c = Confusion::for_classes(classes, true);
        // Sets in any order, by name or Value, joined by `,` or `;`.
        for (expected, predicted) in [
            ("tree,Roof", "Roof;tree"),
            ("2; 1", "Roof;tree"),
            ("Roof", "Roof;paved"),
            ("paved", ""),
            ("", ""),
        ] {
            c.record(expected, predicted);
        }
        assert!(c.is_right("tree, 1", "Roof;tree") && !c.is_right("Roof", "Roof;paved"));
        assert!(c.is_right("", ""));
        // Exact sets: rows 1, 2 and 5.
        assert_eq!(c.accuracy(), Some(0.6));
        assert_eq!(c.matched_by(), "name and value");
        assert_eq!(c.kappa(), None);
        let per = c.per_class();
        let scores = |class: &str| per.iter().find(|s| s.class == class).unwrap().clone();
        // Roof: expected and predicted on rows 1-3 (TP 3). paved: predicted on row 3 only (FP),
        // expected on row 4 only (FN). tree: TP 2.
        assert_eq!(
            scores("Roof"),
            ClassScores {
                class: "Roof".into(),
                support: 3,
                precision: Some(1.0),
                recall: Some(1.0),
                f1: 1.0
            }
        );
        assert_eq!(
            scores("paved"),
            ClassScores {
                class: "paved".into(),
                support: 1,
                precision: Some(0.0),
                recall: Some(0.0),
                f1: 0.0
            }
        );
        assert_eq!((scores("tree").support, scores("tree").f1), (2, 1.0));
        assert_eq!(per.len(), 3);
        let json = c.to_json();
        assert_eq!(
            (json["label_sets"].clone(), json["compared"].clone()),
            (json!(true), json!(5))
        );
        assert!(c.render_text().starts_with("exact-set accuracy 0.6000 over 5"));
        // Halves counted apart add up to the whole.
        let mut halves = Confusion::for_classes([("Roof".to_string(), None)], true);
        let mut other = halves.clone();
        halves.record("Roof", "Roof");
        other.record("Roof", "");
        halves.absorb(&other);
        assert_eq!(halves.per_class()[0].recall, Some(0.5));
    }
}
