//! Deterministic shards, merge, and resume on real data.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn args_for(out: &Path, extra: &[&str]) -> Vec<String> {
    let (raster, model) = (fixture("real/RGB.byte.tif"), fixture("real/textline_cls.dlpk"));
    classify_args(
        &raster,
        &model,
        Some(&fixture("real/RGB.byte.bench_points_2000.gpkg")),
        out,
        extra,
    )
}

fn go(args: Vec<String>) {
    run_owned_ok(&args);
}

/// One row: geometry as WKB and every field value as text, by name.
type TableRow = (Option<Vec<u8>>, Vec<(String, Option<String>)>);

/// Every row's geometry and field values.
fn table(path: &Path) -> Vec<TableRow> {
    read_rows(path, None)
        .into_iter()
        .map(|r| {
            let fields = r.fields.keys().map(|k| (k.clone(), r.text(k))).collect();
            (r.wkb, fields)
        })
        .collect()
}

#[test]
fn four_shards_merged_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let single = d.join("single.gpkg");
    go(args_for(&single, &["--model-arg", "batch_size=16"]));
    let mut shards = Vec::new();
    for i in 0..4 {
        let out = d.join(format!("shard{i}.gpkg"));
        go(args_for(
            &out,
            &["--model-arg", "batch_size=16", "--shard", &format!("{i}/4")],
        ));
        let rows = read_rows(&out, None);
        assert_eq!(rows.len(), 500, "shard {i} holds every fourth feature");
        shards.push(out);
    }
    let merged = d.join("merged.gpkg");
    let mut args = vec!["merge".to_string()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap().to_string()));
    args.extend(["-o".to_string(), merged.to_str().unwrap().to_string()]);
    go(args);
    let (a, b) = (table(&single), table(&merged));
    assert_eq!(a.len(), 2000);
    assert!(a == b, "the merged shards are the single run, row for row");
    assert_eq!(field_names(&merged), field_names(&single));

    // Shards out of order are refused, not silently merged wrong.
    let mut args = vec!["merge".to_string()];
    args.extend(
        [&shards[1], &shards[0], &shards[2]]
            .iter()
            .map(|p| p.to_str().unwrap().to_string()),
    );
    args.extend(["-o".to_string(), d.join("bad.gpkg").to_str().unwrap().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&refs);
    let merged_wrong = out.status.success() && table(&d.join("bad.gpkg")) == a;
    assert!(!merged_wrong, "three shards out of order cannot give the single run");
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
    // Kill it once some rows are committed (commits happen at least every 2 s).
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "no rows were committed");
        std::thread::sleep(Duration::from_millis(100));
        let temporary = files_in(d)
            .into_iter()
            .find(|f| f.contains(".partial-") && f.ends_with(".gpkg"));
        let committed = temporary.and_then(|t| {
            // Read-only probing a live database is fine; a failed open just means "not yet".
            let ds = gdal::Dataset::open(d.join(t)).ok()?;
            use gdal::vector::LayerAccess;
            let count = ds.layer(0).ok()?.feature_count();
            Some(count)
        });
        if committed.is_some_and(|n| n > 0) {
            break;
        }
    }
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
        "the killed run had committed part of the work ({done} rows after {:?})",
        started.elapsed()
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

/// `merge SHARDS... -o OUT [extra]`, returning the process output.
fn merge(shards: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["merge".to_string()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap().to_string()));
    args.extend(["-o".to_string(), out.to_str().unwrap().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run_owned(&args)
}

/// The one error line of a failed merge (exit 2).
fn merge_error(shards: &[&Path], out: &Path) -> String {
    let output = merge(shards, out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!out.exists());
    stderr
}

#[test]
fn merge_refuses_what_is_not_one_whole_run_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shard = |i: usize, n: usize, extra: &[&str]| {
        let out = d.join(format!("s{i}of{n}{}.gpkg", extra.len()));
        let mut all = vec!["--shard".to_string(), format!("{i}/{n}")];
        all.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        go(args_for(&out, &refs));
        out
    };
    let (s0, s1, s2) = (shard(0, 3, &[]), shard(1, 3, &[]), shard(2, 3, &[]));
    let out = d.join("merged.gpkg");
    let line = merge_error(&[&s0, &s2], &out);
    assert!(line.contains("shard 1/3 is missing"), "{line}");
    let line = merge_error(&[&s0, &s1], &out);
    assert!(line.contains("shard 2/3 is missing"), "{line}");
    let line = merge_error(&[&s0, &s0, &s1, &s2], &out);
    assert!(line.contains("both shard 0/3"), "{line}");
    let line = merge_error(&[&s1, &s0, &s2], &out);
    assert!(line.contains("given in position 0"), "{line}");
    // A shard of another run: other options (a different label field) or another N.
    let foreign = shard(1, 3, &["--class-label-field", "Other"]);
    let line = merge_error(&[&s0, &foreign, &s2], &out);
    assert!(line.contains("another run") && line.contains("s1of32"), "{line}");
    // A plain output is not a shard.
    let plain = d.join("plain.gpkg");
    go(args_for(&plain, &[]));
    let line = merge_error(&[&plain], &out);
    assert!(line.contains("not the output of a --shard run"), "{line}");
    // A shard whose rows were tampered with.
    let copy = d.join("cut.gpkg");
    std::fs::copy(&s1, &copy).unwrap();
    let status = Command::new("ogrinfo")
        .arg(&copy)
        .args(["-q", "-sql", "DELETE FROM s1of30 WHERE fid = 5"])
        .status()
        .unwrap();
    assert!(status.success());
    let line = merge_error(&[&s0, &copy, &s2], &out);
    assert!(line.contains("incomplete") && line.contains("cut.gpkg"), "{line}");
}

