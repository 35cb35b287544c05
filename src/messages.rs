//! One place for what the program says besides its results: error, warning and note lines on
//! standard error (each prefixed `classify-objects:`), progress lines, GDAL's own messages routed
//! through the same lines, `--quiet`, and standard output for what a command prints.
//!
//! Nothing here fails or panics when standard error or standard output is closed (`2>&-`,
//! `| head`): the line is dropped, and the run's exit status stays the run's. Every line and
//! text goes through [`secrets::redact`] on its way out: no token, password or signature is
//! ever printed, whoever wrote the text (GDAL, a server's error message).

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::secrets;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Says nothing but errors from now on (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether only errors are said.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes one line to standard error, whatever `--quiet` says; a closed stderr drops it.
pub fn line_always(text: impl fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{}", secrets::redact(&text.to_string()));
}

/// Writes one line to standard error unless `--quiet`.
pub fn line(text: impl fmt::Display) {
    if !quiet() {
        line_always(text);
    }
}

/// Writes text (its own line ends included) to standard error unless `--quiet`.
pub fn text(text: impl fmt::Display) {
    if !quiet() {
        let _ = write!(std::io::stderr().lock(), "{}", secrets::redact(&text.to_string()));
    }
}

/// `classify-objects: error: ...`, always.
pub fn error(message: impl fmt::Display) {
    line_always(format_args!("classify-objects: error: {message}"));
}

/// `classify-objects: warning: ...`, unless `--quiet`; kept for the report either way.
pub fn warning(message: impl fmt::Display) {
    let message = message.to_string();
    line(format_args!("classify-objects: warning: {message}"));
    keep_warning(message);
}

/// Most warnings the run keeps for its report; later ones are counted.
pub const MAX_KEPT_WARNINGS: usize = 100;

static WARNINGS: std::sync::Mutex<(Vec<String>, usize)> = std::sync::Mutex::new((Vec::new(), 0));

fn keep_warning(message: String) {
    if let Ok(mut kept) = WARNINGS.lock() {
        kept.1 += 1;
        if kept.0.len() < MAX_KEPT_WARNINGS {
            // Written into the report: without secrets, as every line said.
            kept.0.push(secrets::redact(&message));
        }
    }
}

/// The warnings said so far in this process (printed, or kept quiet by `--quiet`), at most
/// [`MAX_KEPT_WARNINGS`] of them, and how many there were in all.
pub fn warnings_said() -> (Vec<String>, usize) {
    WARNINGS.lock().map(|kept| kept.clone()).unwrap_or_default()
}

/// `classify-objects: note: ...`, unless `--quiet`.
pub fn note(message: impl fmt::Display) {
    line(format_args!("classify-objects: note: {message}"));
}

/// `classify-objects: ...`: what a command did (converted, downloaded, wrote), unless `--quiet`.
pub fn info(message: impl fmt::Display) {
    line(format_args!("classify-objects: {message}"));
}

/// `classify-objects: progress: ...`, unless `--quiet`.
pub fn progress(message: impl fmt::Display) {
    line(format_args!("classify-objects: progress: {message}"));
}

/// Writes `text` to standard output. A reader that went away (`| head`) ends the output quietly,
/// as in other command-line tools, instead of failing.
pub fn print(text: &str) -> anyhow::Result<()> {
    let text = secrets::redact(text);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `text` in double quotes, with `"`, `\` and control characters escaped, so that it stays on
/// one line and its ends show.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A file or layer name as said in a line: as it is, or [`quoted`] when it holds whitespace,
/// quotes or control characters (which would break the line or hide the name's ends).
pub fn name(text: &str) -> String {
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'');
    if plain {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// Most characters of a value echoed in a message.
const MAX_SHOWN_CHARS: usize = 60;

/// A flag's value as echoed in a message: whole when short, else its start and its length, so
/// that a mistaken 10 KB list does not fill the terminal.
pub fn shown(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= MAX_SHOWN_CHARS {
        return text.to_string();
    }
    let start: String = text.chars().take(MAX_SHOWN_CHARS - 20).collect();
    format!("{start}... ({chars} characters)")
}

thread_local! {
    static GDAL_MUTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with GDAL's messages on this thread muted (e.g. GEOS explaining why each invalid
/// polygon is invalid, which the `Status` field already says).
pub fn gdal_muted<T>(f: impl FnOnce() -> T) -> T {
    GDAL_MUTED.with(|m| m.set(true));
    let result = f();
    GDAL_MUTED.with(|m| m.set(false));
    result
}

/// Most GDAL warnings printed in one run; later ones are counted, not printed.
pub const MAX_GDAL_WARNINGS: usize = 20;

/// Routes GDAL's messages: distinct warnings said once as our warnings, at most
/// [`MAX_GDAL_WARNINGS`] (none with `--quiet`); failures reach the user through the error they
/// cause, so they are not said twice.
pub fn install_gdal_handler() {
    static PRINTED: AtomicUsize = AtomicUsize::new(0);
    gdal::config::set_error_handler(move |kind, _, message| {
        if kind != gdal::errors::CplErrType::Warning || GDAL_MUTED.with(|m| m.get()) {
            return;
        }
        static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        if let Ok(mut seen) = SEEN.lock() {
            // The same warning comes once per dataset a worker opens: say it once.
            if seen.iter().any(|m| m == message) {
                return;
            }
            if seen.len() < MAX_GDAL_WARNINGS {
                seen.push(message.to_string());
            }
        }
        match PRINTED.fetch_add(1, Ordering::Relaxed) {
            n if n < MAX_GDAL_WARNINGS => warning(format_args!("GDAL: {message}")),
            n if n == MAX_GDAL_WARNINGS => warning("further GDAL warnings are not shown"),
            _ => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_a_line_are_quoted() {
        assert_eq!(name("out/x.gpkg"), "out/x.gpkg");
        assert_eq!(name("a b.gpkg"), "\"a b.gpkg\"");
        assert_eq!(name("a\nb.gpkg"), "\"a\\nb.gpkg\"");
        assert_eq!(quoted("say \"hi\"\t\u{7}"), "\"say \\\"hi\\\"\\t\\u{7}\"");
    }
}
