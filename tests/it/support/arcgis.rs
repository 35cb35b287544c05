//! A local HTTP server on 127.0.0.1 that answers like the ArcGIS REST API, for the tests of
//! services: an ImageServer (`?f=json`, `exportImage` with bbox/size/format, TIFF or PNG), a cached
//! MapServer (`?f=json` with `tileInfo`, `tile/{level}/{row}/{col}` PNG tiles), FeatureServer
//! layers (`0?f=json`, `0/query` with `returnCountOnly`, `resultOffset`/`resultRecordCount` and
//! `exceededTransferLimit`), and plain files (a portal item's data), whole or cut short. Images
//! and features are served from local files, so a run on the service can be compared with a run
//! on the files. Every request is logged. Bounded: 120 s or 10,000 connections, then it stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gdal::vector::{FieldValue, Geometry, LayerAccess, OGRFieldType};
use gdal::Dataset;
use serde_json::{json, Value};

use super::http::{decode, HttpServer, Request, Response};

/// A raster held in memory: band planes as f64, georeferencing, EPSG code, NoData.
#[derive(Clone)]
struct Image {
    width: usize,
    height: usize,
    planes: Vec<Vec<f64>>,
    gt: [f64; 6],
    epsg: i64,
    nodata: Option<f64>,
    float: bool,
}

impl Image {
    fn load(path: &Path) -> Image {
        let ds = Dataset::open(path).unwrap();
        let (width, height) = ds.raster_size();
        let planes = (1..=ds.raster_count())
            .map(|b| {
                ds.rasterband(b)
                    .unwrap()
                    .read_as::<f64>((0, 0), (width, height), (width, height), None)
                    .unwrap()
                    .data()
                    .to_vec()
            })
            .collect();
        let band = ds.rasterband(1).unwrap();
        let srs = ds.spatial_ref().unwrap();
        Image {
            width,
            height,
            planes,
            gt: ds.geo_transform().unwrap(),
            epsg: srs.auth_code().unwrap() as i64,
            nodata: band.no_data_value(),
            float: band.band_type() != gdal::raster::GdalDataType::UInt8,
        }
    }

