//! User mistakes are one clear error line with exit 2, before any work starts: bad arguments and
//! outputs, sizes out of bounds, absurd thread counts.

use std::fs;
use std::time::Duration;
use std::time::Instant;

use crate::support::*;

// 12. Sizes out of bounds are one-line errors before any work, not aborts.
#[test]
fn sizes_out_of_bounds_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    let line = err(
        &args(
            &real_raster(),
            &real_model(),
            Some(&footprints()),
            &out,
            &["--model-arg", "batch_size=1000000000"],
        ),
        2,
    );
    assert!(line.contains("batch_size"), "{line}");
    // A batch too large for memory: the largest that fits is named.
    let line = err(
        &args(
            &real_raster(),
            &real_model(),
            Some(&footprints()),
            &out,
            &["--model-arg", "batch_size=60000"],
        ),
        2,
    );
    assert!(line.contains("GiB") && line.contains("or less"), "{line}");
    for (key, value) in [
        ("\"ImageWidth\": 32", "\"ImageWidth\": 100000"),
        ("\"ImageWidth\": 32", "\"ImageWidth\": 1e30"),
    ] {
        let package = color_package(
            d,
            "big.dlpk",
            &[(key, value)],
            &onnx::ColorModelOptions::default(),
            &imagenet(),
        );
        let (tif, _, objects) = colors();
        let line = err(&args(&tif, &package, Some(&objects), &out, &[]), 2);
        assert!(line.contains("ImageWidth"), "{line}");
    }
    let onnx_path = d.join("m.onnx");
    fs::write(
        &onnx_path,
        onnx::color_classifier(
            &palette(),
            &imagenet(),
            &onnx::ColorModelOptions {
                chip: None,
                ..Default::default()
            },
        ),
    )
    .unwrap();
    let line = run_err(
        &[
            "pack",
            "--onnx",
            onnx_path.to_str().unwrap(),
            "--classes",
            "a,b,c,d,e,f",
            "--chip-size",
            "4294967296",
            "-o",
            d.join("p.dlpk").to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("chip size"), "{line}");
    assert!(!out.exists());

    // A whole image of 2,000,000 x 2,000,000 pixels with NoData: classified through a bounded
    // read, in bounded memory.
    let vrt = d.join("huge.vrt");
    let small = fixture("real/RGB.byte.tif");
    let bands: String = (1..=3)
        .map(|b| {
            format!(
                r#"<VRTRasterBand dataType="Byte" band="{b}"><NoDataValue>0</NoDataValue><SimpleSource><SourceFilename relativeToVRT="0">{}</SourceFilename><SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="791" ySize="718"/><DstRect xOff="1000000" yOff="1000000" xSize="791" ySize="718"/></SimpleSource></VRTRasterBand>"#,
                small.display()
            )
        })
        .collect();
    fs::write(
        &vrt,
        format!(r#"<VRTDataset rasterXSize="2000000" rasterYSize="2000000">{bands}</VRTDataset>"#),
    )
    .unwrap();
    let summary = d.join("summary.json");
    run_owned_ok(&args(
        &vrt,
        &real_model(),
        None,
        &d.join("huge.csv"),
        &["--summary-json", summary.to_str().unwrap()],
    ));
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["classified"], 1);
    assert!(
        json["peak_rss_bytes"].as_u64().unwrap() < 1 << 30,
        "{}",
        json["peak_rss_bytes"]
    );
}

