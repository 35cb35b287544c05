//! Progress of a run on stderr: a bar when stderr is a terminal; otherwise (Slurm and CI logs)
//! a plain line every `--progress-interval` seconds. Nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::messages;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of a run in objects.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Lines>,
}

/// Plain progress lines for a log.
struct Lines {
    total: Option<u64>,
    every: Duration,
    started: Instant,
    done: AtomicU64,
    last: Mutex<Instant>,
}

impl Progress {
    /// Progress of `total` objects (unknown: a spinner, or counts without a percentage): a bar on
    /// a terminal, a line every `interval` seconds (0: never) elsewhere, nothing when `quiet`.
    pub fn new(total: Option<u64>, interval: u64) -> Progress {
        if messages::quiet() {
            return Progress { bar: None, lines: None };
        }
        if !std::io::stderr().is_terminal() {
            let started = Instant::now();
            let lines = (interval > 0).then(|| Lines {
                total,
                every: Duration::from_secs(interval),
                started,
                done: AtomicU64::new(0),
                last: Mutex::new(started),
            });
            return Progress { bar: None, lines };
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {pos}/{len} objects ({percent}%), ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{elapsed_precise} {spinner} {pos} objects")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Progress {
            bar: Some(bar),
            lines: None,
        }
    }

    /// `n` more objects done.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(lines) = &self.lines {
            let done = lines.done.fetch_add(n, Ordering::Relaxed) + n;
            let Ok(mut last) = lines.last.lock() else { return };
            if last.elapsed() < lines.every {
                return;
            }
            *last = Instant::now();
            let seconds = lines.started.elapsed().as_secs_f64();
            let rate = done as f64 / seconds.max(1e-9);
            let line = match lines.total {
                Some(total) if total > 0 => {
                    let left = total.saturating_sub(done) as f64 / rate.max(1e-9);
                    format!(
                        "classify-objects: progress: {done}/{total} objects ({:.0}%), {rate:.1} objects/s, about {left:.0} s left",
                        100.0 * done as f64 / total as f64
                    )
                }
                _ => format!("classify-objects: progress: {done} objects, {rate:.1} objects/s"),
            };
            messages::progress(line);
        }
    }

    /// Removes the bar (the summary line follows).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Peak resident memory of this process in bytes (Linux: VmHWM), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
