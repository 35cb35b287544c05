//! ArcGIS REST services given by their plain URL, as Esri's tool takes them, turned into what
//! GDAL opens:
//!
//! * `…/ImageServer`: GDAL's WMS driver with the ArcGIS Server minidriver on `exportImage`
//!   (lossless TIFF, nearest neighbour, the service's own extent, cell size, bands, pixel type,
//!   NoData and CRS), so pixels read are the service's pixels;
//! * `…/MapServer` with a tile cache (and an ImageServer that cannot export images but has
//!   tiles): the WMS driver's TMS minidriver on `tile/{level}/{row}/{col}` at the finest level of
//!   the cache, its power-of-two levels as overviews, cut to the service's full extent by a VRT;
//! * `…/FeatureServer/N` (or `…/MapServer/N`): GDAL's ESRIJSON driver on the layer's `query`
//!   endpoint, which pages through the results (`resultOffset`/`resultRecordCount` while the
//!   server says `exceededTransferLimit`), in object-id order, with `--where` and `--extent`
//!   (an envelope) sent to the server as the query's `where` and `geometry` ([`LayerFilter`]);
//!   the layer's feature count under the same filter is asked for separately, and its object
//!   ids when a read went wrong ([`object_ids`]), so that a run that read a feature twice or
//!   missed one fails, naming them.
//!
//! The service description (`?f=json`) is read once per process; the description GDAL needs is
//! kept in `/vsimem/`, where every worker thread opens it. Query parameters given with the URL
//! (a `token`) are passed on to every request; a URL without a `token` gets the run's token
//! ([`crate::input::token`]), if one was given by file or environment.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde_json::Value;
use url::Url;

use crate::bail_input;
use crate::gdal_ffi::srs;
use crate::input::http::{self, redact};
use crate::input::rest;
use crate::input::token;
use crate::messages;

/// Largest block (`exportImage` request) asked of an ImageServer, a side.
const EXPORT_BLOCK: u64 = 512;

/// What a service URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// `…/ImageServer`.
    ImageServer,
    /// `…/MapServer`.
    MapServer,
    /// `…/FeatureServer/N` or `…/MapServer/N`: one layer.
    FeatureLayer,
}

/// A service URL split into its endpoint and the parameters given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    /// The endpoint, without query string, fragment or trailing slash.
    endpoint: Url,
    /// Parameters given with the URL (a `token`), without `f`.
    params: Vec<(String, String)>,
    /// What it is.
    pub kind: ServiceKind,
    /// The catalog item an image service is read as, alone (`#item=ID` after the URL, as
    /// [`catalog_items`] names them): the item's footprint, pixels of that item only.
    pub item: Option<i64>,
}

impl ServiceUrl {
    /// The endpoint as text.
    pub fn base(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The endpoint + `path`, with `query` (already encoded `name=value` items) and the
    /// parameters given with the URL.
    pub fn url(&self, path: &str, query: &[&str]) -> String {
        let mut url = self.endpoint.clone();
        url.set_path(&format!("{}{path}", self.endpoint.path()));
        let mut all: Vec<String> = query.iter().map(|q| q.to_string()).collect();
        all.extend(self.encoded_params());
        url.set_query(Some(&all.join("&")));
        url.into()
    }

    /// The parameters given with the URL, each as an encoded `name=value`.
    fn encoded_params(&self) -> impl Iterator<Item = String> + '_ {
        self.params.iter().map(|(k, v)| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair(k, v)
                .finish()
        })
    }
}

/// Recognises an ArcGIS REST service URL: `http(s)://…/ImageServer`, `…/MapServer`,
/// `…/FeatureServer/N` or `…/MapServer/N`, with or without a query string.
pub fn parse(name: &str) -> Option<ServiceUrl> {
    let mut url = Url::parse(name).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let kind = match segments.as_slice() {
        [.., last] if last.eq_ignore_ascii_case("ImageServer") => ServiceKind::ImageServer,
        [.., last] if last.eq_ignore_ascii_case("MapServer") => ServiceKind::MapServer,
        [.., parent, last]
            if last.bytes().all(|b| b.is_ascii_digit())
                && (parent.eq_ignore_ascii_case("FeatureServer") || parent.eq_ignore_ascii_case("MapServer")) =>
        {
            ServiceKind::FeatureLayer
        }
        _ => return None,
    };
    let path = format!("/{}", segments.join("/"));
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.is_empty() && !k.eq_ignore_ascii_case("f"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !params.iter().any(|(k, _)| k.eq_ignore_ascii_case("token")) {
        params.extend(token::current().map(|t| ("token".to_string(), t)));
    }
    let item = url
        .fragment()
        .and_then(|f| f.strip_prefix("item="))
        .and_then(|id| id.parse().ok())
        .filter(|_| kind == ServiceKind::ImageServer);
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Some(ServiceUrl {
        endpoint: url,
        params,
        kind,
        item,
    })
}

/// What a feature layer's query asks the server to select: the `where` clause (`--where`) and
/// an envelope (`--extent`, as bounds in the CRS given by its WKT), which the server applies
/// before it pages, so that only the features asked for travel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerFilter {
    /// The `where` clause, as the layer's SQL takes it.
    pub where_clause: Option<String>,
    /// `[xmin, ymin, xmax, ymax]` and the WKT of their CRS: features whose envelope intersects
    /// it (a superset of those whose envelope centre falls inside, which are kept afterwards).
    pub envelope: Option<([f64; 4], String)>,
}

