//! Rows written as a plain CSV table (RFC 4180 quoting), geometry last as WKT.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use gdal::vector::Geometry;

use crate::bail_input;
use crate::output::schema::{field_text, Confidence, OutputRow, OutputSchema};

/// Rows written as CSV text: our own columns first for a table of images, geometry last as WKT.
pub struct CsvWriter {
    out: BufWriter<fs::File>,
    schema: OutputSchema,
}

impl CsvWriter {
    pub(crate) fn create(path: &Path, original: &Path, schema: &OutputSchema, appending: bool) -> Result<CsvWriter> {
        let file = if appending {
            fs::OpenOptions::new().append(true).open(path)
        } else {
            fs::File::create(path)
        }
        .with_context(|| format!("creating {}", path.display()))?;
        let mut writer = CsvWriter {
            out: BufWriter::new(file),
            schema: schema.clone(),
        };
        let mut header: Vec<String> = Vec::new();
        let own = schema.own_fields();
        header.extend(own.iter().map(|(n, _)| n.clone()));
        header.extend(schema.input_fields.iter().map(|f| f.name.clone()));
        if schema.geometry.is_some() {
            header.push("WKT".into());
        }
        if appending {
            let text = fs::read_to_string(path).with_context(|| format!("reading {}", original.display()))?;
            let first = text.lines().next().unwrap_or_default();
            let expected = header.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
            if first != expected {
                bail_input!(
                    "output {} has the columns \"{first}\" but this run writes \"{expected}\"; append only runs with the same features and model, or write a new output",
                    original.display()
                );
            }
        } else {
            writer.line(&header)?;
        }
        Ok(writer)
    }

    fn line(&mut self, cells: &[String]) -> Result<()> {
        let text = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    pub(crate) fn write(&mut self, row: &OutputRow) -> Result<()> {
        let mut cells = Vec::new();
        if self.schema.with_source_id {
            cells.push(row.source_id.map(|v| v.to_string()).unwrap_or_default());
        }
        if self.schema.with_image_id {
            cells.push(row.image_id.clone().unwrap_or_default());
        }
        cells.push(row.label.clone().unwrap_or_default());
        cells.push(match &row.confidence {
            Some(Confidence::Single(p)) => format!("{p}"),
            Some(Confidence::Multi(text)) => text.clone(),
            None => String::new(),
        });
        cells.push(row.status.unwrap_or_default().to_string());
        cells.extend(
            row.fields
                .iter()
                .map(|v| v.as_ref().map(field_text).unwrap_or_default()),
        );
        if self.schema.geometry.is_some() {
            let wkt = match &row.geometry_wkb {
                Some(wkb) => Geometry::from_wkb(wkb)?.wkt()?,
                None => String::new(),
            };
            cells.push(wkt);
        }
        self.line(&cells)
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
