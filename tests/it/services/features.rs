//! Feature service layers as Esri's tool reads them: `--where` and `--extent` are the server's
//! to apply, a read page by page that gives a feature twice or misses one fails naming them, and
//! a service error is the server's own message on one line.

use serde_json::json;

use crate::support::arcgis::{ArcGisServer, Catalog, Fault, FaultKind, LayerSpec};
use crate::support::*;

fn points_server(spec: LayerSpec, faults: Vec<Fault>) -> ArcGisServer {
    ArcGisServer::start(Catalog {
        feature_layers: vec![("Objects".into(), spec)],
        faults,
        ..Default::default()
    })
}

fn points() -> LayerSpec {
    LayerSpec::new(fixture("synthetic/objects.gpkg"), Some("points"), 3)
}

fn layer_url(server: &ArcGisServer) -> String {
    format!("{}/0", server.service_url("Objects", "FeatureServer"))
}

fn args<'a>(features: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let raster = Box::leak(fixture("synthetic/colors.tif").display().to_string().into_boxed_str());
    let model = Box::leak(fixture("synthetic/colors.dlpk").display().to_string().into_boxed_str());
    let mut args = vec!["-r", raster, "-m", model, "-f", features, "-o", out];
    args.extend_from_slice(extra);
    args
}

#[test]
fn where_and_extent_are_applied_by_the_server_and_keep_what_they_keep_locally() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = points_server(points(), vec![]);
    let url = layer_url(&server);
    // The upper half of the image, and half of its points by weight.
    let filters = [
        "--where",
        "weight >= 2",
        "--extent",
        "500000",
        "5799744",
        "500512",
        "5800000",
    ];
    let local = d.join("local.gpkg");
    let gpkg = fixture("synthetic/objects.gpkg").display().to_string();
    let mut local_args = args(&gpkg, local.to_str().unwrap(), &filters);
    local_args.extend(["--layer", "points"]);
    run_ok(&local_args);
    let out = d.join("service.gpkg");
    run_ok(&args(&url, out.to_str().unwrap(), &filters));
    let fields = ["id", "name", "SourceOID", "ClassLabel", "Confidence", "Status"];
    let values = |rows: &[Row]| -> Vec<Vec<Option<String>>> {
        rows.iter()
            .map(|r| fields.iter().map(|f| r.text(f)).collect())
            .collect()
    };
    let (local_rows, rows) = (read_rows(&local, None), read_rows(&out, None));
    assert!(!rows.is_empty() && rows.len() < 8, "{}", rows.len());
    assert_eq!(values(&rows), values(&local_rows));
    // Every query carried both filters: the server sent only what they select.
    let queries: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/query?"))
        .collect();
    assert!(!queries.is_empty());
    for query in &queries {
        assert!(query.contains("where=weight >= 2"), "{query}");
        assert!(
            query.contains("geometryType=esriGeometryEnvelope") && query.contains("inSR=32633"),
            "{query}"
        );
        assert!(query.contains("geometry=500000,5799744,500512,5800000"), "{query}");
    }
    assert!(!queries.iter().any(|q| q.contains("where=1=1")), "{queries:?}");
}

#[test]
fn pages_that_repeat_one_feature_and_drop_another_fail_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gpkg");
    // Rows 1, 2, 3, 4 | 4, 6, 7, 8 | ...: the count stays right.
    let server = points_server(
        LayerSpec {
            repeat: Some((4, 5)),
            ..LayerSpec::new(fixture("synthetic/objects.gpkg"), Some("points"), 4)
        },
        vec![],
    );
    let url = layer_url(&server);
    let line = run_err(&args(&url, out.to_str().unwrap(), &[]), 1);
    assert!(
        line.contains("OBJECTID 4 read twice and OBJECTID 5 never read"),
        "{line}"
    );
    assert!(!out.exists());
}

#[test]
fn a_service_error_is_the_servers_message_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gpkg");
    // A where clause the server refuses, as ArcGIS does.
    let server = points_server(
        points(),
        vec![Fault {
            matching: "nosuchfield".into(),
            kind: FaultKind::Json(
                json!({"error": {"code": 400, "message": "Unable to perform query. Please check your parameters.", "details": ["'Invalid field: nosuchfield' parameter is invalid"]}}),
            ),
            times: 0,
        }],
    );
    let url = layer_url(&server);
    let line = run_err(&args(&url, out.to_str().unwrap(), &["--where", "nosuchfield = 1"]), 2);
    assert!(
        line.contains("Unable to perform query. Please check your parameters ('Invalid field: nosuchfield' parameter is invalid) (code 400)"),
        "{line}"
    );
    assert!(line.contains("--where"), "{line}");
    assert!(!out.exists());
    // A page that fails.
    let server = points_server(
        points(),
        vec![Fault {
            matching: "resultOffset=3".into(),
            kind: FaultKind::Json(json!({"error": {"code": 500, "message": "Database is busy", "details": []}})),
            times: 0,
        }],
    );
    let url = layer_url(&server);
    let output = run(&args(&url, out.to_str().unwrap(), &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("Database is busy"), "{stderr}");
    assert!(!out.exists());
    // An exportImage that fails: the server's message, not GDAL's block lines.
    let image = ArcGisServer::start(Catalog {
        image_servers: vec![("Colors".into(), fixture("synthetic/colors.tif"))],
        faults: vec![Fault {
            matching: "/exportImage".into(),
            kind: FaultKind::Json(
                json!({"error": {"code": 500, "message": "Error exporting image", "details": ["The raster is offline."]}}),
            ),
            times: 0,
        }],
        ..Default::default()
    });
    let raster = image.service_url("Colors", "ImageServer");
    let model = fixture("synthetic/colors.dlpk").display().to_string();
    let gpkg = fixture("synthetic/objects.gpkg").display().to_string();
    let output = run(&[
        "-r",
        &raster,
        "-m",
        &model,
        "-f",
        &gpkg,
        "--layer",
        "points",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("IReadBlock"), "{stderr}");
    assert!(
        stderr.contains("Error exporting image (The raster is offline)"),
        "{stderr}"
    );
    assert!(stderr.lines().all(|l| l.len() < 400), "{stderr}");
}
