//! Writing results: a GeoPackage (or another OGR vector format, [`format`]) holding the input
//! geometry and attributes plus the label, `Confidence` and `Status` fields ([`schema`], written by
//! [`ogr`]), or a CSV table ([`csv`]) for images without a spatial reference.
//!
//! Everything is written to a temporary file beside the output and renamed over it at the end
//! ([`target`]), so a failed or interrupted run leaves either the previous output or nothing.
//! Also here: the QGIS layer style ([`style`]), and the `merge` and `compare` subcommands, which
//! read and write outputs.

pub mod compare;
pub mod csv;
pub mod format;
pub mod merge;
pub mod ogr;
pub mod schema;
pub mod style;
pub mod target;

use anyhow::Result;

pub use format::Format;
pub use schema::{
    field_text, Column, Confidence, OutputRow, OutputSchema, CONFIDENCE_FIELD, IMAGE_ID_FIELD, SOURCE_ID_FIELD,
    STATUS_FIELD,
};
pub use target::{written_source_ids, OutputTarget};

use csv::CsvWriter;
use ogr::OgrWriter;

/// Writes rows in order to the temporary output.
pub enum OutputWriter {
    /// Through an OGR driver.
    Ogr(OgrWriter),
    /// As CSV text.
    Csv(CsvWriter),
}

/// How the output layer is named and created.
#[derive(Debug, Clone, Default)]
pub struct LayerSettings {
    /// Layer name.
    pub name: String,
    /// Layer creation options (`KEY=VALUE`, as `ogr2ogr -lco`).
    pub creation_options: Vec<String>,
}

impl OutputWriter {
    /// Creates the temporary output of `target` in `format` with `schema`, or opens it to append
    /// when `target` is appending (the schema must then be compatible).
    pub fn create(
        target: &OutputTarget,
        format: &Format,
        schema: &OutputSchema,
        layer: &LayerSettings,
    ) -> Result<OutputWriter> {
        let path = target.temp_path();
        match (format, target.appending) {
            (Format::Ogr(driver), false) => Ok(OutputWriter::Ogr(OgrWriter::create(path, driver, schema, layer)?)),
            (Format::Ogr(_), true) => Ok(OutputWriter::Ogr(OgrWriter::append(
                path,
                &target.path,
                schema,
                &layer.name,
            )?)),
            (Format::Csv, appending) => Ok(OutputWriter::Csv(CsvWriter::create(
                path,
                &target.path,
                schema,
                appending,
            )?)),
        }
    }

    /// Appends one row.
    pub fn write(&mut self, row: &OutputRow) -> Result<()> {
        match self {
            OutputWriter::Ogr(w) => w.write(row),
            OutputWriter::Csv(w) => w.write(row),
        }
    }

    /// Flushes and closes the file.
    pub fn finish(self) -> Result<()> {
        match self {
            OutputWriter::Ogr(w) => w.finish(),
            OutputWriter::Csv(w) => w.finish(),
        }
    }
}
