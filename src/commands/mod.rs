//! One file per subcommand, each a thin function from its parsed arguments to the library:
//! [`classify`] (no subcommand), [`inspect`], [`pack`], [`convert`], [`quantize`], [`compare`], [`merge`],
//! [`completions`] (with the manual page) and [`version`]. Here too: what every command shares
//! at its start ([`start`]) and end ([`finish`]): signal handling, GDAL's messages, the one error
//! line and the exit code. Nothing below this folder imports it.

pub mod classify;
pub mod compare;
pub mod completions;
pub mod convert;
pub mod inspect;
pub mod merge;
pub mod pack;
pub mod quantize;
pub mod version;

use std::process::ExitCode;

use crate::cli::values::BadValue;
use crate::error::{exit_code, one_line, INTERRUPTED_EXIT_CODE};
use crate::messages;
use crate::run::interrupt;
use crate::secrets;

/// Sets up what every command needs before it starts: the secrets on its command line known
/// (never printed nor written), signal handling, and GDAL's messages routed through ours (none
/// but errors with `quiet`).
pub fn start(quiet: bool) {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    secrets::register_command_line(&args);
    messages::set_quiet(quiet);
    interrupt::install();
    messages::install_gdal_handler();
}

/// The exit status of a command's result; an error is printed once, on one line.
pub fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            messages::error(one_line(&err));
            let code = match exit_code(&err) {
                // 128 + the signal that stopped the run (143 for SIGTERM).
                INTERRUPTED_EXIT_CODE => interrupt::exit_code(),
                code => code,
            };
            ExitCode::from(code as u8)
        }
    }
}

/// Help and version go to standard output as clap writes them; a usage mistake is one error
/// line (exit 2), like every other error.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(err.exit_code() as u8);
    }
    messages::error(format_args!("{}; see classify-objects --help", usage_message(&err)));
    ExitCode::from(2)
}

/// clap's error as one line: a flag value we refused is our own message (which names the flag);
/// other mistakes are clap's first line, with the list that follows it (missing arguments) and
/// its tip on the same line.
fn usage_message(err: &clap::Error) -> String {
    use std::error::Error;
    if let Some(ours) = err.source().and_then(|s| s.downcast_ref::<BadValue>()) {
        return ours.to_string();
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
    message + &tip
}