impl LayerFilter {
    /// Whether the filter selects anything less than the whole layer.
    pub fn is_empty(&self) -> bool {
        self.where_clause.is_none() && self.envelope.is_none()
    }
}

/// The key of a service opened as `name` with `filter`.
fn key(name: &str, filter: &LayerFilter) -> String {
    match filter.is_empty() {
        true => name.to_string(),
        false => format!("{name}\u{0}{filter:?}"),
    }
}

/// What a service was resolved to.
#[derive(Debug, Clone)]
struct Resolved {
    /// The name GDAL opens.
    gdal_name: String,
    /// GDAL drivers allowed to open it.
    driver: &'static str,
    /// The feature count the layer declares under the filter (feature layers).
    feature_count: Option<u64>,
    /// The query for the object ids under the filter (feature layers).
    ids_url: Option<String>,
}

static RESOLVED: Mutex<Option<HashMap<String, Resolved>>> = Mutex::new(None);

fn cached(name: &str) -> Option<Resolved> {
    RESOLVED.lock().ok()?.as_ref()?.get(name).cloned()
}

/// The GDAL name and driver to open the service `url` (given as `name`) by. The service is
/// asked for its description the first time only. A feature layer's query
/// selects what `filter` says.
pub fn gdal_source(url: &ServiceUrl, name: &str, filter: &LayerFilter) -> Result<(String, &'static str)> {
    let key = key(name, filter);
    if let Some(resolved) = cached(&key) {
        return Ok((resolved.gdal_name, resolved.driver));
    }
    let shown = redact(name);
    let resolved = match url.kind {
        ServiceKind::ImageServer | ServiceKind::MapServer => resolve_raster(url, &shown)?,
        ServiceKind::FeatureLayer => resolve_layer(url, &shown, filter)?,
    };
    let answer = (resolved.gdal_name.clone(), resolved.driver);
    if let Ok(mut map) = RESOLVED.lock() {
        map.get_or_insert_with(HashMap::new).insert(key, resolved);
    }
    Ok(answer)
}

/// The number of features the feature layer `name` declares under `filter`, once it has been
/// opened with it.
pub fn feature_count(name: &str, filter: &LayerFilter) -> Option<u64> {
    cached(&key(name, filter))?.feature_count
}

/// The server's error for the page of the feature layer `name` (opened with `filter`) that
/// starts at feature `offset`, on one line; `None` when it answers that page. GDAL ends its
/// paging at a page answered with an error, silently: this says why it ended.
pub fn page_error(name: &str, filter: &LayerFilter, offset: u64) -> Option<String> {
    let page = cached(&key(name, filter))?.gdal_name;
    let (body, result) = http::exchange(&format!("{page}&resultOffset={offset}"), None, rest::MAX_JSON_BYTES);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    match (parsed.as_ref().and_then(rest::server_error), result) {
        (Some(message), _) => Some(redact(&message)),
        (None, Err(err)) => Some(redact(&err.to_string())),
        (None, Ok(())) => None,
    }
}

/// The object ids the feature layer `name` holds under `filter` (asked of the server: what a
/// read page by page should have given), once it has been opened with it.
pub fn object_ids(name: &str, filter: &LayerFilter) -> Result<Vec<i64>> {
    let Some(url) = cached(&key(name, filter)).and_then(|r| r.ids_url) else {
        anyhow::bail!("feature layer {} was not opened", redact(name));
    };
    let answer = read_json(&url, &redact(name))?;
    Ok(answer
        .get("objectIds")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default())
}

/// Reads a JSON document from a service (shown as `shown`); an ArcGIS `{"error": …}` answer is
/// an error with the server's message.
fn read_json(url: &str, shown: &str) -> Result<Value> {
    rest::request_json(url, None, &format!("service {shown}"))
}

