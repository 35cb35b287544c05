//! Results appended to an ArcGIS feature layer (`-o https://…/FeatureServer/N`), as Esri's tool
//! writes a feature service: the layer is checked first (it can take new features, it has the
//! label field), the run writes a local GeoPackage as always (in the layer's spatial reference),
//! and once that is committed its rows are sent with `addFeatures` in batches (geometry, the
//! attributes the layer has, label, confidence, status). A layer that holds features already is
//! refused unless `--append` (add every result) or `--resume` is given. With `--resume`, the
//! features the layer already holds (by their `SourceOID`) are skipped, so that a run
//! interrupted in the middle of its batches, run again, adds every feature exactly once.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use gdal::vector::{FieldValue, Geometry, LayerAccess};
use gdal::Dataset;
use serde_json::{json, Map, Value};

use crate::bail_input;
use crate::input::http::redact;
use crate::input::rest;
use crate::input::service::{self, ServiceKind, ServiceUrl};
use crate::messages;
use crate::output::schema::SOURCE_ID_FIELD;

/// Most features sent in one `addFeatures` request (fewer when the layer's `maxRecordCount` is
/// lower).
const BATCH: usize = 500;

/// A feature layer the results are appended to, as checked before the run.
#[derive(Debug, Clone)]
pub struct FeatureLayerTarget {
    url: ServiceUrl,
    /// The layer's URL as shown (without secrets).
    pub shown: String,
    /// The layer's fields: name and Esri type.
    fields: Vec<(String, String)>,
    /// The layer's spatial reference as `EPSG:N` (what the local rows are written in).
    pub srs: String,
    /// Features per `addFeatures` request.
    batch: usize,
    /// Skip the features the layer holds already (`--resume`).
    resume: bool,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Features added.
    pub added: usize,
    /// Features skipped: the layer held them already (`--resume`).
    pub skipped: usize,
}

/// Whether `output` names a feature layer (`…/FeatureServer/N`, `…/MapServer/N`).
pub fn is_feature_layer(output: &str) -> bool {
    service::parse(output).is_some_and(|u| u.kind == ServiceKind::FeatureLayer)
}

/// The `addToDefinition` field definition that adds `name` (of Esri type `kind`) to a layer.
fn add_field(name: &str, kind: &str) -> String {
    let length = if kind == "esriFieldTypeString" {
        ",\"length\":256"
    } else {
        ""
    };
    format!("addToDefinition {{\"fields\":[{{\"name\":\"{name}\",\"type\":\"{kind}\",\"alias\":\"{name}\"{length},\"nullable\":true,\"editable\":true}}]}}")
}

