//! `classify-objects compare A B`: which objects changed label between two runs (a model
//! upgrade, a new package). Rows are matched by `SourceOID` (and `ImageId` when present). The
//! exit status says whether anything changed, like `diff`: 0 nothing, 1 something, 2 trouble.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use gdal::vector::LayerAccess;

use crate::bail_input;
use crate::output::existing;
use crate::output::{CONFIDENCE_FIELD, IMAGE_ID_FIELD, SOURCE_ID_FIELD};

/// A row's identity: source feature id and image.
type Key = (i64, String);
/// A row's label and confidence (as text, whatever the label mode).
type Answer = (Option<String>, Option<String>);

/// What differs between two outputs.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    /// Rows in both.
    pub matched: usize,
    /// Rows whose label differs: key, answer in A, answer in B.
    pub changed: Vec<(Key, Answer, Answer)>,
    /// Keys only in A.
    pub only_in_a: Vec<Key>,
    /// Keys only in B.
    pub only_in_b: Vec<Key>,
}

impl Comparison {
    /// Whether anything differs.
    pub fn differs(&self) -> bool {
        !self.changed.is_empty() || !self.only_in_a.is_empty() || !self.only_in_b.is_empty()
    }
}

/// Compares the label field `label_field` of two outputs, in their layers `layers` (for A, and
/// for B; by default the one layer with the columns of a run).
pub fn compare(a: &Path, b: &Path, label_field: &str, layers: [Option<&str>; 2]) -> Result<Comparison> {
    let (rows_a, rows_b) = (read(a, label_field, layers[0])?, read(b, label_field, layers[1])?);
    let mut result = Comparison::default();
    for (key, answer_a) in &rows_a {
        match rows_b.get(key) {
            None => result.only_in_a.push(key.clone()),
            Some(answer_b) => {
                result.matched += 1;
                if answer_a.0 != answer_b.0 {
                    result.changed.push((key.clone(), answer_a.clone(), answer_b.clone()));
                }
            }
        }
    }
    result.only_in_b = rows_b.keys().filter(|k| !rows_a.contains_key(*k)).cloned().collect();
    Ok(result)
}

fn read(path: &Path, label_field: &str, layer: Option<&str>) -> Result<BTreeMap<Key, Answer>> {
    let shown = path.display().to_string();
    let dataset = existing::open_output(path)?;
    let names: Vec<String> = dataset.layers().map(|l| l.name()).collect();
    let index = match layer {
        Some(wanted) => match names.iter().position(|n| n == wanted) {
            Some(i) => i,
            None => bail_input!(
                "{shown} has no layer {wanted} (layers: {}); pass one of them to --layer",
                names.join(", ")
            ),
        },
        None => {
            let runs: Vec<usize> = (0..names.len())
                .filter(|&i| {
                    dataset.layer(i).is_ok_and(|l| {
                        let defn = l.defn();
                        defn.field_index(SOURCE_ID_FIELD).is_ok() && defn.field_index(label_field).is_ok()
                    })
                })
                .collect();
            match runs.as_slice() {
                [one] => *one,
                _ if names.len() == 1 => 0,
                _ => bail_input!(
                    "{shown} has several layers ({}); say which to compare with --layer",
                    names.join(", ")
                ),
            }
        }
    };
    let mut layer = dataset.layer(index)?;
    let index = |name: &str| layer.defn().field_index(name).ok();
    let (Some(id), Some(label)) = (index(SOURCE_ID_FIELD), index(label_field)) else {
        bail_input!(
            "{shown} has no {SOURCE_ID_FIELD} or {label_field} column; compare outputs of classify-objects runs with --features (set --label-field if it was renamed)"
        );
    };
    let (confidence, image) = (index(CONFIDENCE_FIELD), index(IMAGE_ID_FIELD));
    let mut rows = BTreeMap::new();
    for feature in layer.features() {
        let key = (
            feature.field_as_integer64(id)?.unwrap_or(-1),
            image
                .and_then(|i| feature.field_as_string(i).ok().flatten())
                .unwrap_or_default(),
        );
        let answer = (
            feature.field_as_string(label)?.filter(|s| !s.is_empty()),
            confidence.and_then(|i| feature.field_as_string(i).ok().flatten()),
        );
        if rows.insert(key.clone(), answer).is_some() {
            bail_input!(
                "{shown} has two rows for {SOURCE_ID_FIELD} {} {}; compare single runs (merge shards first)",
                key.0,
                key.1
            );
        }
    }
    Ok(rows)
}