fn number(value: &Value, key: &str) -> Option<f64> {
    value.get(key).and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// A spatial reference object of the REST API as (the id the server knows, WKT for GDAL).
fn spatial_reference(sr: Option<&Value>, shown: &str) -> Result<(String, String)> {
    let Some(sr) = sr.filter(|v| v.is_object()) else {
        bail_input!("service {shown} declares no spatial reference; it cannot be placed on the map");
    };
    let wkid = sr.get("wkid").and_then(Value::as_i64);
    let latest = sr.get("latestWkid").and_then(Value::as_i64);
    let mut candidates = Vec::new();
    for id in [latest, wkid].into_iter().flatten() {
        candidates.push(format!("EPSG:{id}"));
        candidates.push(format!("ESRI:{id}"));
    }
    if let Some(wkt) = sr.get("wkt").and_then(Value::as_str) {
        candidates.push(wkt.to_string());
    }
    let wkt = candidates.iter().find_map(|definition| {
        messages::gdal_muted(|| gdal::spatial_ref::SpatialRef::from_definition(definition))
            .ok()
            .and_then(|srs| srs.to_wkt().ok())
    });
    match (wkid.or(latest), wkt) {
        (Some(id), Some(wkt)) => Ok((id.to_string(), wkt)),
        (None, Some(_)) => bail_input!(
            "service {shown} declares its spatial reference only as WKT, which its requests cannot name; publish it with a well-known ID (wkid)"
        ),
        _ => bail_input!(
            "service {shown} has a spatial reference GDAL does not know ({sr}); reproject the service or read the image another way"
        ),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `text` to a new `/vsimem/` file of this process and returns its name.
fn memory_file(stem: &str, ext: &str, text: String) -> Result<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "/vsimem/classify-objects-{}/service-{}-{stem}.{ext}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    gdal::vsi::create_mem_file(&name, text.into_bytes()).context("writing a service description in memory")?;
    Ok(name)
}

/// The last path segment before the kind (the service name), for file names.
fn service_stem(url: &ServiceUrl) -> String {
    let mut segments = url.endpoint.path_segments().into_iter().flatten().rev();
    segments.next();
    segments
        .next()
        .unwrap_or("service")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// An item of an image service's catalog: its object id and its name (as `ImageId` says it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    /// The item's object id (what a lock-raster mosaic rule names).
    pub id: i64,
    /// The item's `Name`, else its id.
    pub name: String,
    /// The name to open the item alone by: the service's URL with `#item=ID`.
    pub source: String,
}

/// The items of the image service `name` (`…/ImageServer`) when it has a catalog (the
/// `Catalog` capability), in object-id order; `None` for a service without one (a single
/// image, a map service).
pub fn catalog_items(name: &str) -> Result<Option<Vec<CatalogItem>>> {
    let Some(url) = parse(name).filter(|u| u.kind == ServiceKind::ImageServer && u.item.is_none()) else {
        return Ok(None);
    };
    let shown = redact(name);
    let info = read_json(&url.url("", &["f=json"]), &shown)?;
    let capabilities = info.get("capabilities").and_then(Value::as_str).unwrap_or("");
    if !capabilities
        .split(',')
        .any(|c| c.trim().eq_ignore_ascii_case("Catalog"))
    {
        return Ok(None);
    }
    // Every id first (servers give them all, whatever their page), then the items' names a
    // chunk of ids at a time: a catalog larger than one page is read whole.
    let ids_answer = read_json(
        &url.url("/query", &["where=1%3D1", "returnIdsOnly=true", "f=json"]),
        &shown,
    )?;
    let mut ids: Vec<i64> = ids_answer
        .get("objectIds")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let page = info
        .get("maxRecordCount")
        .and_then(Value::as_u64)
        .map_or(CATALOG_CHUNK, |m| (m as usize).clamp(1, CATALOG_CHUNK));
    let mut items: Vec<CatalogItem> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(page) {
        let wanted: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let object_ids = format!("objectIds={}", wanted.join("%2C"));
        let answer = read_json(
            &url.url(
                "/query",
                &[&object_ids, "outFields=*", "returnGeometry=false", "f=json"],
            ),
            &shown,
        )?;
        let before = items.len();
        items.extend(catalog_page_items(&answer, name));
        if items.len() - before < chunk.len() {
            bail_input!(
                "image service {shown} returned {} of the {} catalog items asked for (ids {}..{}); process it as a mosaic (PROCESS_AS_MOSAICKED_IMAGE), or check the service",
                items.len() - before,
                chunk.len(),
                chunk[0],
                chunk[chunk.len() - 1]
            );
        }
    }
    items.sort_by_key(|i| i.id);
    if items.is_empty() {
        bail_input!("image service {shown} lists no catalog item; process it as a mosaic (PROCESS_AS_MOSAICKED_IMAGE)");
    }
    Ok(Some(items))
}

/// Most catalog ids asked for in one query (fewer when the service's page is smaller), which
/// keeps each request's URL short.
const CATALOG_CHUNK: usize = 200;

/// The catalog items of one query `answer` of the service `name`.
fn catalog_page_items(answer: &Value, name: &str) -> Vec<CatalogItem> {
    let id_field = object_id_field(answer);
    answer
        .get("features")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let attributes = f.get("attributes")?;
            let id = attributes.get(&id_field)?.as_i64()?;
            let label = attributes
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map_or_else(|| id.to_string(), str::to_string);
            let mut source = Url::parse(name).ok()?;
            source.set_fragment(Some(&format!("item={id}")));
            Some(CatalogItem {
                id,
                name: label,
                source: source.into(),
            })
        })
        .collect()
}

/// The object id field an ArcGIS query answer names (`OBJECTID` when it names none).
fn object_id_field(answer: &Value) -> String {
    answer
        .get("objectIdFieldName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            answer.get("fields")?.as_array()?.iter().find_map(|f| {
                (f.get("type")?.as_str()? == "esriFieldTypeOID").then(|| f.get("name")?.as_str().map(str::to_string))?
            })
        })
        .unwrap_or_else(|| "OBJECTID".into())
}