    /// Samples (nearest, pixel centres) the map window starting at native pixel (c0, r0),
    /// `step` native pixels per output pixel, into `w x h`; 0 outside the image.
    fn sample(&self, c0: f64, r0: f64, step: f64, w: usize, h: usize) -> Vec<Vec<f64>> {
        self.planes
            .iter()
            .map(|plane| {
                (0..w * h)
                    .map(|i| {
                        let c = (c0 + ((i % w) as f64 + 0.5) * step).floor();
                        let r = (r0 + ((i / w) as f64 + 0.5) * step).floor();
                        if c < 0.0 || r < 0.0 || c >= self.width as f64 || r >= self.height as f64 {
                            0.0
                        } else {
                            plane[r as usize * self.width + c as usize]
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Encodes planes as TIFF or PNG through GDAL, in the image's data type.
    fn encode(&self, planes: &[Vec<f64>], w: usize, h: usize, format: &str) -> Vec<u8> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mem = gdal::DriverManager::get_driver_by_name("MEM").unwrap();
        let ds = if self.float {
            mem.create_with_band_type::<f32, _>("", w, h, planes.len()).unwrap()
        } else {
            mem.create_with_band_type::<u8, _>("", w, h, planes.len()).unwrap()
        };
        for (i, plane) in planes.iter().enumerate() {
            let mut band = ds.rasterband(i + 1).unwrap();
            if self.float {
                let mut buffer = gdal::raster::Buffer::new((w, h), plane.iter().map(|&v| v as f32).collect());
                band.write((0, 0), (w, h), &mut buffer).unwrap();
            } else {
                let mut buffer = gdal::raster::Buffer::new((w, h), plane.iter().map(|&v| v as u8).collect());
                band.write((0, 0), (w, h), &mut buffer).unwrap();
            }
        }
        let (driver, ext) = if format.eq_ignore_ascii_case("tiff") {
            ("GTiff", "tif")
        } else {
            ("PNG", "png")
        };
        let name = format!("/vsimem/arcgis-test-{}-{n}.{ext}", std::process::id());
        let copy = ds
            .create_copy(
                &gdal::DriverManager::get_driver_by_name(driver).unwrap(),
                &name,
                &Default::default(),
            )
            .unwrap();
        drop(copy);
        gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap()
    }

    fn spatial_reference(&self) -> Value {
        json!({ "wkid": self.epsg, "latestWkid": self.epsg })
    }

    fn extent(&self) -> Value {
        let gt = &self.gt;
        json!({
            "xmin": gt[0],
            "ymin": gt[3] + gt[5] * self.height as f64,
            "xmax": gt[0] + gt[1] * self.width as f64,
            "ymax": gt[3],
            "spatialReference": self.spatial_reference(),
        })
    }
}

/// A tiling scheme for a cached MapServer: square tiles of `tile` pixels, `levels + 1` levels
/// (the finest at the image's cell size, each coarser one doubling it), and a tile origin
/// `offset` (columns, rows) native pixels left of and above the image's corner. The tiles
/// `missing` (level, row, column) are answered 404, as a cache without them does.
#[derive(Clone, Copy, Debug)]
pub struct Tiling {
    pub tile: usize,
    pub levels: u32,
    pub offset: (usize, usize),
    pub missing: &'static [(u32, i64, i64)],
}

/// A feature layer served from a local file, `page` features per request.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub path: PathBuf,
    pub layer: Option<String>,
    pub page: usize,
    /// Ignore `resultOffset` (a server whose paging is broken): every page is the first one.
    pub ignore_offset: bool,
    /// Declare `supportsPagination: false`.
    pub no_paging: bool,
}

impl LayerSpec {
    /// Layer `layer` (or the first) of `path`, `page` features per request, paging as it should.
    pub fn new(path: PathBuf, layer: Option<&str>, page: usize) -> LayerSpec {
        LayerSpec {
            path,
            layer: layer.map(str::to_string),
            page,
            ignore_offset: false,
            no_paging: false,
        }
    }
}

/// A file served as is (a portal item's data); `cut` sends only that many bytes of it (the
/// announced length stays the whole file's) and closes the connection.
#[derive(Clone, Debug)]
pub struct FileSpec {
    pub bytes: Vec<u8>,
    pub cut: Option<usize>,
}

/// What the server serves, by service name (`/arcgis/rest/services/NAME/…`) or path (`files`).
#[derive(Clone, Default)]
pub struct Catalog {
    pub image_servers: Vec<(String, PathBuf)>,
    pub map_servers: Vec<(String, PathBuf, Tiling)>,
    /// A MapServer without tile cache (a dynamic map).
    pub dynamic_map_servers: Vec<String>,
    pub feature_layers: Vec<(String, LayerSpec)>,
    pub files: Vec<(String, FileSpec)>,
}

struct State {
    images: BTreeMap<String, Image>,
    tiles: BTreeMap<String, (Image, Tiling)>,
    dynamic: Vec<String>,
    layers: BTreeMap<String, (LayerSpec, Value, Vec<Value>)>,
    files: BTreeMap<String, FileSpec>,
    log: Mutex<Vec<String>>,
}

/// The running server; stops when dropped.
pub struct ArcGisServer {
    pub port: u16,
    state: Arc<State>,
    _server: HttpServer,
}

impl ArcGisServer {
    pub fn start(catalog: Catalog) -> ArcGisServer {
        let state = Arc::new(State {
            images: catalog
                .image_servers
                .iter()
                .map(|(name, path)| (name.clone(), Image::load(path)))
                .collect(),
            tiles: catalog
                .map_servers
                .iter()
                .map(|(name, path, tiling)| (name.clone(), (Image::load(path), *tiling)))
                .collect(),
            dynamic: catalog.dynamic_map_servers.clone(),
            layers: catalog
                .feature_layers
                .iter()
                .map(|(name, spec)| {
                    let (info, features) = load_layer(spec);
                    (name.clone(), (spec.clone(), info, features))
                })
                .collect(),
            files: catalog.files.iter().cloned().collect(),
            log: Mutex::new(Vec::new()),
        });
        let state2 = state.clone();
        let server = HttpServer::start(Arc::new(move |request: &Request| {
            let (path, query) = (request.path(), request.query());
            state2.log.lock().unwrap().push(format!("{path}?{}", decode(query)));
            let (status, content_type, body, cut) = answer(&state2, path, &request.params());
            let mut response = Response::with_status(status, content_type, body);
            response.cut = cut;
            response
        }));
        ArcGisServer {
            port: server.port,
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/arcgis/rest/services/NAME/KIND`.
    pub fn service_url(&self, name: &str, kind: &str) -> String {
        format!("http://127.0.0.1:{}/arcgis/rest/services/{name}/{kind}", self.port)
    }

    /// `http://127.0.0.1:PORT/PATH` of a served file.
    pub fn file_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request target so far (path and query, decoded).
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    /// How many request targets contain `part`.
    pub fn count(&self, part: &str) -> usize {
        self.requests().iter().filter(|r| r.contains(part)).count()
    }
}

type Answer = (&'static str, &'static str, Vec<u8>, Option<usize>);

fn json_answer(value: Value) -> Answer {
    ("200 OK", "application/json", value.to_string().into_bytes(), None)
}

fn not_found() -> Answer {
    ("404 Not Found", "text/plain", b"not found".to_vec(), None)
}

/// What ArcGIS Server answers (HTTP 200) for a URL it does not serve.
fn invalid_url() -> Answer {
    json_answer(json!({"error": {"code": 400, "message": "Invalid URL", "details": []}}))
}

fn answer(state: &State, path: &str, params: &BTreeMap<String, String>) -> Answer {
    if let Some(file) = state.files.get(path.trim_start_matches('/')) {
        return ("200 OK", "application/octet-stream", file.bytes.clone(), file.cut);
    }
    let Some(rest) = path.strip_prefix("/arcgis/rest/services/") else {
        return not_found();
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [name, "ImageServer"] => match state.images.get(*name) {
            Some(image) => json_answer(image_server_info(image)),
            None => invalid_url(),
        },
        [name, "ImageServer", "exportImage"] => match state.images.get(*name) {
            Some(image) => export_image(image, params),
            None => invalid_url(),
        },
        [name, "MapServer"] if state.dynamic.iter().any(|d| d == name) => json_answer(json!({
            "mapName": "Layers", "capabilities": "Map,Query,Data", "singleFusedMapCache": false,
            "fullExtent": {"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10, "spatialReference": {"wkid": 3857}},
        })),
        [name, "MapServer"] => match state.tiles.get(*name) {
            Some((image, tiling)) => json_answer(map_server_info(image, tiling)),
            None => invalid_url(),
        },
        [name, "MapServer", "tile", z, y, x] => match state.tiles.get(*name) {
            Some((image, tiling)) => tile(image, tiling, z, y, x),
            None => invalid_url(),
        },
        [name, "FeatureServer", "0"] => match state.layers.get(*name) {
            Some((_, info, _)) => json_answer(info.clone()),
            None => invalid_url(),
        },
        [name, "FeatureServer", "0", "query"] => match state.layers.get(*name) {
            Some((spec, info, features)) => json_answer(query(spec, info, features, params)),
            None => invalid_url(),
        },
        _ => invalid_url(),
    }
}

fn image_server_info(image: &Image) -> Value {
    let mut info = json!({
        "name": "test",
        "serviceDataType": "esriImageServiceDataTypeGeneric",
        "extent": image.extent(),
        "initialExtent": image.extent(),
        "fullExtent": image.extent(),
        "pixelSizeX": image.gt[1],
        "pixelSizeY": -image.gt[5],
        "bandCount": image.planes.len(),
        "pixelType": if image.float { "F32" } else { "U8" },
        "minPixelSize": 0,
        "maxPixelSize": 0,
        "capabilities": "Image,Metadata,Catalog,Mensuration",
        "maxImageHeight": 4100,
        "maxImageWidth": 15000,
        "singleFusedMapCache": false,
        "spatialReference": image.spatial_reference(),
    });
    if let Some(nodata) = image.nodata {
        info["noDataValue"] = json!(nodata);
    }
    info
}

fn numbers(text: &str) -> Vec<f64> {
    text.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

/// `exportImage`: the bbox at the requested size, nearest neighbour; the bbox must be on the
/// image's pixel grid (GDAL asks exactly that when the service's extent and cell size are used).
fn export_image(image: &Image, params: &BTreeMap<String, String>) -> Answer {
    let bbox = numbers(params.get("bbox").map(String::as_str).unwrap_or(""));
    let size: Vec<usize> = params
        .get("size")
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_default();
    if bbox.len() != 4 || size.len() != 2 || params.get("f").map(String::as_str) != Some("image") {
        return json_answer(json!({"error": {"code": 400, "message": "bbox, size and f=image are required"}}));
    }
    if params.get("bboxsr").map(|s| s.parse::<i64>().ok()) != Some(Some(image.epsg)) {
        return json_answer(json!({"error": {"code": 400, "message": "bboxSR must be the service's"}}));
    }
    let gt = &image.gt;
    let c0 = (bbox[0] - gt[0]) / gt[1];
    let r0 = (gt[3] - bbox[3]) / -gt[5];
    let step = (bbox[2] - bbox[0]) / gt[1] / size[0] as f64;
    let snapped = |v: f64| (v - v.round()).abs() < 1e-6;
    if !snapped(c0) || !snapped(r0) {
        return json_answer(json!({"error": {"code": 400, "message": "bbox is not on the pixel grid"}}));
    }
    let format = params.get("format").cloned().unwrap_or_else(|| "jpgpng".into());
    if format != "tiff" && format != "png" {
        return json_answer(json!({"error": {"code": 400, "message": "the test server writes tiff and png only"}}));
    }
    let planes = image.sample(c0.round(), r0.round(), step, size[0], size[1]);
    let content = if format == "tiff" { "image/tiff" } else { "image/png" };
    (
        "200 OK",
        content,
        image.encode(&planes, size[0], size[1], &format),
        None,
    )
}

fn map_server_info(image: &Image, tiling: &Tiling) -> Value {
    let res = image.gt[1];
    let lods: Vec<Value> = (0..=tiling.levels)
        .map(|level| {
            let r = res * f64::from(1u32 << (tiling.levels - level));
            json!({"level": level, "resolution": r, "scale": r / 0.0254 * 96.0})
        })
        .collect();
    json!({
        "mapName": "Layers",
        "capabilities": "Map,TilesOnly",
        "singleFusedMapCache": true,
        "spatialReference": image.spatial_reference(),
        "fullExtent": image.extent(),
        "initialExtent": image.extent(),
        "tileInfo": {
            "rows": tiling.tile,
            "cols": tiling.tile,
            "dpi": 96,
            "format": "PNG",
            "origin": {
                "x": image.gt[0] - tiling.offset.0 as f64 * res,
                "y": image.gt[3] + tiling.offset.1 as f64 * res,
            },
            "spatialReference": image.spatial_reference(),
            "lods": lods,
        },
    })
}

/// `tile/{level}/{row}/{col}`: PNG of the tile, 0 outside the image.
fn tile(image: &Image, tiling: &Tiling, z: &str, y: &str, x: &str) -> Answer {
    let (Ok(z), Ok(y), Ok(x)) = (z.parse::<u32>(), y.parse::<i64>(), x.parse::<i64>()) else {
        return not_found();
    };
    if z > tiling.levels || tiling.missing.contains(&(z, y, x)) {
        return not_found();
    }
    let step = f64::from(1u32 << (tiling.levels - z));
    let t = tiling.tile as f64;
    let c0 = x as f64 * t * step - tiling.offset.0 as f64;
    let r0 = y as f64 * t * step - tiling.offset.1 as f64;
    let planes = image.sample(c0, r0, step, tiling.tile, tiling.tile);
    (
        "200 OK",
        "image/png",
        image.encode(&planes, tiling.tile, tiling.tile, "png"),
        None,
    )
}

/// The layer description and its features as ESRI JSON, in FID order (OBJECTID = FID).
fn load_layer(spec: &LayerSpec) -> (Value, Vec<Value>) {
    let ds = Dataset::open(&spec.path).unwrap();
    let mut layer = match &spec.layer {
        Some(name) => ds.layer_by_name(name).unwrap(),
        None => ds.layer(0).unwrap(),
    };
    let epsg = layer.spatial_ref().and_then(|s| s.auth_code().ok()).unwrap_or(4326) as i64;
    let defn: Vec<(String, OGRFieldType::Type)> = layer.defn().fields().map(|f| (f.name(), f.field_type())).collect();
    let mut fields = vec![json!({"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"})];
    for (name, ty) in &defn {
        let esri = match *ty {
            OGRFieldType::OFTInteger => "esriFieldTypeInteger",
            OGRFieldType::OFTInteger64 => "esriFieldTypeInteger",
            OGRFieldType::OFTReal => "esriFieldTypeDouble",
            _ => "esriFieldTypeString",
        };
        fields.push(json!({"name": name, "type": esri, "alias": name, "length": 254}));
    }
    let mut geometry_type = "esriGeometryPoint";
    let features: Vec<Value> = layer
        .features()
        .map(|f| {
            let mut attributes = serde_json::Map::new();
            attributes.insert("OBJECTID".into(), json!(f.fid().unwrap()));
            for (i, (name, _)) in defn.iter().enumerate() {
                let value = match f.field(i).unwrap() {
                    Some(FieldValue::IntegerValue(v)) => json!(v),
                    Some(FieldValue::Integer64Value(v)) => json!(v),
                    Some(FieldValue::RealValue(v)) => json!(v),
                    Some(FieldValue::StringValue(v)) => json!(v),
                    None => Value::Null,
                    Some(other) => json!(format!("{other:?}")),
                };
                attributes.insert(name.clone(), value);
            }
            let (kind, geometry) = esri_geometry(f.geometry().unwrap());
            geometry_type = kind;
            json!({"attributes": attributes, "geometry": geometry})
        })
        .collect();
    let info = json!({
        "currentVersion": 11.1,
        "id": 0,
        "name": layer.name(),
        "type": "Feature Layer",
        "geometryType": geometry_type,
        "objectIdField": "OBJECTID",
        "fields": fields,
        "maxRecordCount": spec.page,
        "capabilities": "Query",
        "advancedQueryCapabilities": {"supportsPagination": !spec.no_paging, "supportsOrderBy": true},
        "extent": {"spatialReference": {"wkid": epsg}},
        "sourceSpatialReference": {"wkid": epsg},
    });
    (info, features)
}

fn points(g: &Geometry) -> Vec<Value> {
    (0..g.point_count())
        .map(|k| {
            let (x, y, _) = g.get_point(k as i32);
            json!([x, y])
        })
        .collect()
}

/// A 2-D geometry as an ESRI JSON geometry, coordinates exact.
fn esri_geometry(g: &Geometry) -> (&'static str, Value) {
    use gdal::vector::OGRwkbGeometryType as T;
    match g.geometry_type() {
        T::wkbPoint => {
            let (x, y, _) = g.get_point(0);
            ("esriGeometryPoint", json!({"x": x, "y": y}))
        }
        T::wkbLineString => ("esriGeometryPolyline", json!({"paths": [points(g)]})),
        T::wkbPolygon => {
            let rings: Vec<Value> = (0..g.geometry_count())
                .map(|i| Value::Array(points(&g.get_geometry(i))))
                .collect();
            ("esriGeometryPolygon", json!({"rings": rings}))
        }
        T::wkbMultiPolygon => {
            let rings: Vec<Value> = (0..g.geometry_count())
                .flat_map(|p| {
                    let polygon = g.get_geometry(p);
                    (0..polygon.geometry_count())
                        .map(|i| Value::Array(points(&polygon.get_geometry(i))))
                        .collect::<Vec<_>>()
                })
                .collect();
            ("esriGeometryPolygon", json!({"rings": rings}))
        }
        other => panic!("the test server does not serve geometry type {other}"),
    }
}

/// `query`: the count, or one page of features from `resultOffset`.
fn query(spec: &LayerSpec, info: &Value, features: &[Value], params: &BTreeMap<String, String>) -> Value {
    if params.get("f").map(String::as_str) != Some("json") {
        return json!({"error": {"code": 400, "message": "f=json only"}});
    }
    if params.get("returncountonly").is_some_and(|v| v == "true") {
        return json!({"count": features.len()});
    }
    let offset = if spec.ignore_offset {
        0
    } else {
        params
            .get("resultoffset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0usize)
    };
    let count = params
        .get("resultrecordcount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(spec.page)
        .min(spec.page);
    let end = (offset + count).min(features.len());
    let page = &features[offset.min(end)..end];
    json!({
        "objectIdFieldName": "OBJECTID",
        "geometryType": info["geometryType"],
        "spatialReference": info["sourceSpatialReference"],
        "fields": info["fields"],
        "features": page,
        "exceededTransferLimit": end < features.len(),
    })
}
