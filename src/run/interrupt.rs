//! SIGINT and SIGTERM during a run. The first signal asks the run to stop at the next feature or
//! batch: [`check`] then returns [`Interrupted`], the error travels up, the temporary output is
//! removed on the way, and a previous output is left as it was. A second signal removes the
//! temporary outputs and exits at once. (SIGKILL cannot be caught: the temporary file stays,
//! hidden, and the next run to the same output removes it; the output itself is never touched.)

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Interrupted, INTERRUPTED_EXIT_CODE};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the signal handler (once per process).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            crate::output::target::remove_registered_temporaries();
            eprintln!("classify-objects: error: {}", Interrupted::NothingWritten);
            std::process::exit(INTERRUPTED_EXIT_CODE);
        }
    });
}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(anyhow::Error::new(Interrupted::NothingWritten))
    } else {
        Ok(())
    }
}
