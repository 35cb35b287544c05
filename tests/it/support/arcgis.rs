//! A local HTTP server on 127.0.0.1 that answers like the ArcGIS REST API, for the tests of
//! services: an ImageServer (`?f=json`, `exportImage` with bbox/size/format, TIFF or PNG), a cached
//! MapServer (`?f=json` with `tileInfo`, `tile/{level}/{row}/{col}` PNG tiles), FeatureServer
//! layers (`0?f=json`, `0/query` with `returnCountOnly`, `resultOffset`/`resultRecordCount` and
//! `exceededTransferLimit`, `where` and envelope filters, `returnIdsOnly`), image services with a
//! catalog of items (`query` for their footprints, `exportImage` with a lock-raster mosaic rule),
//! editable layers that take `addFeatures` and keep what they were given, portal items
//! (`sharing/rest/content/items/ID` and its `/data`), and plain files, whole or cut short. A
//! token can be required of every request, and faults injected (a stall, a stall mid-body, an
//! error answer, an edit applied whose answer never comes). Images and features are served from
//! local files, so a run on the service can be compared with a run on the files. Every request
//! is logged (POST forms too). Bounded: 120 s or 10,000 connections, then it stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// `(shown, dropped)`: pages serve the feature with OBJECTID `shown` a second time in place
    /// of the one with OBJECTID `dropped` (a count that stays right over pages that do not).
    pub repeat: Option<(i64, i64)>,
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
            repeat: None,
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

/// A portal item (`/sharing/rest/content/items/ID`): its description and its data.
#[derive(Clone, Debug)]
pub struct PortalItem {
    pub id: String,
    pub description: Value,
    pub data: Vec<u8>,
}

/// An editable feature layer results are added to: its fields (name, Esri type), geometry type
/// (`esriGeometryPoint`, ...), CRS and capabilities.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    pub fields: Vec<(String, &'static str)>,
    pub geometry_type: &'static str,
    pub epsg: i64,
    pub capabilities: &'static str,
    /// Largest page of a query.
    pub page: usize,
}

impl TargetSpec {
    /// A layer with OBJECTID, `SourceOID`, `ClassLabel`, `Confidence`, `Status`, then `extra`.
    pub fn results(geometry_type: &'static str, epsg: i64, extra: &[(&str, &'static str)]) -> TargetSpec {
        let mut fields = vec![
            ("OBJECTID".to_string(), "esriFieldTypeOID"),
            ("SourceOID".to_string(), "esriFieldTypeInteger"),
            ("ClassLabel".to_string(), "esriFieldTypeString"),
            ("Confidence".to_string(), "esriFieldTypeDouble"),
            ("Status".to_string(), "esriFieldTypeString"),
        ];
        fields.extend(extra.iter().map(|(n, t)| (n.to_string(), *t)));
        TargetSpec {
            fields,
            geometry_type,
            epsg,
            capabilities: "Create,Delete,Query,Update,Editing",
            page: 1000,
        }
    }
}

/// What a fault does to the requests it matches.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// No answer for this long, then the connection closes.
    Stall(Duration),
    /// The head and this many bytes of the body, then nothing for this long.
    StallMidBody(usize, Duration),
    /// This JSON instead of the answer (HTTP 200, as ArcGIS answers errors).
    Json(Value),
    /// This HTTP status (e.g. `503 Service Unavailable`) with an empty body.
    Status(&'static str),
    /// The request is carried out (an edit applied), but its answer never comes.
    ApplyThenStall(Duration),
}

/// A fault injected into the requests whose path and decoded query contain `matching`, the
/// first `times` of them (0: all).
#[derive(Clone, Debug)]
pub struct Fault {
    pub matching: String,
    pub kind: FaultKind,
    pub times: usize,
}

