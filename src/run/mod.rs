//! A classification run: the validated [`plan`] built from the typed flags, the features
//! [`pipeline`] (or whole [`images`]), the model's [`scorer`], [`progress`] on stderr, and
//! [`interrupt`] handling. [`classify`] is what `classify-objects` without a subcommand does:
//! run the plan, commit the output, then write the summary and report (with the run details
//! [`describe`] gathers) and apply the quality gate.

pub mod describe;
pub mod document;
pub mod fingerprint;
pub mod images;
pub mod interrupt;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod quantize;
pub mod scorer;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::clock;
use crate::error::{BelowMinimum, Interrupted};
use crate::gdal_ffi;
use crate::infer;
use crate::input::network;
use crate::messages;
use crate::output::feature_layer::FeatureLayerTarget;
use crate::output::OutputTarget;
use crate::report::details::RunDetails;
use crate::report::html;
use crate::report::html::{ReportInputs, Verdict};
use crate::report::summary::RunSummary;
use plan::{ClassifyPlan, SummaryTarget};
use progress::Progress;

/// Runs `plan` and commits its output; returns what it did. The output exists only if this
/// returns `Ok`.
pub fn execute(plan: &mut ClassifyPlan) -> Result<RunSummary> {
    network::enable();
    if let Some(megabytes) = plan.inputs.block_cache_mb {
        gdal_ffi::set_block_cache_bytes(megabytes << 20);
    }
    let environment = infer::init_runtime(&plan.model.ort_library)?;
    let result = match &plan.inputs.features {
        Some(features) => pipeline::classify_features(plan, &environment, features),
        None => scorer::Scorer::new(plan, &environment).and_then(|scorer| images::classify_images(plan, scorer)),
    };
    // A signal that came during the last batch still stops the run before the output is replaced.
    let result = result.and_then(|summary| interrupt::check().map(|()| summary));
    let mut summary = match result {
        Ok(summary) => summary,
        Err(err) => return Err(keep_for_resume_if_interrupted(plan, err)),
    };
    plan.output.target.commit()?;
    summary.record_run(plan);
    Ok(summary)
}

/// A run stopped by a signal keeps its rows for `--resume` where it can; returns the error to
/// report.
fn keep_for_resume_if_interrupted(plan: &mut ClassifyPlan, err: anyhow::Error) -> anyhow::Error {
    let interrupted = err.chain().find_map(|c| c.downcast_ref::<Interrupted>()).copied();
    match interrupted {
        Some(Interrupted::KeptForResume) => plan.output.target.keep_for_resume(),
        // Finished but not committed: with --resume, the next run commits it.
        Some(Interrupted::NothingWritten) if plan.scale_out.resume && plan.has_features() => {
            plan.output.target.keep_for_resume();
            return anyhow::Error::new(Interrupted::KeptForResume);
        }
        _ => {}
    }
    err
}

impl RunSummary {
    /// Records what the plan set and what the finished run measured: total time from the plan's
    /// start, batch size, threads, peak memory, block cache, network traffic.
    fn record_run(&mut self, plan: &ClassifyPlan) {
        self.total_time = plan.started.elapsed();
        self.batch_size = plan.model.arguments.batch_size;
        self.threads = plan.chips.threads;
        self.intra_op_threads = plan.model.intra_op_threads;
        self.peak_rss_bytes = progress::peak_rss_bytes();
        self.block_cache_bytes = gdal_ffi::block_cache_bytes();
        self.network = network::totals();
    }
}

