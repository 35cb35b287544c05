//! No secret in any byte a run writes or prints: a token given in the URL, in a file or in the
//! environment reaches the (secured) fake server, and is in none of the outputs, report, summary,
//! shard record, style, cache, standard output or error, even when the server quotes it back.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use crate::support::arcgis::{ArcGisServer, Catalog, Fault, FaultKind, LayerSpec};
use crate::support::*;

/// Every file under `dir`, recursively (hidden ones too).
fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Asserts that `secret` is in no file under `dir` (nor in any file's name) and in neither
/// stream of `outputs`; returns how many files were searched.
fn assert_nowhere(secret: &str, dir: &Path, outputs: &[&Output]) -> usize {
    let files = every_file(dir);
    for file in &files {
        assert!(
            !file.display().to_string().contains(secret),
            "{} names the secret",
            file.display()
        );
        let bytes = fs::read(file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            file.display()
        );
    }
    for output in outputs {
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains(secret), "{stream} holds the secret:\n{text}");
        }
    }
    files.len()
}

/// Runs the program with `args` in `env`.
fn run_env(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_classify-objects"));
    command.args(args).env_remove("ARCGIS_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn a_token_given_each_way_reaches_the_server_and_no_byte_written_or_printed() {
    let raster = fixture("synthetic/colors.tif");
    let features = fixture("synthetic/objects.gpkg");
    for (way, token) in [
        ("url", "Url-T0ken-9f3a7c1e"),
        ("file", "File-T0ken-51be02d4"),
        ("env", "Env-T0ken-c07d11aa"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let server = ArcGisServer::start(Catalog {
            image_servers: vec![("Colors".into(), raster.clone())],
            feature_layers: vec![("Objects".into(), LayerSpec::new(features.clone(), Some("points"), 5))],
            required_token: Some(token.to_string()),
            // The first pixel read fails with a server error quoting the token, and so does
            // every request for a layer that is not there (run 3 below).
            faults: vec![
                Fault {
                    matching: "/exportImage".into(),
                    kind: FaultKind::Json(
                        json!({"error": {"code": 500, "message": format!("Error exporting image: bad token {token}")}}),
                    ),
                    // The block, and the request that asks what went wrong.
                    times: 2,
                },
                Fault {
                    matching: "/Missing/FeatureServer/0?".into(),
                    kind: FaultKind::Json(
                        json!({"error": {"code": 498, "message": format!("Invalid token {token}."), "details": []}}),
                    ),
                    times: 0,
                },
            ],
            ..Default::default()
        });
        let suffix = if way == "url" {
            format!("?token={token}")
        } else {
            String::new()
        };
        let image = format!("{}{suffix}", server.service_url("Colors", "ImageServer"));
        let layer = format!("{}/0{suffix}", server.service_url("Objects", "FeatureServer"));
        let token_file = d.join("secret").join("token.txt");
        fs::create_dir(d.join("secret")).unwrap();
        fs::write(&token_file, format!("{token}\n")).unwrap();
        let out_dir = d.join("out");
        fs::create_dir(&out_dir).unwrap();
        let mut common = vec![
            "-m".to_string(),
            fixture("synthetic/colors.dlpk").display().to_string(),
            "--cache-dir".into(),
            out_dir.join("cache").display().to_string(),
        ];
        let env: Vec<(&str, &str)> = match way {
            "file" => {
                common.extend(["--token-file".to_string(), token_file.display().to_string()]);
                vec![]
            }
            "env" => vec![("ARCGIS_TOKEN", token)],
            _ => vec![],
        };
        let arg = |s: &str| s.to_string();
        // 1. Features from the layer on the image service, everything a run writes: the output
        //    with its style and shard record, the report, the summary on stdout.
        let mut args = vec![arg("-r"), image.clone(), arg("-f"), layer.clone()];
        args.extend(common.clone());
        args.extend([
            arg("-o"),
            out_dir.join("objects.gpkg").display().to_string(),
            arg("--shard"),
            arg("0/1"),
            arg("--report"),
            out_dir.join("report.html").display().to_string(),
            arg("--summary-json"),
            arg("-"),
            // One worker: the failed block and the request that asks why are the first two.
            arg("--threads"),
            arg("1"),
        ]);
        let first = run_env(&args, &env);
        assert!(
            first.status.success(),
            "{way}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let rows = read_rows(&out_dir.join("objects.gpkg"), None);
        assert_eq!(rows.len(), 16, "{way}");
        // The one failed export is a read failure, said with the server's words, without the token.
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert!(
            stderr.contains("Error exporting image: bad token ***"),
            "{way}: {stderr}"
        );
        // 2. The image service as one object (ImageId names it), a summary file, a CSV.
        let mut args = vec![arg("-r"), image.clone()];
        args.extend(common.clone());
        args.extend([
            arg("-o"),
            out_dir.join("images.csv").display().to_string(),
            arg("--summary-json"),
            out_dir.join("summary.json").display().to_string(),
        ]);
        let second = run_env(&args, &env);
        assert!(
            second.status.success(),
            "{way}: {}",
            String::from_utf8_lossy(&second.stderr)
        );
        let image_ids: Vec<Option<String>> = read_rows(&out_dir.join("images.csv"), None)
            .iter()
            .map(|r| r.text("ImageId"))
            .collect();
        let shown = match way {
            "url" => format!("{}?token=***", server.service_url("Colors", "ImageServer")),
            _ => server.service_url("Colors", "ImageServer"),
        };
        assert_eq!(image_ids, vec![Some(shown)], "{way}");
        // 3. A server whose error quotes the token: one line, the server's words, no token.
        let mut args = vec![
            arg("-r"),
            raster.display().to_string(),
            arg("-f"),
            format!("{}/0{suffix}", server.service_url("Missing", "FeatureServer")),
        ];
        args.extend(common.clone());
        args.extend([arg("-o"), out_dir.join("failed.gpkg").display().to_string()]);
        let third = run_env(&args, &env);
        assert_eq!(
            third.status.code(),
            Some(2),
            "{way}: {}",
            String::from_utf8_lossy(&third.stderr)
        );
        // The token reached the server with every request (the server refuses any without it).
        let requests = server.requests();
        assert!(requests.len() > 10, "{way}: {requests:?}");
        for request in &requests {
            assert!(
                request.contains(&format!("token={token}")),
                "{way}: {request} lacks the token"
            );
        }
        let searched = assert_nowhere(token, d.join("out").as_path(), &[&first, &second, &third]);
        assert!(searched >= 5, "{way}: only {searched} files written");
        for written in [
            "objects.gpkg",
            "objects.qml",
            "report.html",
            "images.csv",
            "summary.json",
        ] {
            assert!(out_dir.join(written).exists(), "{way}: {written} was not written");
        }
    }
}
