//! Signals and kills: the previous output is kept, nothing half-written is left.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::process::Stdio;

use crate::support::*;

/// A slow run (the real model, one chip per batch, augmentation) into `out`.
fn slow_run(out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args([
            "-r",
            fixture("real/RGB.byte.tif").to_str().unwrap(),
            "-m",
            fixture("real/textline_cls.dlpk").to_str().unwrap(),
            "-f",
            fixture("real/RGB.byte.bench_points_2000.gpkg").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--overwrite",
            "--threads",
            "1",
            "--intra-op-threads",
            "1",
            "--model-arguments",
            "batch_size 1;test_time_augmentation true",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

// 7. A signal during a run without features stops it and leaves the previous output.
#[test]
fn a_signal_stops_a_whole_image_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let images = d.join("images");
    fs::create_dir(&images).unwrap();
    for i in 0..300 {
        fs::copy(
            fixture("real/dummy_recognition_map.tif"),
            images.join(format!("img{i:03}.tif")),
        )
        .unwrap();
    }
    let out = d.join("labels.csv");
    let previous = previous_output(&out);
    let mut child = spawn(&args(
        &images,
        &real_model(),
        None,
        &out,
        &[
            "--overwrite",
            "--threads",
            "1",
            "--intra-op-threads",
            "1",
            "--model-arguments",
            "batch_size 1;test_time_augmentation true",
        ],
    ));
    wait_for_temporary(d);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(143));
    assert_eq!(fs::read(&out).unwrap(), previous);
    assert_eq!(files_in(d), vec!["images", "labels.csv"]);
}

#[test]
fn a_signal_stops_the_run_and_keeps_the_previous_output() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = d.join("result.gpkg");
        let previous = previous_output(&out);
        let child = slow_run(&out);
        wait_for_temporary(d);
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_eq!(
            fs::read(&out).unwrap(),
            previous,
            "SIG{signal} left the previous output"
        );
        assert_eq!(files_in(d), vec!["result.gpkg"], "no temporary file after SIG{signal}");
    }
}

#[test]
fn a_killed_run_never_corrupts_the_output_and_its_leftovers_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("result.gpkg");
    let previous = previous_output(&out);
    let mut child = slow_run(&out);
    wait_for_temporary(d);
    child.kill().unwrap(); // SIGKILL: nothing can be cleaned up by the process itself
    child.wait().unwrap();
    assert_eq!(fs::read(&out).unwrap(), previous);
    // The next run to the same output removes the dead run's temporary file.
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--overwrite", "--layer", "polygons"],
    ));
    assert_eq!(files_in(d), vec!["result.gpkg", "result.qml"]);
    assert_eq!(read_rows(&out, None).len(), 16);
}
