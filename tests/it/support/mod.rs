//! Helpers shared by the integration tests: run the built binary, read its output back with GDAL,
//! and build variant models and rasters in temporary folders.

pub mod arcgis;
pub mod fixtures;
pub mod geo;
pub mod html;
pub mod http;
pub mod onnx;
pub mod processes;
pub mod reference;
pub mod scale_out;
pub mod seeded;
pub mod torch;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gdal::vector::{FieldValue, LayerAccess};
use gdal::Dataset;

pub mod palette;
pub use fixtures::*;
pub use geo::*;
pub use html::*;
pub use palette::PALETTE;
pub use processes::*;
pub use reference::*;
pub use scale_out::*;

/// ImageNet normalisation as (scale, offset) per channel on a 0-255 scale.
pub fn imagenet() -> [(f32, f32); 3] {
    let mean = [123.675f32, 116.28, 103.53];
    let std = [58.395f32, 57.12, 57.375];
    [0, 1, 2].map(|c| (1.0 / std[c], -mean[c] / std[c]))
}

/// The palette as floats.
pub fn palette() -> Vec<[f32; 3]> {
    PALETTE.iter().map(|(_, c)| c.map(f32::from)).collect()
}

/// Path of a file under `fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(path)
}

/// Runs classify-objects with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_classify-objects"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the classify-objects binary runs")
}

/// Runs classify-objects and asserts success.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "classify-objects {args:?} failed with {:?}:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs classify-objects, asserts exit code `code`, and returns the single error line.
pub fn run_err(args: &[&str], code: i32) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "classify-objects {args:?}: expected exit {code}, stderr:\n{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("classify-objects: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line expected, stderr:\n{stderr}");
    errors[0].to_string()
}

/// One output row read back: attribute values by field name, geometry as WKT and WKB.
#[derive(Debug, Clone)]
pub struct Row {
    pub fid: Option<u64>,
    pub fields: BTreeMap<String, Option<FieldValue>>,
    pub wkt: Option<String>,
    pub wkb: Option<Vec<u8>>,
}

impl Row {
    /// A field as text (`None` if null or missing).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Some(FieldValue::StringValue(s)) => Some(s.clone()),
            Some(FieldValue::IntegerValue(v)) => Some(v.to_string()),
            Some(FieldValue::Integer64Value(v)) => Some(v.to_string()),
            Some(FieldValue::RealValue(v)) => Some(v.to_string()),
            Some(other) => Some(format!("{other:?}")),
            None => None,
        }
    }

    /// A numeric field.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.fields.get(name)? {
            Some(FieldValue::RealValue(v)) => Some(*v),
            Some(FieldValue::IntegerValue(v)) => Some(*v as f64),
            Some(FieldValue::Integer64Value(v)) => Some(*v as f64),
            _ => None,
        }
    }
}

/// Reads every row of layer `layer` (or the first) of a vector dataset, in FID order.
pub fn read_rows(path: &Path, layer: Option<&str>) -> Vec<Row> {
    let ds = Dataset::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut layer = match layer {
        Some(name) => ds.layer_by_name(name).expect("layer exists"),
        None => ds.layer(0).expect("a layer"),
    };
    let names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    layer
        .features()
        .map(|f| Row {
            fid: f.fid(),
            fields: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), f.field(i).ok().flatten())) // KML's unset timestamps do not read as dates
                .collect(),
            wkt: f.geometry().and_then(|g| g.wkt().ok()),
            wkb: f.geometry().and_then(|g| g.wkb().ok()),
        })
        .collect()
}

/// Field names of the first layer, in order.
pub fn field_names(path: &Path) -> Vec<String> {
    let ds = Dataset::open(path).expect("open output");
    let layer = ds.layer(0).expect("a layer");
    layer.defn().fields().map(|f| f.name()).collect()
}