/// Runs `plan`, then writes what was asked about it (`--report`, `--summary-json`, the summary
/// line and the truth comparison on stderr) and applies `--min-accuracy` (exit 3 below it).
pub fn classify(mut plan: ClassifyPlan) -> Result<()> {
    // The run details are gathered before the run, from the inputs as given.
    let details = plan.report.html.is_some().then(|| describe::describe(&plan));
    let mut summary = execute(&mut plan)?;
    // Said before the report, which lists every warning.
    if let Some(truth) = &summary.truth {
        if let Some(warning) = truth.unmatched_warning() {
            messages::warning(warning);
        }
        if truth.total() == 0 {
            messages::warning(format_args!(
                "no row was compared with --truth-field {}: no classified row has a truth value, so there is no accuracy",
                plan.report.truth_field.as_deref().unwrap_or_default()
            ));
        }
    }
    let gate = document::Gate::of(&plan, &summary);
    if let Some(details) = &details {
        // The report reads the rows back: before they are sent (and their local copy removed).
        if let Err(err) = write_report(&plan, details, &mut summary, gate) {
            if plan.upload.is_some() {
                let _ = std::fs::remove_file(&plan.output.target.path);
            }
            return Err(err);
        }
    }
    if let Some(layer) = &plan.upload {
        send_results(&plan, layer)?;
    }
    let output = match &plan.upload {
        Some(layer) => layer.shown.clone(),
        None => plan.output.shown(),
    };
    let json = || serde_json::to_string_pretty(&document::document(&plan, &summary, &output, gate)).map(|j| j + "\n");
    match &plan.report.summary_json {
        Some(SummaryTarget::Stdout) => messages::print(&json()?)?,
        Some(SummaryTarget::File(path)) => write_file(path, json()?.as_bytes())
            .with_context(|| format!("writing --summary-json {}", path.display()))?,
        None => {}
    }
    messages::line(summary.line(&output));
    if let Some(truth) = &summary.truth {
        messages::text(truth.render_text());
    }
    check_gate(&plan, gate)
}

/// Sends the committed results to the feature layer `layer`, then removes their local copy
/// (a run sent again classifies again; `--resume` skips what the layer holds).
fn send_results(plan: &ClassifyPlan, layer: &FeatureLayerTarget) -> Result<()> {
    let local = plan.output.target.path.clone();
    let result = layer.upload(&local, &plan.output.layer.name);
    let _ = std::fs::remove_file(&local);
    let done = result?;
    messages::info(format_args!(
        "{} feature(s) added to {}{}",
        done.added,
        layer.shown,
        if done.skipped > 0 {
            format!(" ({} held already, skipped)", done.skipped)
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// Writes the `--report` page of the finished run.
fn write_report(
    plan: &ClassifyPlan,
    details: &RunDetails,
    summary: &mut RunSummary,
    gate: document::Gate,
) -> Result<()> {
    let Some(path) = &plan.report.html else {
        return Ok(());
    };
    let started = Instant::now();
    Progress::stage(
        plan.report.progress_interval,
        format_args!("writing the report {}", path.display()),
    );
    let inputs = ReportInputs {
        summary,
        details,
        output: &plan.output.target.path,
        layer: &plan.output.layer.name,
        label_field: &plan.output.label_field,
        raster: plan.inputs.first_raster(),
        colors: &plan.model.package.definition.class_colors(),
        verdict: Verdict {
            min_accuracy: gate.min_accuracy,
            accuracy: gate.accuracy,
            exit_status: gate.exit_status(),
        },
        started: clock::utc(plan.started_at),
        warnings: messages::warnings_said(),
    };
    let html = html::render(&inputs)?;
    write_file(path, html.as_bytes()).with_context(|| format!("writing the report {}", path.display()))?;
    summary.report_time = Some(started.elapsed());
    Ok(())
}

/// `--min-accuracy`: exit 3 below it (the output was written).
fn check_gate(plan: &ClassifyPlan, gate: document::Gate) -> Result<()> {
    match (gate.passed(), gate.min_accuracy) {
        (Some(false), Some(minimum)) => Err(anyhow::Error::new(BelowMinimum(match gate.accuracy {
            Some(accuracy) => format!(
                "accuracy {accuracy:.4} is below --min-accuracy {minimum} (the output {} was written)",
                plan.output.shown()
            ),
            None => format!(
                "no row was compared with the truth field, so the run does not reach --min-accuracy {minimum} (the output {} was written)",
                plan.output.shown()
            ),
        }))),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` whole or not at all (through a temporary file beside it).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut target = OutputTarget::for_file(path, true)?;
    std::fs::write(target.temp_path(), bytes)?;
    target.commit()
}
