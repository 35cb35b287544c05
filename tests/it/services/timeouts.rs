//! Unattended runs against servers that misbehave: a stalled request fails the run in one line
//! (after GDAL_HTTP_LOW_SPEED_TIME seconds without a byte, shortened here), a download cut off
//! leaves nothing in the cache, transient failures are retried, and a signal during a request
//! ends the run within seconds, even while GDAL itself waits on the server.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::arcgis::{ArcGisServer, Catalog, Fault, FaultKind, FileSpec};
use crate::support::*;

/// Longer than any test waits: a stall that only the client's timeout or a signal ends.
const FOREVER: Duration = Duration::from_secs(100);

fn program() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_classify-objects"));
    command.env_remove("ARCGIS_TOKEN");
    command
}

/// Runs with `args`, stalls failing after `stall_seconds` without a byte.
fn run_with_stall_limit(args: &[&str], stall_seconds: &str) -> Output {
    program()
        .args(args)
        .env("GDAL_HTTP_LOW_SPEED_TIME", stall_seconds)
        .output()
        .unwrap()
}

/// The one error line of a failed run, after checking its exit code.
fn error_line(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("classify-objects: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

/// Waits for `child` to end (at most a minute: far longer than it may take), then returns
/// its output.
fn wait_bounded(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the run did not end after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Waits until the server has been asked something containing `part` (at most a minute).
fn wait_for_request(server: &ArcGisServer, part: &str) {
    let start = Instant::now();
    while server.count(part) == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "no request for {part}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn stall(matching: &str) -> Fault {
    Fault {
        matching: matching.into(),
        kind: FaultKind::Stall(FOREVER),
        times: 0,
    }
}

fn colors_server(faults: Vec<Fault>, files: Vec<(String, FileSpec)>) -> ArcGisServer {
    ArcGisServer::start(Catalog {
        image_servers: vec![("Colors".into(), fixture("synthetic/colors.tif"))],
        files,
        faults,
        ..Default::default()
    })
}

fn args<'a>(raster: &'a str, model: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-r",
        raster,
        "-m",
        model,
        "-f",
        fixture_str("synthetic/objects.gpkg"),
        "--layer",
        "polygons",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

fn fixture_str(path: &str) -> &'static str {
    Box::leak(fixture(path).display().to_string().into_boxed_str())
}

#[test]
fn a_stalled_server_fails_the_run_in_one_line_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    let model = fixture_str("synthetic/colors.dlpk");
    let package = std::fs::read(fixture("synthetic/colors.dlpk")).unwrap();
    let item = "sharing/rest/content/items/0123abcd/data";
    // The description stalls; the pixels stall; a download stops in the middle of its body.
    for (what, fault, files) in [
        ("description", stall("/ImageServer?"), vec![]),
        ("pixels", stall("/exportImage"), vec![]),
        (
            "download",
            Fault {
                matching: item.into(),
                kind: FaultKind::StallMidBody(package.len() / 3, FOREVER),
                times: 0,
            },
            vec![(
                item.to_string(),
                FileSpec {
                    bytes: package.clone(),
                    cut: None,
                },
            )],
        ),
    ] {
        let server = colors_server(vec![fault], files);
        let raster = server.service_url("Colors", "ImageServer");
        let cache = d.join("cache");
        let url = server.file_url(item);
        let model = if what == "download" { url.as_str() } else { model };
        let output = run_with_stall_limit(
            &args(&raster, model, &out, &["--cache-dir", cache.to_str().unwrap()]),
            "2",
        );
        let (code, expected) = match what {
            "description" => (2, "cannot read service"),
            "pixels" => (1, "stopped answering"),
            _ => (2, "download of"),
        };
        let line = error_line(&output, code);
        assert!(line.contains(expected) && line.contains("too slow"), "{what}: {line}");
        assert!(!out.exists(), "{what}");
        // Nothing of the download stays in the cache.
        if cache.join("models").exists() {
            assert_eq!(files_in(&cache.join("models")), Vec::<String>::new(), "{what}");
        }
    }
    assert_eq!(files_in(d), vec!["cache"]);
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = colors_server(
        vec![
            Fault {
                matching: "/ImageServer?".into(),
                kind: FaultKind::Status("503 Service Unavailable"),
                times: 2,
            },
            Fault {
                matching: "/exportImage".into(),
                kind: FaultKind::Status("502 Bad Gateway"),
                times: 1,
            },
        ],
        vec![],
    );
    let out = d.join("out.gpkg");
    let raster = server.service_url("Colors", "ImageServer");
    // GDAL's default would wait 30 s before a retry, and never retry at all.
    let output = program()
        .args(args(
            &raster,
            fixture_str("synthetic/colors.dlpk"),
            &out,
            &["--threads", "1"],
        ))
        .env("GDAL_HTTP_RETRY_DELAY", "0.05")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.text("Status").is_none()), "{rows:?}");
    assert_eq!(server.count("/ImageServer?f=json"), 3, "{:?}", server.requests());
}

#[test]
fn a_signal_during_a_request_ends_the_run_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let package = std::fs::read(fixture("synthetic/colors.dlpk")).unwrap();
    let item = "sharing/rest/content/items/0123abcd/data";
    // Our own request (the description), a request GDAL makes (pixels), a download: each
    // stalled, with no timeout that would end it first.
    for (what, fault, name, code) in [
        ("description", stall("/ImageServer?"), "-TERM", 143),
        ("pixels", stall("/exportImage"), "-TERM", 143),
        (
            "download",
            Fault {
                matching: item.into(),
                kind: FaultKind::StallMidBody(package.len() / 3, FOREVER),
                times: 0,
            },
            "-INT",
            130,
        ),
    ] {
        let files = vec![(
            item.to_string(),
            FileSpec {
                bytes: package.clone(),
                cut: None,
            },
        )];
        let server = colors_server(vec![fault], files);
        let raster = server.service_url("Colors", "ImageServer");
        let url = server.file_url(item);
        let cache = d.join("cache");
        let out = d.join("out.gpkg");
        let model = if what == "download" {
            url.as_str()
        } else {
            fixture_str("synthetic/colors.dlpk")
        };
        let child = program()
            .args(args(&raster, model, &out, &["--cache-dir", cache.to_str().unwrap()]))
            .env("GDAL_HTTP_LOW_SPEED_TIME", "600")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_request(
            &server,
            match what {
                "description" => "/ImageServer?",
                "pixels" => "/exportImage",
                _ => item,
            },
        );
        // The request is under way (the server has it and keeps silent).
        std::thread::sleep(Duration::from_millis(200));
        signal(&child, name);
        let output = wait_bounded(child);
        let line = error_line(&output, code);
        assert!(line.contains("interrupted by a signal"), "{what}: {line}");
        assert!(!out.exists(), "{what}");
        if cache.join("models").exists() {
            assert_eq!(files_in(&cache.join("models")), Vec::<String>::new(), "{what}");
        }
        assert_eq!(
            files_in(d).into_iter().filter(|f| f != "cache").count(),
            0,
            "{what}: {:?}",
            files_in(d)
        );
    }
}