/// Writes a zip with `entries` (name, bytes).
pub fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// The synthetic colour `.emd` with `replace` pairs applied to its text.
pub fn colors_emd(replace: &[(&str, &str)]) -> String {
    let mut text = fs::read_to_string(fixture("synthetic/colors.emd")).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "colors.emd has no {from}");
        text = text.replace(from, to);
    }
    text
}

/// Writes a `.dlpk` with the given `.emd` text and model bytes into `dir`.
pub fn write_package(dir: &Path, name: &str, emd: &str, model: &[u8]) -> PathBuf {
    let path = dir.join(name);
    write_zip(&path, &[("model.emd", emd.as_bytes()), ("colors.onnx", model)]);
    path
}

/// The colour model read as multi-label (sigmoid over its scores): `dir/multi.dlpk`. At a
/// threshold of 0.6 some polygons get two labels, at 0.99 some get none.
pub fn multi_label_colors(dir: &Path) -> PathBuf {
    let emd = colors_emd(&[(
        "\"ImageSpaceUsed\"",
        "\"MetaDataMode\": \"MultiLabeled_Tiles\", \"ImageSpaceUsed\"",
    )]);
    write_package(
        dir,
        "multi.dlpk",
        &emd,
        &fs::read(fixture("synthetic/colors.onnx")).unwrap(),
    )
}

/// Writes a GeoTIFF of `bands` planes (`width x height` each, band-sequential), optionally
/// georeferenced in EPSG:32633 with 2 m pixels at (500000, 5800000).
pub fn write_tiff_u8(
    path: &Path,
    width: usize,
    height: usize,
    planes: &[Vec<u8>],
    georeferenced: bool,
    nodata: Option<f64>,
) {
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type::<u8, _>(path, width, height, planes.len())
        .unwrap();
    if georeferenced {
        ds.set_geo_transform(&[500_000.0, 2.0, 0.0, 5_800_000.0, 0.0, -2.0])
            .unwrap();
        ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32633).unwrap())
            .unwrap();
    }
    for (i, plane) in planes.iter().enumerate() {
        let mut band = ds.rasterband(i + 1).unwrap();
        let mut buffer = gdal::raster::Buffer::new((width, height), plane.clone());
        band.write((0, 0), (width, height), &mut buffer).unwrap();
        if let Some(v) = nodata {
            band.set_no_data_value(Some(v)).unwrap();
        }
    }
}

/// A uniform RGB image of `color`.
pub fn uniform_planes(width: usize, height: usize, color: [u8; 3]) -> Vec<Vec<u8>> {
    (0..3).map(|b| vec![color[b]; width * height]).collect()
}

/// Reads a CSV file into rows of cells (RFC 4180 quoting).
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => cells.push(std::mem::take(&mut cell)),
                _ => cell.push(c),
            }
        }
        cells.push(cell);
        rows.push(cells);
    }
    rows
}

/// Files in `dir` (names), to check that nothing was left behind.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A Float32 test raster.
pub struct TestRaster {
    pub width: usize,
    pub height: usize,
    /// Band-sequential planes.
    pub planes: Vec<Vec<f32>>,
    /// NoData value of every band.
    pub nodata: Option<f64>,
    /// Mark the last band as alpha.
    pub alpha_last: bool,
    /// Band descriptions.
    pub descriptions: Vec<&'static str>,
}

/// Pixel (col, row) of the georeferenced test rasters in map coordinates (EPSG:32633, 2 m
/// pixels at (500000, 5800000)), for fractional pixel positions.
pub fn pixel_to_map(col: f64, row: f64) -> (f64, f64) {
    (500_000.0 + 2.0 * col, 5_800_000.0 - 2.0 * row)
}

impl TestRaster {
    /// Planes whose value encodes the band and position: `1000 b + 10 row + col + 1`... kept
    /// small enough for f32: `band * 10000 + row * 100 + col + 1` (never 0).
    pub fn positional(width: usize, height: usize, bands: usize) -> TestRaster {
        let planes = (0..bands)
            .map(|b| {
                (0..width * height)
                    .map(|i| (b * 10000 + (i / width) * 100 + (i % width) + 1) as f32)
                    .collect()
            })
            .collect();
        TestRaster {
            width,
            height,
            planes,
            nodata: None,
            alpha_last: false,
            descriptions: vec![],
        }
    }

