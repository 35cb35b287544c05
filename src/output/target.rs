//! Where an output goes and how it gets there without ever being half-written.
//!
//! Everything is written to a hidden temporary file beside the output
//! (`.<stem>.partial-<run id><ext>`; a folder for a File Geodatabase), which
//! [`OutputTarget::commit`] moves over the output at the end, with the files the format writes beside it ([`Companion`]s: a Shapefile's `.dbf`, a
//! GeoPackage's journals, the `.qml` style). A new output is committed without replacing
//! anything (a file that appeared meanwhile, e.g. from a concurrent run, is never overwritten
//! without `--overwrite`).
//!
//! A run holds an advisory lock (`.<stem>.lock-<run id>`) for as long as its temporary file
//! exists. A temporary file whose lock nobody holds belongs to a run that died (killed, out of
//! memory, node lost): the next run to the same output removes it, or `--resume` takes it over.
//! The lock, unlike a process id, is right across PID namespaces (containers) and, on file
//! systems with working locks (local, NFS with lockd), across hosts.
//!
//! Temporary files in use are registered here, so that a process that must exit at once (a
//! second signal) can remove them with [`remove_registered_temporaries`].

use std::collections::hash_map::RandomState;
use std::fs::{self, File, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::bail_input;
use crate::error;
use crate::output::existing::check_replaceable;
use crate::output::format::{Companion, Format, KEPT_METADATA, STYLE_SIDECAR};
use crate::output::lock::OutputLock;
use crate::output::style;

/// Longest file name most file systems take, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// A temporary output being written by this process: its path, whether a `--resume` run
/// continues from it, and its lock files (the run's and the output's).
type Registered = (PathBuf, bool, [PathBuf; 2]);

/// Temporary outputs being written by this process.
static TEMPORARIES: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

fn register_temporary(path: &Path, resumable: bool, locks: [PathBuf; 2]) {
    if let Ok(mut list) = TEMPORARIES.lock() {
        list.push((path.to_path_buf(), resumable, locks));
    }
}

fn unregister_temporary(path: &Path) {
    if let Ok(mut list) = TEMPORARIES.lock() {
        list.retain(|(p, _, _)| p != path);
    }
}

/// Removes every temporary output this process is writing (and the files beside it), for a
/// process that exits without unwinding; with `keep_resumable`, those of a `--resume` run stay
/// (unlocked once the process is gone: the next `--resume` takes them over). Returns whether
/// one stayed.
pub fn remove_registered_temporaries(keep_resumable: bool) -> bool {
    let paths = TEMPORARIES.lock().map(|l| l.clone()).unwrap_or_default();
    let mut kept = false;
    for (path, resumable, locks) in paths {
        if keep_resumable && resumable {
            kept = true;
        } else {
            remove_family(&path);
        }
        // Unlocked once this process is gone: nothing guards them any more.
        for lock in locks {
            let _ = fs::remove_file(lock);
        }
    }
    kept
}

/// What the temporary output starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Nothing: a new file (the output does not exist, or is replaced whole by `--overwrite`).
    New,
    /// A copy of the existing multi-layer output, into which the run's layer is written new
    /// (added, or replacing a layer of the same name with `--overwrite`); other layers are kept.
    CopyWithNewLayer {
        /// Whether a layer of the run's name exists and is replaced.
        replace: bool,
    },
    /// A copy of the existing output, whose layer gets the run's rows added (`--append`).
    Append,
    /// A killed run's temporary output (or the existing output), continued (`--resume`).
    Resume,
}

/// How an existing output may be treated: the flags `--overwrite`, `--append`, `--resume`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WritePolicy {
    /// Replace the output (or, in a multi-layer file, the layer).
    pub overwrite: bool,
    /// Add rows to the output's layer.
    pub append: bool,
    /// Continue a killed run.
    pub resume: bool,
}