// 17. The user's own mistakes are one-line errors with exit 2.
#[test]
fn user_mistakes_are_clear_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A read-only output folder (root ignores permissions, so check with a probe first).
    let locked = d.join("locked");
    fs::create_dir(&locked).unwrap();
    let mut permissions = fs::metadata(&locked).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(&locked, permissions).unwrap();
    if fs::File::create(locked.join("probe")).is_err() {
        let line = err(
            &args(
                &real_raster(),
                &real_model(),
                Some(&footprints()),
                &locked.join("o.gpkg"),
                &[],
            ),
            2,
        );
        assert!(line.contains("cannot write") || line.contains("not writable"), "{line}");
    }
    // A model whose output is class indices (int64), or one score for six classes.
    let (tif, _, objects) = colors();
    let int64 = write_package(d, "argmax.dlpk", &colors_emd(&[]), &onnx::argmax_classifier(32, 32));
    let line = err(&args(&tif, &int64, Some(&objects), &d.join("a.gpkg"), &[]), 2);
    assert!(
        line.contains("element type int64") && line.contains("float32"),
        "{line}"
    );
    let single = onnx::dense_classifier(3, 32, 32, vec![0.001; 3 * 32 * 32], vec![0.0]);
    let one = write_package(d, "one.dlpk", &colors_emd(&[]), &single);
    let line = err(&args(&tif, &one, Some(&objects), &d.join("b.gpkg"), &[]), 2);
    assert!(
        line.contains("one score per chip") || line.contains("1 scores per chip"),
        "{line}"
    );
    // Mixed geometry types into a Shapefile.
    let mixed = d.join("mixed.geojson");
    let (x, y) = pixel_to_map(20.0, 20.0);
    fs::write(
        &mixed,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}},{{"type":"Feature","properties":{{}},"geometry":{{"type":"LineString","coordinates":[[{x},{y}],[{},{}]]}}}}]}}"#,
            x + 10.0,
            y - 10.0
        ),
    )
    .unwrap();
    let line = err(
        &args(
            &tif,
            &fixture("synthetic/colors.dlpk"),
            Some(&mixed),
            &d.join("m.shp"),
            &[],
        ),
        2,
    );
    assert!(line.contains("mixed geometry") && line.contains(".gpkg"), "{line}");
    // More columns than a GeoPackage holds.
    let props: Vec<String> = (0..2100).map(|i| format!("\"c{i}\":{i}")).collect();
    let wide = d.join("wide.geojson");
    fs::write(
        &wide,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{{"type":"Feature","properties":{{{}}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}]}}"#,
            props.join(",")
        ),
    )
    .unwrap();
    let line = err(
        &args(
            &tif,
            &fixture("synthetic/colors.dlpk"),
            Some(&wide),
            &d.join("w.gpkg"),
            &[],
        ),
        2,
    );
    assert!(line.contains("column") && line.contains("GPKG"), "{line}");
    // A features table without geometry.
    let table = d.join("table.csv");
    fs::write(&table, "id,name\n1,a\n").unwrap();
    let line = err(
        &args(
            &tif,
            &fixture("synthetic/colors.dlpk"),
            Some(&table),
            &d.join("t.gpkg"),
            &[],
        ),
        2,
    );
    assert!(line.contains("no geometry column"), "{line}");
    // Usage mistakes: one line, exit 2.
    let line = run_err(&["--raster", "x.tif", "--no-such-flag"], 2);
    assert!(line.contains("--no-such-flag") && line.contains("--help"), "{line}");
    let line = run_err(&["-r", "x.tif"], 2);
    assert!(line.contains("--model") && line.contains("--output"), "{line}");
    let files: Vec<String> = files_in(d).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(files.is_empty(), "{files:?}");
}

