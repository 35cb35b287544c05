//! Runs of the program that tests watch, stop or expect to fail: spawned runs, waits on what
//! they write (the temporary output, its committed rows), and failures that leave nothing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{files_in, run_err};

/// Runs the program with `args`, expecting exit `code`; returns its error line.
pub fn err(args: &[String], code: i32) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_err(&refs, code)
}

/// Starts the program with `args`, its output captured.
pub fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a run writes its temporary output in `dir` (at most a minute).
pub fn wait_for_temporary(dir: &Path) {
    let start = Instant::now();
    while !files_in(dir).iter().any(|f| f.contains(".partial-")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rows committed in the temporary GeoPackage output in `dir` (read-only, tolerating a file in
/// flux: a failed open is 0).
pub fn partial_rows(dir: &Path) -> usize {
    let Some(partial) = files_in(dir)
        .into_iter()
        .find(|f| f.contains(".partial-") && f.ends_with(".gpkg"))
    else {
        return 0;
    };
    let Ok(ds) = gdal::Dataset::open(dir.join(partial)) else {
        return 0;
    };
    ds.layer(0)
        .map(|l| gdal::vector::LayerAccess::feature_count(&l) as usize)
        .unwrap_or(0)
}

/// Waits until a run in `dir` has committed at least `rows` rows (at most a minute).
pub fn wait_for_rows(dir: &Path, rows: usize) {
    let start = Instant::now();
    while partial_rows(dir) < rows {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never committed {rows} rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a classification expected to fail with exit 2, writing (unless `-o` is given) to
/// `dir/out.gpkg`; returns the error line after checking that `dir` holds exactly the files it
/// held before: no output, no temporary file.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let before = files_in(dir);
    let out = dir.join("out.gpkg");
    let mut full: Vec<&str> = args.to_vec();
    let out_str = out.to_str().unwrap().to_string();
    if !args.contains(&"-o") {
        full.extend(["-o", &out_str]);
    }
    let line = run_err(&full, 2);
    assert_eq!(files_in(dir), before, "nothing may be left behind after: {line}");
    line
}

/// Checks that an error line mentions each of `needles`.
pub fn assert_mentions(line: &str, needles: &[&str]) {
    for needle in needles {
        assert!(line.contains(needle), "error line should mention {needle:?}: {line}");
    }
}