/// The envelope of catalog item `id`'s footprint, in the service's spatial reference `sr`.
fn item_footprint(url: &ServiceUrl, id: i64, sr: &str, shown: &str) -> Result<[f64; 4]> {
    let ids = format!("objectIds={id}");
    let out_sr = format!("outSR={sr}");
    let answer = read_json(
        &url.url(
            "/query",
            &["where=1%3D1", &ids, "returnGeometry=true", &out_sr, "f=json"],
        ),
        shown,
    )?;
    let id_field = object_id_field(&answer);
    let feature = answer.get("features").and_then(Value::as_array).and_then(|f| {
        f.iter().find(|f| {
            f.get("attributes")
                .and_then(|a| a.get(&id_field))
                .and_then(Value::as_i64)
                == Some(id)
        })
    });
    let mut bounds = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let rings = feature
        .and_then(|f| f.get("geometry"))
        .and_then(|g| g.get("rings"))
        .and_then(Value::as_array);
    for point in rings.into_iter().flatten().filter_map(Value::as_array).flatten() {
        if let Some([x, y]) = point
            .as_array()
            .and_then(|p| Some([p.first()?.as_f64()?, p.get(1)?.as_f64()?]))
        {
            bounds = [bounds[0].min(x), bounds[1].min(y), bounds[2].max(x), bounds[3].max(y)];
        }
    }
    if !(bounds[0] < bounds[2] && bounds[1] < bounds[3]) {
        bail_input!("image service {shown} gives catalog item {id} no footprint; process it as a mosaic (PROCESS_AS_MOSAICKED_IMAGE)");
    }
    Ok(bounds)
}

fn resolve_raster(url: &ServiceUrl, shown: &str) -> Result<Resolved> {
    let info = read_json(&url.url("", &["f=json"]), shown)?;
    let capabilities = info.get("capabilities").and_then(Value::as_str);
    let exports = url.kind == ServiceKind::ImageServer
        && capabilities.is_none_or(|c| c.split(',').any(|c| c.trim().eq_ignore_ascii_case("Image")));
    let tiled = info.get("tileInfo").is_some_and(Value::is_object)
        && info.get("singleFusedMapCache").and_then(Value::as_bool) != Some(false);
    if url.item.is_some() && !exports {
        bail_input!("image service {shown} does not export images (capabilities: {}), so its catalog items cannot be read one by one; process it as a mosaic", capabilities.unwrap_or(""));
    }
    let xml = if exports {
        export_image_description(url, &info, shown)?
    } else if tiled {
        return tiled_description(url, &info, shown);
    } else if url.kind == ServiceKind::ImageServer {
        bail_input!("image service {shown} allows neither exportImage nor tiles (capabilities: {}); ask its publisher to enable the Image capability", capabilities.unwrap_or(""))
    } else {
        bail_input!(
            "map service {shown} has no tile cache: a dynamic map has no cell size of its own to cut chips at; give a cached (tiled) MapServer or an ImageServer"
        )
    };
    Ok(Resolved {
        gdal_name: memory_file(&service_stem(url), "xml", xml)?,
        driver: "WMS",
        feature_count: None,
        ids_url: None,
    })
}

/// GDAL's name of an ImageServer `pixelType`.
fn data_type(pixel_type: &str) -> Option<&'static str> {
    Some(match pixel_type.to_ascii_uppercase().as_str() {
        "U1" | "U2" | "U4" | "U8" => "Byte",
        // Int8 needs GDAL 3.7; a signed byte fits Int16 exactly.
        "S8" | "S16" => "Int16",
        "U16" => "UInt16",
        "U32" => "UInt32",
        "S32" => "Int32",
        "F32" => "Float32",
        "F64" => "Float64",
        _ => return None,
    })
}

