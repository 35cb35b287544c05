//! `classify-objects completions SHELL` and `classify-objects man`: the shell completion
//! script and the manual page, generated from the command line's definition.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::messages::print;

/// Prints the completion script for the shell asked for.
pub fn run(args: CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "classify-objects", &mut out);
    print(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the manual page.
pub fn man() -> Result<ExitCode> {
    print(&man_page()?)?;
    Ok(ExitCode::SUCCESS)
}

/// The manual page (roff): the main command with its options under their headings, and each
/// subcommand with its own.
pub fn man_page() -> Result<String> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        // clap names commands with static strings; the page is made once per process.
        let name: &'static str = Box::leak(format!("classify-objects-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        out.extend_from_slice(&page);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
