//! Models on an ArcGIS portal, given as Esri's samples give them: the item's URL (its
//! description checked, its data downloaded), the data's URL, or the item ID with `--portal`;
//! the run's token reaches the portal, and nothing else is taken for a model.

use std::fs;
use std::process::Command;

use serde_json::json;

use crate::support::arcgis::{ArcGisServer, Catalog, PortalItem};
use crate::support::*;

const ID: &str = "0123456789abcdef0123456789abcdef";
const NOT_A_MODEL: &str = "fedcba9876543210fedcba9876543210";
const TOKEN: &str = "Portal-T0ken-9d1e";

fn portal() -> ArcGisServer {
    let package = fs::read(fixture("synthetic/colors.dlpk")).unwrap();
    ArcGisServer::start(Catalog {
        portal_items: vec![
            PortalItem {
                id: ID.into(),
                description: json!({"id": ID, "title": "Colors", "type": "Deep Learning Package", "name": "colors.dlpk"}),
                data: package,
            },
            PortalItem {
                id: NOT_A_MODEL.into(),
                description: json!({"id": NOT_A_MODEL, "title": "Parcels", "type": "Feature Service"}),
                data: b"{}".to_vec(),
            },
        ],
        required_token: Some(TOKEN.into()),
        ..Default::default()
    })
}

/// Runs a classification of the bundled fixtures with `model` (and `extra`), the token in the
/// environment.
fn run_with(model: &str, cache: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args([
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            model,
            "-f",
            fixture("synthetic/objects.gpkg").to_str().unwrap(),
            "--layer",
            "points",
            "--cache-dir",
            cache.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .env("ARCGIS_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[test]
fn a_model_is_taken_from_a_portal_by_item_url_data_url_or_item_id() {
    let server = portal();
    let item = format!("{}/sharing/rest/content/items/{ID}", server.root());
    let data = format!("{item}/data");
    let root = server.root();
    for (way, model, extra) in [
        ("item", item.as_str(), vec![]),
        ("data", data.as_str(), vec![]),
        ("id", ID, vec!["--portal", root.as_str()]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = d.join("out.gpkg");
        let output = run_with(model, &d.join("cache"), &out, &extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{way}: {stderr}");
        assert!(!stderr.contains(TOKEN), "{way}: {stderr}");
        let rows = read_rows(&out, None);
        assert_eq!(rows.len(), 16, "{way}");
        assert!(rows.iter().all(|r| r.text("ClassLabel") == r.text("truth")), "{way}");
        // Downloaded once, into the cache, under a name without the token.
        let cached = files_in(&d.join("cache").join("models"));
        assert_eq!(cached.len(), 2, "{way}: {cached:?}");
        assert!(cached.iter().all(|f| !f.contains(TOKEN)), "{way}: {cached:?}");
    }
    // The item's description was asked for (except with its data's URL), then its data.
    let requests = server.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.ends_with(&format!("items/{ID}?token={TOKEN}&f=json")))
            .count(),
        2,
        "{requests:?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.contains(&format!("items/{ID}/data")))
            .count(),
        3,
        "{requests:?}"
    );
}

#[test]
fn what_is_not_a_model_package_on_a_portal_is_refused_in_one_line() {
    let server = portal();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gpkg");
    let cache = d.join("cache");
    let root = server.root();
    let missing = "00000000000000000000000000000000";
    let cases = [
        (
            NOT_A_MODEL,
            vec!["--portal", root.as_str()],
            "is a Feature Service, not a Deep Learning Package",
        ),
        (
            missing,
            vec!["--portal", root.as_str()],
            "Item does not exist or is inaccessible",
        ),
        (ID, vec![], "is an ArcGIS item ID; give its portal with --portal URL"),
        (
            "/nonexistent/model.dlpk",
            vec!["--portal", root.as_str()],
            "--portal http://127.0.0.1",
        ),
    ];
    for (model, extra, expected) in cases {
        let output = run_with(model, &cache, &out, &extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{model}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(expected), "{model}: {stderr}");
        assert!(!stderr.contains(TOKEN), "{stderr}");
        assert!(!out.exists());
    }
}
