//! The `classify-objects` command: parse the flags, dispatch, print an error once.

use std::process::ExitCode;

use clap::Parser;

use classify_objects::cli::{Cli, Command};
use classify_objects::error::{exit_code, input_error, one_line};
use classify_objects::model::{convert, inspect, pack};
use classify_objects::output::{compare, merge};
use classify_objects::run::{self, plan::ClassifyPlan};

fn main() -> ExitCode {
    let cli = Cli::parse();
    run::interrupt::install();
    classify_objects::error::install_gdal_handler(cli.classify.quiet);
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("classify-objects: error: {}", one_line(&err));
            ExitCode::from(exit_code(&err) as u8)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Compare(args)) => {
            let comparison =
                compare::compare(&args.a, &args.b, &args.label_field).map_err(|e| e.context(input_error("compare")))?;
            print!("{}", compare::render_text(&comparison, &args.a, &args.b));
            Ok(ExitCode::from(u8::from(comparison.differs())))
        }
        Some(Command::Inspect(args)) => {
            let summary = inspect::summary(&args.model, args.ort_library.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", inspect::render_text(&summary));
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