/// The final output path and the temporary file written first.
#[derive(Debug)]
pub struct OutputTarget {
    /// Where the result goes.
    pub path: PathBuf,
    temp: PathBuf,
    /// The vector format, `None` for a plain file.
    format: Option<Format>,
    /// What the temporary output starts from.
    pub start: Start,
    /// Whether an output that exists at commit may be replaced.
    overwrite: bool,
    lock_path: PathBuf,
    _lock: File,
    state: State,
    /// The layer written (multi-layer files), whose style file is this run's own.
    layer: String,
    /// The output's lock (released after the run's own, when the target is dropped).
    _output_lock: OutputLock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Writing,
    Committed,
    /// Left for `--resume` (an interrupted run that keeps what it did).
    Kept,
}

impl OutputTarget {
    /// Prepares writing `path` in `format`: checks that it may be written under `policy`, picks
    /// and locks a temporary name beside it, removes what dead runs left, and copies or takes
    /// over what the run starts from. `layer` is the output layer's name, for multi-layer files.
    pub fn prepare(path: &Path, format: &Format, policy: WritePolicy, layer: &str) -> Result<OutputTarget> {
        OutputTarget::prepare_any(path, Some(format), policy, layer)
    }

    /// Prepares writing a plain file (a package, a report) at `path`, replaced only with
    /// `overwrite`.
    pub fn for_file(path: &Path, overwrite: bool) -> Result<OutputTarget> {
        let policy = WritePolicy {
            overwrite,
            ..WritePolicy::default()
        };
        OutputTarget::prepare_any(path, None, policy, "")
    }