/// The WMS description of an ImageServer read through `exportImage`.
fn export_image_description(url: &ServiceUrl, info: &Value, shown: &str) -> Result<String> {
    let Some(extent) = info.get("extent").filter(|e| e.is_object()) else {
        bail_input!("image service {shown} declares no extent; it cannot be read as an image");
    };
    let sr = extent.get("spatialReference").or_else(|| info.get("spatialReference"));
    let (server_sr, wkt) = spatial_reference(sr, shown)?;
    let bounds = ["xmin", "ymin", "xmax", "ymax"].map(|k| number(extent, k));
    let [Some(xmin), Some(ymin), Some(xmax), Some(ymax)] = bounds else {
        bail_input!("image service {shown} has an incomplete extent {extent}");
    };
    let (Some(px), Some(py)) = (number(info, "pixelSizeX"), number(info, "pixelSizeY")) else {
        bail_input!("image service {shown} declares no cell size (pixelSizeX/pixelSizeY)");
    };
    if px <= 0.0 || py <= 0.0 || xmax <= xmin || ymax <= ymin {
        bail_input!("image service {shown} has an empty extent or cell size ({extent}, {px} x {py})");
    }
    // A catalog item alone: its footprint's envelope, snapped outwards to the service's pixel
    // grid and kept inside its extent, and only its pixels (a lock-raster mosaic rule).
    let mut mosaic_rule = None;
    let (xmin, ymin, xmax, ymax) = match url.item {
        None => (xmin, ymin, xmax, ymax),
        Some(id) => {
            let [fx0, fy0, fx1, fy1] = item_footprint(url, id, &server_sr, shown)?;
            let snap = |v: f64, origin: f64, step: f64, up: bool| {
                let cells = (v - origin) / step;
                let cells = if up {
                    (cells - 1e-6).ceil()
                } else {
                    (cells + 1e-6).floor()
                };
                origin + cells * step
            };
            let x0 = snap(fx0, xmin, px, false).max(xmin);
            let x1 = snap(fx1, xmin, px, true).min(xmax);
            let y1 = ymax - snap(ymax - fy1, 0.0, py, false).max(0.0);
            let y0 = (ymax - snap(ymax - fy0, 0.0, py, true)).max(ymin);
            if x1 <= x0 || y1 <= y0 {
                bail_input!("catalog item {id} of image service {shown} lies outside the service's extent");
            }
            let rule = format!("{{\"mosaicMethod\":\"esriMosaicLockRaster\",\"lockRasterIds\":[{id}]}}");
            mosaic_rule = Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("mosaicRule", &rule)
                    .finish(),
            );
            (x0, y0, x1, y1)
        }
    };
    let width = ((xmax - xmin) / px).round();
    let height = ((ymax - ymin) / py).round();
    if !(1.0..=i32::MAX as f64).contains(&width) || !(1.0..=i32::MAX as f64).contains(&height) {
        bail_input!(
            "image service {shown} would be {width} x {height} pixels at its cell size; GDAL reads at most 2^31 a side"
        );
    }
    let bands = info.get("bandCount").and_then(Value::as_u64).unwrap_or(1).max(1);
    let pixel_type = info.get("pixelType").and_then(Value::as_str).unwrap_or("U8");
    let Some(data_type) = data_type(pixel_type) else {
        bail_input!(
            "image service {shown} has pixel type {pixel_type}, which cannot be classified (complex or unknown)"
        );
    };
    let nodata = nodata_value(info);
    let block_limit = |key: &str| info.get(key).and_then(Value::as_u64).unwrap_or(EXPORT_BLOCK);
    let block_x = EXPORT_BLOCK.min(block_limit("maxImageWidth")).max(1);
    let block_y = EXPORT_BLOCK.min(block_limit("maxImageHeight")).max(1);
    let mut export = vec!["interpolation=RSP_NearestNeighbor"];
    export.extend(mosaic_rule.as_deref());
    let server = url.url("/exportImage", &export);
    Ok(format!(
        "<GDAL_WMS>\n  <Service name=\"AGS\">\n    <ServerUrl>{}</ServerUrl>\n    <BBoxOrder>xyXY</BBoxOrder>\n    <SRS>{server_sr}</SRS>\n    <ImageFormat>tiff</ImageFormat>\n  </Service>\n  <DataWindow>\n    <UpperLeftX>{xmin}</UpperLeftX>\n    <UpperLeftY>{ymax}</UpperLeftY>\n    <LowerRightX>{}</LowerRightX>\n    <LowerRightY>{}</LowerRightY>\n    <SizeX>{width}</SizeX>\n    <SizeY>{height}</SizeY>\n  </DataWindow>\n  <Projection>{}</Projection>\n  <BandsCount>{bands}</BandsCount>\n  <DataType>{data_type}</DataType>\n{}  <BlockSizeX>{block_x}</BlockSizeX>\n  <BlockSizeY>{block_y}</BlockSizeY>\n</GDAL_WMS>\n",
        escape(&server),
        xmin + width * px,
        ymax - height * py,
        escape(&wkt),
        nodata
            .map(|v| format!("  <DataValues NoData=\"{v}\"/>\n"))
            .unwrap_or_default(),
    ))
}

/// The service's NoData value, when it declares one for all bands.
fn nodata_value(info: &Value) -> Option<f64> {
    if let Some(v) = number(info, "noDataValue") {
        return Some(v);
    }
    let values: Vec<f64> = info
        .get("noDataValues")?
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let first = *values.first()?;
    values.iter().all(|&v| v == first).then_some(first)
}

/// The description of a cached (tiled) service: the WMS TMS minidriver at the finest level,
/// cut to the service's extent by a VRT.
fn tiled_description(url: &ServiceUrl, info: &Value, shown: &str) -> Result<Resolved> {
    let scheme = TileScheme::read(&info["tileInfo"], shown)?;
    let window = scheme.window(full_extent(info, &scheme, shown)?, shown)?;
    let stem = service_stem(url);
    let wms_name = memory_file(&stem, "xml", scheme.wms_xml(url, &window))?;
    Ok(Resolved {
        gdal_name: memory_file(&stem, "vrt", scheme.vrt_xml(&wms_name, &window))?,
        driver: "VRT",
        feature_count: None,
        ids_url: None,
    })
}

/// A cached service's tiling scheme at its finest level.
struct TileScheme {
    cols: u64,
    rows: u64,
    origin: (f64, f64),
    wkid: String,
    wkt: String,
    bands: usize,
    level: i64,
    resolution: f64,
    overviews: u32,
}

