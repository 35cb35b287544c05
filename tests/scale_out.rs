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
