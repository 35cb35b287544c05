//! SIGINT and SIGTERM during a run. The first signal asks the run to stop at the next feature or
//! batch: the error travels up as [`Interrupted`], the temporary output is removed on the way,
//! and a previous output is left as it was. A second signal removes the temporary output and
//! exits at once. (SIGKILL cannot be caught: the temporary file stays, hidden, and the next run
//! to the same output removes it; the output itself is never touched.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static TEMPORARY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Exit code of an interrupted run (128 + SIGINT).
pub const EXIT_CODE: i32 = 130;

/// The run was stopped by a signal.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by a signal; no output was written (an existing output is left as it was)")
    }
}

impl std::error::Error for Interrupted {}

/// Installs the signal handler (once per process).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            if let Some(path) = TEMPORARY.lock().ok().and_then(|p| p.clone()) {
                crate::output::remove_with_sidecars(&path);
            }
            eprintln!("classify-objects: error: {Interrupted}");
            std::process::exit(EXIT_CODE);
        }
    });
}

/// Remembers the temporary output, for removal on a second signal.
pub fn register_temporary(path: Option<PathBuf>) {
    if let Ok(mut slot) = TEMPORARY.lock() {
        *slot = path;
    }
}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(anyhow::Error::new(Interrupted))
    } else {
        Ok(())
    }
}
