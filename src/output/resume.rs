//! What an earlier run already wrote to the output it is continued in (`--resume`): its rows,
//! in order, each with its label and status. Rows are written in input order, so a run that
//! stopped left exactly the first rows of the output it would have written; the continuing run
//! skips that many rows and counts them in its summary.

use anyhow::{Context, Result};
use gdal::vector::LayerAccess;
use gdal::Dataset;

use crate::bail_input;
use crate::output::csv::truncate_to_complete_records;
use crate::output::format::Format;
use crate::output::schema::{IMAGE_ID_FIELD, SOURCE_ID_FIELD, STATUS_FIELD};
use crate::output::shard::ShardRecord;
use crate::output::target::OutputTarget;

/// One row already written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenRow {
    /// Its label (`None` when empty: not classified).
    pub label: Option<String>,
    /// Its status (`None` when empty).
    pub status: Option<String>,
    /// The feature it is (`SourceOID`), when the output has the column.
    pub source_id: Option<Option<i64>>,
    /// The image it was classified on (`ImageId`), when the output has the column.
    pub image_id: Option<Option<String>>,
}

/// The rows the temporary output of `target` already holds in layer `layer` (or its only layer),
/// read with the label field `label_field`. A CSV table is first cut after its last complete row.
pub fn written_rows(target: &OutputTarget, format: &Format, layer: &str, label_field: &str) -> Result<Vec<WrittenRow>> {
    let shown = target.path.display();
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    if *format == Format::Csv {
        let records = truncate_to_complete_records(target.temp_path())
            .with_context(|| format!("reading {shown} to resume it"))?;
        let Some((header, rows)) = records.split_first() else {
            return Ok(Vec::new());
        };
        let column = |name: &str| header.iter().position(|h| h == name);
        let (source, image) = (column(SOURCE_ID_FIELD), column(IMAGE_ID_FIELD));
        let (Some(label), Some(status)) = (column(label_field), column(STATUS_FIELD)) else {
            bail_input!(
                "output {shown} has no {label_field} or {STATUS_FIELD} column to resume from; resume a run of classify-objects with the same options"
            );
        };
        return Ok(rows
            .iter()
            .map(|r| WrittenRow {
                label: text(r.get(label).cloned()),
                status: text(r.get(status).cloned()),
                source_id: source.map(|c| r.get(c).and_then(|v| v.parse().ok())),
                image_id: image.map(|c| text(r.get(c).cloned())),
            })
            .collect());
    }
    // Opened for update: a killed run may have left a hot journal that SQLite must roll back.
    let options = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
        ..Default::default()
    };
    let dataset =
        Dataset::open_ex(target.temp_path(), options).with_context(|| format!("reading {shown} to resume it"))?;
    let mut layer = match dataset.layer_by_name(layer) {
        Ok(layer) => layer,
        Err(_) if dataset.layer_count() == 1 => dataset.layer(0)?,
        Err(_) => bail_input!("output {shown} has no layer {layer} to resume; pass the run's --layer-name"),
    };
    let index = |name: &str| layer.defn().field_index(name).ok();
    let (source, image) = (index(SOURCE_ID_FIELD), index(IMAGE_ID_FIELD));
    let (Some(label), Some(status)) = (index(label_field), index(STATUS_FIELD)) else {
        bail_input!(
            "output {shown} has no {label_field} or {STATUS_FIELD} column to resume from; resume a run of classify-objects with the same options"
        );
    };
    let mut rows = Vec::new();
    for feature in layer.features() {
        rows.push(WrittenRow {
            label: text(feature.field_as_string(label)?),
            status: text(feature.field_as_string(status)?),
            source_id: source.map(|c| feature.field_as_integer64(c).ok().flatten()),
            image_id: image.map(|c| feature.field_as_string(c).ok().flatten().filter(|s| !s.is_empty())),
        });
    }
    Ok(rows)
}

/// The record of the run that wrote the output `target` continues (layer `layer`), if it left
/// one: written at the start of every `--shard` or `--resume` run.
pub fn written_record(target: &OutputTarget, format: &Format, layer: &str) -> Result<Option<ShardRecord>> {
    let shown = target.path.display().to_string();
    if *format == Format::Csv {
        return ShardRecord::read_sidecar(target.temp_path());
    }
    let dataset = Dataset::open_ex(
        target.temp_path(),
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_READONLY,
            ..Default::default()
        },
    )
    .with_context(|| format!("reading {shown} to resume it"))?;
    let layer = match dataset.layer_by_name(layer) {
        Ok(layer) => layer,
        Err(_) if dataset.layer_count() == 1 => dataset.layer(0)?,
        Err(_) => return Ok(None),
    };
    ShardRecord::read_from(&layer, &shown)
}
