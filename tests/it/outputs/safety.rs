//! No half-written output ever: outputs that would not be written are refused up front, overwrites
//! replace only the run's own files, a failure keeps the previous output, and runs are
//! reproducible.

use std::fs;

use crate::support::*;

// 1. An output name without extension, or a driver that writes no file, is refused up front.
#[test]
fn outputs_that_would_not_be_written_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = err(
        &args(
            &real_raster(),
            &real_model(),
            Some(&footprints()),
            &d.join("result"),
            &[],
        ),
        2,
    );
    assert!(line.contains("no extension") && line.contains("result.gpkg"), "{line}");
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));

    let out = d.join("x.gpkg");
    let previous = previous_output(&out);
    let line = err(
        &args(
            &real_raster(),
            &real_model(),
            Some(&footprints()),
            &out,
            &["--format", "Memory", "--overwrite"],
        ),
        2,
    );
    assert!(line.contains("Memory") && line.contains("writes no file"), "{line}");
    // --format "ESRI Shapefile" with a .gpkg name would make a folder: refused too.
    let line = err(
        &args(
            &real_raster(),
            &real_model(),
            Some(&footprints()),
            &d.join("y.gpkg"),
            &["--format", "ESRI Shapefile"],
        ),
        2,
    );
    assert!(line.contains(".shp"), "{line}");
    assert_eq!(fs::read(&out).unwrap(), previous);
    assert_eq!(files_in(d), vec!["x.gpkg"]);

    // A name ending with '/' names a folder: refused before the run, not at its final rename.
    for (flag, path) in [("-o", "z.gpkg/"), ("-o", "z.gpkg/."), ("--report", "r.html/")] {
        let target = format!("{}/{path}", d.display());
        let mut extra = vec!["--overwrite"];
        if flag != "-o" {
            extra.extend([flag, target.as_str()]);
        }
        let output = if flag == "-o" {
            std::path::PathBuf::from(&target)
        } else {
            out.clone()
        };
        let line = err(
            &args(&real_raster(), &real_model(), Some(&footprints()), &output, &extra),
            2,
        );
        let name = if flag == "-o" { "output" } else { flag };
        assert_mentions(&line, &[name, "ends with '/'", "without the '/'"]);
        assert_eq!(files_in(d), vec!["x.gpkg"], "{path}");
    }
}

// 5. --overwrite removes only the output's own files.
#[test]
fn overwrite_leaves_files_that_only_look_related() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (out, extra) in [("result.gpkg", vec![]), ("result.csv", vec![])] {
        let out = d.join(out);
        previous_output(&out);
        let keep = [
            format!("{}-backup", out.display()),
            format!("{}-notes.txt", out.display()),
        ];
        for k in &keep {
            fs::write(k, b"mine").unwrap();
        }
        let mut extra = extra;
        extra.push("--overwrite");
        run_owned_ok(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &extra));
        for k in &keep {
            assert_eq!(fs::read(k).unwrap(), b"mine", "{k} survives");
        }
    }
}

// 11. --summary-json and --report are checked before anything is written; `-` is stdout.
#[test]
fn summary_and_report_paths_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    let previous = previous_output(&out);
    for flag in ["--summary-json", "--report"] {
        let bad = d.join("missing/summary.json");
        let line = err(
            &args(
                &real_raster(),
                &real_model(),
                Some(&footprints()),
                &out,
                &["--overwrite", flag, bad.to_str().unwrap()],
            ),
            2,
        );
        assert!(line.contains(flag) && line.contains("does not exist"), "{line}");
        assert_eq!(fs::read(&out).unwrap(), previous);
    }
    let output = run_owned_ok(&args(
        &real_raster(),
        &real_model(),
        Some(&footprints()),
        &out,
        &["--overwrite", "--summary-json", "-"],
    ));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(json["objects"], 9);
}

// 16. Output names up to the file system's limit work.
#[test]
fn output_names_at_the_length_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for length in [228, 255] {
        let name = format!("{}.gpkg", "n".repeat(length - 5));
        assert_eq!(name.len(), length);
        let out = d.join(&name);
        run_owned_ok(&args(
            &real_raster(),
            &real_model(),
            Some(&footprints()),
            &out,
            &["--qgis-style", "none"],
        ));
        assert_eq!(read_rows(&out, None).len(), 9);
        fs::remove_file(&out).unwrap();
    }
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));
    // One byte more than file systems take: refused before the run, naming the limit.
    let out = d.join(format!("{}.gpkg", "n".repeat(256 - 5)));
    let line = err(&args(&real_raster(), &real_model(), Some(&footprints()), &out, &[]), 2);
    assert_mentions(&line, &["256 bytes long", "255"]);
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));
}

