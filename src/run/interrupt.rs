//! SIGINT, SIGTERM and SIGHUP during a run. The first signal asks the run to stop: [`check`]
//! then returns [`Interrupted`] at the next feature or batch, long raster reads are abandoned,
//! the error travels up, and the temporary output is removed on the way (or, with `--resume`,
//! kept for the next run to continue); a previous output is left as it was. A second signal
//! removes the temporary outputs and exits at once. The exit code is 128 + the signal: 130 for
//! SIGINT, 143 for SIGTERM (what Slurm and Kubernetes send), 129 for SIGHUP. (SIGKILL cannot be
//! caught: the temporary file stays, and the next run to the same output removes or resumes it;
//! the output itself is never touched.)

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::Interrupted;
use crate::error::INTERRUPTED_EXIT_CODE;
use crate::messages;
use crate::output::target;
use crate::stop;

/// Installs the signal handling (once per process).
pub fn install() {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if stop::request(signal) {
                continue;
            }
            target::remove_registered_temporaries();
            messages::error(Interrupted::NothingWritten);
            std::process::exit(128 + stop::signal());
        }
    });
}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> anyhow::Result<()> {
    if stop::requested() {
        Err(anyhow::Error::new(Interrupted::NothingWritten))
    } else {
        Ok(())
    }
}

/// The process exit code after the signal received: 128 + its number (130 for SIGINT).
pub fn exit_code() -> i32 {
    match stop::signal() {
        0 => INTERRUPTED_EXIT_CODE,
        signal => 128 + signal,
    }
}
