//! The bundled fixtures by name, and the argument lists of the runs most tests make on them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{classify_args, colors_emd, fixture, read_rows, run_owned, write_package};

/// The synthetic raster painted with the palette's colours.
pub fn colors_tif() -> PathBuf {
    fixture("synthetic/colors.tif")
}

/// The package whose model labels a chip by its average colour.
pub fn colors_dlpk() -> PathBuf {
    fixture("synthetic/colors.dlpk")
}

/// The synthetic objects (three layers: polygons, points, lines).
pub fn objects() -> PathBuf {
    fixture("synthetic/objects.gpkg")
}

/// The synthetic raster, package and objects.
pub fn colors() -> (PathBuf, PathBuf, PathBuf) {
    (colors_tif(), colors_dlpk(), objects())
}

/// The real Landsat raster (RGB.byte.tif).
pub fn real_raster() -> PathBuf {
    fixture("real/RGB.byte.tif")
}

/// The real model (PaddleOCR's text direction classifier, packed).
pub fn real_model() -> PathBuf {
    fixture("real/textline_cls.dlpk")
}

/// The nine real footprint polygons over the real raster.
pub fn footprints() -> PathBuf {
    fixture("real/RGB.byte.foot.gpkg")
}

/// The 2,000 seeded points over the real raster.
pub fn bench_points() -> PathBuf {
    fixture("real/RGB.byte.bench_points_2000.gpkg")
}

/// A path as a command-line argument.
pub fn arg(path: PathBuf) -> String {
    path.to_str().unwrap().to_string()
}

/// The arguments of a run; the synthetic objects are read from their polygons layer unless
/// `extra` names a layer.
pub fn args(raster: &Path, model: &Path, features: Option<&Path>, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = classify_args(raster, model, features, out, extra);
    if features == Some(objects().as_path()) && !extra.contains(&"--layer") {
        all.extend(["--layer".to_string(), "polygons".to_string()]);
    }
    all
}

/// The arguments of a run of the colour model on the synthetic polygons.
pub fn polygons(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--layer", "polygons"];
    all.extend_from_slice(extra);
    classify_args(&colors_tif(), &colors_dlpk(), Some(&objects()), out, &all)
}

/// A run of `model` on the synthetic polygons.
pub fn run_colors(out: &Path, model: &Path, extra: &[&str]) -> std::process::Output {
    let mut extra = extra.to_vec();
    extra.extend(["--layer", "polygons"]);
    run_owned(&classify_args(&colors_tif(), model, Some(&objects()), out, &extra))
}

/// The arguments of a run of the real model on `features` (batches of 16).
pub fn real(features: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--model-arg", "batch_size=16"];
    all.extend_from_slice(extra);
    classify_args(&real_raster(), &real_model(), Some(features), out, &all)
}

/// The arguments of a slow run (the real model, one chip per batch, augmentation, one thread).
pub fn slow_args(features: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--threads",
        "1",
        "--intra-op-threads",
        "1",
        "--model-arguments",
        "batch_size 1;test_time_augmentation true",
    ];
    all.extend_from_slice(extra);
    args(&real_raster(), &real_model(), Some(features), out, &all)
}

/// Each row's label and confidence.
pub fn labels(path: &Path) -> Vec<(Option<String>, Option<f64>)> {
    read_rows(path, None)
        .iter()
        .map(|r| (r.text("ClassLabel"), r.number("Confidence")))
        .collect()
}

/// Runs `ogr2ogr` with `args`, which must succeed.
pub fn ogr2ogr(args: &[&str]) {
    let out = Command::new("ogr2ogr").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ogr2ogr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A GeoPackage `path` (layer `polygons`) made of the fixture's polygons by the SQLite `select`
/// over its layer `polygons` (extra or changed columns).
pub fn polygons_by_sql(path: &Path, select: &str) {
    let objects = objects();
    ogr2ogr(&[
        "-f",
        "GPKG",
        path.to_str().unwrap(),
        objects.to_str().unwrap(),
        "-dialect",
        "SQLite",
        "-sql",
        select,
        "-nln",
        "polygons",
    ]);
}

/// A package whose class names are those of the palette with two swapped (blue <-> green), so
/// that the 6 blue and green polygons of the fixture are labelled wrong: accuracy 10/16.
pub fn swapped_package(dir: &Path) -> std::path::PathBuf {
    let emd = colors_emd(&[("\"Name\": \"green\"", "\"Name\": \"TMP\"")]);
    let emd = emd
        .replace("\"Name\": \"blue\"", "\"Name\": \"green\"")
        .replace("\"Name\": \"TMP\"", "\"Name\": \"blue\"");
    write_package(
        dir,
        "swapped.dlpk",
        &emd,
        &fs::read(fixture("synthetic/colors.onnx")).unwrap(),
    )
}

/// A previous output at `path` as a run leaves one (a GeoPackage with one layer named after it,
/// or a CSV table), for tests that check it is kept or replaced; returns its bytes.
pub fn previous_output(path: &Path) -> Vec<u8> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gpkg") => {
            // One layer named after the file, as a run names it.
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let (out, input) = (path.to_str().unwrap(), objects());
            ogr2ogr(&["-f", "GPKG", out, input.to_str().unwrap(), "polygons", "-nln", stem]);
        }
        Some("csv") => fs::write(path, b"ClassLabel,Confidence\nred,0.9\n").unwrap(),
        other => panic!("no previous output of kind {other:?}"),
    }
    fs::read(path).unwrap()
}