    fn prepare_any(path: &Path, format: Option<&Format>, policy: WritePolicy, layer: &str) -> Result<OutputTarget> {
        let folder = format.is_some_and(Format::writes_folder);
        check_name(path, folder, "output")?;
        if path.is_dir() && !folder {
            bail_input!(
                "output {} is a folder; give a file name such as result.gpkg",
                path.display()
            );
        }
        if folder && fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
            bail_input!(
                "output {} exists and is not a folder, but a {} output is a folder; remove it or choose another name",
                path.display(),
                format.map_or("", Format::name)
            );
        }
        let dir = parent_of(path);
        if !dir.is_dir() {
            bail_input!("output folder {} does not exist; create it first", dir.display());
        }
        let (stem, ext) = split_name(path);
        let prefix = temporary_prefix(&stem, &ext);
        // One writer at a time: what exists is read only once the run owns the output.
        // By the whole name: x.gpkg and its --summary-json x.json are different outputs.
        let output_lock = OutputLock::take(&dir, &format!("{prefix}{ext}"), path)?;
        let exists = fs::symlink_metadata(path).is_ok();
        if let Some(format) = format.filter(|_| exists) {
            check_replaceable(path, format)?;
        }
        let run_id = new_run_id();
        let temp = dir.join(format!(".{prefix}.partial-{run_id}{ext}"));
        let lock_path = dir.join(format!(".{prefix}.lock-{run_id}"));
        let lock = take_lock(&dir, &prefix, &run_id, &lock_path)?;
        let mut target = OutputTarget {
            path: path.to_path_buf(),
            temp,
            format: format.cloned(),
            start: Start::New,
            overwrite: policy.overwrite,
            lock_path,
            _lock: lock,
            state: State::Writing,
            layer: layer.to_string(),
            _output_lock: output_lock,
        };
        register_temporary(
            &target.temp,
            policy.resume && format.is_some(),
            [target.lock_path.clone(), target._output_lock.path().to_path_buf()],
        );
        let adopted = policy.resume && target.adopt_stale(&dir, &prefix, &ext)?;
        remove_stale(&dir, &prefix, &ext, &run_id);
        target.start = if adopted {
            // A dead run's rows: whatever becomes of this run, they stay for a later --resume.
            target.state = State::Kept;
            Start::Resume
        } else if !exists {
            Start::New
        } else if policy.resume {
            target.copy_existing()?;
            Start::Resume
        } else if policy.append {
            target.copy_existing()?;
            Start::Append
        } else if let Some(replace) = format.filter(|f| f.multi_layer()).and_then(|_| has_layer(path, layer)) {
            if replace && !policy.overwrite {
                bail_input!(
                    "output {} already has a layer {layer}; pass --overwrite to replace that layer (other layers are kept), --append to add to it, or --layer-name to add a new layer",
                    path.display()
                );
            }
            target.copy_existing()?;
            Start::CopyWithNewLayer { replace }
        } else if policy.overwrite {
            Start::New
        } else if format.is_none() {
            // A package or a report: replaced whole or not at all.
            bail_input!(
                "output {} already exists; pass --overwrite to replace it, or choose another name",
                path.display()
            );
        } else {
            bail_input!(
                "output {} already exists; pass --overwrite to replace it, --append to add to it, or choose another name",
                path.display()
            );
        };
        Ok(target)
    }

    /// The temporary file to write.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Whether the run adds rows to a layer that already has some.
    pub fn appending(&self) -> bool {
        matches!(self.start, Start::Append | Start::Resume)
    }

    /// Moves the finished temporary file (and its companions) to the output. A new output never
    /// replaces a file that appeared meanwhile; otherwise the old output's companions that the
    /// new one lacks (an old `.qix` index) are removed. Fails, leaving everything as it was, if
    /// the format wrote no file where it should have.
    pub fn commit(&mut self) -> Result<()> {
        let folder = self.format.as_ref().is_some_and(Format::writes_folder);
        let metadata = fs::symlink_metadata(&self.temp);
        if !metadata
            .as_ref()
            .is_ok_and(|m| if folder { m.is_dir() } else { m.is_file() })
        {
            bail_input!(
                "the {} driver wrote no file at {} for output {}; choose a format that writes one file per output (e.g. GPKG)",
                self.format.as_ref().map_or("", Format::name),
                self.temp.display(),
                self.path.display()
            );
        }
        if folder {
            self.commit_folder()?;
            self.state = State::Committed;
            return Ok(());
        }
        let members = temporary_family(&self.temp);
        let existed = fs::symlink_metadata(&self.path).is_ok();
        if self.start == Start::New && existed && !self.overwrite {
            bail_input!(
                "output {} was created by another process while this run was writing it (another program, or a run not taking turns on it); nothing was replaced: rerun with --overwrite to replace it, or write elsewhere",
                self.path.display()
            );
        }
        if self.start == Start::New && !existed {
            // Nothing to replace: move the main file without replacing, then its companions.
            match fs::hard_link(&self.temp, &self.path) {
                Ok(()) => fs::remove_file(&self.temp).with_context(|| format!("removing {}", self.temp.display()))?,
                Err(err) if err.kind() == ErrorKind::AlreadyExists => bail_input!(
                    "output {} was created by another process while this run was writing it (another program, or a run not taking turns on it); nothing was replaced: rerun with --overwrite to replace it, or write elsewhere",
                    self.path.display()
                ),
                // File systems without hard links: a plain rename (the check above stands).
                Err(_) => fs::rename(&self.temp, &self.path)
                    .with_context(|| format!("moving {} to {}", self.temp.display(), self.path.display()))?,
            }
            for (file, suffix) in members.iter().filter(|(_, s)| !s.is_empty()) {
                let target = with_suffix(&self.path, suffix);
                fs::rename(file, &target)
                    .with_context(|| format!("moving {} to {}", file.display(), target.display()))?;
            }
        } else {
            let new: Vec<&String> = members.iter().map(|(_, suffix)| suffix).collect();
            for (file, suffix) in output_family(&self.path, self.format.as_ref()) {
                // A style is removed only when it is this layer's own (another layer's, or the
                // user's, stays).
                if !new.contains(&&suffix)
                    && !KEPT_METADATA.contains(&suffix.as_str())
                    && !self.others_style(&file, &suffix)
                {
                    fs::remove_file(&file).with_context(|| format!("removing the old {}", file.display()))?;
                }
            }
            // Companions first, the main file last: the output's own name changes in one step.
            for (file, suffix) in members.iter().filter(|(_, s)| !s.is_empty()) {
                let target = with_suffix(&self.path, suffix);
                fs::rename(file, &target)
                    .with_context(|| format!("moving {} to {}", file.display(), target.display()))?;
            }
            fs::rename(&self.temp, &self.path)
                .with_context(|| format!("moving {} to {}", self.temp.display(), self.path.display()))?;
        }
        self.state = State::Committed;
        Ok(())
    }

    /// Whether `file` (the output's companion named by `suffix`) is a style this run must leave:
    /// another layer's, or the user's.
    fn others_style(&self, file: &Path, suffix: &str) -> bool {
        suffix == ".qml" && !style::is_style_of(file, &self.path, &self.layer)
    }

    /// Moves a finished temporary folder (a File Geodatabase) and its companions to the output.
    /// A new output is first created empty (which fails if another process made it meanwhile)
    /// and then replaced by the temporary folder in one rename; an existing one is moved aside,
    /// the temporary folder moved in, and the old one removed.
    fn commit_folder(&self) -> Result<()> {
        let members = temporary_family(&self.temp);
        let existed = fs::symlink_metadata(&self.path).is_ok();
        let taken = || {
            error::input_error(format!(
                "output {} was created by another process while this run was writing it (another program, or a run not taking turns on it); nothing was replaced: rerun with --overwrite to replace it, or write elsewhere",
                self.path.display()
            ))
        };
        if self.start == Start::New && existed && !self.overwrite {
            return Err(taken());
        }
        let new: Vec<&String> = members.iter().map(|(_, suffix)| suffix).collect();
        for (file, suffix) in output_family(&self.path, self.format.as_ref()) {
            // Another layer's or the user's style stays, as beside a file.
            if !suffix.is_empty() && !new.contains(&&suffix) && !self.others_style(&file, &suffix) {
                fs::remove_file(&file).with_context(|| format!("removing the old {}", file.display()))?;
            }
        }
        for (file, suffix) in members.iter().filter(|(_, s)| !s.is_empty()) {
            let target = with_suffix(&self.path, suffix);
            fs::rename(file, &target).with_context(|| format!("moving {} to {}", file.display(), target.display()))?;
        }
        let moved = |from: &Path, to: &Path| {
            fs::rename(from, to).with_context(|| format!("moving {} to {}", from.display(), to.display()))
        };
        if !existed {
            match fs::create_dir(&self.path) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::AlreadyExists => return Err(taken()),
                Err(err) => return Err(err).with_context(|| format!("creating {}", self.path.display())),
            }
            // An empty folder is replaced by a rename.
            return moved(&self.temp, &self.path);
        }
        let name = self.temp.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let aside = self.temp.with_file_name(name.replacen(".partial-", ".replaced-", 1));
        moved(&self.path, &aside)?;
        if let Err(err) = moved(&self.temp, &self.path) {
            let _ = fs::rename(&aside, &self.path);
            return Err(err);
        }
        fs::remove_dir_all(&aside).with_context(|| format!("removing the old output, now {}", aside.display()))
    }

    /// Leaves the temporary output where it is, unlocked, for a later `--resume` to continue
    /// (also the state from the start of a run that took over a dead run's temporary output).
    pub fn keep_for_resume(&mut self) {
        self.state = State::Kept;
    }

    /// Copies the existing output (and its companions) to the temporary name.
    fn copy_existing(&self) -> Result<()> {
        for (file, suffix) in output_family(&self.path, self.format.as_ref()) {
            if suffix.is_empty() && file.is_dir() {
                copy_folder(&file, &self.temp)?;
                continue;
            }
            if suffix.starts_with('-') {
                // A journal of the existing output is not copied: SQLite rolls a hot journal back
                // when the file is next opened for update, and the copy is opened fresh.
                continue;
            }
            let copy = with_suffix(&self.temp, &suffix);
            fs::copy(&file, &copy).with_context(|| format!("copying {} to write into it", file.display()))?;
        }
        Ok(())
    }

    /// Takes over the temporary output of a dead run (the newest, if several) by renaming its
    /// family to this run's temporary name; returns whether there was one.
    fn adopt_stale(&self, dir: &Path, prefix: &str, ext: &str) -> Result<bool> {
        let mut stale: Vec<(std::time::SystemTime, PathBuf, String)> = Vec::new();
        for (run_id, main) in temporaries(dir, prefix, ext) {
            if main.exists() && !is_live(dir, prefix, &run_id) {
                let modified = fs::metadata(&main)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                stale.push((modified, main, run_id));
            }
        }
        stale.sort();
        while let Some((_, newest, run_id)) = stale.pop() {
            let members = temporary_family(&newest);
            match fs::rename(&newest, &self.temp) {
                Ok(()) => {}
                // Another run took it over first.
                Err(err) if err.kind() == ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("taking over {}", newest.display())),
            }
            for (file, suffix) in members.iter().filter(|(_, s)| !s.is_empty()) {
                let _ = fs::rename(file, with_suffix(&self.temp, suffix));
            }
            let _ = fs::remove_file(dir.join(format!(".{prefix}.lock-{run_id}")));
            return Ok(true);
        }
        Ok(false)
    }
}