    /// The positional value of band `b` at (col, row).
    pub fn value(b: usize, col: usize, row: usize) -> f32 {
        (b * 10000 + row * 100 + col + 1) as f32
    }

    /// Writes the raster as a georeferenced Float32 GeoTIFF.
    pub fn write(&self, path: &Path) {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type::<f32, _>(path, self.width, self.height, self.planes.len())
            .unwrap();
        ds.set_geo_transform(&[500_000.0, 2.0, 0.0, 5_800_000.0, 0.0, -2.0])
            .unwrap();
        ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32633).unwrap())
            .unwrap();
        let count = self.planes.len();
        for (i, plane) in self.planes.iter().enumerate() {
            let mut band = ds.rasterband(i + 1).unwrap();
            let mut buffer = gdal::raster::Buffer::new((self.width, self.height), plane.clone());
            band.write((0, 0), (self.width, self.height), &mut buffer).unwrap();
            if let Some(v) = self.nodata {
                band.set_no_data_value(Some(v)).unwrap();
            }
            if self.alpha_last && i + 1 == count {
                band.set_color_interpretation(gdal::raster::ColorInterpretation::AlphaBand)
                    .unwrap();
            }
            if let Some(d) = self.descriptions.get(i) {
                use gdal::Metadata;
                band.set_description(d).unwrap();
            }
        }
    }
}

/// Writes a GeoJSON FeatureCollection (EPSG:32633) of WKT geometries given in pixel coordinates
/// of the test rasters.
pub fn write_pixel_features(path: &Path, pixel_wkts: &[&str]) {
    let features: Vec<String> = pixel_wkts
        .iter()
        .enumerate()
        .map(|(i, wkt)| {
            let mut g = gdal::vector::Geometry::from_wkt(wkt).unwrap();
            map_to_world(&mut g);
            format!(
                "{{\"type\":\"Feature\",\"properties\":{{\"n\":{i}}},\"geometry\":{}}}",
                g.json().unwrap()
            )
        })
        .collect();
    fs::write(
        path,
        format!(
            "{{\"type\":\"FeatureCollection\",\"crs\":{{\"type\":\"name\",\"properties\":{{\"name\":\"urn:ogc:def:crs:EPSG::32633\"}}}},\"features\":[{}]}}",
            features.join(",")
        ),
    )
    .unwrap();
}

fn map_to_world(g: &mut gdal::vector::Geometry) {
    let count = g.geometry_count();
    if count > 0 {
        for i in 0..count {
            let mut sub = g.get_geometry(i);
            let n = sub.point_count();
            for k in 0..n {
                let (x, y, _) = sub.get_point(k as i32);
                let (wx, wy) = pixel_to_map(x, y);
                sub.set_point_2d(k, (wx, wy));
            }
        }
    } else {
        for k in 0..g.point_count() {
            let (x, y, _) = g.get_point(k as i32);
            let (wx, wy) = pixel_to_map(x, y);
            g.set_point_2d(k, (wx, wy));
        }
    }
}

