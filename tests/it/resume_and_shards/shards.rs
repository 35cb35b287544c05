//! `--shard` and `merge`: shards merge into exactly one run's output, and merge refuses what is not
//! one whole run.

use std::path::Path;
use std::process::Command;

use crate::support::*;

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
