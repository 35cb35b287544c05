//! The `classify-objects` command: parse flags, build the plan, run it, report once.

use std::process::ExitCode;

use clap::Parser;

use classify_objects::cli::{Cli, Command};
use classify_objects::error::{exit_code, one_line};
use classify_objects::pipeline::RunSummary;
use classify_objects::plan::ClassifyPlan;
use classify_objects::{inspect, pack, pipeline};

fn main() -> ExitCode {
    let cli = Cli::parse();
    classify_objects::interrupt::install();
    classify_objects::error::install_gdal_handler(cli.classify.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("classify-objects: error: {}", one_line(&err));
            ExitCode::from(exit_code(&err) as u8)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Compare(args)) => {
            let comparison = classify_objects::compare::compare(&args.a, &args.b, &args.label_field)
                .map_err(|e| e.context(classify_objects::error::InputError("compare".into())))?;
            print!(
                "{}",
                classify_objects::compare::render_text(&comparison, &args.a, &args.b)
            );
            if comparison.differs() {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::Inspect(args)) => {
            let summary = inspect::summary(&args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", inspect::render_text(&summary));
            }
            Ok(())
        }
        Some(Command::Merge(args)) => {
            let rows = classify_objects::merge::merge(&args)?;
            eprintln!(
                "classify-objects: merged {} shard(s), {rows} row(s) -> {}",
                args.shards.len(),
                args.output.display()
            );
            Ok(())
        }
        Some(Command::Pack(args)) => {
            let path = pack::pack(&args)?;
            eprintln!("classify-objects: wrote {path}");
            Ok(())
        }
        None => {
            let plan = ClassifyPlan::from_args(cli.classify)?;
            let quiet = plan.quiet;
            let output = plan.output.path.display().to_string();
            let summary_json = plan.summary_json.clone();
            let min_accuracy = plan.min_accuracy;
            let html_report = plan.report.clone().map(|path| {
                let colors = classify_objects::style::ClassColors::from_definition(&plan.package.definition);
                (
                    path,
                    plan.rasters[0].clone(),
                    plan.package.source.display().to_string(),
                    plan.label_field.clone(),
                    colors,
                )
            });
            let summary = pipeline::run(plan)?;
            if let Some((path, raster, model, label_field, colors)) = &html_report {
                let inputs = classify_objects::report::ReportInputs {
                    summary: &summary,
                    output: std::path::Path::new(&output),
                    label_field,
                    raster,
                    colors,
                    model,
                };
                classify_objects::report::write(path, &inputs)?;
            }
            if let Some(path) = summary_json {
                let text = serde_json::to_string_pretty(&summary.to_json(&output))? + "\n";
                std::fs::write(&path, text)
                    .map_err(|e| anyhow::anyhow!("writing --summary-json {}: {e}", path.display()))?;
            }
            if !quiet {
                report(&summary, &output);
                if let Some(truth) = &summary.truth {
                    eprint!("{}", truth.render_text());
                }
            }
            let accuracy = summary.truth.as_ref().and_then(|t| t.accuracy()).unwrap_or(0.0);
            if let Some(minimum) = min_accuracy {
                if accuracy < minimum {
                    return Err(anyhow::Error::new(classify_objects::error::BelowMinimum(format!(
                        "accuracy {accuracy:.4} is below --min-accuracy {minimum} (the output {output} was written)"
                    ))));
                }
            }
            Ok(())
        }
    }
}

fn report(summary: &RunSummary, output: &str) {
    let skipped = summary.objects - summary.classified;
    let mut line = format!(
        "classify-objects: {} object(s), {} classified, {} not classified, in {:.2} s ({:.2} s inference, {}) -> {}",
        summary.objects,
        summary.classified,
        skipped,
        summary.total_time.as_secs_f64(),
        summary.inference_time.as_secs_f64(),
        summary.execution_provider,
        output
    );
    if !summary.problems.is_empty() {
        let reasons: Vec<String> = summary.problems.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        line.push_str(&format!(" [{}]", reasons.join(", ")));
    }
    eprintln!("{line}");
}
