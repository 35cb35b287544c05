//! The one error vocabulary of classify-objects.
//!
//! Everything returns [`anyhow::Result`] with context added on the way up. Problems that the user
//! can fix in their input (a missing file, a malformed `.emd`, a band count that does not match)
//! are raised as [`InputError`], which maps to exit code 2; everything else (a runtime failure
//! while writing, an ONNX Runtime crash) maps to exit code 1. `main` prints the whole chain once,
//! on one line. A run stopped by a signal ends with [`Interrupted`] (exit code 130).
//!
//! This module depends on nothing else of the crate: every other module may use it.

use std::fmt;

/// A problem with what the user gave us: exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Builds an [`InputError`] as an [`anyhow::Error`].
pub fn input_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(message.into()))
}

/// Returns early with an [`InputError`] built from a format string.
#[macro_export]
macro_rules! bail_input {
    ($($arg:tt)*) => {
        return Err($crate::error::input_error(format!($($arg)*)))
    };
}

/// A quality gate failed (`--min-accuracy`): exit code 3; the output was written.
#[derive(Debug)]
pub struct BelowMinimum(pub String);

impl fmt::Display for BelowMinimum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BelowMinimum {}

/// Exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT).
pub const INTERRUPTED_EXIT_CODE: i32 = 130;

/// The run was stopped by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// Nothing was written; an existing output is left as it was.
    NothingWritten,
    /// The rows done so far are kept in the temporary output, for `--resume`.
    KeptForResume,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupted::NothingWritten => {
                f.write_str("interrupted by a signal; no output was written (an existing output is left as it was)")
            }
            Interrupted::KeptForResume => f.write_str(
                "interrupted by a signal; the rows classified so far are kept: run the same command with --resume to continue",
            ),
        }
    }
}

impl std::error::Error for Interrupted {}

/// Exit code for the process: 2 for input and usage problems, 3 for a failed quality gate, 130
/// when interrupted by a signal, 1 for runtime failures.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if error.chain().any(|cause| cause.is::<BelowMinimum>()) {
        3
    } else if error.chain().any(|cause| cause.is::<Interrupted>()) {
        INTERRUPTED_EXIT_CODE
    } else if error.chain().any(|cause| cause.is::<InputError>()) {
        2
    } else {
        1
    }
}

/// Longest cause printed, in characters.
pub const MAX_CAUSE_CHARS: usize = 400;

/// The error and its causes on one line, outermost first (`a: b: c`), without repeating a cause
/// that its parent already quoted.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let mut text = cause.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > MAX_CAUSE_CHARS {
            // A cause quoting a whole statement or file says enough in its first words.
            text = text.chars().take(MAX_CAUSE_CHARS).collect::<String>() + "…";
        }
        if text.is_empty() || parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn input_errors_exit_2_even_under_context() {
        let err = Err::<(), _>(input_error("no .emd in package"))
            .context("opening model m.dlpk")
            .unwrap_err();
        assert_eq!(exit_code(&err), 2);
        assert_eq!(one_line(&err), "opening model m.dlpk: no .emd in package");
    }

    #[test]
    fn other_errors_exit_1_and_fold_newlines() {
        let err = anyhow::anyhow!("GDAL said:\n  disk full");
        assert_eq!(exit_code(&err), 1);
        assert_eq!(one_line(&err), "GDAL said: disk full");
    }
}