impl Drop for OutputTarget {
    fn drop(&mut self) {
        if self.state == State::Writing {
            remove_family(&self.temp);
        }
        unregister_temporary(&self.temp);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Refuses an output path that could only fail at the final rename, after the whole run: one
/// that ends with `/` (a folder) for a format written as a file, one without a file name, and a
/// name longer than a file system takes ([`MAX_NAME_BYTES`]). `what` names the path in messages.
pub(crate) fn check_name(path: &Path, folder: bool, what: &str) -> Result<()> {
    let shown = path.display();
    let text = path.as_os_str().to_string_lossy();
    if !folder && (text.ends_with('/') || text.ends_with("/.")) {
        let name = text
            .trim_end_matches(['/', '.'])
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        bail_input!(
            "{what} {shown} ends with '/', so it names a folder; give a file name such as {name} (without the '/')"
        );
    }
    let Some(name) = path.file_name() else {
        bail_input!("{what} {shown} has no file name; give one such as result.gpkg");
    };
    let bytes = name.as_encoded_bytes().len();
    if bytes > MAX_NAME_BYTES {
        bail_input!(
            "{what} file name {}... is {bytes} bytes long, more than the {MAX_NAME_BYTES} a file system takes; give a shorter name",
            name.to_string_lossy().chars().take(40).collect::<String>()
        );
    }
    Ok(())
}

/// The folder of `path` (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `(stem, ".ext")` of a path's file name (`ext` empty when there is none).
fn split_name(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_string(), format!(".{ext}")),
        _ => (name, String::new()),
    }
}

