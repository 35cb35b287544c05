//! Rows written as a plain CSV table (RFC 4180 quoting), geometry last as WKT.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use gdal::vector::Geometry;

use crate::bail_input;
use crate::output::schema::{field_text, Confidence, OutputRow, OutputSchema};
use crate::output::target::OutputTarget;

/// Rows written as CSV text: our own columns first for a table of images, geometry last as WKT.
pub struct CsvWriter {
    out: BufWriter<fs::File>,
    schema: OutputSchema,
}

impl CsvWriter {
    /// Opens the writer on `target`'s temporary output: a new file with the header, or the
    /// existing table (whose header must be this run's), cut after its last complete row, to
    /// add rows to.
    pub(crate) fn create(target: &OutputTarget, schema: &OutputSchema) -> Result<CsvWriter> {
        let path = target.temp_path();
        let mut header: Vec<String> = Vec::new();
        let own = schema.own_fields();
        header.extend(own.iter().map(|(n, _)| n.clone()));
        header.extend(schema.input_fields.iter().map(|f| f.name.clone()));
        if schema.geometry.is_some() {
            header.push("WKT".into());
        }
        let file = if target.appending() {
            let first = truncate_to_complete_records(path)
                .with_context(|| format!("reading {}", target.path.display()))?
                .into_iter()
                .next()
                .unwrap_or_default();
            if first != header {
                bail_input!(
                    "output {} has the columns \"{}\" but this run writes \"{}\"; append only runs with the same features and model, or write a new output",
                    target.path.display(),
                    first.join(","),
                    header.join(",")
                );
            }
            fs::OpenOptions::new().append(true).open(path)
        } else {
            fs::File::create(path)
        }
        .with_context(|| format!("creating {}", path.display()))?;
        let mut writer = CsvWriter {
            out: BufWriter::new(file),
            schema: schema.clone(),
        };
        if !target.appending() {
            writer.line(&header)?;
        }
        Ok(writer)
    }

    /// Writes the rows buffered so far to the file.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
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
        for k in 0..self.schema.score_fields.len() {
            cells.push(
                row.scores
                    .as_ref()
                    .and_then(|s| s.get(k))
                    .map(|p| format!("{p}"))
                    .unwrap_or_default(),
            );
        }
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

/// Reads the CSV table at `path`, cuts the file after its last complete record (a killed run
/// may have written part of a row), and returns the complete records, header first.
pub(crate) fn truncate_to_complete_records(path: &Path) -> Result<Vec<Vec<String>>> {
    let bytes = fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let (records, complete) = parse_records(&text);
    if complete < bytes.len() {
        let file = fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(complete as u64)?;
        file.sync_all()?;
    }
    Ok(records)
}

/// The complete records of CSV `text` (RFC 4180: quoted cells may hold commas, quotes and line
/// breaks), and the byte length of the text they span.
pub(crate) fn parse_records(text: &str) -> (Vec<Vec<String>>, usize) {
    let mut records = Vec::new();
    let (mut record, mut cell) = (Vec::new(), String::new());
    let (mut quoted, mut complete) = (false, 0);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek().map(|(_, n)| *n) == Some('"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut cell)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
                complete = i + 1;
            }
            _ => cell.push(c),
        }
    }
    (records, complete)
}

pub(crate) fn csv_cell(text: &str) -> String {
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
    fn records_end_at_unquoted_line_breaks_only() {
        let text = "a,b\n\"x,\ny\",\"say \"\"hi\"\"\"\n1,2";
        let (records, complete) = parse_records(text);
        assert_eq!(
            records,
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["x,\ny".into(), "say \"hi\"".into()]
            ]
        );
        assert_eq!(&text[..complete], "a,b\n\"x,\ny\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
