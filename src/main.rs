//! The `classify-objects` command: parse the flags, run the command, print an error once.

use std::process::ExitCode;

use clap::Parser;

use classify_objects::cli::{Cli, Command};
use classify_objects::commands;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return commands::usage_error(err),
    };
    commands::start(cli.classify.quiet);
    commands::finish(match cli.command {
        _ if cli.version => commands::version::run(),
        None => commands::classify::run(cli.classify),
        Some(Command::Inspect(args)) => commands::inspect::run(args),
        Some(Command::Pack(args)) => commands::pack::run(args),
        Some(Command::Convert(args)) => commands::convert::run(args),
        Some(Command::Quantize(args)) => commands::quantize::run(args),
        Some(Command::Compare(args)) => commands::compare::run(args),
        Some(Command::Merge(args)) => commands::merge::run(args),
        Some(Command::Completions(args)) => commands::completions::run(args),
        Some(Command::Man) => commands::completions::man(),
    })
}