/// The comparison as JSON (`compare --json`, documented in `docs/json.md`): keys always present
/// and in this order; confidences as numbers rounded to [`CONFIDENCE_DECIMALS`] decimals (the
/// `;`-joined scores of a multi-label model stay text), `null` when the row has none.
pub fn render_json(c: &Comparison, a: &Path, b: &Path, label_field: &str) -> serde_json::Value {
    use serde_json::{json, Value};
    let key = |(id, image): &Key| {
        json!({
            "source_oid": id,
            "image_id": if image.is_empty() { Value::Null } else { json!(image) },
        })
    };
    let answer = |(label, confidence): &Answer| {
        let confidence = match confidence.as_deref().map(str::trim) {
            None | Some("") => Value::Null,
            Some(text) => match text.parse::<f64>() {
                Ok(p) if p.is_finite() => json!(round(p, CONFIDENCE_DECIMALS)),
                _ => json!(text),
            },
        };
        json!({ "label": label, "confidence": confidence })
    };
    json!({
        "format": "classify-objects compare",
        "format_version": 1,
        "a": a.display().to_string(),
        "b": b.display().to_string(),
        "label_field": label_field,
        "compared": c.matched,
        "changed_count": c.changed.len(),
        "only_in_a_count": c.only_in_a.len(),
        "only_in_b_count": c.only_in_b.len(),
        "changed": c.changed.iter().map(|(k, in_a, in_b)| {
            let mut row = key(k);
            row["a"] = answer(in_a);
            row["b"] = answer(in_b);
            row
        }).collect::<Vec<_>>(),
        "only_in_a": c.only_in_a.iter().map(key).collect::<Vec<_>>(),
        "only_in_b": c.only_in_b.iter().map(key).collect::<Vec<_>>(),
    })
}

/// Decimals of the confidences `compare --json` prints: probabilities computed in 32-bit floats
/// carry about seven significant digits; six decimals are what differs between runs that matter.
pub const CONFIDENCE_DECIMALS: i32 = 6;

/// `x` rounded to `decimals` decimals (printed by serde_json in its shortest form).
fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// The comparison as text: one line per changed row, then a summary line.
pub fn render_text(c: &Comparison, a: &Path, b: &Path) -> String {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let mut out = String::new();
    for ((id, image), (label_a, conf_a), (label_b, conf_b)) in &c.changed {
        let image = if image.is_empty() {
            String::new()
        } else {
            format!(" on {image}")
        };
        out.push_str(&format!(
            "{SOURCE_ID_FIELD} {id}{image}: {} ({}) -> {} ({})\n",
            show(label_a),
            show(conf_a),
            show(label_b),
            show(conf_b)
        ));
    }
    for (id, _) in &c.only_in_a {
        out.push_str(&format!("{SOURCE_ID_FIELD} {id}: only in {}\n", a.display()));
    }
    for (id, _) in &c.only_in_b {
        out.push_str(&format!("{SOURCE_ID_FIELD} {id}: only in {}\n", b.display()));
    }
    out.push_str(&format!(
        "{} row(s) compared, {} label(s) changed, {} only in {}, {} only in {}\n",
        c.matched,
        c.changed.len(),
        c.only_in_a.len(),
        a.display(),
        c.only_in_b.len(),
        b.display()
    ));
    out
}