/// The file `path` with its extension replaced by `suffix` (which starts with `.`), or with
/// `suffix` appended to its name (which starts with `-`); the path itself for an empty suffix.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    if suffix.is_empty() {
        return path.to_path_buf();
    }
    if suffix.starts_with('-') {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        return path.with_file_name(name);
    }
    let (stem, _) = split_name(path);
    path.with_file_name(format!("{stem}{suffix}"))
}

/// The stem used in temporary names: the output's, shortened (with a hash of the whole stem) so
/// that the temporary names stay within [`MAX_NAME_BYTES`].
fn temporary_prefix(stem: &str, ext: &str) -> String {
    // "." + prefix + ".partial-" + run id (at most 24) + ext + the longest companion (".shp.xml").
    let room = MAX_NAME_BYTES.saturating_sub(1 + 9 + 24 + ext.len().max(8) + 8);
    if stem.len() <= room {
        return stem.to_string();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(stem.as_bytes());
    let hash = format!("~{:08x}", hasher.finish() as u32);
    let mut cut = room.saturating_sub(hash.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{hash}", &stem[..cut])
}

/// A run id unique across processes, containers and hosts: process id and random bits, in hex.
fn new_run_id() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:x}{:012x}", std::process::id(), hasher.finish() & 0xffff_ffff_ffff)
}

