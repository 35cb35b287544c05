//! The process-wide stop request: set once when the first SIGINT, SIGTERM or SIGHUP arrives (by
//! the run's signal handling), read by whatever waits or reads for long (GDAL's raster reads, a
//! wait for another run's output lock), which then give up so that the run can end cleanly.

use std::sync::atomic::{AtomicI32, Ordering};

/// The first signal received, 0 before any.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Records `signal` as the reason to stop; returns whether it is the first.
pub fn request(signal: i32) -> bool {
    SIGNAL
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The signal that requested the stop, 0 if none did.
pub fn signal() -> i32 {
    SIGNAL.load(Ordering::SeqCst)
}