/// What the server serves, by service name (`/arcgis/rest/services/NAME/…`) or path (`files`).
#[derive(Clone, Default)]
pub struct Catalog {
    pub image_servers: Vec<(String, PathBuf)>,
    /// Image services with a catalog of items (name, raster), the rasters on one pixel grid.
    pub image_catalogs: Vec<(String, Vec<(String, PathBuf)>)>,
    /// Catalog items a catalog query returns at most (`maxRecordCount`; default 1000).
    pub catalog_page: Option<usize>,
    pub map_servers: Vec<(String, PathBuf, Tiling)>,
    /// A MapServer without tile cache (a dynamic map).
    pub dynamic_map_servers: Vec<String>,
    pub feature_layers: Vec<(String, LayerSpec)>,
    /// Editable layers (`NAME/FeatureServer/0`) that keep what `addFeatures` gives them.
    pub target_layers: Vec<(String, TargetSpec)>,
    pub files: Vec<(String, FileSpec)>,
    pub portal_items: Vec<PortalItem>,
    /// A token every request must carry (`token=`), else ArcGIS's "Token Required" (499).
    pub required_token: Option<String>,
    pub faults: Vec<Fault>,
}

/// A catalog item: its name and image, and where its top-left pixel sits on the service's grid.
struct CatalogItem {
    name: String,
    image: Image,
    offset: (usize, usize),
}

/// An image service with a catalog: its items and the grid of their union.
struct ImageCatalog {
    items: Vec<CatalogItem>,
    union: Image,
    /// Items a query returns at most.
    page: usize,
}

/// One request as logged: method, path with decoded query, and a POST's form.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub target: String,
    pub form: BTreeMap<String, String>,
}

struct State {
    images: BTreeMap<String, Image>,
    catalogs: BTreeMap<String, ImageCatalog>,
    tiles: BTreeMap<String, (Image, Tiling)>,
    dynamic: Vec<String>,
    layers: BTreeMap<String, (LayerSpec, Value, Vec<Value>)>,
    targets: BTreeMap<String, (TargetSpec, Mutex<Vec<Value>>)>,
    files: BTreeMap<String, FileSpec>,
    portal: BTreeMap<String, PortalItem>,
    required_token: Option<String>,
    faults: Vec<Fault>,
    fault_hits: Mutex<Vec<usize>>,
    log: Mutex<Vec<Logged>>,
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
            catalogs: catalog
                .image_catalogs
                .iter()
                .map(|(name, items)| {
                    let mut loaded = load_catalog(items);
                    loaded.page = catalog.catalog_page.unwrap_or(1000);
                    (name.clone(), loaded)
                })
                .collect(),
            targets: catalog
                .target_layers
                .iter()
                .map(|(name, spec)| (name.clone(), (spec.clone(), Mutex::new(Vec::new()))))
                .collect(),
            portal: catalog.portal_items.iter().map(|i| (i.id.clone(), i.clone())).collect(),
            required_token: catalog.required_token.clone(),
            fault_hits: Mutex::new(vec![0; catalog.faults.len()]),
            faults: catalog.faults.clone(),
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
        let server = HttpServer::start(Arc::new(move |request: &Request| handle(&state2, request)));
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