/// Creates and locks this run's lock file. It is locked under a private name first and then
/// renamed into place, so that a lock file seen by another run is always locked while its run
/// lives.
fn take_lock(dir: &Path, prefix: &str, run_id: &str, lock_path: &Path) -> Result<File> {
    let private = dir.join(format!(".{prefix}.locking-{run_id}"));
    let file = match File::create(&private) {
        Ok(file) => file,
        Err(err) => bail_input!(
            "cannot write in the output folder {} ({err}); choose a folder you can write to",
            dir.display()
        ),
    };
    let locked = file.lock();
    let renamed = fs::rename(&private, lock_path);
    if let Err(err) = locked
        .map_err(anyhow::Error::from)
        .and(renamed.map_err(anyhow::Error::from))
    {
        let _ = fs::remove_file(&private);
        return Err(err).with_context(|| format!("locking {}", lock_path.display()));
    }
    Ok(file)
}

/// Whether the run `run_id` still holds its lock. A missing lock file means a dead run (or one
/// from a version without locks).
fn is_live(dir: &Path, prefix: &str, run_id: &str) -> bool {
    let Ok(file) = File::open(dir.join(format!(".{prefix}.lock-{run_id}"))) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

/// The temporary outputs beside an output: `(run id, main file)`.
fn temporaries(dir: &Path, prefix: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let head = format!(".{prefix}.partial-");
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&head) else { continue };
        let run_id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if !run_id.is_empty() && !found.iter().any(|(id, _)| *id == run_id) {
            found.push((run_id.clone(), dir.join(format!("{head}{run_id}{ext}"))));
        }
    }
    found
}

/// Removes what dead runs to the same output left: their temporary files and lock files.
fn remove_stale(dir: &Path, prefix: &str, ext: &str, own: &str) {
    for (run_id, main) in temporaries(dir, prefix, ext) {
        if run_id != own && !is_live(dir, prefix, &run_id) {
            remove_family(&main);
            let _ = fs::remove_file(dir.join(format!(".{prefix}.lock-{run_id}")));
        }
    }
}

/// The files of a temporary output: every file whose name is the temporary's stem followed by
/// `.`, `-` or nothing (the stem holds the run id, so nothing else can match), as
/// `(file, suffix)` where the suffix maps it onto the output ([`with_suffix`]).
fn temporary_family(temp: &Path) -> Vec<(PathBuf, String)> {
    let name = temp.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let (stem, _) = split_name(temp);
    let dir = parent_of(temp);
    let mut members = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file == name {
                members.push((entry.path(), String::new()));
            } else if let Some(rest) = file.strip_prefix(&name).filter(|r| r.starts_with('-')) {
                members.push((entry.path(), rest.to_string()));
            } else if let Some(rest) = file.strip_prefix(&stem).filter(|r| r.starts_with('.')) {
                members.push((entry.path(), rest.to_string()));
            }
        }
    }
    members
}

/// The existing files of an output: the file itself and the companions its format writes, as
/// `(file, suffix)`.
/// Every file an output at `path` in `format` is made of, whether it exists or not: the output
/// and its companions, with its QGIS style; no other file may take one of these names.
pub fn family_names(path: &Path, format: &Format) -> Vec<PathBuf> {
    family_members(path, Some(format))
        .into_iter()
        .map(|(file, _)| file)
        .collect()
}

