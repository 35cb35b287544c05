//! The `--summary-json` document: what the run did (counts, labels, timings, the truth
//! comparison) headed by what it was: the format and its schema version, the tool and its
//! version, when the run started and ended, the model and the inputs (secrets redacted), the
//! quality gate's verdict and the exit status. `docs/json.md` describes every key.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::clock;
use crate::report::summary::RunSummary;
use crate::run::fingerprint;
use crate::run::plan::ClassifyPlan;
use crate::secrets;

/// Version of the document's keys: a key removed or renamed, or a value whose type or meaning
/// changes, increases it; new keys may come within a version.
/// Version 2: `labels` counts a multi-label row for each of its classes (`label_sets` keeps
/// the sets).
pub const SCHEMA_VERSION: u32 = 2;

/// Most rasters listed in the document (a folder of thousands is counted, not listed).
const LISTED_RASTERS: usize = 100;

/// `--min-accuracy` and what the run measured against it.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// The threshold, when given.
    pub min_accuracy: Option<f64>,
    /// The accuracy against `--truth-field`, when compared.
    pub accuracy: Option<f64>,
}

impl Gate {
    /// The gate of `plan` on `summary`.
    pub fn of(plan: &ClassifyPlan, summary: &RunSummary) -> Gate {
        Gate {
            min_accuracy: plan.report.min_accuracy,
            accuracy: summary.truth.as_ref().and_then(|t| t.accuracy()),
        }
    }

    /// Whether the run passed it (`None` without `--min-accuracy`); no comparison fails it.
    pub fn passed(&self) -> Option<bool> {
        self.min_accuracy.map(|minimum| self.accuracy.unwrap_or(0.0) >= minimum)
    }

    /// The exit status the run ends with: 3 below the threshold, else 0.
    pub fn exit_status(&self) -> i32 {
        if self.passed() == Some(false) {
            3
        } else {
            0
        }
    }
}

/// The document for the finished run of `plan` that wrote `output`.
pub fn document(plan: &ClassifyPlan, summary: &RunSummary, output: &str, gate: Gate) -> Value {
    let package = &plan.model.package;
    let definition = &package.definition;
    let rasters = &plan.inputs.rasters;
    let mut head = Map::new();
    for (key, value) in [
        ("format", json!("classify-objects summary")),
        ("schema_version", json!(SCHEMA_VERSION)),
        (
            "tool",
            json!({"name": "classify-objects", "version": env!("CARGO_PKG_VERSION")}),
        ),
        ("started", json!(clock::utc(plan.started_at))),
        ("ended", json!(clock::utc(SystemTime::now()))),
        (
            "model",
            json!({
                "package": secrets::redact(&package.source.display().to_string()),
                "name": definition.model_name.clone().unwrap_or_else(|| package.model_name.clone()),
                "fingerprint": fingerprint::model_fingerprint(package),
            }),
        ),
        (
            "inputs",
            json!({
                "rasters": rasters.iter().take(LISTED_RASTERS).map(|r| secrets::redact(r)).collect::<Vec<_>>(),
                "raster_count": rasters.len(),
                "features": plan.inputs.features.as_ref().map(|f| secrets::redact(&f.source)),
            }),
        ),
        (
            "gate",
            json!({
                "min_accuracy": gate.min_accuracy,
                "accuracy": gate.accuracy,
                "passed": gate.passed(),
            }),
        ),
        ("exit_status", json!(gate.exit_status())),
    ] {
        head.insert(key.to_string(), value);
    }
    if let Value::Object(rest) = summary.to_json(output) {
        head.extend(rest);
    }
    Value::Object(head)
}
