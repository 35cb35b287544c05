//! Where an output goes and how it gets there without ever being half-written: everything is
//! written to a hidden temporary file beside the output (`.<stem>.partial-<pid><ext>`), which
//! [`OutputTarget::commit`] renames over the output at the end. Formats made of several files
//! (a Shapefile and its sidecars, a GeoPackage and its SQLite journals) move as one family.
//!
//! Temporary files in use are registered here, so that a process that must exit at once (a
//! second signal) can remove them with [`remove_registered_temporaries`]. A killed run's
//! temporary file is removed by the next run to the same output, or taken over by `--resume`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use gdal::vector::LayerAccess;
use gdal::Dataset;

use crate::bail_input;
use crate::output::schema::SOURCE_ID_FIELD;

/// Temporary outputs being written by this process.
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register_temporary(path: &Path) {
    if let Ok(mut list) = TEMPORARIES.lock() {
        list.push(path.to_path_buf());
    }
}

fn unregister_temporary(path: &Path) {
    if let Ok(mut list) = TEMPORARIES.lock() {
        list.retain(|p| p != path);
    }
}

/// Removes every temporary output this process is writing (and its family), for a process that
/// exits without unwinding.
pub fn remove_registered_temporaries() {
    let paths = TEMPORARIES.lock().map(|l| l.clone()).unwrap_or_default();
    for path in paths {
        remove_with_sidecars(&path);
    }
}

/// The final output path and the temporary file written first. Formats made of several files
/// (a Shapefile's `.shp`, `.shx`, `.dbf`, `.prj`...) are handled as a family: every file named
/// like the output with another extension moves with it.
#[derive(Debug)]
pub struct OutputTarget {
    /// Where the result goes.
    pub path: PathBuf,
    temp: PathBuf,
    /// Whether rows are added to an existing output (copied to the temporary file first).
    pub appending: bool,
    committed: bool,
}

impl OutputTarget {
    /// Checks that `path` may be written (exists only with `overwrite` or `append`, folder
    /// exists) and picks a temporary name beside it with the same extension. With `append` and
    /// an existing output, the output is copied to the temporary name, to be appended to.
    pub fn new(path: &Path, overwrite: bool, append: bool) -> Result<OutputTarget> {
        OutputTarget::with_resume(path, overwrite, append, false)
    }

    /// As [`OutputTarget::new`]; with `resume`, the temporary output of a killed run to the same
    /// output (or else the existing output) is taken over to be continued.
    pub fn with_resume(path: &Path, overwrite: bool, append: bool, resume: bool) -> Result<OutputTarget> {
        if path.is_dir() {
            bail_input!(
                "output {} is a folder; give a file name such as result.gpkg",
                path.display()
            );
        }
        if path.exists() && !overwrite && !append && !resume {
            bail_input!(
                "output {} already exists; pass --overwrite to replace it, --append to add to it, or choose another name",
                path.display()
            );
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bail_input!("output folder {} does not exist; create it first", dir.display());
        }
        let (stem, ext) = split_name(path);
        let temp = dir.join(format!(".{stem}.partial-{}{ext}", std::process::id()));
        let adopted = resume && adopt_stale_temporary(&dir, &stem, &ext, &temp)?;
        remove_stale_temporaries(&dir, &stem, &ext);
        register_temporary(&temp);
        let appending = adopted || ((append || resume) && path.exists());
        let target = OutputTarget {
            path: path.to_path_buf(),
            temp,
            appending,
            committed: false,
        };
        if appending && !adopted {
            for (file, suffix) in family(&target.path) {
                let copy = with_suffix(&target.temp, &suffix);
                fs::copy(&file, &copy).with_context(|| format!("copying {} to append to it", file.display()))?;
            }
        }
        Ok(target)
    }

    /// The temporary file to write.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Moves the finished temporary file (and its family) over the output. Files of the old
    /// output's family that the new one does not have (an old `.qix` index) are removed first.
    pub fn commit(mut self) -> Result<()> {
        let new: Vec<String> = family(&self.temp).into_iter().map(|(_, suffix)| suffix).collect();
        for (file, suffix) in family(&self.path) {
            if !new.contains(&suffix) {
                fs::remove_file(&file).with_context(|| format!("removing the old {}", file.display()))?;
            }
        }
        for (file, suffix) in family(&self.temp) {
            let target = with_suffix(&self.path, &suffix);
            fs::rename(&file, &target).with_context(|| format!("moving {} to {}", file.display(), target.display()))?;
        }
        self.committed = true;
        unregister_temporary(&self.temp);
        Ok(())
    }
}