#[test]
fn merged_output_has_the_single_runs_layer_name_style_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // GeoPackage: layer name and style as a single run to the merged name.
    let single = d.join("classified.gpkg");
    go(args_for(&single, &[]));
    let shards: Vec<_> = (0..2)
        .map(|i| {
            let out = d.join(format!("shard_{i}.gpkg"));
            go(args_for(&out, &["--shard", &format!("{i}/2")]));
            out
        })
        .collect();
    let merged_dir = d.join("merged");
    std::fs::create_dir(&merged_dir).unwrap();
    let merged = merged_dir.join("classified.gpkg");
    let refs: Vec<&Path> = shards.iter().map(|p| p.as_path()).collect();
    assert!(merge(&refs, &merged, &[]).status.success());
    let layer_names = |p: &Path| {
        let ds = gdal::Dataset::open(p).unwrap();
        ds.layers()
            .map(|l| gdal::vector::LayerAccess::name(&l))
            .collect::<Vec<_>>()
    };
    assert_eq!(layer_names(&merged), vec!["classified"]);
    assert_eq!(layer_names(&merged), layer_names(&single));
    assert!(table(&merged) == table(&single));
    assert_eq!(
        std::fs::read_to_string(merged_dir.join("classified.qml")).unwrap(),
        std::fs::read_to_string(d.join("classified.qml")).unwrap()
    );
    // CSV: byte for byte.
    let single = d.join("table.csv");
    go(args_for(&single, &[]));
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let out = d.join(format!("part_{i}.csv"));
            go(args_for(&out, &["--shard", &format!("{i}/3")]));
            assert!(d.join(format!("part_{i}.shard.json")).exists());
            out
        })
        .collect();
    let merged = merged_dir.join("table.csv");
    let refs: Vec<&Path> = shards.iter().map(|p| p.as_path()).collect();
    assert!(merge(&refs, &merged, &[]).status.success());
    assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(&single).unwrap());
    assert!(
        !merged_dir.join("table.shard.json").exists(),
        "the merged output is not a shard"
    );
}

#[test]
fn shards_of_items_processed_separately_merge_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two overlapping tiles: features on the overlap have two rows, the others one.
    let raster = fixture("real/RGB.byte.tif");
    write_tile(&raster, 0, 0, 500, 500, &d.join("a.tif"));
    write_tile(&raster, 300, 200, 491, 518, &d.join("b.tif"));
    let base = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "-r".to_string(),
            d.join("a.tif").display().to_string(),
            "-r".into(),
            d.join("b.tif").display().to_string(),
            "-m".into(),
            fixture("real/textline_cls.dlpk").display().to_string(),
            "-f".into(),
            fixture("real/RGB.byte.bench_points_2000.gpkg").display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--processing-mode".into(),
            "PROCESS_ITEMS_SEPARATELY".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let single = d.join("all.gpkg");
    go(base(&single, &[]));
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let out = d.join(format!("p{i}.gpkg"));
            go(base(&out, &["--shard", &format!("{i}/3")]));
            out
        })
        .collect();
    let merged = d.join("m").join("all.gpkg");
    std::fs::create_dir(d.join("m")).unwrap();
    let refs: Vec<&Path> = shards.iter().map(|p| p.as_path()).collect();
    assert!(merge(&refs, &merged, &[]).status.success());
    let (a, b) = (table(&single), table(&merged));
    assert!(a.len() > 2000, "some features have two rows: {}", a.len());
    assert!(a == b, "merged rows equal the single run's");
}

/// A slow shard run of the 2000 points into `out` (the real model, one chip per batch,
/// augmentation), with `extra` flags.
fn slow(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--model-arguments",
        "batch_size 1;test_time_augmentation true",
        "--threads",
        "1",
        "--intra-op-threads",
        "1",
    ];
    all.extend_from_slice(extra);
    args_for(out, &all)
}

/// Rows in the newest temporary output in `dir` (read-only, tolerating a file in flux).
fn partial_rows(dir: &Path) -> usize {
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
    let started = Instant::now();
    while partial_rows(d) < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never committed rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    assert!((100..2000).contains(&kept), "{kept} rows kept");
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

/// Whether this machine can make PID namespaces (root, util-linux `unshare`).
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success())
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
    let started = Instant::now();
    while partial_rows(d) < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never committed rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
