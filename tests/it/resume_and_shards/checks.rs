//! `--resume` and `merge` check what they continue or join (#24.3, .6, .15): the committed rows
//! must be the first rows the run writes (by source id), the output must have been written by
//! the same shard of the same run (inputs by content, not by path), and records are checked when
//! read; a merge of shards of several runs names the odd ones out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A run of the colour model on the synthetic polygons into `out`, recording itself.
fn colours(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--resume"];
    all.extend_from_slice(extra);
    polygons(out, &all)
}

fn sql(gpkg: &Path, statement: &str) {
    let status = Command::new("ogrinfo")
        .arg(gpkg)
        .args(["-q", "-sql", statement])
        .status()
        .unwrap();
    assert!(status.success(), "{statement}");
}

#[test]
fn resume_refuses_rows_deleted_by_hand_and_redoes_rows_cut_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = d.join("full.gpkg");
    run_owned_ok(&colours(&full, &[]));
    let reference = table(&full);
    assert_eq!(reference.len(), 16);
    // Rows deleted in the middle: resuming would leave duplicates and gaps.
    let holes = d.join("holes.gpkg");
    run_owned_ok(&colours(&holes, &[]));
    sql(&holes, "DELETE FROM holes WHERE fid BETWEEN 5 AND 8");
    let before = fs::read(&holes).unwrap();
    let line = err(&colours(&holes, &[]), 2);
    assert!(
        line.contains("at row 5") && line.contains("SourceOID") && line.contains("--overwrite"),
        "{line}"
    );
    assert_eq!(fs::read(&holes).unwrap(), before, "nothing written");
    // Rows cut at the end (what a killed run leaves): resumed to exactly the full output.
    let cut = d.join("cut.gpkg");
    run_owned_ok(&colours(&cut, &[]));
    sql(&cut, "DELETE FROM cut WHERE fid > 10");
    run_owned_ok(&colours(&cut, &[]));
    assert_eq!(table(&cut), reference);
}

#[test]
fn resume_refuses_another_model_other_features_or_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    run_owned_ok(&colours(&out, &[]));
    let before = fs::read(&out).unwrap();
    let swapped = swapped_package(d);
    let line = err(
        &classify_args(
            &colors_tif(),
            &swapped,
            Some(&objects()),
            &out,
            &["--resume", "--layer", "polygons"],
        ),
        2,
    );
    assert!(line.contains("another model") && line.contains("--overwrite"), "{line}");
    let line = err(
        &classify_args(
            &colors_tif(),
            &colors_dlpk(),
            Some(&objects()),
            &out,
            &["--resume", "--layer", "points"],
        ),
        2,
    );
    assert!(line.contains("other features"), "{line}");
    let line = err(&colours(&out, &["--model-arg", "test_time_augmentation=true"]), 2);
    assert!(line.contains("other options"), "{line}");
    assert_eq!(fs::read(&out).unwrap(), before, "nothing written");
    // The same run resumes its finished output to the same rows.
    let rows = table(&out);
    run_owned_ok(&colours(&out, &[]));
    assert_eq!(table(&out), rows);
}

#[test]
fn resume_refuses_another_shard_of_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("shard_0.gpkg");
    run_owned_ok(&colours(&out, &["--shard", "0/4"]));
    // The task resubmitted alone, where SLURM_ARRAY_TASK_COUNT says 1.
    let line = err(&colours(&out, &["--shard", "0/1"]), 2);
    assert!(
        line.contains("shard 0/4") && line.contains("this run is shard 0/1"),
        "{line}"
    );
    let line = err(&colours(&out, &[]), 2);
    assert!(line.contains("shard 0/4") && line.contains("without --shard"), "{line}");
    run_owned_ok(&colours(&out, &["--shard", "0/4"]));
}

