//! SIGINT, SIGTERM and SIGHUP during a run. The first signal asks the run to stop: [`check`]
//! then returns [`Interrupted`] at the next feature or batch, long raster reads and our own HTTP
//! requests are abandoned, the error travels up, and the temporary output is removed on the way
//! (or, with `--resume`, kept for the next run to continue); a previous output is left as it
//! was. A run still going [`GRACE`] after the first signal (waiting on a request GDAL makes
//! itself, which no signal reaches, to a server that does not answer) exits then, keeping what
//! `--resume` continues from. A second signal removes the temporary outputs and exits at once. The exit code is 128 + the signal: 130 for
//! SIGINT, 143 for SIGTERM (what Slurm and Kubernetes send), 129 for SIGHUP. (SIGKILL cannot be
//! caught: the temporary file stays, and the next run to the same output removes or resumes it;
//! the output itself is never touched.)

use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::Interrupted;
use crate::error::INTERRUPTED_EXIT_CODE;
use crate::input::download;
use crate::messages;
use crate::output::target;
use crate::stop;

/// How long a run may take to stop after the first signal before it exits all the same.
pub const GRACE: Duration = Duration::from_secs(5);

/// Installs the signal handling (once per process).
pub fn install() {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if stop::request(signal) {
                std::thread::spawn(|| {
                    std::thread::sleep(GRACE);
                    exit_now(true);
                });
                continue;
            }
            exit_now(false);
        }
    });
}

/// Exits at once with 128 + the signal, removing the temporary outputs and downloads (keeping a
/// `--resume` run's rows when `keep_resumable`).
fn exit_now(keep_resumable: bool) -> ! {
    download::remove_partial_downloads();
    let kept = target::remove_registered_temporaries(keep_resumable);
    messages::error(if kept {
        Interrupted::KeptForResume
    } else {
        Interrupted::NothingWritten
    });
    std::process::exit(128 + stop::signal());
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
