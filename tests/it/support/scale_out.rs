//! Runs of the real model on the 2,000 real points, as the scale-out tests make them, and the
//! outputs they compare.

use std::path::Path;

use super::{classify_args, fixture, read_rows, run_owned, run_owned_ok};

/// One row: geometry as WKB and every field value as text, by name.
pub type TableRow = (Option<Vec<u8>>, Vec<(String, Option<String>)>);

pub fn args_for(out: &Path, extra: &[&str]) -> Vec<String> {
    let (raster, model) = (fixture("real/RGB.byte.tif"), fixture("real/textline_cls.dlpk"));
    classify_args(
        &raster,
        &model,
        Some(&fixture("real/RGB.byte.bench_points_2000.gpkg")),
        out,
        extra,
    )
}

pub fn go(args: Vec<String>) {
    run_owned_ok(&args);
}

/// Every row's geometry and field values.
pub fn table(path: &Path) -> Vec<TableRow> {
    read_rows(path, None)
        .into_iter()
        .map(|r| {
            let fields = r.fields.keys().map(|k| (k.clone(), r.text(k))).collect();
            (r.wkb, fields)
        })
        .collect()
}

/// A slow shard run of the 2000 points into `out` (the real model, one chip per batch,
/// augmentation), with `extra` flags.
pub fn slow(out: &Path, extra: &[&str]) -> Vec<String> {
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

/// `merge SHARDS... -o OUT [extra]`, returning the process output.
pub fn merge(shards: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["merge".to_string()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap().to_string()));
    args.extend(["-o".to_string(), out.to_str().unwrap().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run_owned(&args)
}

/// The one error line of a failed merge (exit 2).
pub fn merge_error(shards: &[&Path], out: &Path) -> String {
    let output = merge(shards, out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!out.exists());
    stderr
}
