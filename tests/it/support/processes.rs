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

/// Waits until a run in `dir` has committed at least `rows` rows (at most three minutes: rows
/// are committed a window at a time, about 10 s of work, which a loaded machine stretches).
/// The first window holds one batch per chip worker and the next may hold the rest of a short
/// run, so a test that must stop a run midway waits for its first row only: waiting for 20
/// rows failed on a quiet machine, where a 5-second run went from 1 committed row to finished.
pub fn wait_for_rows(dir: &Path, rows: usize) {
    let start = Instant::now();
    while partial_rows(dir) < rows {
        assert!(
            start.elapsed() < Duration::from_secs(180),
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

/// Sends `signal` (a name `kill` knows: STOP, CONT, TERM, ...) to the process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A run whose standard error is read while it runs, so a test can wait for what it says.
pub struct Watched {
    child: Child,
    said: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Watched {
    /// Starts the program with `args`, its standard error collected as it is written.
    pub fn spawn(args: &[String]) -> Watched {
        use std::io::Read;
        let mut child = spawn(args);
        let mut stderr = child.stderr.take().unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = said.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buffer) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Watched { child, said, reader }
    }

    /// The run's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most a minute) until the run has said `needle` on its standard error.
    pub fn wait_for_saying(&self, needle: &str) {
        let start = Instant::now();
        while !self.said.lock().unwrap().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the run never said {needle:?}: {}",
                self.said.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the run to end; its exit code and everything it said on standard error.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let said = self.said.lock().unwrap().clone();
        (status.code(), said)
    }
}