impl FeatureLayerTarget {
    /// Checks the layer `output` before anything runs: it answers, takes new features
    /// (`Create`), has the label field `label_field` (and, for `--resume`, the source-id field
    /// [`SOURCE_ID_FIELD`]), declares a spatial reference, and holds no features unless the
    /// run adds to them on purpose (`--append`, `--resume`): a plain run made again must not
    /// add every result a second time, as a file output that exists is not written over.
    pub fn check(output: &str, label_field: &str, resume: bool, append: bool) -> Result<FeatureLayerTarget> {
        let shown = redact(output);
        let Some(url) = service::parse(output).filter(|u| u.kind == ServiceKind::FeatureLayer) else {
            bail_input!("--output {shown} is not a feature layer URL; give …/FeatureServer/N");
        };
        let what = format!("feature layer {shown}");
        let info = rest::request_json(&url.url("", &["f=json"]), None, &what)?;
        let capabilities = info.get("capabilities").and_then(Value::as_str).unwrap_or("");
        let has = |c: &str| capabilities.split(',').any(|x| x.trim().eq_ignore_ascii_case(c));
        // `Create` allows adding; `Editing` alone (no finer capability listed) allows all edits.
        let takes_new = has("Create") || (has("Editing") && !has("Update") && !has("Delete"));
        if !takes_new {
            bail_input!(
                "{what} does not take new features (capabilities: {capabilities}); enable Create (editing) on the layer, or write a file"
            );
        }
        let fields: Vec<(String, String)> = info
            .get("fields")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| {
                Some((
                    f.get("name")?.as_str()?.to_string(),
                    f.get("type")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let lacks = |name: &str| !fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if lacks(label_field) {
            bail_input!(
                "{what} has no field {label_field} for the labels; add it to the layer first ({}), or give --class-label-field a field it has",
                add_field(label_field, "esriFieldTypeString")
            );
        }
        if resume && lacks(SOURCE_ID_FIELD) {
            bail_input!(
                "{what} has no field {SOURCE_ID_FIELD}, by which --resume finds the features added already; add it to the layer first ({})",
                add_field(SOURCE_ID_FIELD, "esriFieldTypeBigInteger")
            );
        }
        let sr = info
            .get("extent")
            .and_then(|e| e.get("spatialReference"))
            .or_else(|| info.get("sourceSpatialReference"))
            .or_else(|| info.get("spatialReference"));
        let Some(wkid) = sr
            .and_then(|s| s.get("latestWkid").or_else(|| s.get("wkid")))
            .and_then(Value::as_i64)
        else {
            bail_input!("{what} declares no spatial reference (wkid); results cannot be placed in it");
        };
        if !resume && !append {
            let answer = rest::request_json(
                &url.url("/query", &["where=1%3D1", "returnCountOnly=true", "f=json"]),
                None,
                &what,
            )?;
            let Some(held) = answer.get("count").and_then(Value::as_u64) else {
                bail_input!("{what} did not say how many features it holds (returnCountOnly); give --append to add the results whatever it holds");
            };
            if held > 0 {
                bail_input!(
                    "{what} holds {held} feature(s) already; give --resume to add only the features it does not hold (by {SOURCE_ID_FIELD}), --append to add every result again, or empty the layer first"
                );
            }
        }
        let batch = info
            .get("maxRecordCount")
            .and_then(Value::as_u64)
            .map_or(BATCH, |m| (m as usize).clamp(1, BATCH));
        Ok(FeatureLayerTarget {
            url,
            shown,
            fields,
            srs: format!("EPSG:{wkid}"),
            batch,
            resume,
        })
    }

    /// Sends the rows of layer `layer` of the GeoPackage `local` to the feature layer, in
    /// batches; with `--resume`, those whose source id the layer holds already are skipped.
    pub fn upload(&self, local: &Path, layer: &str) -> Result<Uploaded> {
        let dataset = Dataset::open(local).with_context(|| format!("reading the results {}", local.display()))?;
        let mut rows = dataset.layer_by_name(layer)?;
        let names: Vec<String> = rows.defn().fields().map(|f| f.name()).collect();
        // Each local field the layer has, by the layer's own spelling; never its object id.
        let sent: Vec<(usize, String)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let (field, kind) = self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
                (!matches!(kind.as_str(), "esriFieldTypeOID" | "esriFieldTypeGlobalID")).then(|| (i, field.clone()))
            })
            .collect();
        let source_index = names.iter().position(|n| n.eq_ignore_ascii_case(SOURCE_ID_FIELD));
        let held = match (self.resume, source_index) {
            (true, Some(_)) => self.source_ids_held()?,
            _ => HashSet::new(),
        };
        let mut done = Uploaded::default();
        let mut batch = Vec::new();
        for feature in rows.features() {
            let source = source_index.and_then(|i| feature.field_as_integer64(i).ok().flatten());
            if source.is_some_and(|s| held.contains(&s)) {
                done.skipped += 1;
                continue;
            }
            let mut attributes = Map::new();
            for (i, name) in &sent {
                attributes.insert(name.clone(), json_value(feature.field(*i)?));
            }
            let mut item = json!({ "attributes": attributes });
            if let Some(geometry) = feature.geometry().and_then(esri_geometry) {
                item["geometry"] = geometry;
            }
            batch.push(item);
            if batch.len() == self.batch {
                done.added += self.add(&std::mem::take(&mut batch), done.added)?;
            }
        }
        if !batch.is_empty() {
            done.added += self.add(&batch, done.added)?;
        }
        Ok(done)
    }

    /// Sends one batch; returns how many were added (all, or an error naming the first refused).
    fn add(&self, batch: &[Value], before: usize) -> Result<usize> {
        if crate::stop::requested() {
            return Err(anyhow::Error::new(crate::error::Interrupted::NothingWritten));
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("features", &Value::Array(batch.to_vec()).to_string())
            .append_pair("rollbackOnFailure", "true")
            .append_pair("f", "json")
            .finish();
        let what = format!("feature layer {} (addFeatures)", self.shown);
        let answer = rest::request_json(&self.url.url("/addFeatures", &[]), Some(&form), &what)?;
        let results = answer
            .get("addResults")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(failed) = results
            .iter()
            .position(|r| r.get("success").and_then(Value::as_bool) != Some(true))
        {
            let error = &results[failed]["error"];
            let reason = error
                .get("description")
                .or_else(|| error.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("refused");
            bail_input!(
                "{what} refused result {} ({}); {} were added before it; fix the layer's fields or the results and run again with --resume",
                before + failed + 1,
                redact(reason).trim_end_matches('.'),
                before
            );
        }
        if results.len() != batch.len() {
            anyhow::bail!(
                "{what} answered {} results for {} features; check the layer and run again with --resume",
                results.len(),
                batch.len()
            );
        }
        messages::info(format_args!(
            "added {} feature(s) to {}",
            before + batch.len(),
            self.shown
        ));
        Ok(batch.len())
    }

    /// The source ids of the features the layer holds, page by page.
    fn source_ids_held(&self) -> Result<HashSet<i64>> {
        let mut held = HashSet::new();
        let what = format!("feature layer {}", self.shown);
        let field = self
            .fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(SOURCE_ID_FIELD))
            .map_or(SOURCE_ID_FIELD.to_string(), |(n, _)| n.clone());
        let out_fields = format!("outFields={field}");
        let mut offset = 0usize;
        loop {
            let offset_param = format!("resultOffset={offset}");
            let answer = rest::request_json(
                &self.url.url(
                    "/query",
                    &[
                        "where=1%3D1",
                        &out_fields,
                        "returnGeometry=false",
                        &offset_param,
                        "f=json",
                    ],
                ),
                None,
                &what,
            )?;
            let features = answer
                .get("features")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            held.extend(
                features
                    .iter()
                    .filter_map(|f| f.get("attributes")?.get(&field)?.as_i64()),
            );
            offset += features.len();
            if features.is_empty() || answer.get("exceededTransferLimit").and_then(Value::as_bool) != Some(true) {
                return Ok(held);
            }
        }
    }
}

/// An attribute value as JSON.
fn json_value(value: Option<FieldValue>) -> Value {
    match value {
        None => Value::Null,
        Some(FieldValue::IntegerValue(v)) => json!(v),
        Some(FieldValue::Integer64Value(v)) => json!(v),
        Some(FieldValue::RealValue(v)) if v.is_finite() => json!(v),
        Some(FieldValue::RealValue(_)) => Value::Null,
        Some(FieldValue::StringValue(v)) => json!(v),
        Some(other) => json!(format!("{other:?}")),
    }
}

/// The points of a (part of a) geometry as `[x, y]` pairs.
fn points(g: &Geometry) -> Vec<Value> {
    coordinates(g).into_iter().map(|(x, y, _)| json!([x, y])).collect()
}

/// The coordinates of a (part of a) geometry.
fn coordinates(g: &Geometry) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    g.get_points(&mut out);
    out
}

/// Twice the signed area of a ring (positive: counterclockwise).
fn signed_area(ring: &[(f64, f64, f64)]) -> f64 {
    ring.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum()
}

/// The rings of a polygon as Esri wants them: the shell clockwise, holes counterclockwise.
fn esri_rings(polygon: &Geometry, out: &mut Vec<Value>) {
    for k in 0..polygon.geometry_count() {
        let ring = polygon.get_geometry(k);
        let mut coords = coordinates(&ring);
        let clockwise = signed_area(&coords) < 0.0;
        if clockwise != (k == 0) {
            coords.reverse();
        }
        out.push(Value::Array(
            coords.into_iter().map(|(x, y, _)| json!([x, y])).collect(),
        ));
    }
}

/// A geometry as Esri JSON (point, multipoint, polyline, polygon); `None` for an empty one or
/// another type.
fn esri_geometry(g: &Geometry) -> Option<Value> {
    if g.is_empty() {
        return None;
    }
    let name = g.geometry_name().to_ascii_uppercase();
    Some(match name.as_str() {
        "POINT" => {
            let (x, y, _) = g.get_point(0);
            json!({"x": x, "y": y})
        }
        "MULTIPOINT" => {
            json!({"points": (0..g.geometry_count()).flat_map(|i| points(&g.get_geometry(i))).collect::<Vec<_>>()})
        }
        "LINESTRING" => json!({"paths": [points(g)]}),
        "MULTILINESTRING" => {
            json!({"paths": (0..g.geometry_count()).map(|i| Value::Array(points(&g.get_geometry(i)))).collect::<Vec<_>>()})
        }
        "POLYGON" => {
            let mut rings = Vec::new();
            esri_rings(g, &mut rings);
            json!({ "rings": rings })
        }
        "MULTIPOLYGON" => {
            let mut rings = Vec::new();
            for i in 0..g.geometry_count() {
                esri_rings(&g.get_geometry(i), &mut rings);
            }
            json!({ "rings": rings })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_become_esri_rings_with_the_shell_clockwise() {
        let g = Geometry::from_wkt("POLYGON ((0 0,10 0,10 10,0 10,0 0),(2 2,2 4,4 4,4 2,2 2))").unwrap();
        let esri = esri_geometry(&g).unwrap();
        assert_eq!(
            esri["rings"][0],
            json!([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0], [0.0, 0.0]])
        );
        assert_eq!(
            esri["rings"][1],
            json!([[2.0, 2.0], [4.0, 2.0], [4.0, 4.0], [2.0, 4.0], [2.0, 2.0]])
        );
        let p = esri_geometry(&Geometry::from_wkt("POINT (1 2)").unwrap()).unwrap();
        assert_eq!(p, json!({"x": 1.0, "y": 2.0}));
    }
}
