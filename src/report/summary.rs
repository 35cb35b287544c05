//! What a run did: counts, labels, problems, timings, memory; printed as the summary line and
//! written by `--summary-json`.

use crate::input::features::Problem;
use crate::input::network::NetworkTotals;
use crate::messages;
use crate::report::gallery::Gallery;
use crate::report::truth::Confusion;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Objects (features or images) read.
    pub objects: usize,
    /// Objects classified.
    pub classified: usize,
    /// Objects (rows) an earlier run wrote, continued with `--resume`, counted in the others.
    pub resumed: usize,
    /// Objects with a problem, by status code (all but `invalid_geometry` are not classified).
    pub problems: BTreeMap<&'static str, usize>,
    /// Classified objects per class (a multi-label row counts for each of its labels).
    pub labels: BTreeMap<String, usize>,
    /// Whether labels are sets of classes joined by `;` (a multi-label model).
    pub multi_label: bool,
    /// Multi-label: classified rows without any label (no class at or over the threshold).
    pub no_label: usize,
    /// Multi-label: classified rows per label set as written (`Roof;tree`).
    pub label_sets: BTreeMap<String, usize>,
    /// Labels against the `--truth-field`, when given.
    pub truth: Option<Confusion>,
    /// The ONNX Runtime execution provider that ran the model.
    pub execution_provider: &'static str,
    /// Whether the model is an int8 model `quantize` wrote (its `.emd` records it).
    pub int8: bool,
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
    /// Size of GDAL's block cache for decoded raster blocks, bytes.
    pub block_cache_bytes: u64,
    /// HTTP requests and bytes fetched for remote rasters.
    pub network: NetworkTotals,
    /// Time spent writing the `--report` page, when one was asked for.
    pub report_time: Option<Duration>,
    /// With `--report`: per class, the objects most worth checking, with their chips.
    pub gallery: Option<Gallery>,
    /// With `--truth-field`: the rows whose label is wrong, by `SourceOID` and `ImageId` (`""`
    /// when rows have none), which the report marks; judged when the row was written, from the
    /// input's truth value (the output's copy of it may be renamed, cut or reformatted).
    pub wrong_rows: BTreeSet<(i64, String)>,
}

impl RunSummary {
    /// Objects per second over the whole run, of the objects this run classified (a resumed
    /// run's rows from the earlier run are not its work).
    pub fn throughput(&self) -> f64 {
        (self.objects - self.resumed) as f64 / self.total_time.as_secs_f64().max(1e-9)
    }

    /// The summary as JSON, for `--summary-json`.
    pub fn to_json(&self, output: &str) -> serde_json::Value {
        serde_json::json!({
            "output": output,
            "objects": self.objects,
            "classified": self.classified,
            "not_classified": self.objects - self.classified,
            "resumed": self.resumed,
            "problems": self.problems,
            "labels": self.labels,
            "no_label": self.multi_label.then_some(self.no_label),
            "label_sets": self.multi_label.then_some(&self.label_sets),
            "execution_provider": self.execution_provider,
            "model_precision": if self.int8 { "int8" } else { "fp32" },
            "batch_size": self.batch_size,
            "threads": self.threads,
            "intra_op_threads": self.intra_op_threads,
            "seconds": {
                "total": self.total_time.as_secs_f64(),
                "inference": self.inference_time.as_secs_f64(),
                "read_features": self.read_time.as_secs_f64(),
                "cut_chips_all_workers": self.chip_time.as_secs_f64(),
                "write": self.write_time.as_secs_f64(),
                "report": self.report_time.map(|t| t.as_secs_f64()),
            },
            "objects_per_second": self.throughput(),
            "peak_rss_bytes": self.peak_rss_bytes,
            "block_cache_bytes": self.block_cache_bytes,
            "network": {
                "requests": self.network.requests,
                "bytes_fetched": self.network.bytes,
            },
            "truth": self.truth.as_ref().map(|t| t.to_json()),
        })
    }

    /// The one summary line printed at the end of a run.
    pub fn line(&self, output: &str) -> String {
        let skipped = self.objects - self.classified;
        let mut line = format!(
            "classify-objects: {} object(s), {} classified, {} not classified, in {:.2} s ({:.2} s inference, {}{}) -> {}",
            self.objects,
            self.classified,
            skipped,
            self.total_time.as_secs_f64(),
            self.inference_time.as_secs_f64(),
            self.execution_provider,
            if self.int8 { ", int8" } else { "" },
            messages::name(output)
        );
        if self.resumed > 0 {
            line.push_str(&format!(" ({} continued from an earlier run)", self.resumed));
        }
        if !self.problems.is_empty() {
            let reasons: Vec<String> = self.problems.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            line.push_str(&format!(" [{}]", reasons.join(", ")));
        }
        line
    }

    /// Counts a row an earlier run wrote (continued with `--resume`) as if this run had made it:
    /// its label, its status and, with a truth field, the expected class.
    pub fn count_written(
        &mut self,
        label: Option<&str>,
        status: Option<&str>,
        expected: Option<&str>,
        key: (i64, String),
    ) {
        self.objects += 1;
        self.resumed += 1;
        let classified = status.is_none_or(|s| s == "invalid_geometry");
        if let Some(status) = status {
            *self.problems.entry(static_code(status)).or_default() += 1;
        }
        if classified {
            self.classified += 1;
            let label = label.unwrap_or_default();
            self.count_label(label);
            if let (Some(expected), Some(confusion)) = (expected, self.truth.as_mut()) {
                if !confusion.record(expected, label) {
                    self.wrong_rows.insert(key);
                }
            }
        }
    }

    /// Counts a classified row's `label`: for its class, or (multi-label) for each class of the
    /// set, or as a row without a label, and its set as written.
    pub fn count_label(&mut self, label: &str) {
        if !self.multi_label {
            *self.labels.entry(label.to_string()).or_default() += 1;
            return;
        }
        *self.label_sets.entry(label.to_string()).or_default() += 1;
        if label.is_empty() {
            self.no_label += 1;
        }
        for class in label.split(';').filter(|c| !c.is_empty()) {
            *self.labels.entry(class.to_string()).or_default() += 1;
        }
    }

    /// Adds the counts of `other` (rows counted elsewhere) to these.
    pub fn absorb(&mut self, other: RunSummary) {
        self.objects += other.objects;
        self.classified += other.classified;
        self.resumed += other.resumed;
        for (k, v) in other.problems {
            *self.problems.entry(k).or_default() += v;
        }
        for (k, v) in other.labels {
            *self.labels.entry(k).or_default() += v;
        }
        self.no_label += other.no_label;
        for (k, v) in other.label_sets {
            *self.label_sets.entry(k).or_default() += v;
        }
        if let (Some(mine), Some(theirs)) = (self.truth.as_mut(), other.truth) {
            mine.absorb(&theirs);
        }
        self.wrong_rows.extend(other.wrong_rows);
    }
}

/// The status codes a run writes, as static strings (an unknown one counts as `other`).
fn static_code(status: &str) -> &'static str {
    Problem::ALL
        .iter()
        .map(|p| p.code())
        .find(|c| *c == status)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_runs_throughput_is_of_its_own_objects() {
        let mut summary = RunSummary {
            total_time: Duration::from_secs(10),
            ..RunSummary::default()
        };
        for _ in 0..60 {
            summary.count_written(Some("a"), None, None, (0, String::new()));
        }
        summary.objects += 40;
        assert_eq!((summary.objects, summary.resumed), (100, 60));
        assert_eq!(summary.throughput(), 4.0);
    }
}