// 19. Thread counts are bounded.
#[test]
fn absurd_thread_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gpkg");
    for flag in ["--intra-op-threads", "--threads"] {
        let started = Instant::now();
        let line = err(
            &args(
                &real_raster(),
                &real_model(),
                Some(&footprints()),
                &out,
                &[flag, "100000"],
            ),
            2,
        );
        assert!(line.contains(flag) && line.contains("1024"), "{line}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn bad_arguments_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (raster, model) = (arg(colors_tif()), arg(colors_dlpk()));
    let missing_dir = arg(d.join("no/such/dir/out.gpkg"));
    let unknown_format = arg(d.join("out.shp.xyz"));
    let (shp, dbf, qml, same) = (
        arg(d.join("s.shp")),
        arg(d.join("s.dbf")),
        arg(d.join("out.qml")),
        arg(d.join("r.html")),
    );
    // (the arguments after -r and -m, what the error line names)
    let cases: [(&[&str], &[&str]); 9] = [
        (
            &["--model-arg", "pading=4"],
            &["pading", "batch_size", "test_time_augmentation"],
        ),
        (&["--model-arg", "batch_size"], &["NAME=VALUE"]),
        (&["--model-arguments", "batch_size zero"], &["batch_size", "zero"]),
        (&["-o", &missing_dir], &["does not exist"]),
        (&["-o", &unknown_format], &[".xyz", ".gpkg"]),
        // Side outputs never take the name of a file of the output, nor each other's.
        (
            &["-o", &shp, "--report", &dbf],
            &["--report", "s.dbf", "a file of the output", ".dbf"],
        ),
        (&["-o", &shp, "--summary-json", &dbf], &["--summary-json", ".dbf"]),
        (&["--report", &qml], &["--report", "out.qml", ".qml"]),
        (
            &["--report", &same, "--summary-json", &same],
            &["--summary-json and --report", "r.html"],
        ),
    ];
    for (extra, needles) in cases {
        let mut all = vec!["-r", raster.as_str(), "-m", model.as_str()];
        all.extend_from_slice(extra);
        assert_mentions(&fails(d, &all), needles);
    }

    // An existing output is kept, byte for byte, unless --overwrite.
    let existing = d.join("existing.gpkg");
    let previous = previous_output(&existing);
    let line = fails(
        d,
        &[
            "-r",
            &arg(colors_tif()),
            "-m",
            &arg(colors_dlpk()),
            "-f",
            &arg(objects()),
            "--layer",
            "polygons",
            "-o",
            existing.to_str().unwrap(),
        ],
    );
    assert_mentions(&line, &["existing.gpkg", "--overwrite"]);
    assert_eq!(fs::read(&existing).unwrap(), previous);
    run_ok(&[
        "-r",
        &arg(colors_tif()),
        "-m",
        &arg(colors_dlpk()),
        "-f",
        &arg(objects()),
        "--layer",
        "polygons",
        "-o",
        existing.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(read_rows(&existing, None).len(), 16);
    assert_eq!(files_in(d), vec!["existing.gpkg", "existing.qml"]);
}

#[test]
fn hints_name_the_programs_own_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tif, model) = (arg(colors_tif()), arg(colors_dlpk()));
    // A one-band image for a three-band model: repeat its band, which then works.
    let grey = d.join("grey.tif");
    let status = std::process::Command::new("gdal_translate")
        .args(["-q", "-b", "1", &tif, grey.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = fails(d, &["-r", &arg(grey.clone()), "-m", &model]);
    assert_mentions(&line, &["grey.tif has 1 band(s)", "--bands 1,1,1"]);
    run_ok(&[
        "-r",
        &arg(grey.clone()),
        "-m",
        &model,
        "--bands",
        "1,1,1",
        "-o",
        &arg(d.join("grey.csv")),
    ]);
    fs::remove_file(d.join("grey.csv")).unwrap();
    // A bare ONNX model: make a package with pack.
    let line = fails(d, &["-r", &tif, "-m", &arg(fixture("synthetic/colors.onnx"))]);
    assert_mentions(&line, &["bare ONNX model", "classify-objects pack --onnx"]);
    // The device is a flag, not a model argument.
    let line = fails(d, &["-r", &tif, "-m", &model, "--model-arg", "device=cuda"]);
    assert_mentions(&line, &["\"device\" is not a model argument", "--device"]);
    // --device echoed as typed (this build has no CUDA, or no GPU here).
    let out = run(&[
        "-r",
        &tif,
        "-m",
        &model,
        "--device",
        "gpu",
        "-o",
        &arg(d.join("gpu.csv")),
    ]);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--device gpu") && !stderr.contains("cuda:0"),
            "{stderr}"
        );
    }
    let _ = fs::remove_file(d.join("gpu.csv"));
    // A 10 KB --bands list is not echoed whole.
    let long = vec!["1"; 5000].join(",");
    let line = fails(d, &["-r", &tif, "-m", &model, "--bands", &long]);
    assert!(
        line.len() < 400 && line.contains("5000 bands"),
        "{} bytes: {}",
        line.len(),
        &line[..200]
    );
    // A package that exists: replaced with --overwrite only (no --append there).
    let package = d.join("p.dlpk");
    fs::copy(colors_dlpk(), &package).unwrap();
    let line = run_err(
        &[
            "pack",
            "--onnx",
            &arg(fixture("synthetic/colors.onnx")),
            "--classes",
            "a,b,c,d,e,f",
            "-o",
            &arg(package.clone()),
        ],
        2,
    );
    assert_mentions(&line, &["already exists", "--overwrite"]);
    assert!(!line.contains("--append"), "{line}");
    // An output name with a newline stays on the summary line, quoted.
    let odd = d.join("two\nlines.csv");
    let done = run_ok(&["-r", &tif, "-m", &model, "-o", &arg(odd.clone())]);
    let stderr = String::from_utf8_lossy(&done.stderr);
    let summary = stderr.lines().find(|l| l.contains("object(s)")).unwrap_or_default();
    assert!(summary.ends_with("two\\nlines.csv\""), "{stderr}");
}