/// The part of the finest level that holds the service's extent: the first tile (on a boundary
/// of every overview level's tiles too), its corner, and the pixel rectangle of the extent.
struct TileWindow {
    tile: (i64, i64),
    corner: (f64, f64),
    first: (f64, f64),
    last: (f64, f64),
}

impl TileScheme {
    /// Reads `tileInfo` of a service (shown as `shown`).
    fn read(tile_info: &Value, shown: &str) -> Result<TileScheme> {
        let (Some(cols), Some(rows)) = (
            tile_info.get("cols").and_then(Value::as_u64).filter(|&c| c > 0),
            tile_info.get("rows").and_then(Value::as_u64).filter(|&r| r > 0),
        ) else {
            bail_input!("tiled service {shown} declares no tile size (tileInfo.rows/cols)");
        };
        let origin = tile_info.get("origin").cloned().unwrap_or(Value::Null);
        let (Some(ox), Some(oy)) = (number(&origin, "x"), number(&origin, "y")) else {
            bail_input!("tiled service {shown} declares no tile origin (tileInfo.origin)");
        };
        let (wkid, wkt) = spatial_reference(tile_info.get("spatialReference"), shown)?;
        let format = tile_info
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("PNG")
            .to_ascii_uppercase();
        if format.contains("LERC") {
            bail_input!("tiled service {shown} stores LERC tiles, which GDAL's tile reader cannot decode; use the service's exportImage (an ImageServer) instead");
        }
        let (level, resolution, overviews) = levels(tile_info, shown)?;
        Ok(TileScheme {
            cols,
            rows,
            origin: (ox, oy),
            wkid,
            wkt,
            bands: if format.contains("PNG32") || format.contains("MIXED") {
                4
            } else {
                3
            },
            level,
            resolution,
            overviews,
        })
    }

    /// The window of the finest level that holds `[xmin, ymin, xmax, ymax]`.
    fn window(&self, [xmin, ymin, xmax, ymax]: [f64; 4], shown: &str) -> Result<TileWindow> {
        let (ox, oy) = self.origin;
        let resolution = self.resolution;
        let (tile_w, tile_h) = (self.cols as f64 * resolution, self.rows as f64 * resolution);
        let step = 1i64 << self.overviews;
        let tx = (((xmin - ox) / tile_w + 1e-9).floor() as i64).div_euclid(step) * step;
        let ty = (((oy - ymax) / tile_h + 1e-9).floor() as i64).div_euclid(step) * step;
        if tx < 0 || ty < 0 || xmax <= xmin || ymax <= ymin {
            bail_input!("tiled service {shown} has its extent outside its tiling scheme (origin {ox}, {oy})");
        }
        let ulx = ox + tx as f64 * tile_w;
        let uly = oy - ty as f64 * tile_h;
        let col0 = ((xmin - ulx) / resolution + 1e-6).floor();
        let row0 = ((uly - ymax) / resolution + 1e-6).floor();
        let col1 = ((xmax - ulx) / resolution - 1e-6).ceil();
        let row1 = ((uly - ymin) / resolution - 1e-6).ceil();
        if col1 > i32::MAX as f64 || row1 > i32::MAX as f64 || tx > i32::MAX as i64 || ty > i32::MAX as i64 {
            bail_input!(
                "tiled service {shown} is too large at its finest level for GDAL (more than 2^31 pixels a side)"
            );
        }
        Ok(TileWindow {
            tile: (tx, ty),
            corner: (ulx, uly),
            first: (col0, row0),
            last: (col1, row1),
        })
    }

