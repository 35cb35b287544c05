//! The writer of a run's rows: into the temporary output, in the format asked for (OGR or CSV),
//! reprojected into `--t-srs` when asked, with failures that name the output (and say when the
//! disk is full).

use anyhow::{Context, Result};

use crate::error;
use crate::gdal_ffi::srs;
use crate::output::csv::CsvWriter;
use crate::output::format::Format;
use crate::output::layer::LayerSettings;
use crate::output::ogr::OgrWriter;
use crate::output::schema::{OutputRow, OutputSchema};
use crate::output::shard;
use crate::output::style::StyleMode;
use crate::output::target::OutputTarget;

/// Writes rows in order to the temporary output.
pub struct OutputWriter {
    kind: Kind,
    /// Into the CRS of `--t-srs`, when the rows' is another.
    reproject: Option<gdal::spatial_ref::CoordTransform>,
    style: StyleMode,
    temp: std::path::PathBuf,
    /// The output the temporary file becomes.
    path: std::path::PathBuf,
    /// The output, as named in messages.
    shown: String,
}

enum Kind {
    Ogr(OgrWriter),
    Csv(CsvWriter),
}

impl OutputWriter {
    /// Opens the writer on `target`'s temporary output in `format` with `schema`: a new file or
    /// layer, or the existing layer to add rows to (whose columns must then match). `style` says
    /// where the QGIS style of a layer this run makes goes.
    pub fn create(
        target: &OutputTarget,
        format: &Format,
        schema: &OutputSchema,
        layer: &LayerSettings,
        style: StyleMode,
    ) -> Result<OutputWriter> {
        let (schema, reproject) = match &layer.target_srs {
            None => (schema.clone(), None),
            Some(wkt) => reprojected(schema, wkt)?,
        };
        let schema = &schema;
        let kind = match format {
            Format::Ogr(driver) => Kind::Ogr(OgrWriter::open(target, driver, schema, layer)?),
            Format::Csv => Kind::Csv(CsvWriter::create(target, schema)?),
        };
        Ok(OutputWriter {
            kind,
            reproject,
            style,
            temp: target.temp_path().to_path_buf(),
            path: target.path.clone(),
            shown: target.path.display().to_string(),
        })
    }

    /// Appends one row.
    pub fn write(&mut self, row: &OutputRow) -> Result<()> {
        let moved;
        let row = match (&self.reproject, &row.geometry_wkb) {
            (Some(transform), Some(wkb)) => {
                let geometry = gdal::vector::Geometry::from_wkb(wkb)?
                    .transform(transform)
                    .with_context(|| {
                        format!(
                            "reprojecting the geometry of {} to --t-srs",
                            row.source_id
                                .map_or_else(|| "a row".to_string(), |id| format!("feature {id}"))
                        )
                    })?;
                moved = OutputRow {
                    geometry_wkb: Some(geometry.wkb()?),
                    ..row.clone()
                };
                &moved
            }
            _ => row,
        };
        let written = match &mut self.kind {
            Kind::Ogr(w) => w.write(row),
            Kind::Csv(w) => w.write(row),
        };
        written.map_err(|err| explain_write_error(err, &self.shown))
    }

    /// Makes the rows written so far durable (called after each window of rows): what a killed
    /// run loses, and `--resume` redoes, is what came after the last call.
    pub fn checkpoint(&mut self) -> Result<()> {
        let done = match &mut self.kind {
            Kind::Ogr(w) => w.checkpoint(),
            Kind::Csv(w) => w.checkpoint(),
        };
        done.map_err(|err| explain_write_error(err, &self.shown))
    }

    /// Records the run in the output now, before any row (a killed run leaves it for `--resume`
    /// to check); [`OutputWriter::finish`] writes the final record.
    pub fn record_run(&mut self, record: &shard::ShardRecord) -> Result<()> {
        let done = match &mut self.kind {
            Kind::Ogr(w) => w.record(record),
            Kind::Csv(_) => std::fs::write(shard::sidecar(&self.temp), record.to_json())
                .with_context(|| format!("writing the run's record beside {}", self.shown)),
        };
        done.map_err(|err| explain_write_error(err, &self.shown))
    }

    /// Flushes and closes the file (with its style, and the record of a shard run).
    pub fn finish(self, shard: Option<&shard::ShardRecord>) -> Result<()> {
        let done = match self.kind {
            Kind::Ogr(w) => w.finish(self.style, (&self.temp, &self.path), shard),
            Kind::Csv(w) => w.finish().and_then(|()| match shard {
                Some(record) => std::fs::write(shard::sidecar(&self.temp), record.to_json())
                    .with_context(|| format!("writing the shard record beside {}", self.shown)),
                None => Ok(()),
            }),
        };
        done.map_err(|err| explain_write_error(err, &self.shown))
    }
}

/// `schema` with its geometries in the CRS `wkt` (`--t-srs`), and the transformation of the
/// rows' geometries into it (`None` when they are in it already).
fn reprojected(schema: &OutputSchema, wkt: &str) -> Result<(OutputSchema, Option<gdal::spatial_ref::CoordTransform>)> {
    let (geometry_type, from) = match &schema.geometry {
        None => crate::bail_input!(
            "--t-srs reprojects output geometries, but this output is a table without any (the images are not georeferenced); leave --t-srs out"
        ),
        Some((_, None)) => crate::bail_input!(
            "--t-srs reprojects output geometries, but the features have no coordinate reference system to reproject from; declare it with --features-crs"
        ),
        Some((ty, Some(from))) => (*ty, from),
    };
    let transform = match srs::transform_wkt(from, wkt) {
        Ok(transform) => transform,
        Err(err) => crate::bail_input!(
            "--t-srs: the output geometries cannot be transformed into it ({err}); choose another CRS"
        ),
    };
    let mut schema = schema.clone();
    schema.geometry = Some((geometry_type, Some(wkt.to_string())));
    Ok((schema, transform))
}

/// A failure to write the output, naming it, with the way out when the disk is full.
fn explain_write_error(err: anyhow::Error, output: &str) -> anyhow::Error {
    let text = error::one_line(&err).to_ascii_lowercase();
    if text.contains("disk is full") || text.contains("no space left") || text.contains("quota") {
        return err.context(format!(
            "writing output {output}: the disk is full; free space or write the output elsewhere (nothing was replaced)"
        ));
    }
    err.context(format!("writing output {output}"))
}
