//! The `classify-objects` command: parse the flags, dispatch, print an error once.

use std::process::ExitCode;

use clap::Parser;

use classify_objects::cli::{Cli, Command};
use classify_objects::error::{exit_code, input_error, one_line};
use classify_objects::model::{convert, inspect, pack};
use classify_objects::output::{compare, merge, print};
use classify_objects::run::{self, plan::ClassifyPlan};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    run::interrupt::install();
    classify_objects::error::install_gdal_handler(cli.classify.quiet);
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("classify-objects: error: {}", one_line(&err));
            let code = match exit_code(&err) {
                // 128 + the signal that stopped the run (143 for SIGTERM).
                classify_objects::error::INTERRUPTED_EXIT_CODE => run::interrupt::exit_code(),
                code => code,
            };
            ExitCode::from(code as u8)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.version {
        print(&classify_objects::cli::version_text())?;
        return Ok(ExitCode::SUCCESS);
    }
    match cli.command {
        Some(Command::Compare(args)) => {
            let comparison = compare::compare(&args.a, &args.b, &args.label_field, args.layer.as_deref())
                .map_err(|e| e.context(input_error("compare")))?;
            if args.json {
                let json = compare::render_json(&comparison, &args.a, &args.b, &args.label_field);
                print(&(serde_json::to_string_pretty(&json)? + "\n"))?;
            } else {
                print(&compare::render_text(&comparison, &args.a, &args.b))?;
            }
            Ok(ExitCode::from(u8::from(comparison.differs())))
        }
        Some(Command::Completions(args)) => {
            print(&classify_objects::cli::completions(args.shell))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            print(&classify_objects::cli::man_page()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Inspect(args)) => {
            let summary = inspect::summary(&args.model, args.ort_library.as_deref())?;
            if args.json {
                print(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
            } else {
                print(&inspect::render_text(&summary))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Merge(args)) => {
            let rows = merge::merge(&args.shards, &args.output, args.overwrite)?;
            eprintln!(
                "classify-objects: merged {} shard(s), {rows} row(s) -> {}",
                args.shards.len(),
                args.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Convert(args)) => {
            let options: convert::ConvertOptions = args.into();
            let conversion = convert::convert(&options)?;
            eprintln!(
                "classify-objects: converted {} ({}, {} parameters, {} classes) -> {}",
                conversion.source,
                conversion.architecture,
                conversion.parameters,
                conversion.classes,
                options.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Pack(args)) => {
            let path = pack::pack(&args.into())?;
            eprintln!("classify-objects: wrote {path}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            run::classify(ClassifyPlan::from_args(cli.classify)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Help and version go to standard output as clap writes them; a usage mistake is one error
/// line (exit 2), like every other error.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(err.exit_code() as u8);
    }
    let text = err.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if message.ends_with(':') {
        // A list follows (missing arguments): on the same line.
        let items: Vec<&str> = lines
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:"))
            .collect();
        message = format!("{} {}", message, items.join(", "));
    }
    let tip = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map(|t| format!("; {t}"))
        .unwrap_or_default();
    eprintln!("classify-objects: error: {message}{tip}; see classify-objects --help");
    ExitCode::from(2)
}
