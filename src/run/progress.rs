//! Progress of a run on stderr: a bar when stderr is a terminal; otherwise (Slurm and CI logs)
//! a plain line every `--progress-interval` seconds from the first objects on, whatever the
//! model's speed (a thread of its own says it, not the objects as they come). Nothing with
//! `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::messages;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of a run in objects.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Arc<Lines>>,
    ticker: Option<JoinHandle<()>>,
}

/// Plain progress lines for a log.
struct Lines {
    total: Option<u64>,
    every: Duration,
    started: Instant,
    done: AtomicU64,
    /// Of `done`, the objects an earlier run did (`--resume`): not in the rate.
    continued: AtomicU64,
    /// Set when the run is over; the ticker wakes and ends.
    over: Mutex<bool>,
    wake: Condvar,
}

impl Progress {
    /// Progress of `total` objects (unknown: a spinner, or counts without a percentage): a bar on
    /// a terminal, a line every `interval` seconds (0: never) elsewhere, nothing when `quiet`.
    pub fn new(total: Option<u64>, interval: u64) -> Progress {
        if messages::quiet() {
            return Progress {
                bar: None,
                lines: None,
                ticker: None,
            };
        }
        if !std::io::stderr().is_terminal() {
            if interval == 0 {
                return Progress {
                    bar: None,
                    lines: None,
                    ticker: None,
                };
            }
            let lines = Arc::new(Lines {
                total,
                every: Duration::from_secs(interval),
                started: Instant::now(),
                done: AtomicU64::new(0),
                continued: AtomicU64::new(0),
                over: Mutex::new(false),
                wake: Condvar::new(),
            });
            let ticking = Arc::clone(&lines);
            let ticker = std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || ticking.tick())
                .ok();
            return Progress {
                bar: None,
                lines: Some(lines),
                ticker,
            };
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
        // Redrawn every second, so that a slow model still shows the time passing.
        bar.enable_steady_tick(Duration::from_secs(1));
        Progress {
            bar: Some(bar),
            lines: None,
            ticker: None,
        }
    }

    /// Says what the run does after scoring (committing the output, writing the report) as a
    /// progress line, when progress lines are said (stderr not a terminal, an interval set): a
    /// log shows why a run whose objects are all scored has not ended yet.
    pub fn stage(interval: u64, what: impl std::fmt::Display) {
        if interval > 0 && !std::io::stderr().is_terminal() {
            messages::progress(what);
        }
    }

    /// `n` more objects done.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(lines) = &self.lines {
            lines.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `n` more objects an earlier run did (`--resume` skips them): counted as done, but not in
    /// the rate, so that the time left is that of the objects this run scores.
    pub fn advance_continued(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            bar.reset_eta();
        }
        if let Some(lines) = &self.lines {
            lines.done.fetch_add(n, Ordering::Relaxed);
            lines.continued.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Removes the bar, or stops the lines (the summary line follows).
    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(lines) = &self.lines {
            if let Ok(mut over) = lines.over.lock() {
                *over = true;
            }
            lines.wake.notify_all();
        }
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Lines {
    /// Says the progress every `every`, until the run is over.
    fn tick(&self) {
        let Ok(mut over) = self.over.lock() else { return };
        let mut next = self.started + self.every;
        loop {
            let now = Instant::now();
            if next > now {
                match self.wake.wait_timeout(over, next - now) {
                    Ok((guard, _)) => over = guard,
                    Err(_) => return,
                }
                if *over {
                    return;
                }
                continue;
            }
            next += self.every;
            // From the first interval on, even before the first batch is scored: a slow
            // model's log shows the run alive.
            messages::progress(self.line(
                self.done.load(Ordering::Relaxed),
                self.continued.load(Ordering::Relaxed),
                self.started.elapsed(),
            ));
        }
    }

    /// The line for `done` objects (`continued` of them from an earlier run) after `elapsed`.
    fn line(&self, done: u64, continued: u64, elapsed: Duration) -> String {
        if done == continued {
            let total = self.total.map_or(String::new(), |t| format!("/{t}"));
            let earlier = if continued > 0 { " (from an earlier run)" } else { "" };
            return format!("{done}{total} objects{earlier}, scoring the first batch");
        }
        let rate = (done - continued) as f64 / elapsed.as_secs_f64().max(1e-9);
        match self.total {
            Some(total) if total > 0 => {
                let left = total.saturating_sub(done) as f64 / rate.max(1e-9);
                format!(
                    "{done}/{total} objects ({:.0}%), {rate:.1} objects/s, about {left:.0} s left",
                    100.0 * done as f64 / total as f64
                )
            }
            _ => format!("{done} objects, {rate:.1} objects/s"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(total: Option<u64>) -> Lines {
        Lines {
            total,
            every: Duration::from_secs(10),
            started: Instant::now(),
            done: AtomicU64::new(0),
            continued: AtomicU64::new(0),
            over: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    #[test]
    fn objects_an_earlier_run_did_count_as_done_but_not_in_the_rate() {
        let l = lines(Some(1000));
        let ten = Duration::from_secs(10);
        assert_eq!(l.line(0, 0, ten), "0/1000 objects, scoring the first batch");
        assert_eq!(
            l.line(600, 600, ten),
            "600/1000 objects (from an earlier run), scoring the first batch"
        );
        // 50 scored in 10 s: 5 a second, 350 left.
        assert_eq!(
            l.line(650, 600, ten),
            "650/1000 objects (65%), 5.0 objects/s, about 70 s left"
        );
        assert_eq!(lines(None).line(650, 600, ten), "650 objects, 5.0 objects/s");
    }
}
