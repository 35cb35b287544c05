//! One writer at a time per output: every run that writes an output (a new one, an append, a
//! resume, a layer added to a GeoPackage or File Geodatabase, a merge) holds the output's lock
//! (`.<name>.lock`, beside it) from before it reads what exists until it has committed. A second
//! run to the same output waits for the first, saying once who holds it (process, host, since
//! when), and then starts from what the first one left; a signal ends the wait. The lock is an
//! advisory file lock: right across processes, PID namespaces, and hosts on file systems with
//! working locks (local disks, NFS with lockd).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::bail_input;
use crate::clock;
use crate::error::Interrupted;
use crate::messages;

/// The held lock of an output; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    /// The lock's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock `.<name>.lock` in `dir` of the output `shown` (`name` its file name,
    /// shortened when long), waiting while another run holds it.
    pub fn take(dir: &Path, name: &str, shown: &Path) -> Result<OutputLock> {
        let path = dir.join(format!(".{name}.lock"));
        let mut said = false;
        loop {
            let mut file = open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    if !said {
                        messages::note(format_args!(
                            "output {} is being written by another run ({}); waiting for it to finish",
                            shown.display(),
                            holder(&mut file)
                        ));
                        said = true;
                    }
                    if crate::stop::requested() {
                        return Err(anyhow::Error::new(Interrupted::NothingWritten));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("locking {}", path.display()));
                }
            }
            // The holder before may have removed the file it locked: ours must be the one at
            // the path now, or the lock guards nothing.
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0)?;
            write!(file, "{}", identity())?;
            return Ok(OutputLock { path, _file: file });
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held: a run waiting on this file finds it gone and opens anew.
        let _ = fs::remove_file(&self.path);
    }
}

fn open(path: &Path) -> Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(file) => Ok(file),
        Err(err) => bail_input!(
            "cannot write in the output folder {} ({err}); choose a folder you can write to",
            path.parent().unwrap_or(Path::new(".")).display()
        ),
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Who holds the lock, as its holder wrote it.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "a run that has just started".into()
    } else {
        text.to_string()
    }
}

/// This run as the lock says it: process, host, start time (UTC).
fn identity() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".into());
    format!("pid {} on {host} since {}", std::process::id(), clock::utc_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::take(dir.path(), "out", Path::new("out.gpkg")).unwrap();
        let content = fs::read_to_string(dir.path().join(".out.lock")).unwrap();
        assert!(
            content.starts_with(&format!("pid {} on ", std::process::id())),
            "{content}"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let second = OutputLock::take(&d, "out", Path::new("out.gpkg")).unwrap();
            tx.send(()).unwrap();
            drop(second);
        });
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "the second waits");
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).expect("then takes it");
        waiter.join().unwrap();
        assert!(!dir.path().join(".out.lock").exists(), "released locks leave no file");
    }
}