/// Reads a dumped chip back: `planes[c][row * width + col]`.
pub fn read_chip(path: &Path) -> (usize, usize, Vec<Vec<f32>>) {
    let ds = Dataset::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let (w, h) = ds.raster_size();
    let planes = (1..=ds.raster_count())
        .map(|b| {
            ds.rasterband(b)
                .unwrap()
                .read_as::<f32>((0, 0), (w, h), (w, h), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect();
    (w, h, planes)
}

/// A package whose `.emd` is the colour `.emd` with `replace` applied and whose model is the
/// colour classifier built with `options` and `normalization`.
pub fn color_package(
    dir: &Path,
    name: &str,
    replace: &[(&str, &str)],
    options: &onnx::ColorModelOptions,
    normalization: &[(f32, f32); 3],
) -> PathBuf {
    let model = onnx::color_classifier(&palette(), normalization, options);
    write_package(dir, name, &colors_emd(replace), &model)
}

/// Copies the window (col0, row0, w, h) of a raster into a new GeoTIFF with the matching
/// georeferencing: a tile of it.
pub fn write_tile(source: &Path, col0: usize, row0: usize, w: usize, h: usize, out: &Path) {
    let src = Dataset::open(source).unwrap();
    let gt = src.geo_transform().unwrap();
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type::<u8, _>(out, w, h, src.raster_count())
        .unwrap();
    ds.set_geo_transform(&[
        gt[0] + col0 as f64 * gt[1],
        gt[1],
        0.0,
        gt[3] + row0 as f64 * gt[5],
        0.0,
        gt[5],
    ])
    .unwrap();
    ds.set_spatial_ref(&src.spatial_ref().unwrap()).unwrap();
    for b in 1..=src.raster_count() {
        let data = src
            .rasterband(b)
            .unwrap()
            .read_as::<u8>((col0 as isize, row0 as isize), (w, h), (w, h), None)
            .unwrap();
        let mut buffer = gdal::raster::Buffer::new((w, h), data.data().to_vec());
        ds.rasterband(b).unwrap().write((0, 0), (w, h), &mut buffer).unwrap();
    }
}

/// A file server on 127.0.0.1 with Range support, for `/vsicurl/` tests: it serves `root`,
/// counts range requests and the body bytes it sends, and stops when dropped.
pub struct RangeServer {
    pub port: u16,
    pub range_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Body bytes sent in answer to GET requests.
    pub bytes_served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _server: http::HttpServer,
}

impl RangeServer {
    pub fn start(root: &Path) -> RangeServer {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let (range_requests, bytes_served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (ranges, bytes, root) = (range_requests.clone(), bytes_served.clone(), root.to_path_buf());
        let server = http::HttpServer::start(Arc::new(move |request: &http::Request| {
            let Ok(file) = fs::read(root.join(request.path().trim_start_matches('/'))) else {
                return http::Response::not_found();
            };
            let range = request.header("range").and_then(|v| v.strip_prefix("bytes=")).map(|v| {
                // One range only: a multi-range request would be answered wrong, so refuse it.
                assert!(!v.contains(','), "multi-range requests are not served: {v}");
                let (a, b) = v.trim().split_once('-').unwrap();
                (a.parse::<u64>().unwrap(), b.parse::<u64>().ok())
            });
            let total = file.len() as u64;
            let mut response = match range {
                Some((a, b)) => {
                    ranges.fetch_add(1, Ordering::SeqCst);
                    let end = b.unwrap_or(total - 1).min(total - 1);
                    let mut r = http::Response::with_status(
                        "206 Partial Content",
                        "application/octet-stream",
                        file[a as usize..=end as usize].to_vec(),
                    );
                    r.headers
                        .push(("Content-Range".into(), format!("bytes {a}-{end}/{total}")));
                    r
                }
                None => http::Response::ok("application/octet-stream", file),
            };
            response.headers.push(("Accept-Ranges".into(), "bytes".into()));
            if request.method != "HEAD" {
                bytes.fetch_add(response.body.len(), Ordering::SeqCst);
            }
            response
        }));
        RangeServer {
            port: server.port,
            range_requests,
            bytes_served,
            _server: server,
        }
    }
}

/// Arguments of a classification run: `-r raster -m model [-f features] -o out` then `extra`.
pub fn classify_args(raster: &Path, model: &Path, features: Option<&Path>, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "-r".to_string(),
        raster.display().to_string(),
        "-m".into(),
        model.display().to_string(),
    ];
    if let Some(features) = features {
        args.extend(["-f".to_string(), features.display().to_string()]);
    }
    args.extend(["-o".to_string(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs classify-objects with owned arguments.
pub fn run_owned(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs)
}

/// Runs classify-objects with owned arguments and asserts success.
pub fn run_owned_ok(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&refs)
}
