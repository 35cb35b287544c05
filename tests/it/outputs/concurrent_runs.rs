//! Runs that write the same output at the same time take turns: the output's lock makes a second
//! writer wait for the first (saying who holds it), so concurrent appends keep every row, and a
//! second new output never replaces the first.

use std::fs;

use crate::support::*;

#[test]
fn concurrent_appends_to_one_geopackage_keep_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("shared.gpkg");
    run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &[]));
    assert_eq!(read_rows(&out, None).len(), 9);
    // Two appends at once: the first is held (SIGSTOP) mid-run until the second is waiting for it,
    // however fast or loaded the machine.
    let first = Watched::spawn(&slow_args(&footprints(), &out, &["--append"]));
    let first_pid = first.pid();
    wait_for_temporary(d);
    signal(first_pid, "STOP");
    let second = Watched::spawn(&slow_args(&footprints(), &out, &["--append"]));
    second.wait_for_saying("is being written by another run");
    signal(first_pid, "CONT");
    let first = first.finish();
    let (code, waited) = second.finish();
    for (code, said) in [&first, &(code, waited.clone())] {
        assert_eq!(*code, Some(0), "{said}");
    }
    assert!(
        waited.contains("is being written by another run") && waited.contains(&format!("pid {first_pid} on ")),
        "the second run says whom it waits for: {waited}"
    );
    assert_eq!(read_rows(&out, None).len(), 27, "no run's rows are lost");
    assert_eq!(
        files_in(d),
        vec!["shared.gpkg", "shared.qml"],
        "no lock or temporary left"
    );
}

#[test]
fn a_second_run_to_the_same_output_waits_and_never_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("shared.gpkg");
    let first = Watched::spawn(&slow_args(&footprints(), &out, &[]));
    let first_pid = first.pid();
    wait_for_temporary(d);
    signal(first_pid, "STOP");
    let second = Watched::spawn(&args(&real_raster(), &real_model(), Some(&bench_points()), &out, &[]));
    second.wait_for_saying("waiting for it to finish");
    signal(first_pid, "CONT");
    let (code, said) = first.finish();
    assert_eq!(code, Some(0), "{said}");
    let kept = fs::read(&out).unwrap();
    let (code, stderr) = second.finish();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("waiting for it to finish") && stderr.contains("already has a layer shared"),
        "{stderr}"
    );
    assert_eq!(fs::read(&out).unwrap(), kept, "the first result is kept");
    assert_eq!(read_rows(&out, None).len(), 9);
}

#[test]
fn side_outputs_named_like_the_output_have_locks_of_their_own() {
    // A Slurm task writes shard_000.gpkg with --summary-json shard_000.json: one run, three
    // outputs of one stem, none waiting for another.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("shard_000.gpkg");
    let (json, html) = (d.join("shard_000.json"), d.join("shard_000.html"));
    let mut extra = vec![
        "--summary-json",
        json.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ];
    extra.push("--resume");
    let mut child = spawn(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &extra));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the run waited for itself: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success() && !stderr.contains("waiting"), "{stderr}");
    assert_eq!(read_rows(&out, None).len(), 9);
    assert!(json.exists() && html.exists());
}
