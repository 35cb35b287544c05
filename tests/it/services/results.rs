//! Results appended to an ArcGIS feature layer (`-o …/FeatureServer/0`), checked against what
//! the fake server received: every feature once, with its geometry, the attributes the layer
//! has and the label, in batches; once only after an interrupted run resumed; and a layer
//! without the label field refused with the field it needs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::arcgis::{ArcGisServer, Catalog, Fault, FaultKind, TargetSpec};
use crate::support::*;

/// The token the layer requires, given in the environment.
const TOKEN: &str = "Results-T0ken-7f3a";

fn results_server(spec: TargetSpec, faults: Vec<Fault>) -> ArcGisServer {
    ArcGisServer::start(Catalog {
        target_layers: vec![("Results".into(), spec)],
        faults,
        required_token: Some(TOKEN.into()),
        ..Default::default()
    })
}

/// A point layer in the fixture's CRS with the fixture's `name`, 5 features per request.
fn points_layer() -> TargetSpec {
    TargetSpec {
        page: 5,
        ..TargetSpec::results("esriGeometryPoint", 32633, &[("name", "esriFieldTypeString")])
    }
}

fn send(server: &ArcGisServer, cache: &Path, extra: &[&str], stall_seconds: &str) -> Output {
    let layer = format!("{}/0", server.service_url("Results", "FeatureServer"));
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args([
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            fixture("synthetic/objects.gpkg").to_str().unwrap(),
            "--layer",
            "points",
            "--cache-dir",
            cache.to_str().unwrap(),
            "-o",
            &layer,
        ])
        .args(extra)
        .env("GDAL_HTTP_LOW_SPEED_TIME", stall_seconds)
        .env("ARCGIS_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn source_ids(added: &[Value]) -> Vec<i64> {
    added
        .iter()
        .map(|f| f["attributes"]["SourceOID"].as_i64().unwrap())
        .collect()
}

#[test]
fn results_land_in_a_feature_layer_with_geometry_attributes_and_labels_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = results_server(points_layer(), vec![]);
    let report = d.join("report.html");
    let output = send(&server, &d.join("cache"), &["--report", report.to_str().unwrap()], "60");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.exists());
    // The token reached the layer with every request, and nothing written or printed.
    assert!(!String::from_utf8_lossy(&output.stderr).contains(TOKEN));
    assert!(!std::fs::read_to_string(&report).unwrap().contains(TOKEN));
    let added = server.added("Results");
    assert_eq!(source_ids(&added), (1..=16).collect::<Vec<_>>());
    let points = read_rows(&fixture("synthetic/objects.gpkg"), Some("points"));
    for (feature, point) in added.iter().zip(&points) {
        let a = &feature["attributes"];
        assert_eq!(a["name"].as_str().map(str::to_string), point.text("name"));
        // The colour model labels each point with its painted truth.
        assert_eq!(a["ClassLabel"].as_str().map(str::to_string), point.text("truth"));
        assert!(a["Confidence"].as_f64().unwrap() > 0.5, "{a}");
        let (x, y) = centre(point.wkt.as_deref().unwrap());
        assert_eq!(
            (feature["geometry"]["x"].as_f64(), feature["geometry"]["y"].as_f64()),
            (Some(x), Some(y))
        );
    }
    // In batches of the layer's maxRecordCount, POSTed.
    let posts: Vec<_> = server
        .logged()
        .into_iter()
        .filter(|l| l.target.contains("/addFeatures"))
        .collect();
    assert_eq!(posts.len(), 4);
    assert!(posts
        .iter()
        .all(|p| p.method == "POST" && p.form.contains_key("features")));
    // Nothing stays behind locally.
    assert_eq!(files_in(&d.join("cache").join("uploads")), Vec::<String>::new());
}

#[test]
fn an_interrupted_upload_resumed_adds_every_feature_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The first batch is applied, but its answer never comes: the run fails on the stall.
    let server = results_server(
        points_layer(),
        vec![Fault {
            matching: "/addFeatures".into(),
            kind: FaultKind::ApplyThenStall(Duration::from_secs(100)),
            times: 1,
        }],
    );
    let output = send(&server, &d.join("cache"), &[], "2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("addFeatures"), "{stderr}");
    assert_eq!(source_ids(&server.added("Results")), vec![1, 2, 3, 4, 5]);
    // Run again with --resume: the features the layer holds are skipped.
    let output = send(&server, &d.join("cache"), &["--resume"], "60");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("11 feature(s) added") && stderr.contains("5 held already"),
        "{stderr}"
    );
    let ids = source_ids(&server.added("Results"));
    assert_eq!(ids.len(), 16, "{ids:?}");
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), (1..=16).collect());
}

/// A plain run made again (a Makefile target, a retried job) must not add every result a second
/// time: a layer holding features takes more only with --append (everything again) or --resume
/// (what it lacks).
#[test]
fn a_layer_holding_features_takes_more_only_with_append_or_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = results_server(points_layer(), vec![]);
    let output = send(&server, &d.join("cache"), &[], "60");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(server.added("Results").len(), 16);
    let output = send(&server, &d.join("cache"), &[], "60");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("holds 16 feature(s) already") && stderr.contains("--append") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        server.count("/addFeatures"),
        4,
        "the first run's four batches, nothing since"
    );
    assert_eq!(server.added("Results").len(), 16);
    // --resume adds nothing (the layer holds every feature); --append adds them all again.
    let output = send(&server, &d.join("cache"), &["--resume"], "60");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(server.added("Results").len(), 16);
    let output = send(&server, &d.join("cache"), &["--append"], "60");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ids = source_ids(&server.added("Results"));
    assert_eq!(ids.len(), 32);
    assert_eq!(ids[16..], (1..=16).collect::<Vec<_>>()[..]);
}

#[test]
fn a_layer_without_the_label_field_is_refused_with_the_field_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut spec = points_layer();
    spec.fields.retain(|(n, _)| n != "ClassLabel");
    let server = results_server(spec, vec![]);
    let output = send(&server, &d.join("cache"), &[], "60");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(r#"has no field ClassLabel for the labels; add it to the layer first (addToDefinition {"fields":[{"name":"ClassLabel","type":"esriFieldTypeString","alias":"ClassLabel","length":256,"nullable":true,"editable":true}]})"#),
        "{stderr}"
    );
    assert_eq!(server.count("/addFeatures"), 0);
    assert!(server.added("Results").is_empty());
    // Nor does a layer take --overwrite: it is appended to.
    let server = results_server(points_layer(), vec![]);
    let output = send(&server, &d.join("cache"), &["--overwrite"], "60");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--overwrite does not apply to feature layer"),
        "{stderr}"
    );
    assert!(server.added("Results").is_empty());
}
