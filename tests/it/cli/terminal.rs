//! What a run says on a terminal and in logs: the progress bar and lines, the device chosen, a
//! closed pipe.

use std::fs;
use std::io::BufRead;
use std::io::BufReader;
use std::process::Command;
use std::process::Stdio;

use crate::support::*;

#[test]
fn device_choice_is_reported_and_a_failed_cuda_request_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = |out: &std::path::Path| {
        vec![
            "-r".to_string(),
            fixture("synthetic/colors.tif").to_str().unwrap().to_string(),
            "-m".into(),
            fixture("synthetic/colors.dlpk").to_str().unwrap().to_string(),
            "-f".into(),
            fixture("synthetic/objects.gpkg").to_str().unwrap().to_string(),
            "--layer".into(),
            "polygons".into(),
            "-o".into(),
            out.to_str().unwrap().to_string(),
        ]
    };
    // This machine has no CUDA runtime (and the default build no CUDA support): cuda fails.
    let mut args = base(&d.join("cuda.gpkg"));
    args.extend(["--device".into(), "cuda".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = run_err(&args, 2);
    assert!(
        line.contains("--device cuda cannot be used") && line.contains("--device auto"),
        "{line}"
    );
    assert!(!d.join("cuda.gpkg").exists());
    // auto falls back to the CPU, says so, and the summary names the provider that ran.
    let mut args = base(&d.join("auto.gpkg"));
    let summary = d.join("summary.json");
    args.extend([
        "--device".into(),
        "auto".into(),
        "--summary-json".into(),
        summary.to_str().unwrap().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CUDA is not available") && stderr.contains("running on the CPU"),
        "{stderr}"
    );
    let s: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["execution_provider"], "CPUExecutionProvider");
    assert_eq!(s["objects"], 16);
    assert_eq!(s["classified"], 16);
    assert_eq!(s["labels"]["red"], 3);
    assert!(s["peak_rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(s["seconds"]["inference"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_progress_bar_shows_on_a_terminal_only_and_never_with_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_classify-objects");
    let command = |out: &str, extra: &str| {
        format!(
            "{exe} -r {} -m {} -f {} -o {} {extra}",
            fixture("real/RGB.byte.tif").display(),
            fixture("real/textline_cls.dlpk").display(),
            fixture("real/RGB.byte.bench_points_2000.gpkg").display(),
            dir.path().join(out).display()
        )
    };
    // `script` runs the command on a pseudo-terminal, as a person at a shell would.
    let on_terminal = |cmd: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = on_terminal(command("tty.gpkg", ""));
    assert!(
        shown.contains("/2000 objects ("),
        "a bar on a terminal: {}",
        shown.chars().take(300).collect::<String>()
    );
    assert!(
        shown.contains("2000 object(s), 2000 classified"),
        "then the summary line"
    );
    let quiet = on_terminal(command("quiet.gpkg", "--quiet"));
    assert!(
        !quiet.contains("objects (") && !quiet.contains("classified"),
        "--quiet prints nothing: {quiet}"
    );
    // Not a terminal (a pipe, a CI log): no bar, the summary line only. (Plain progress lines
    // come every --progress-interval seconds; an hour keeps a slow, loaded machine from
    // printing one, which is right but not what this checks.)
    let piped = run_ok(
        &command("pipe.gpkg", "--progress-interval 3600")
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("objects (") && stderr.contains("2000 object(s)"),
        "{stderr}"
    );
}

// 20. A closed pipe ends the output quietly.
#[test]
fn a_closed_pipe_is_not_a_crash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(["inspect", "--json", fixture("real/textline_cls.dlpk").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "{");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.status.code() == Some(0) || output.status.code().is_none(),
        "{:?}",
        output.status
    );
}

// 24. Progress in logs: plain lines, with the shard's own total.
#[test]
fn progress_lines_for_logs_count_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.gpkg");
    let output = run_owned_ok(&slow_args(
        &bench_points(),
        &out,
        &["--shard", "1/2", "--progress-interval", "1"],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("progress:")).collect();
    assert!(!lines.is_empty(), "{stderr}");
    // Counts of the shard's objects, then what the run does once they are scored.
    let (last, counts) = lines.split_last().unwrap();
    assert!(counts.iter().all(|l| l.contains("/1000 objects")), "{lines:?}");
    assert!(
        last.ends_with("progress: 1000 objects scored; finishing the output"),
        "{lines:?}"
    );
    assert_eq!(read_rows(&out, None).len(), 1000);
}

// #23.8: closed standard streams never turn into a panic (exit 101): the exit status is the
// run's own.
#[test]
fn closed_standard_streams_leave_the_exit_status_to_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let colors = |out: &str, extra: &[&str]| {
        let mut all = vec![
            "-r".to_string(),
            arg(colors_tif()),
            "-m".into(),
            arg(colors_dlpk()),
            "-o".into(),
            arg(d.join(out)),
        ];
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    for (args, expected) in [
        // Success with a summary on stdout, progress and notes on stderr.
        (colors("a.csv", &["--summary-json", "-", "--progress-interval", "1"]), 0),
        // A failure (exit 2) whose error line cannot be written.
        (colors("b.csv", &["--bands", "9,9,9"]), 2),
        (vec!["inspect".to_string(), arg(fixture("real/textline_cls.dlpk"))], 0),
        (vec!["completions".to_string(), "bash".to_string()], 0),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Both pipes closed before the program writes anything.
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}
