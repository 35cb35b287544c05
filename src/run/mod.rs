//! A classification run: its [`options`] as typed, the validated [`plan`] built from them, the features
//! [`pipeline`] (or whole [`images`]), the model's [`scorer`], [`progress`] on stderr, and
//! [`interrupt`] handling. [`classify`] is what `classify-objects` without a subcommand does:
//! run the plan, commit the output, then write the summary and report (with the run details
//! [`describe`] gathers) and apply the quality gate.

pub mod describe;
pub mod images;
pub mod interrupt;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod scorer;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::error::{BelowMinimum, Interrupted};
use crate::report::summary::RunSummary;
use plan::{ClassifyPlan, SummaryTarget};

/// Runs `plan` and returns what it did; the output exists only if this returns `Ok`.
pub fn execute(plan: ClassifyPlan) -> Result<RunSummary> {
    crate::input::network::enable();
    if let Some(megabytes) = plan.block_cache_mb {
        unsafe { gdal_sys::GDALSetCacheMax64((megabytes as i64) << 20) };
    }
    let environment = crate::infer::init_runtime(&plan.ort_library)?;
    let result = match &plan.features {
        Some(features) => pipeline::classify_features(&plan, &environment, features),
        None => scorer::Scorer::new(&plan, &environment).and_then(|scorer| images::classify_images(&plan, scorer)),
    };
    // A signal that came during the last batch still stops the run before the output is replaced.
    let result = result.and_then(|summary| interrupt::check().map(|()| summary));
    let mut summary = match result {
        Ok(summary) => summary,
        Err(err) => {
            let interrupted = err.chain().find_map(|c| c.downcast_ref::<Interrupted>()).copied();
            match interrupted {
                Some(Interrupted::KeptForResume) => plan.output.keep_for_resume(),
                // Finished but not committed: with --resume, the next run commits it.
                Some(Interrupted::NothingWritten) if plan.resume && plan.features.is_some() => {
                    plan.output.keep_for_resume();
                    return Err(anyhow::Error::new(Interrupted::KeptForResume));
                }
                _ => {}
            }
            return Err(err);
        }
    };
    plan.output.commit()?;
    summary.total_time = plan.started.elapsed();
    summary.batch_size = plan.model_arguments.batch_size;
    summary.threads = plan.threads;
    summary.intra_op_threads = plan.intra_op_threads;
    summary.peak_rss_bytes = progress::peak_rss_bytes();
    summary.block_cache_bytes = unsafe { gdal_sys::GDALGetCacheMax64() }.max(0) as u64;
    summary.network = crate::input::network::totals();
    Ok(summary)
}

/// Runs `plan`, then writes what was asked about it (`--report`, `--summary-json`, the summary
/// line and the truth comparison on stderr) and applies `--min-accuracy` (exit 3 below it).
pub fn classify(plan: ClassifyPlan) -> Result<()> {
    let quiet = plan.quiet;
    let output = plan.output.path.display().to_string();
    let summary_json = plan.summary_json.clone();
    let min_accuracy = plan.min_accuracy;
    let html_report = plan.report.clone().map(|path| {
        (
            path,
            plan.rasters[0].clone(),
            plan.label_field.clone(),
            plan.package.definition.class_colors(),
            plan.layer.name.clone(),
            describe::describe(&plan),
        )
    });
    let mut summary = execute(plan)?;
    if let Some((path, raster, label_field, colors, layer, details)) = &html_report {
        let started = Instant::now();
        let inputs = crate::report::html::ReportInputs {
            summary: &summary,
            details,
            output: Path::new(&output),
            layer,
            label_field,
            raster,
            colors,
        };
        let html = crate::report::html::render(&inputs)?;
        write_file(path, html.as_bytes()).with_context(|| format!("writing the report {}", path.display()))?;
        summary.report_time = Some(started.elapsed());
    }
    match summary_json {
        Some(SummaryTarget::Stdout) => {
            crate::output::print(&(serde_json::to_string_pretty(&summary.to_json(&output))? + "\n"))?
        }
        Some(SummaryTarget::File(path)) => {
            let text = serde_json::to_string_pretty(&summary.to_json(&output))? + "\n";
            write_file(&path, text.as_bytes()).with_context(|| format!("writing --summary-json {}", path.display()))?;
        }
        None => {}
    }
    if !quiet {
        eprintln!("{}", summary.line(&output));
        if let Some(truth) = &summary.truth {
            eprint!("{}", truth.render_text());
        }
    }
    let accuracy = summary.truth.as_ref().and_then(|t| t.accuracy()).unwrap_or(0.0);
    if let Some(minimum) = min_accuracy {
        if accuracy < minimum {
            return Err(anyhow::Error::new(BelowMinimum(format!(
                "accuracy {accuracy:.4} is below --min-accuracy {minimum} (the output {output} was written)"
            ))));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all (through a temporary file beside it).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = crate::output::OutputTarget::for_file(path, true)?;
    std::fs::write(target.temp_path(), bytes)?;
    target.commit()
}