impl Drop for OutputTarget {
    fn drop(&mut self) {
        if !self.committed {
            remove_with_sidecars(&self.temp);
            unregister_temporary(&self.temp);
        }
    }
}

/// The files that make up a Shapefile besides the `.shp`.
const SHAPEFILE_SIDECARS: &[&str] = &[
    ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml", ".qmd",
];

/// `(stem, ".ext")` of a path's file name.
fn split_name(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_string(), format!(".{ext}")),
        None => (name, String::new()),
    }
}

/// The file `path` with its extension replaced by `suffix` (which starts with the dot).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let (stem, _) = split_name(path);
    path.with_file_name(format!("{stem}{suffix}"))
}

/// The files of `path`'s family, as (file, suffix from the first dot after the stem): `path`
/// itself, its SQLite journals, and for a Shapefile its sidecar files.
fn family(path: &Path) -> Vec<(PathBuf, String)> {
    let (stem, ext) = split_name(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut members = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix(&stem) {
                // Only real siblings of a multi-file format, not "<stem>.partial-..." temporaries.
                // SQLite's journals (`.gpkg-journal`, `-wal`, `-shm`) belong to the file: a hot
                // journal must move with it, or the interrupted transaction cannot be rolled back.
                let journal = rest.strip_prefix(ext.as_str()).is_some_and(|j| j.starts_with('-'));
                let sidecar = ext == ".shp" && SHAPEFILE_SIDECARS.contains(&rest.to_ascii_lowercase().as_str());
                if rest.starts_with('.') && !rest.starts_with(".partial-") && (rest == ext || journal || sidecar) {
                    members.push((entry.path(), rest.to_string()));
                }
            }
        }
    }
    members
}

/// Takes over the temporary output of a killed run (the newest, if several) by renaming it (and
/// its family) to `temp`; returns whether there was one.
fn adopt_stale_temporary(dir: &Path, stem: &str, ext: &str, temp: &Path) -> Result<bool> {
    let prefix = format!(".{stem}.partial-");
    let mut stale: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(ext)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            stale.push((modified, entry.path()));
        }
    }
    stale.sort();
    let Some((_, newest)) = stale.pop() else {
        return Ok(false);
    };
    for (file, suffix) in family(&newest) {
        fs::rename(&file, with_suffix(temp, &suffix)).with_context(|| format!("taking over {}", file.display()))?;
    }
    Ok(true)
}

/// The input feature ids (`SourceOID`) already written to the output being continued.
pub fn written_source_ids(target: &OutputTarget, layer_name: &str) -> Result<std::collections::HashSet<u64>> {
    // Opened for update: a killed run may have left a hot journal that SQLite must roll back.
    let options = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
        ..Default::default()
    };
    let dataset = Dataset::open_ex(target.temp_path(), options)
        .with_context(|| format!("reading {} to resume it", target.path.display()))?;
    let mut layer = match dataset.layer_by_name(layer_name) {
        Ok(layer) => layer,
        Err(_) => dataset.layer(0)?,
    };
    let Ok(index) = layer.defn().field_index(SOURCE_ID_FIELD) else {
        bail_input!(
            "output {} has no {SOURCE_ID_FIELD} column to resume from; resume only runs with --features",
            target.path.display()
        );
    };
    let mut ids = std::collections::HashSet::new();
    for feature in layer.features() {
        if let Some(id) = feature.field_as_integer64(index)? {
            ids.insert(id as u64);
        }
    }
    Ok(ids)
}

/// Removes temporary outputs (`.<stem>.partial-<pid><ext>`) left by runs that were killed: those
/// whose process no longer exists (checked through /proc; elsewhere nothing is removed).
fn remove_stale_temporaries(dir: &Path, stem: &str, ext: &str) {
    let prefix = format!(".{stem}.partial-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(ext)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists() {
            remove_with_sidecars(&entry.path());
        }
    }
}

/// Removes a file and its family: SQLite journals, a Shapefile's sidecar files.
pub fn remove_with_sidecars(path: &Path) {
    for (file, _) in family(path) {
        let _ = fs::remove_file(file);
    }
}