#[test]
fn outputs_are_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csvs = Vec::new();
    let mut rows = Vec::new();
    for (i, threads) in ["1", "3", "1", "4"].iter().enumerate() {
        let csv = d.join(format!("run{i}.csv"));
        let gpkg = d.join(format!("run{i}.gpkg"));
        for out in [&csv, &gpkg] {
            run_ok(&[
                "-r",
                fixture("real/RGB.byte.tif").to_str().unwrap(),
                "-m",
                fixture("real/textline_cls.dlpk").to_str().unwrap(),
                "-f",
                fixture("real/RGB.byte.bench_points_2000.gpkg").to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--threads",
                threads,
                "--model-arg",
                "batch_size=16",
            ]);
        }
        csvs.push(fs::read(&csv).unwrap());
        rows.push(
            read_rows(&gpkg, None)
                .into_iter()
                .map(|r| {
                    (
                        r.fid,
                        r.wkb.clone(),
                        r.text("ClassLabel"),
                        r.number("Confidence").map(f64::to_bits),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(rows[0].len(), 2000);
    for i in 1..csvs.len() {
        assert!(csvs[i] == csvs[0], "CSV of run {i} differs from run 0");
        assert!(rows[i] == rows[0], "GeoPackage rows of run {i} differ from run 0");
    }
}

#[test]
fn a_failure_after_the_output_was_started_leaves_the_previous_output() {
    // The model is only checked against the raster's bands once the run starts: the previous
    // output must survive, and no temporary file may remain.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let existing = d.join("result.gpkg");
    let previous = previous_output(&existing);
    let gray = d.join("gray.tif");
    write_tiff_u8(&gray, 40, 40, &[vec![100; 1600]], true, None);
    let line = fails(
        d,
        &[
            "-r",
            gray.to_str().unwrap(),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            &arg(objects()),
            "--layer",
            "polygons",
            "-o",
            existing.to_str().unwrap(),
            "--overwrite",
        ],
    );
    assert_mentions(&line, &["gray.tif", "band index 1", "1 band(s)"]);
    assert_eq!(fs::read(&existing).unwrap(), previous);
}

// #24.2: --overwrite replaces only what the program recognises as an output of the format it
// writes; an ordinary folder named like a File Geodatabase, or a file of another format, is
// refused and left untouched.
#[test]
fn overwrite_replaces_only_outputs_of_the_format_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = d.join("photos.gdb");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("holiday.jpg"), b"my photo").unwrap();
    let line = err(&polygons(&folder, &["--overwrite"]), 2);
    assert!(
        line.contains("photos.gdb") && line.contains("not a OpenFileGDB dataset"),
        "{line}"
    );
    assert_eq!(fs::read(folder.join("holiday.jpg")).unwrap(), b"my photo");
    assert_eq!(files_in(&folder), vec!["holiday.jpg"]);
    // A GeoJSON file where a GeoPackage is asked for, and a GeoPackage written as GeoJSON.
    let geojson = d.join("other.gpkg");
    fs::write(&geojson, br#"{"type":"FeatureCollection","features":[]}"#).unwrap();
    let line = err(&polygons(&geojson, &["--overwrite"]), 2);
    assert!(line.contains("not a GPKG dataset"), "{line}");
    assert_eq!(
        fs::read(&geojson).unwrap(),
        br#"{"type":"FeatureCollection","features":[]}"#
    );
    let gpkg = d.join("mine.geojson");
    previous_output(&d.join("mine.gpkg"));
    fs::rename(d.join("mine.gpkg"), &gpkg).unwrap();
    let before = fs::read(&gpkg).unwrap();
    let line = err(&polygons(&gpkg, &["--overwrite"]), 2);
    assert!(line.contains("not a GeoJSON dataset"), "{line}");
    assert_eq!(fs::read(&gpkg).unwrap(), before);
    // An output of the format is replaced; an empty file too (nothing to lose).
    let empty = d.join("empty.gpkg");
    fs::write(&empty, b"").unwrap();
    run_owned_ok(&polygons(&empty, &["--overwrite"]));
    assert_eq!(read_rows(&empty, None).len(), 16);
    run_owned_ok(&polygons(&empty, &["--overwrite"]));
    assert_eq!(read_rows(&empty, None).len(), 16);
}

// #24.14: --overwrite of a Shapefile keeps the metadata sidecars it does not rewrite (ArcGIS's
// .shp.xml, QGIS's .qmd) and removes the data ones (.cpg, indexes) that would describe old data.
#[test]
fn overwriting_a_shapefile_keeps_its_metadata_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("result.shp");
    run_owned_ok(&polygons(&out, &[]));
    for (sidecar, text) in [
        ("result.shp.xml", "<metadata/>"),
        ("result.qmd", "<qgis/>"),
        ("result.cpg", "UTF-8"),
        ("result.qix", "index"),
    ] {
        fs::write(d.join(sidecar), text).unwrap();
    }
    run_owned_ok(&polygons(&out, &["--overwrite"]));
    assert_eq!(fs::read_to_string(d.join("result.shp.xml")).unwrap(), "<metadata/>");
    assert_eq!(fs::read_to_string(d.join("result.qmd")).unwrap(), "<qgis/>");
    assert!(!d.join("result.cpg").exists() && !d.join("result.qix").exists());
    assert_eq!(read_rows(&out, None).len(), 16);
}