    /// GDAL's WMS description (TMS minidriver) of the finest level from `window`'s first tile.
    fn wms_xml(&self, url: &ServiceUrl, window: &TileWindow) -> String {
        let params: Vec<String> = url.encoded_params().collect();
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{}", params.join("&"))
        };
        let server = format!("{}/tile/${{z}}/${{y}}/${{x}}{query}", url.base());
        let ((tx, ty), (ulx, uly), (col1, row1)) = (window.tile, window.corner, window.last);
        let (level, overviews, bands, cols, rows) = (self.level, self.overviews, self.bands, self.cols, self.rows);
        format!(
            "<GDAL_WMS>\n  <Service name=\"TMS\">\n    <ServerUrl>{}</ServerUrl>\n  </Service>\n  <DataWindow>\n    <UpperLeftX>{ulx}</UpperLeftX>\n    <UpperLeftY>{uly}</UpperLeftY>\n    <LowerRightX>{}</LowerRightX>\n    <LowerRightY>{}</LowerRightY>\n    <SizeX>{col1}</SizeX>\n    <SizeY>{row1}</SizeY>\n    <TileLevel>{level}</TileLevel>\n    <TileX>{tx}</TileX>\n    <TileY>{ty}</TileY>\n    <YOrigin>top</YOrigin>\n  </DataWindow>\n  <Projection>{}</Projection>\n  <OverviewCount>{overviews}</OverviewCount>\n  <BandsCount>{bands}</BandsCount>\n  <BlockSizeX>{cols}</BlockSizeX>\n  <BlockSizeY>{rows}</BlockSizeY>\n</GDAL_WMS>\n",
            escape(&server),
            ulx + col1 * self.resolution,
            uly - row1 * self.resolution,
            escape(&self.wkt),
        )
    }

    /// The VRT that cuts the WMS description `wms_name` to the service's extent.
    fn vrt_xml(&self, wms_name: &str, window: &TileWindow) -> String {
        let ((col0, row0), (col1, row1), (ulx, uly)) = (window.first, window.last, window.corner);
        let (width, height) = (col1 - col0, row1 - row0);
        let colors = ["Red", "Green", "Blue", "Alpha"];
        let band_xml: String = (1..=self.bands)
            .map(|b| {
                format!(
                    "  <VRTRasterBand dataType=\"Byte\" band=\"{b}\">\n    <ColorInterp>{}</ColorInterp>\n    <SimpleSource>\n      <SourceFilename relativeToVRT=\"0\">{wms_name}</SourceFilename>\n      <SourceBand>{b}</SourceBand>\n      <SrcRect xOff=\"{col0}\" yOff=\"{row0}\" xSize=\"{width}\" ySize=\"{height}\"/>\n      <DstRect xOff=\"0\" yOff=\"0\" xSize=\"{width}\" ySize=\"{height}\"/>\n    </SimpleSource>\n  </VRTRasterBand>\n",
                    colors[b - 1]
                )
            })
            .collect();
        format!(
            "<VRTDataset rasterXSize=\"{width}\" rasterYSize=\"{height}\">\n  <SRS>{}</SRS>\n  <GeoTransform>{}, {}, 0, {}, 0, {}</GeoTransform>\n{band_xml}</VRTDataset>\n",
            escape(&self.wkt),
            ulx + col0 * self.resolution,
            self.resolution,
            uly - row0 * self.resolution,
            -self.resolution,
        )
    }
}

/// The finest level of `tileInfo.lods` with its resolution, and how many coarser levels follow
/// it as overviews (as long as each halves the resolution).
fn levels(tile_info: &Value, shown: &str) -> Result<(i64, f64, u32)> {
    let mut lods: Vec<(i64, f64)> = tile_info
        .get("lods")
        .and_then(Value::as_array)
        .map(|lods| {
            lods.iter()
                .filter_map(|l| Some((l.get("level")?.as_i64()?, number(l, "resolution")?)))
                .filter(|&(level, r)| (0..=30).contains(&level) && r > 0.0)
                .collect()
        })
        .unwrap_or_default();
    lods.sort_by_key(|&(level, _)| level);
    let Some(&(level, resolution)) = lods.last() else {
        bail_input!("tiled service {shown} declares no levels (tileInfo.lods)");
    };
    let mut overviews = 0u32;
    while let Some(&(l, r)) = lods.iter().rev().nth(overviews as usize + 1) {
        let expected = resolution * f64::from(1u32 << (overviews + 1));
        if l != level - i64::from(overviews) - 1 || (r / expected - 1.0).abs() > 1e-6 || overviews >= 20 {
            break;
        }
        overviews += 1;
    }
    Ok((level, resolution, overviews))
}

/// The service's full extent `[xmin, ymin, xmax, ymax]`, in the tiles' CRS.
fn full_extent(info: &Value, scheme: &TileScheme, shown: &str) -> Result<[f64; 4]> {
    let extent = info
        .get("fullExtent")
        .or_else(|| info.get("extent"))
        .filter(|e| e.is_object())
        .cloned()
        .unwrap_or(Value::Null);
    let bounds = ["xmin", "ymin", "xmax", "ymax"].map(|k| number(&extent, k));
    let [Some(xmin), Some(ymin), Some(xmax), Some(ymax)] = bounds else {
        bail_input!("tiled service {shown} declares no full extent");
    };
    if let Some(extent_sr) = extent.get("spatialReference").filter(|s| s.is_object()) {
        let (id, extent_wkt) = spatial_reference(Some(extent_sr), shown)?;
        if id != scheme.wkid && extent_wkt != scheme.wkt {
            bail_input!(
                "tiled service {shown} has its extent in wkid {id} but its tiles in wkid {}; such services are not supported",
                scheme.wkid
            );
        }
    }
    Ok([xmin, ymin, xmax, ymax])
}