/// A copy of the synthetic raster at `path`, with its first patch repainted when `repaint`.
fn raster_copy(path: &Path, repaint: bool) -> PathBuf {
    fs::copy(colors_tif(), path).unwrap();
    if repaint {
        let mut ds = gdal::Dataset::open_ex(
            path,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_RASTER | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let mut buffer = gdal::raster::Buffer::new((8, 8), vec![7u8; 64]);
        ds.rasterband(1).unwrap().write((0, 0), (8, 8), &mut buffer).unwrap();
        ds.flush_cache().unwrap();
    }
    path.to_path_buf()
}

#[test]
fn the_same_raster_by_another_path_is_the_same_run_and_a_changed_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shard = |raster: &Path, i: usize, name: &str| {
        let out = d.join(name);
        let args = classify_args(
            raster,
            &colors_dlpk(),
            Some(&objects()),
            &out,
            &["--layer", "polygons", "--shard", &format!("{i}/2")],
        );
        run_owned_ok(&args);
        out
    };
    let elsewhere = raster_copy(&d.join("elsewhere.tif"), false);
    let changed = raster_copy(&d.join("changed.tif"), true);
    let (s0, s1) = (shard(&colors_tif(), 0, "s0.gpkg"), shard(&elsewhere, 1, "s1.gpkg"));
    let merged = d.join("merged.gpkg");
    merge(&[&s0, &s1], &merged, &[]);
    assert_eq!(
        read_rows(&merged, None).len(),
        16,
        "a copy of the raster is the same raster"
    );
    let odd = shard(&changed, 1, "odd.gpkg");
    let line = merge_error(&[&s0, &odd], &d.join("m2.gpkg"));
    assert!(line.contains("odd.gpkg") && line.contains("other rasters"), "{line}");
}

#[test]
fn merge_names_the_odd_shard_out_even_when_it_is_shard_0() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shard = |i: usize, extra: &[&str]| {
        let out = d.join(format!("s{i}{}.gpkg", extra.len()));
        let mut all = vec!["--shard".to_string(), format!("{i}/3")];
        all.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run_owned_ok(&polygons(&out, &refs));
        out
    };
    let odd = shard(0, &["--model-arg", "test_time_augmentation=true"]);
    let (s1, s2) = (shard(1, &[]), shard(2, &[]));
    let line = merge_error(&[&odd, &s1, &s2], &d.join("m.gpkg"));
    assert!(
        line.starts_with("classify-objects: error: ")
            && line.contains(&format!(
                "{} comes from another run than the other 2 shard(s)",
                odd.display()
            ))
            && line.contains("other options"),
        "{line}"
    );
}

#[test]
fn damaged_or_edited_shard_records_are_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shard = |i: usize| {
        let out = d.join(format!("s{i}.csv"));
        run_owned_ok(&polygons(&out, &["--shard", &format!("{i}/2")]));
        out
    };
    let (s0, s1) = (shard(0), shard(1));
    let record = d.join("s1.shard.json");
    let text = fs::read_to_string(&record).unwrap();
    for (edit, says) in [
        ("\"count\":2", "0 shards"),
        ("\"index\":1", "shard 5 of 2"),
        ("{", "damaged"),
    ] {
        let edited = match edit {
            "{" => "{ not json".to_string(),
            "\"count\":2" => text.replace(edit, "\"count\":0"),
            _ => text.replace(edit, "\"index\":5"),
        };
        fs::write(&record, edited).unwrap();
        let line = merge_error(&[&s0, &s1], &d.join("m.csv"));
        assert!(line.contains("s1.shard.json") && line.contains(says), "{edit}: {line}");
    }
}

#[test]
fn a_killed_runs_output_is_resumed_only_by_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("killed.gpkg");
    let mut child = spawn(&slow_args(&bench_points(), &out, &["--resume", "--shard", "1/3"]));
    wait_for_rows(d, 1);
    child.kill().unwrap(); // SIGKILL: only what was committed (and recorded at the start) is left
    child.wait().unwrap();
    // Another model over the killed run's rows (the colour model reads 32 x 32 chips).
    let line = err(
        &classify_args(
            &real_raster(),
            &colors_dlpk(),
            Some(&bench_points()),
            &out,
            &["--resume", "--shard", "1/3"],
        ),
        2,
    );
    assert!(line.contains("another model"), "{line}");
    let line = err(&slow_args(&bench_points(), &out, &["--resume", "--shard", "1/2"]), 2);
    assert!(line.contains("shard 1/3"), "{line}");
    assert!(
        !out.exists() && partial_rows(d) > 0,
        "the killed run's rows are still there to resume"
    );
}
