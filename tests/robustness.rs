//! Nothing lost, nothing crashes: per-feature problems, interruption, hostile packages and
//! determinism.

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Features over the synthetic raster: two good ones and one of each problem, in this order.
fn problem_features(path: &Path) {
    let (x, y) = (500_064.0, 5_799_936.0); // centre of patch (0, 0): red
    let (x2, y2) = (500_320.0, 5_799_936.0); // patch (0, 2): blue
    let features = [
        format!(
            r#"{{"type":"Feature","properties":{{"n":"good"}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
        ),
        r#"{"type":"Feature","properties":{"n":"null"},"geometry":null}"#.to_string(),
        r#"{"type":"Feature","properties":{"n":"empty"},"geometry":{"type":"GeometryCollection","geometries":[]}}"#
            .to_string(),
        format!(
            r#"{{"type":"Feature","properties":{{"n":"bowtie"}},"geometry":{{"type":"Polygon","coordinates":[[[{x},{y}],[{},{}],[{},{y}],[{x},{}],[{x},{y}]]]}}}}"#,
            x + 20.0,
            y + 20.0,
            x + 20.0,
            y + 20.0
        ),
        r#"{"type":"Feature","properties":{"n":"outside"},"geometry":{"type":"Point","coordinates":[400000,5000000]}}"#
            .to_string(),
        format!(
            r#"{{"type":"Feature","properties":{{"n":"good2"}},"geometry":{{"type":"Point","coordinates":[{x2},{y2}]}}}}"#
        ),
    ];
    fs::write(
        path,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
}

#[test]
fn problem_features_are_written_with_a_status_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = d.join("problems.geojson");
    problem_features(&features);
    let out = d.join("out.gpkg");
    let output = run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&features),
        &out,
        &[],
    ));
    let rows = read_rows(&out, None);
    let got: Vec<(String, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.text("n").unwrap(), r.text("ClassLabel"), r.text("Status")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("good".into(), Some("red".into()), None),
            ("null".into(), None, Some("null_geometry".into())),
            ("empty".into(), None, Some("empty_geometry".into())),
            ("bowtie".into(), Some("red".into()), Some("invalid_geometry".into())),
            ("outside".into(), None, Some("outside_raster".into())),
            ("good2".into(), Some("blue".into()), None),
        ]
    );
    assert!(rows[1].number("Confidence").is_none());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("6 object(s), 3 classified, 3 not classified"),
        "{stderr}"
    );
    assert!(!stderr.contains("Self-intersection"), "GEOS chatter is muted: {stderr}");
    assert!(
        stderr.contains("empty_geometry: 1, invalid_geometry: 1, null_geometry: 1, outside_raster: 1"),
        "{stderr}"
    );

    // --strict: the first problem feature is fatal, and nothing is written.
    let strict_out = d.join("strict.gpkg");
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            features.to_str().unwrap(),
            "-o",
            strict_out.to_str().unwrap(),
            "--strict",
        ],
        2,
    );
    assert!(
        line.contains("feature 1") && line.contains("null_geometry") && line.contains("--strict"),
        "{line}"
    );
    assert!(!strict_out.exists());
}

/// A slow run (the real model, one chip per batch, augmentation) into `out`.
fn slow_run(out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args([
            "-r",
            fixture("real/RGB.byte.tif").to_str().unwrap(),
            "-m",
            fixture("real/textline_cls.dlpk").to_str().unwrap(),
            "-f",
            fixture("real/RGB.byte.bench_points_2000.gpkg").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--overwrite",
            "--threads",
            "1",
            "--intra-op-threads",
            "1",
            "--model-arguments",
            "batch_size 1;test_time_augmentation true",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the run has started writing its temporary output.
fn wait_for_temporary(dir: &Path) {
    let start = Instant::now();
    while !files_in(dir).iter().any(|f| f.contains(".partial-")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn a_signal_stops_the_run_and_keeps_the_previous_output() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = d.join("result.gpkg");
        fs::write(&out, b"previous result").unwrap();
        let child = slow_run(&out);
        wait_for_temporary(d);
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_eq!(
            fs::read(&out).unwrap(),
            b"previous result",
            "SIG{signal} left the previous output"
        );
        assert_eq!(files_in(d), vec!["result.gpkg"], "no temporary file after SIG{signal}");
    }
}

#[test]
fn a_killed_run_never_corrupts_the_output_and_its_leftovers_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("result.gpkg");
    fs::write(&out, b"previous result").unwrap();
    let mut child = slow_run(&out);
    wait_for_temporary(d);
    child.kill().unwrap(); // SIGKILL: nothing can be cleaned up by the process itself
    child.wait().unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"previous result");
    // The next run to the same output removes the dead run's temporary file.
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &fixture("synthetic/colors.dlpk"),
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--overwrite", "--layer", "polygons"],
    ));
    assert_eq!(files_in(d), vec!["result.gpkg", "result.qml"]);
    assert_eq!(read_rows(&out, None).len(), 16);
}

#[test]
fn zip_bombs_are_refused_from_their_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 64 MiB of spaces after the JSON: a 64 KiB zip that inflates far past the .emd cap.
    let bomb = d.join("bomb.dlpk");
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&bomb).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("model.emd", options).unwrap();
        zip.write_all(colors_emd(&[]).as_bytes()).unwrap();
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..64 {
            zip.write_all(&spaces).unwrap();
        }
        zip.start_file("colors.onnx", options).unwrap();
        zip.write_all(&fs::read(fixture("synthetic/colors.onnx")).unwrap())
            .unwrap();
        zip.finish().unwrap();
    }
    assert!(fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let line = run_err(
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            bomb.to_str().unwrap(),
            "-o",
            d.join("o.gpkg").to_str().unwrap(),
        ],
        2,
    );
    assert!(
        line.contains("model.emd") && line.contains("declares 67109") && line.contains("hostile"),
        "{line}"
    );
}

#[test]
fn code_inside_a_package_is_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("pwned");
    let script = format!(
        "import pathlib\npathlib.Path({:?}).write_text('ran')\n",
        marker.to_str().unwrap()
    );
    let emd = colors_emd(&[(
        "\"Framework\": \"ONNX\"",
        "\"Framework\": \"PyTorch\",\n  \"InferenceFunction\": \"evil.py\"",
    )]);
    let pkg = d.join("with_code.dlpk");
    write_zip(
        &pkg,
        &[
            ("model.emd", emd.as_bytes()),
            ("colors.onnx", &fs::read(fixture("synthetic/colors.onnx")).unwrap()),
            ("evil.py", script.as_bytes()),
        ],
    );
    let out = d.join("out.gpkg");
    run_owned_ok(&classify_args(
        &fixture("synthetic/colors.tif"),
        &pkg,
        Some(&fixture("synthetic/objects.gpkg")),
        &out,
        &["--layer", "polygons"],
    ));
    let text = String::from_utf8(run_ok(&["inspect", pkg.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("evil.py (ignored: package code is never run)"), "{text}");
    assert!(!marker.exists());
    assert_eq!(
        files_in(d),
        vec!["out.gpkg", "out.qml", "with_code.dlpk"],
        "nothing extracted beside the package"
    );
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