/// A feature layer: its query URL for GDAL's ESRIJSON driver selecting what `filter` says, and
/// its feature count under the filter.
fn resolve_layer(url: &ServiceUrl, shown: &str, filter: &LayerFilter) -> Result<Resolved> {
    let info = read_json(&url.url("", &["f=json"]), shown)?;
    if let Some(capabilities) = info.get("capabilities").and_then(Value::as_str) {
        if !capabilities.split(',').any(|c| c.trim().eq_ignore_ascii_case("Query")) {
            bail_input!("feature layer {shown} cannot be queried (capabilities: {capabilities}); ask its publisher to enable Query");
        }
    }
    let object_id = info
        .get("objectIdField")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            info.get("fields")?.as_array()?.iter().find_map(|f| {
                (f.get("type")?.as_str()? == "esriFieldTypeOID").then(|| f.get("name")?.as_str().map(str::to_string))?
            })
        });
    let advanced = info.get("advancedQueryCapabilities");
    let supports = |key: &str| advanced.and_then(|a| a.get(key)).and_then(Value::as_bool);
    let selection = selection(&info, filter, shown)?;
    let selected: Vec<&str> = selection.iter().map(String::as_str).collect();
    // A refused query is most often the filter's fault: the server's SQL and field names.
    let advise = |code: Option<i64>| match (&filter.where_clause, code) {
        (Some(clause), Some(400) | None) => {
            format!("check --where \"{clause}\": the server applies it, with the layer's field names and its own SQL")
        }
        _ => rest::advice(code).to_string(),
    };
    let count_answer = rest::request_json_advised(
        &url.url("/query", &[&selected[..], &["returnCountOnly=true", "f=json"]].concat()),
        None,
        &format!("service {shown}"),
        &advise,
    )?;
    let Some(count) = count_answer.get("count").and_then(Value::as_u64) else {
        bail_input!("feature layer {shown} did not say how many features it holds (returnCountOnly); it cannot be read completely");
    };
    let page = info.get("maxRecordCount").and_then(Value::as_u64);
    if let (Some(false), Some(page)) = (supports("supportsPagination"), page) {
        if count > page {
            bail_input!(
                "feature layer {shown} holds {count} features but returns at most {page} per request and cannot page; ask its publisher to raise maxRecordCount, or export the layer to a file"
            );
        }
    }
    let order = match (&object_id, supports("supportsOrderBy")) {
        (Some(field), Some(true) | None) => Some(format!("orderByFields={}+ASC", field.replace(' ', "+"))),
        _ => None,
    };
    let mut query = selected.clone();
    query.extend(["outFields=*", "returnGeometry=true"]);
    if let Some(order) = &order {
        query.push(order);
    }
    query.push("f=json");
    Ok(Resolved {
        gdal_name: url.url("/query", &query),
        driver: "ESRIJSON",
        feature_count: Some(count),
        ids_url: Some(url.url("/query", &[&selected[..], &["returnIdsOnly=true", "f=json"]].concat())),
    })
}

/// The query parameters (encoded) that select what `filter` says of the layer described by
/// `info`: `where`, and the envelope taken into the layer's spatial reference.
fn selection(info: &Value, filter: &LayerFilter, shown: &str) -> Result<Vec<String>> {
    let encode = |key: &str, value: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish()
    };
    let mut query = vec![encode("where", filter.where_clause.as_deref().unwrap_or("1=1"))];
    if let Some((bounds, wkt)) = &filter.envelope {
        let sr = info
            .get("extent")
            .and_then(|e| e.get("spatialReference"))
            .or_else(|| info.get("sourceSpatialReference"))
            .or_else(|| info.get("spatialReference"));
        let (id, layer_wkt) = spatial_reference(sr, shown)?;
        let bounds = match srs::transform_wkt(wkt, &layer_wkt)? {
            Some(t) => t
                .transform_bounds(bounds, 21)
                .with_context(|| format!("taking --extent into the spatial reference of feature layer {shown}"))?,
            None => *bounds,
        };
        let [xmin, ymin, xmax, ymax] = bounds;
        query.push(encode("geometry", &format!("{xmin},{ymin},{xmax},{ymax}")));
        query.push("geometryType=esriGeometryEnvelope".into());
        query.push(encode("inSR", &id));
        query.push("spatialRel=esriSpatialRelEnvelopeIntersects".into());
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_recognised_by_their_endpoint() {
        let image = parse("https://h/arcgis/rest/services/Ortho/ImageServer/?token=abc&f=pjson").unwrap();
        assert_eq!(image.kind, ServiceKind::ImageServer);
        assert_eq!(image.base(), "https://h/arcgis/rest/services/Ortho/ImageServer");
        assert_eq!(image.params, vec![("token".to_string(), "abc".to_string())]);
        assert_eq!(
            image.url("/exportImage", &["a=1"]),
            "https://h/arcgis/rest/services/Ortho/ImageServer/exportImage?a=1&token=abc"
        );
        assert_eq!(
            parse("http://h/arcgis/rest/services/Base/MapServer").unwrap().kind,
            ServiceKind::MapServer
        );
        assert_eq!(
            parse("https://h/arcgis/rest/services/B/FeatureServer/0").unwrap().kind,
            ServiceKind::FeatureLayer
        );
        assert_eq!(
            parse("https://h/arcgis/rest/services/B/MapServer/12/").unwrap().kind,
            ServiceKind::FeatureLayer
        );
        for other in [
            "/vsicurl/https://h/a.tif",
            "https://h/a.tif",
            "https://h/arcgis/rest/services/B/FeatureServer",
            "https://h/arcgis/rest/services/B/GPServer/0",
            "image.tif",
            "ImageServer",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn pixel_types_map_to_gdal_types() {
        assert_eq!(data_type("U8"), Some("Byte"));
        assert_eq!(data_type("f32"), Some("Float32"));
        assert_eq!(data_type("S8"), Some("Int16"));
        assert_eq!(data_type("C64"), None);
    }
}