    /// `http://127.0.0.1:PORT`, the portal's URL.
    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request target so far (path and query, decoded).
    pub fn requests(&self) -> Vec<String> {
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.target.clone())
            .collect()
    }

    /// Every request so far, with its method and form.
    pub fn logged(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// The features target layer `name` holds (attributes and geometry, as added).
    pub fn added(&self, name: &str) -> Vec<Value> {
        self.state.targets[name].1.lock().unwrap().clone()
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

/// Logs a request, applies a fault or the token rule, and answers it.
fn handle(state: &State, request: &Request) -> Response {
    let (path, query) = (request.path(), request.query());
    let target = format!("{path}?{}", decode(query));
    let params = request.params();
    let form = if request.method == "POST" {
        params.clone()
    } else {
        BTreeMap::new()
    };
    state.log.lock().unwrap().push(Logged {
        method: request.method.clone(),
        target: target.clone(),
        form,
    });
    let fault = {
        let mut hits = state.fault_hits.lock().unwrap();
        state.faults.iter().enumerate().find_map(|(i, f)| {
            let applies = target.contains(&f.matching) && (f.times == 0 || hits[i] < f.times);
            applies.then(|| {
                hits[i] += 1;
                f.kind.clone()
            })
        })
    };
    let mut stall_after = None;
    match fault {
        Some(FaultKind::Stall(d)) => {
            let mut r = Response::ok("application/json", Vec::new());
            r.stall = Some(d);
            return r;
        }
        Some(FaultKind::Json(v)) => return Response::ok("application/json", v.to_string().into_bytes()),
        Some(FaultKind::Status(status)) => return Response::with_status(status, "text/plain", Vec::new()),
        Some(FaultKind::ApplyThenStall(d)) => stall_after = Some(d),
        Some(FaultKind::StallMidBody(n, d)) => {
            let (status, content_type, body, _) = answer(state, &request.method, path, &params);
            let mut r = Response::with_status(status, content_type, body);
            r.stall_mid_body = Some((n, d));
            return r;
        }
        None => {}
    }
    if let Some(token) = &state.required_token {
        if params.get("token") != Some(token) {
            let body = json!({"error": {"code": 499, "message": "Token Required", "details": []}});
            return Response::ok("application/json", body.to_string().into_bytes());
        }
    }
    let (status, content_type, body, cut) = answer(state, &request.method, path, &params);
    let mut response = Response::with_status(status, content_type, body);
    response.cut = cut;
    if let Some(d) = stall_after {
        response.stall = Some(d);
    }
    response
}

fn answer(state: &State, method: &str, path: &str, params: &BTreeMap<String, String>) -> Answer {
    if let Some(file) = state.files.get(path.trim_start_matches('/')) {
        return ("200 OK", "application/octet-stream", file.bytes.clone(), file.cut);
    }
    if let Some(rest) = path.strip_prefix("/sharing/rest/content/items/") {
        return portal_item(state, rest, params);
    }
    let Some(rest) = path.strip_prefix("/arcgis/rest/services/") else {
        return not_found();
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [name, "ImageServer"] if state.catalogs.contains_key(*name) => {
            json_answer(catalog_info(&state.catalogs[*name]))
        }
        [name, "ImageServer", "query"] if state.catalogs.contains_key(*name) => {
            json_answer(catalog_query(&state.catalogs[*name], params))
        }
        [name, "ImageServer", "exportImage"] if state.catalogs.contains_key(*name) => {
            catalog_export(&state.catalogs[*name], params)
        }
        [name, "FeatureServer", "0"] if state.targets.contains_key(*name) => {
            json_answer(target_info(&state.targets[*name].0))
        }
        [name, "FeatureServer", "0", "query"] if state.targets.contains_key(*name) => {
            let (spec, stored) = &state.targets[*name];
            json_answer(target_query(spec, &stored.lock().unwrap(), params))
        }
        [name, "FeatureServer", "0", "addFeatures"] if state.targets.contains_key(*name) => {
            if method != "POST" {
                return json_answer(json!({"error": {"code": 405, "message": "addFeatures takes POST"}}));
            }
            let (spec, stored) = &state.targets[*name];
            json_answer(add_features(spec, &mut stored.lock().unwrap(), params))
        }
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
    let matched = match matching_ids(spec, params) {
        Ok(ids) => ids,
        Err(message) => return json!({"error": {"code": 400, "message": message, "details": []}}),
    };
    let mut features: Vec<Value> = features
        .iter()
        .filter(|f| {
            matched
                .as_ref()
                .is_none_or(|ids| ids.contains(&f["attributes"]["OBJECTID"].as_i64().unwrap()))
        })
        .cloned()
        .collect();
    if params.get("returncountonly").is_some_and(|v| v == "true") {
        return json!({"count": features.len()});
    }
    if params.get("returnidsonly").is_some_and(|v| v == "true") {
        let ids: Vec<Value> = features.iter().map(|f| f["attributes"]["OBJECTID"].clone()).collect();
        return json!({"objectIdFieldName": "OBJECTID", "objectIds": ids});
    }
    if let Some((shown, dropped)) = spec.repeat {
        let copy = features
            .iter()
            .find(|f| f["attributes"]["OBJECTID"] == json!(shown))
            .cloned();
        for f in features.iter_mut() {
            if f["attributes"]["OBJECTID"] == json!(dropped) {
                *f = copy.clone().unwrap();
            }
        }
    }
    let features = &features[..];
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

/// The OBJECTIDs a query's `where` and envelope `geometry` select of a served layer (`None`:
/// all), filtered by GDAL on the layer's file as the server's database would.
fn matching_ids(
    spec: &LayerSpec,
    params: &BTreeMap<String, String>,
) -> Result<Option<std::collections::BTreeSet<i64>>, String> {
    let filter = params
        .get("where")
        .map(|w| w.trim())
        .filter(|w| *w != "1=1" && !w.is_empty());
    let envelope = params.get("geometry").filter(|g| !g.is_empty());
    if filter.is_none() && envelope.is_none() {
        return Ok(None);
    }
    let ds = Dataset::open(&spec.path).unwrap();
    let mut layer = match &spec.layer {
        Some(name) => ds.layer_by_name(name).unwrap(),
        None => ds.layer(0).unwrap(),
    };
    if let Some(filter) = filter {
        layer
            .set_attribute_filter(filter)
            .map_err(|_| "Unable to perform query. Please check your parameters.".to_string())?;
    }
    if let Some(envelope) = envelope {
        if params.get("geometrytype").map(String::as_str) != Some("esriGeometryEnvelope") {
            return Err("the test server takes envelopes only".into());
        }
        let epsg = layer.spatial_ref().and_then(|s| s.auth_code().ok()).unwrap_or(4326) as i64;
        let in_sr: Option<i64> = params.get("insr").and_then(|s| {
            s.parse()
                .ok()
                .or_else(|| serde_json::from_str::<Value>(s).ok()?.get("wkid")?.as_i64())
        });
        if in_sr != Some(epsg) {
            return Err(format!("inSR must be the layer's ({epsg})"));
        }
        let v = numbers(envelope);
        if v.len() != 4 {
            return Err("geometry must be xmin,ymin,xmax,ymax".into());
        }
        layer.set_spatial_filter_rect(v[0], v[1], v[2], v[3]);
    }
    Ok(Some(layer.features().map(|f| f.fid().unwrap() as i64).collect()))
}

fn load_catalog(items: &[(String, PathBuf)]) -> ImageCatalog {
    let images: Vec<(String, Image)> = items.iter().map(|(n, p)| (n.clone(), Image::load(p))).collect();
    let first = &images[0].1;
    let (px, py) = (first.gt[1], first.gt[5]);
    let xmin = images.iter().map(|(_, i)| i.gt[0]).fold(f64::INFINITY, f64::min);
    let ymax = images.iter().map(|(_, i)| i.gt[3]).fold(f64::NEG_INFINITY, f64::max);
    let xmax = images
        .iter()
        .map(|(_, i)| i.gt[0] + i.gt[1] * i.width as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let ymin = images
        .iter()
        .map(|(_, i)| i.gt[3] + i.gt[5] * i.height as f64)
        .fold(f64::INFINITY, f64::min);
    let union = Image {
        width: ((xmax - xmin) / px).round() as usize,
        height: ((ymax - ymin) / -py).round() as usize,
        planes: vec![Vec::new(); first.planes.len()],
        gt: [xmin, px, 0.0, ymax, 0.0, py],
        epsg: first.epsg,
        nodata: first.nodata,
        float: first.float,
    };
    let items = images
        .into_iter()
        .map(|(name, image)| CatalogItem {
            name,
            offset: (
                ((image.gt[0] - xmin) / px).round() as usize,
                ((ymax - image.gt[3]) / -py).round() as usize,
            ),
            image,
        })
        .collect();
    ImageCatalog {
        items,
        union,
        page: 1000,
    }
}

fn catalog_info(catalog: &ImageCatalog) -> Value {
    let mut info = image_server_info(&catalog.union);
    info["capabilities"] = json!("Image,Metadata,Catalog");
    info["maxRecordCount"] = json!(catalog.page);
    info
}

/// The footprint of a catalog item as an Esri polygon.
fn footprint(catalog: &ImageCatalog, item: &CatalogItem) -> Value {
    let gt = &item.image.gt;
    let (x0, y1) = (gt[0], gt[3]);
    let (x1, y0) = (
        gt[0] + gt[1] * item.image.width as f64,
        gt[3] + gt[5] * item.image.height as f64,
    );
    json!({"rings": [[[x0, y1], [x1, y1], [x1, y0], [x0, y0], [x0, y1]]], "spatialReference": catalog.union.spatial_reference()})
}

/// `query` of an image service's catalog: its items, `OBJECTID` and `Name`, with footprints;
/// `objectIds` picks some, `returnIdsOnly` gives every id (unpaged, as ArcGIS does), and at most
/// a page of items comes back (`exceededTransferLimit` when more matched).
fn catalog_query(catalog: &ImageCatalog, params: &BTreeMap<String, String>) -> Value {
    if params.get("where").is_some_and(|w| w != "1=1") {
        return json!({"error": {"code": 400, "message": "the test server's catalogs take where=1=1 only"}});
    }
    let picked: Option<Vec<usize>> = params
        .get("objectids")
        .map(|ids| ids.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let mut features: Vec<Value> = catalog
        .items
        .iter()
        .enumerate()
        .filter(|(i, _)| picked.as_ref().is_none_or(|p| p.contains(&(i + 1))))
        .map(|(i, item)| {
            let mut feature = json!({"attributes": {"OBJECTID": i + 1, "Name": item.name}});
            if params.get("returngeometry").is_none_or(|v| v != "false") {
                feature["geometry"] = footprint(catalog, item);
            }
            feature
        })
        .collect();
    if params.get("returncountonly").is_some_and(|v| v == "true") {
        return json!({"count": features.len()});
    }
    if params.get("returnidsonly").is_some_and(|v| v == "true") {
        let ids: Vec<Value> = features.iter().map(|f| f["attributes"]["OBJECTID"].clone()).collect();
        return json!({"objectIdFieldName": "OBJECTID", "objectIds": ids});
    }
    let exceeded = features.len() > catalog.page;
    features.truncate(catalog.page);
    json!({
        "objectIdFieldName": "OBJECTID",
        "geometryType": "esriGeometryPolygon",
        "spatialReference": catalog.union.spatial_reference(),
        "fields": [
            {"name": "OBJECTID", "type": "esriFieldTypeOID"},
            {"name": "Name", "type": "esriFieldTypeString", "length": 50},
        ],
        "features": features,
        "exceededTransferLimit": exceeded,
    })
}

/// `exportImage` of a catalog: the mosaic of its items, or with a lock-raster mosaic rule the
/// items it names only (0 elsewhere).
fn catalog_export(catalog: &ImageCatalog, params: &BTreeMap<String, String>) -> Answer {
    let union = &catalog.union;
    let bbox = numbers(params.get("bbox").map(String::as_str).unwrap_or(""));
    let size: Vec<usize> = params
        .get("size")
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_default();
    if bbox.len() != 4 || size.len() != 2 || params.get("f").map(String::as_str) != Some("image") {
        return json_answer(json!({"error": {"code": 400, "message": "bbox, size and f=image are required"}}));
    }
    let locked: Option<Vec<usize>> = match params.get("mosaicrule") {
        None => None,
        Some(rule) => {
            let Ok(rule) = serde_json::from_str::<Value>(rule) else {
                return json_answer(json!({"error": {"code": 400, "message": "mosaicRule is not JSON"}}));
            };
            if rule["mosaicMethod"] != json!("esriMosaicLockRaster") {
                return json_answer(json!({"error": {"code": 400, "message": "the test server locks rasters only"}}));
            }
            Some(
                rule["lockRasterIds"]
                    .as_array()
                    .map(|ids| ids.iter().filter_map(|v| v.as_u64()).map(|v| v as usize - 1).collect())
                    .unwrap_or_default(),
            )
        }
    };
    let gt = &union.gt;
    let c0 = (bbox[0] - gt[0]) / gt[1];
    let r0 = (gt[3] - bbox[3]) / -gt[5];
    let step = (bbox[2] - bbox[0]) / gt[1] / size[0] as f64;
    if (c0 - c0.round()).abs() > 1e-6 || (r0 - r0.round()).abs() > 1e-6 {
        return json_answer(json!({"error": {"code": 400, "message": "bbox is not on the pixel grid"}}));
    }
    let (w, h) = (size[0], size[1]);
    let bands = union.planes.len();
    let mut planes = vec![vec![0.0; w * h]; bands];
    for i in 0..w * h {
        let c = (c0.round() + ((i % w) as f64 + 0.5) * step).floor() as i64;
        let r = (r0.round() + ((i / w) as f64 + 0.5) * step).floor() as i64;
        let candidates: Vec<usize> = locked.clone().unwrap_or_else(|| (0..catalog.items.len()).collect());
        for k in candidates {
            let Some(item) = catalog.items.get(k) else { continue };
            let (ic, ir) = (c - item.offset.0 as i64, r - item.offset.1 as i64);
            if ic >= 0 && ir >= 0 && (ic as usize) < item.image.width && (ir as usize) < item.image.height {
                for (b, plane) in planes.iter_mut().enumerate() {
                    plane[i] = item.image.planes[b][ir as usize * item.image.width + ic as usize];
                }
                break;
            }
        }
    }
    let format = params.get("format").cloned().unwrap_or_else(|| "jpgpng".into());
    if format != "tiff" {
        return json_answer(json!({"error": {"code": 400, "message": "the test server's catalogs write tiff only"}}));
    }
    (
        "200 OK",
        "image/tiff",
        catalog.items[0].image.encode(&planes, w, h, "tiff"),
        None,
    )
}

/// A portal item's description (`ID?f=json`) or data (`ID/data`).
fn portal_item(state: &State, rest: &str, params: &BTreeMap<String, String>) -> Answer {
    let (id, data) = match rest.trim_end_matches('/').split_once('/') {
        Some((id, "data")) => (id, true),
        Some(_) => return not_found(),
        None => (rest.trim_end_matches('/'), false),
    };
    let Some(item) = state.portal.get(id) else {
        return json_answer(
            json!({"error": {"code": 400, "messageCode": "CONT_0001", "message": "Item does not exist or is inaccessible.", "details": []}}),
        );
    };
    if data {
        return ("200 OK", "application/octet-stream", item.data.clone(), None);
    }
    if params.get("f").map(String::as_str) != Some("json") {
        return ("200 OK", "text/html", b"<html>the item page</html>".to_vec(), None);
    }
    json_answer(item.description.clone())
}

fn target_info(spec: &TargetSpec) -> Value {
    let fields: Vec<Value> = spec
        .fields
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t, "alias": n, "length": 256, "editable": *t != "esriFieldTypeOID", "nullable": true}))
        .collect();
    json!({
        "currentVersion": 11.1,
        "id": 0,
        "name": "Results",
        "type": "Feature Layer",
        "geometryType": spec.geometry_type,
        "objectIdField": "OBJECTID",
        "fields": fields,
        "maxRecordCount": spec.page,
        "capabilities": spec.capabilities,
        "advancedQueryCapabilities": {"supportsPagination": true, "supportsOrderBy": true},
        "extent": {"spatialReference": {"wkid": spec.epsg}},
        "sourceSpatialReference": {"wkid": spec.epsg},
        "spatialReference": {"wkid": spec.epsg},
    })
}

/// The indexes of the `stored` features that `where` selects, evaluated by OGR on an
/// in-memory copy of their attributes.
fn target_matches(spec: &TargetSpec, stored: &[Value], filter: &str) -> Result<Vec<usize>, String> {
    if filter.trim() == "1=1" || filter.trim().is_empty() {
        return Ok((0..stored.len()).collect());
    }
    let mem = gdal::DriverManager::get_driver_by_name("Memory").unwrap();
    let mut ds = mem.create_vector_only("").unwrap();
    let mut layer = ds
        .create_layer(gdal::vector::LayerOptions {
            name: "t",
            ty: gdal::vector::OGRwkbGeometryType::wkbNone,
            ..Default::default()
        })
        .unwrap();
    for (name, ty) in &spec.fields {
        let ogr = match *ty {
            "esriFieldTypeString" => OGRFieldType::OFTString,
            "esriFieldTypeDouble" => OGRFieldType::OFTReal,
            _ => OGRFieldType::OFTInteger64,
        };
        layer.create_defn_fields(&[(name.as_str(), ogr)]).unwrap();
    }
    // The memory driver numbers features from 0 in the order they are created.
    for feature in stored {
        let mut f = gdal::vector::Feature::new(layer.defn()).unwrap();
        for (k, (name, _)) in spec.fields.iter().enumerate() {
            match &feature["attributes"][name] {
                Value::String(v) => f.set_field_string(k, v).unwrap(),
                Value::Number(n) if n.is_i64() => f.set_field_integer64(k, n.as_i64().unwrap()).unwrap(),
                Value::Number(n) => f.set_field_double(k, n.as_f64().unwrap()).unwrap(),
                _ => {}
            }
        }
        f.create(&layer).unwrap();
    }
    layer
        .set_attribute_filter(filter)
        .map_err(|_| format!("Unable to perform query: invalid where {filter}"))?;
    Ok(layer.features().map(|f| f.fid().unwrap() as usize).collect())
}

/// `query` of a target layer: count, ids, or a page of what it holds.
fn target_query(spec: &TargetSpec, stored: &[Value], params: &BTreeMap<String, String>) -> Value {
    if params.get("f").map(String::as_str) != Some("json") {
        return json!({"error": {"code": 400, "message": "f=json only"}});
    }
    let filter = params.get("where").cloned().unwrap_or_else(|| "1=1".into());
    let matched = match target_matches(spec, stored, &filter) {
        Ok(m) => m,
        Err(message) => return json!({"error": {"code": 400, "message": message, "details": []}}),
    };
    if params.get("returncountonly").is_some_and(|v| v == "true") {
        return json!({"count": matched.len()});
    }
    let offset: usize = params.get("resultoffset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let count: usize = params
        .get("resultrecordcount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(spec.page)
        .min(spec.page);
    let end = (offset + count).min(matched.len());
    let fields: Vec<String> = match params.get("outfields").map(String::as_str) {
        None | Some("*") => spec.fields.iter().map(|(n, _)| n.clone()).collect(),
        Some(list) => list.split(',').map(|f| f.trim().to_string()).collect(),
    };
    let geometry = params.get("returngeometry").is_none_or(|v| v != "false");
    let features: Vec<Value> = matched[offset.min(end)..end]
        .iter()
        .map(|&i| {
            let mut attributes = serde_json::Map::new();
            for f in &fields {
                attributes.insert(f.clone(), stored[i]["attributes"][f].clone());
            }
            let mut feature = json!({ "attributes": attributes });
            if geometry {
                feature["geometry"] = stored[i]["geometry"].clone();
            }
            feature
        })
        .collect();
    json!({"objectIdFieldName": "OBJECTID", "features": features, "exceededTransferLimit": end < matched.len()})
}

/// `addFeatures`: every feature checked (attributes the layer has, a geometry of its type), then
/// all added (`rollbackOnFailure`, the default) or none.
fn add_features(spec: &TargetSpec, stored: &mut Vec<Value>, params: &BTreeMap<String, String>) -> Value {
    let Some(Ok(Value::Array(features))) = params.get("features").map(|f| serde_json::from_str::<Value>(f)) else {
        return json!({"error": {"code": 400, "message": "Invalid parameters", "details": ["features is not a JSON array"]}});
    };
    let problem = |feature: &Value| -> Option<String> {
        let attributes = feature["attributes"].as_object()?;
        for name in attributes.keys() {
            match spec.fields.iter().find(|(n, _)| n == name) {
                None => return Some(format!("Field {name} does not exist")),
                Some((_, "esriFieldTypeOID")) => return Some(format!("Field {name} is not editable")),
                _ => {}
            }
        }
        let geometry = &feature["geometry"];
        let ok = match spec.geometry_type {
            "esriGeometryPoint" => geometry["x"].is_number() && geometry["y"].is_number(),
            "esriGeometryPolygon" => geometry["rings"].is_array(),
            "esriGeometryPolyline" => geometry["paths"].is_array(),
            _ => true,
        };
        (!ok).then(|| format!("geometry {geometry} is not a {}", spec.geometry_type))
    };
    let problems: Vec<Option<String>> = features.iter().map(problem).collect();
    let rollback = params.get("rollbackonfailure").is_none_or(|v| v != "false");
    if rollback && problems.iter().any(Option::is_some) {
        let results: Vec<Value> = problems
            .iter()
            .map(|p| json!({"objectId": -1, "success": false, "error": {"code": 1000, "description": p.clone().unwrap_or_else(|| "rolled back".into())}}))
            .collect();
        return json!({ "addResults": results });
    }
    let mut results = Vec::new();
    for (mut feature, problem) in features.into_iter().zip(problems) {
        if let Some(p) = problem {
            results.push(json!({"objectId": -1, "success": false, "error": {"code": 1000, "description": p}}));
            continue;
        }
        let id = stored.len() as i64 + 1;
        feature["attributes"]["OBJECTID"] = json!(id);
        stored.push(feature);
        results.push(json!({"objectId": id, "success": true}));
    }
    json!({ "addResults": results })
}
