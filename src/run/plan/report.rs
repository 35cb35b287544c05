//! The report part of the plan: what is said about the run and where — the JSON summary, the
//! HTML report and its gallery, the truth comparison and its gate, progress on stderr.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::bail_input;
use crate::cli::ClassifyArgs;
use crate::output::target;
use crate::report::gallery::{DEFAULT_CHIPS_PER_CLASS, MAX_CHIPS_PER_CLASS};

/// Where `--summary-json` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryTarget {
    /// Standard output (`--summary-json -`).
    Stdout,
    /// A file, written whole or not at all.
    File(PathBuf),
}

impl SummaryTarget {
    /// The file, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SummaryTarget::File(path) => Some(path),
            SummaryTarget::Stdout => None,
        }
    }
}

/// What is said about the run.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    /// Where to write the JSON summary.
    pub summary_json: Option<SummaryTarget>,
    /// Where to write the HTML report.
    pub html: Option<PathBuf>,
    /// Objects per class in the report's gallery.
    pub chips_per_class: usize,
    /// Field of the features holding the expected class.
    pub truth_field: Option<String>,
    /// Accuracy below which the run fails (exit 3).
    pub min_accuracy: Option<f64>,
    /// Seconds between plain progress lines when stderr is not a terminal.
    pub progress_interval: u64,
}

impl ReportPlan {
    /// Checks the report flags of `args`; `output` is the run's output, which none of these
    /// files may be.
    pub fn from_args(args: &ClassifyArgs, output: &[PathBuf]) -> Result<ReportPlan> {
        if args.min_accuracy.is_some() && args.truth_field.is_none() {
            bail_input!("--min-accuracy needs --truth-field (the field with the expected class)");
        }
        if args.truth_field.is_some() && args.features.is_none() {
            bail_input!("--truth-field compares with a field of --features; give --features");
        }
        let summary_json = match &args.summary_json {
            Some(path) if path.as_os_str() == "-" => Some(SummaryTarget::Stdout),
            Some(path) => Some(SummaryTarget::File(check_side_output(path, "--summary-json", output)?)),
            None => None,
        };
        let html = args
            .report
            .as_deref()
            .map(|path| check_side_output(path, "--report", output))
            .transpose()?;
        if let (Some(SummaryTarget::File(json)), Some(html)) = (&summary_json, &html) {
            if same_place(json, html) {
                bail_input!(
                    "--summary-json and --report both name {}; give each its own file",
                    html.display()
                );
            }
        }
        let chips_per_class = match (args.report_chips, &html) {
            (Some(_), None) => bail_input!("--report-chips sets the gallery of --report; give --report FILE.html"),
            (Some(n), Some(_)) if n > MAX_CHIPS_PER_CLASS => {
                bail_input!("--report-chips {n} is more than {MAX_CHIPS_PER_CLASS}; ask for fewer objects per class")
            }
            (n, _) => n.unwrap_or(DEFAULT_CHIPS_PER_CLASS),
        };
        Ok(ReportPlan {
            summary_json,
            html,
            chips_per_class,
            truth_field: args.truth_field.clone(),
            min_accuracy: args.min_accuracy.map(|f| f.0),
            progress_interval: args.progress_interval,
        })
    }
}

/// Whether `a` and `b` name the same file: the same name in the same folder (however spelled).
fn same_place(a: &Path, b: &Path) -> bool {
    let folder = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
    };
    a.file_name() == b.file_name() && folder(a) == folder(b)
}

/// Checks that a file written after the run (`--summary-json`, `--report`) can be written: its
/// name is a file's, its folder exists, it is not a folder, and it is not the output nor one of
/// the files the output is made of (`output`: a Shapefile's `.dbf`, the `.qml` style).
fn check_side_output(path: &Path, flag: &str, output: &[PathBuf]) -> Result<PathBuf> {
    target::check_name(path, false, flag)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail_input!(
            "{flag} {}: folder {} does not exist; create it first",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail_input!("{flag} {} is a folder; give a file name", path.display());
    }
    let readonly = std::fs::metadata(dir)
        .map(|m| m.permissions().readonly())
        .unwrap_or(false);
    if readonly || writable_probe(dir).is_err() {
        bail_input!(
            "{flag} {}: folder {} is not writable; choose another place",
            path.display(),
            dir.display()
        );
    }
    if same_place(path, &output[0]) {
        bail_input!("{flag} {} is the output itself; give it another name", path.display());
    }
    if let Some(member) = output[1..].iter().find(|member| same_place(path, member)) {
        bail_input!(
            "{flag} {} is a file of the output {} (its {}); give it another name",
            path.display(),
            output[0].display(),
            member
                .extension()
                .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()))
        );
    }
    Ok(path.to_path_buf())
}

/// Creates and removes a probe file in `dir`, to learn early whether it is writable.
fn writable_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".classify-objects-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)
}
