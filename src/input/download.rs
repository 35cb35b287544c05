//! Remote files (a model package on a portal, `https://…/items/ID/data`) downloaded once into a
//! cache folder and read from there afterwards, without asking the server again.
//!
//! A download goes to a hidden temporary file in the cache folder, capped in size, is checked by
//! the caller (a package is opened with every check a local file gets), and only then renamed
//! to its place: the cache never holds a partial or refused file. Entries are keyed by the URL
//! without its credentials (tokens expire; the file does not change with them); beside each
//! entry a `.url` file records that URL.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::bail_input;
use crate::error::{input_error, Interrupted};
use crate::input::http::{self, redact, HttpError};
use crate::secrets;

/// Environment variable naming the cache folder (the `--cache-dir` flag wins).
pub const CACHE_ENV: &str = "CLASSIFY_OBJECTS_CACHE_DIR";

/// Temporary files of downloads older than this are from runs that died, and are removed.
const STALE_PARTIAL: Duration = Duration::from_secs(24 * 3600);

/// Whether `name` is a URL this module downloads (`http://` or `https://`).
pub fn is_remote(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The cache folder: `given` (from `--cache-dir` or the environment), else
/// `$XDG_CACHE_HOME/classify-objects`, else `$HOME/.cache/classify-objects`.
pub fn cache_dir(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = given.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(dir.to_path_buf());
    }
    let from_env = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(xdg) = from_env("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("classify-objects"));
    }
    match from_env("HOME") {
        Some(home) => Ok(home.join(".cache").join("classify-objects")),
        None => bail_input!(
            "no cache folder for downloaded models: neither XDG_CACHE_HOME nor HOME is set; give one with --cache-dir DIR (or {CACHE_ENV})"
        ),
    }
}

/// The URL a cache entry is keyed by: without its credentials (tokens, signatures, password).
fn key_url(url: &str) -> String {
    secrets::without_secrets(url)
}

/// FNV-1a, 64 bits: a stable file name for a URL (not a security boundary: the `.url` file beside
/// an entry is compared too).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Downloads under way in this process: their temporary files.
static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the temporary files of the downloads under way, for a process that exits without
/// unwinding (a signal): a download that did not finish leaves nothing in the cache.
pub fn remove_partial_downloads() {
    for path in PARTIALS.lock().map(|l| l.clone()).unwrap_or_default() {
        let _ = fs::remove_file(path);
    }
}

/// The temporary file of a download: removed unless it was moved into the cache.
struct Partial(Option<PathBuf>);

impl Partial {
    fn new(path: PathBuf) -> Partial {
        if let Ok(mut list) = PARTIALS.lock() {
            list.push(path.clone());
        }
        Partial(Some(path))
    }

    /// The file was moved into the cache: nothing to remove.
    fn keep(&mut self) {
        if let Some(path) = self.0.take() {
            if let Ok(mut list) = PARTIALS.lock() {
                list.retain(|p| *p != path);
            }
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(&path);
            if let Ok(mut list) = PARTIALS.lock() {
                list.retain(|p| *p != path);
            }
        }
    }
}

/// The local copy of `url` in `dir` (named `<key>.<ext>`), downloaded the first time: at most
/// `limit` bytes, then `check`ed before it enters the cache. `notice` is called once before a
/// download starts. A file already in the cache is returned without any request.
pub fn cached(
    url: &str,
    dir: &Path,
    ext: &str,
    limit: u64,
    check: &dyn Fn(&Path) -> Result<()>,
    notice: &dyn Fn(&Path),
) -> Result<PathBuf> {
    let shown = redact(url);
    let key = key_url(url);
    let stem = format!("{:016x}", fnv1a(&key));
    let path = dir.join(format!("{stem}.{ext}"));
    let record = dir.join(format!("{stem}.url"));
    if path.is_file() && fs::read_to_string(&record).is_ok_and(|k| k.trim_end() == key) {
        return Ok(path);
    }
    if let Err(err) = fs::create_dir_all(dir) {
        bail_input!(
            "cache folder {} cannot be created ({err}); choose another with --cache-dir DIR (or {CACHE_ENV})",
            dir.display()
        );
    }
    remove_stale_partials(dir);
    notice(&path);
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let temp = dir.join(format!(".{stem}.partial-{}-{nonce}.{ext}", std::process::id()));
    let file = match fs::OpenOptions::new().write(true).create_new(true).open(&temp) {
        Ok(file) => file,
        Err(err) => bail_input!(
            "cannot write into the cache folder {} ({err}); choose another with --cache-dir DIR (or {CACHE_ENV})",
            dir.display()
        ),
    };
    let mut partial = Partial::new(temp.clone());
    let mut out = std::io::BufWriter::new(file);
    match http::fetch_into(url, &mut out, limit) {
        Ok(0) => bail_input!(
            "download of {shown} is empty; check the URL (a portal item's data: …/sharing/rest/content/items/ID/data)"
        ),
        Ok(_) => {}
        Err(HttpError::Stopped) => return Err(anyhow::Error::new(Interrupted::NothingWritten)),
        Err(HttpError::TooLarge(limit)) => bail_input!(
            "download of {shown} was stopped: it is larger than the {} MiB a model package may have; check the URL",
            limit >> 20
        ),
        Err(HttpError::Io(err)) => {
            return Err(anyhow::Error::new(err).context(format!(
                "download of {shown} could not be written into the cache folder {}",
                dir.display()
            )))
        }
        Err(err) => bail_input!(
            "download of {shown} failed: {err}; check the URL (and its token, for a secured item) and run again"
        ),
    }
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing the download of {shown}"))?;
    file.sync_all()
        .with_context(|| format!("writing the download of {shown}"))?;
    drop(file);
    check(&temp).map_err(|err| {
        err.context(input_error(format!(
            "the download of {shown} was refused and not cached"
        )))
    })?;
    // The record first: an entry without it is downloaded again, never taken for another URL's.
    let record_temp = dir.join(format!(".{stem}.partial-{}-{nonce}.url", std::process::id()));
    let mut record_partial = Partial::new(record_temp.clone());
    fs::write(&record_temp, format!("{key}\n"))
        .and_then(|()| fs::rename(&record_temp, &record))
        .with_context(|| format!("recording the download of {shown} in {}", dir.display()))?;
    record_partial.keep();
    fs::rename(&temp, &path).with_context(|| format!("moving the download of {shown} into {}", dir.display()))?;
    partial.keep();
    Ok(path)
}

/// Removes temporary download files older than a day (left by runs that were killed).
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_partial = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.contains(".partial-"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_PARTIAL);
        if is_partial && old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_ignore_tokens_only() {
        assert_eq!(
            key_url("https://p/sharing/rest/content/items/abc/data?token=T1"),
            "https://p/sharing/rest/content/items/abc/data"
        );
        assert_eq!(key_url("https://p/d?a=1&token=T&b=2"), "https://p/d?a=1&b=2");
        assert_ne!(
            fnv1a(&key_url("https://p/items/abc/data")),
            fnv1a(&key_url("https://p/items/abd/data"))
        );
        assert_eq!(
            fnv1a(&key_url("https://p/items/abc/data?token=A")),
            fnv1a(&key_url("https://p/items/abc/data?token=B"))
        );
    }

    #[test]
    fn the_cache_folder_is_the_given_one_first() {
        assert_eq!(cache_dir(Some(Path::new("/tmp/c"))).unwrap(), PathBuf::from("/tmp/c"));
    }
}