/// The output at `path` and its companions in `format` (with its style), each with the suffix
/// that names it beside the output (`""` for the output itself), whether they exist or not.
fn family_members(path: &Path, format: Option<&Format>) -> Vec<(PathBuf, String)> {
    let mut members = vec![(path.to_path_buf(), String::new())];
    let Some(format) = format else {
        return members;
    };
    for companion in format.companions().iter().chain([&STYLE_SIDECAR]) {
        let suffix = match companion {
            Companion::ReplacesExtension(s) | Companion::Appended(s) => s.to_string(),
        };
        members.push((with_suffix(path, &suffix), suffix));
    }
    members
}

/// The files of the output at `path` that exist, with their suffixes.
fn output_family(path: &Path, format: Option<&Format>) -> Vec<(PathBuf, String)> {
    let mut members = family_members(path, format);
    members.retain(|(file, _)| fs::symlink_metadata(file).is_ok());
    members
}

/// Removes a temporary output (a file, or a folder for a File Geodatabase) and every file beside
/// it that belongs to it.
fn remove_family(temp: &Path) {
    for (file, _) in temporary_family(temp) {
        if fs::symlink_metadata(&file).is_ok_and(|m| m.is_dir()) {
            let _ = fs::remove_dir_all(file);
        } else {
            let _ = fs::remove_file(file);
        }
    }
}

/// Copies the folder `from` (a File Geodatabase: files only, and folders of files) to `to`,
/// which must not exist.
fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_folder(&source, &target)?;
        } else {
            fs::copy(&source, &target).with_context(|| format!("copying {} to write into it", source.display()))?;
        }
    }
    Ok(())
}

/// Whether the vector dataset at `path` has a layer `name`; `None` if it is not a vector
/// dataset GDAL can open.
fn has_layer(path: &Path, name: &str) -> Option<bool> {
    let dataset = gdal::Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_READONLY,
            ..Default::default()
        },
    )
    .ok()?;
    Some(dataset.layer_by_name(name).is_ok())
}

/// Refuses an output that is one of the run's inputs (the same file, by device and inode, or
/// the same path when it does not exist yet), which writing would destroy.
pub fn refuse_input_as_output(output: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(out) = fs::metadata(output) else {
        return Ok(());
    };
    for (what, input) in inputs {
        if let Ok(meta) = fs::metadata(input) {
            if meta.dev() == out.dev() && meta.ino() == out.ino() {
                bail_input!(
                    "output {} is the {what} {}; writing it would destroy the input: choose another output name",
                    output.display(),
                    input.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_replace_the_extension_or_extend_the_name() {
        assert_eq!(with_suffix(Path::new("d/a.shp"), ".dbf"), Path::new("d/a.dbf"));
        assert_eq!(
            with_suffix(Path::new("d/a.gpkg"), "-journal"),
            Path::new("d/a.gpkg-journal")
        );
        assert_eq!(with_suffix(Path::new("a.b.gpkg"), ".qml"), Path::new("a.b.qml"));
        assert_eq!(split_name(Path::new(".hidden")), (".hidden".to_string(), String::new()));
    }

    #[test]
    fn temporary_names_of_long_outputs_stay_within_the_limit() {
        let stem = "é".repeat(120);
        let prefix = temporary_prefix(&stem, ".gpkg");
        let longest = format!(".{prefix}.partial-{}.shp.xml", "f".repeat(24));
        assert!(longest.len() <= MAX_NAME_BYTES, "{} bytes", longest.len());
        assert_ne!(
            temporary_prefix(&stem, ".gpkg"),
            temporary_prefix(&"é".repeat(119), ".gpkg")
        );
        assert_eq!(temporary_prefix("short", ".gpkg"), "short");
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(new_run_id(), new_run_id());
    }
}
