//! Writing results: a GeoPackage (or another OGR vector format chosen by extension) holding the
//! input geometry and attributes plus the label, `Confidence` and `Status` fields, or a CSV table
//! for images without a spatial reference.
//!
//! Everything is written to a temporary file beside the output and renamed over it at the end,
//! so a failed or interrupted run leaves either the previous output or nothing.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldDefn, FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, OwnedLayer,
};
use gdal::{Dataset, DriverManager};

use crate::bail_input;
use crate::features::FieldSpec;

/// Name of the confidence field (Esri's).
pub const CONFIDENCE_FIELD: &str = "Confidence";
/// Name of the per-row status field: empty when classified, else why not.
pub const STATUS_FIELD: &str = "Status";
/// Name of the field keeping the input feature id.
pub const SOURCE_ID_FIELD: &str = "SourceOID";
/// Name of the image id field of image-per-object runs.
pub const IMAGE_ID_FIELD: &str = "ImageId";

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An OGR vector driver, by its GDAL short name.
    Ogr(&'static str),
    /// A plain CSV table (RFC 4180), geometry as WKT when there is one.
    Csv,
}

impl Format {
    /// The format an output path asks for by its extension (GeoPackage when unsure).
    pub fn for_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "gpkg" | "" => Format::Ogr("GPKG"),
            "geojson" | "json" => Format::Ogr("GeoJSON"),
            "fgb" => Format::Ogr("FlatGeobuf"),
            "csv" => Format::Csv,
            other => bail_input!(
                "output {} has extension .{other}, which classify-objects does not write; use .gpkg (default), .geojson, .fgb or .csv",
                path.display()
            ),
        })
    }
}

/// The confidence of one row: a probability, or the `;`-joined scores of a multi-label model.
#[derive(Debug, Clone, PartialEq)]
pub enum Confidence {
    /// Top probability, 0..1.
    Single(f64),
    /// All class scores, `;`-joined (multi-label models).
    Multi(String),
}

/// The columns of the output.
#[derive(Debug, Clone)]
pub struct OutputSchema {
    /// Input attribute columns, with their output names (renamed on a clash with ours).
    pub input_fields: Vec<FieldSpec>,
    /// Name of the label field (`--class-label-field`).
    pub label_field: String,
    /// Whether confidence is text (multi-label) rather than a number.
    pub multi_label: bool,
    /// Whether rows carry the input feature id.
    pub with_source_id: bool,
    /// Whether rows carry an image id (image-per-object runs).
    pub with_image_id: bool,
    /// Geometry type and CRS (WKT) of the output, `None` for a table.
    pub geometry: Option<(OGRwkbGeometryType::Type, Option<String>)>,
}

impl OutputSchema {
    /// Our own columns, in output order.
    fn own_fields(&self) -> Vec<(String, OGRFieldType::Type)> {
        let mut own = Vec::new();
        if self.with_source_id {
            own.push((SOURCE_ID_FIELD.to_string(), OGRFieldType::OFTInteger64));
        }
        if self.with_image_id {
            own.push((IMAGE_ID_FIELD.to_string(), OGRFieldType::OFTString));
        }
        own.push((self.label_field.clone(), OGRFieldType::OFTString));
        let confidence_type = if self.multi_label {
            OGRFieldType::OFTString
        } else {
            OGRFieldType::OFTReal
        };
        own.push((CONFIDENCE_FIELD.to_string(), confidence_type));
        own.push((STATUS_FIELD.to_string(), OGRFieldType::OFTString));
        own
    }

    /// Renames input fields whose names clash (case-insensitively) with ours: `name_1`, `name_2`...
    pub fn resolve_clashes(&mut self) {
        let own: Vec<String> = self
            .own_fields()
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let mut taken: Vec<String> = own.clone();
        taken.extend(self.input_fields.iter().map(|f| f.name.to_ascii_lowercase()));
        for field in &mut self.input_fields {
            if own.contains(&field.name.to_ascii_lowercase()) {
                let base = field.name.clone();
                let mut k = 1;
                while taken.contains(&format!("{base}_{k}").to_ascii_lowercase()) {
                    k += 1;
                }
                field.name = format!("{base}_{k}");
                taken.push(field.name.to_ascii_lowercase());
            }
        }
    }
}

/// One output row.
#[derive(Debug, Clone, Default)]
pub struct OutputRow {
    /// Geometry as WKB (the input's, unchanged).
    pub geometry_wkb: Option<Vec<u8>>,
    /// Input feature id.
    pub source_id: Option<i64>,
    /// Image id (path) for image-per-object runs.
    pub image_id: Option<String>,
    /// Input attribute values.
    pub fields: Vec<Option<FieldValue>>,
    /// Class label, `None` when the object was not classified.
    pub label: Option<String>,
    /// Confidence, `None` when the object was not classified.
    pub confidence: Option<Confidence>,
    /// Why the object was not classified.
    pub status: Option<&'static str>,
}

/// The final output path and the temporary file written first.
#[derive(Debug)]
pub struct OutputTarget {
    /// Where the result goes.
    pub path: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl OutputTarget {
    /// Checks that `path` may be written (exists only with `overwrite`, folder exists) and picks
    /// a temporary name beside it with the same extension.
    pub fn new(path: &Path, overwrite: bool) -> Result<OutputTarget> {
        if path.is_dir() {
            bail_input!(
                "output {} is a folder; give a file name such as result.gpkg",
                path.display()
            );
        }
        if path.exists() && !overwrite {
            bail_input!(
                "output {} already exists; pass --overwrite to replace it or choose another name",
                path.display()
            );
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bail_input!("output folder {} does not exist; create it first", dir.display());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (stem, ext) = match name.rsplit_once('.') {
            Some((stem, ext)) => (stem.to_string(), format!(".{ext}")),
            None => (name.clone(), String::new()),
        };
        remove_stale_temporaries(&dir, &stem, &ext);
        let temp = dir.join(format!(".{stem}.partial-{}{ext}", std::process::id()));
        crate::interrupt::register_temporary(Some(temp.clone()));
        Ok(OutputTarget {
            path: path.to_path_buf(),
            temp,
            committed: false,
        })
    }

    /// The temporary file to write.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Moves the finished temporary file over the output.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.temp, &self.path)
            .with_context(|| format!("moving {} to {}", self.temp.display(), self.path.display()))?;
        self.committed = true;
        crate::interrupt::register_temporary(None);
        Ok(())
    }
}

impl Drop for OutputTarget {
    fn drop(&mut self) {
        if !self.committed {
            remove_with_sidecars(&self.temp);
        }
    }
}

/// Removes temporary outputs (`.<stem>.partial-<pid><ext>`) left by runs that were killed: those
/// whose process no longer exists (checked through /proc; elsewhere nothing is removed).
fn remove_stale_temporaries(dir: &Path, stem: &str, ext: &str) {
    let prefix = format!(".{stem}.partial-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(ext)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists() {
            remove_with_sidecars(&entry.path());
        }
    }
}

/// Removes a file and the journal files SQLite-based formats leave beside it.
pub fn remove_with_sidecars(path: &Path) {
    let _ = fs::remove_file(path);
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = fs::remove_file(PathBuf::from(side));
    }
}

/// Writes rows in order to the temporary output.
pub enum OutputWriter {
    /// Through an OGR driver.
    Ogr(OgrWriter),
    /// As CSV text.
    Csv(CsvWriter),
}

impl OutputWriter {
    /// Creates the temporary output of `target` in `format` with `schema`.
    pub fn create(
        target: &OutputTarget,
        format: Format,
        schema: &OutputSchema,
        layer_name: &str,
    ) -> Result<OutputWriter> {
        match format {
            Format::Ogr(driver) => Ok(OutputWriter::Ogr(OgrWriter::create(
                target.temp_path(),
                driver,
                schema,
                layer_name,
            )?)),
            Format::Csv => Ok(OutputWriter::Csv(CsvWriter::create(target.temp_path(), schema)?)),
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

/// Rows written through an OGR driver, in transactions of [`OgrWriter::ROWS_PER_TRANSACTION`].
pub struct OgrWriter {
    layer: OwnedLayer,
    schema: OutputSchema,
    in_transaction: bool,
    rows_in_transaction: usize,
    /// Field index of each input field, then of our own fields, in the output layer.
    input_index: Vec<usize>,
    own_index: Vec<usize>,
}

impl OgrWriter {
    /// Rows committed at a time.
    pub const ROWS_PER_TRANSACTION: usize = 20_000;

    fn create(path: &Path, driver: &str, schema: &OutputSchema, layer_name: &str) -> Result<OgrWriter> {
        let driver = DriverManager::get_driver_by_name(driver)?;
        let mut dataset: Dataset = driver
            .create_vector_only(path)
            .with_context(|| format!("creating {}", path.display()))?;
        let srs = match &schema.geometry {
            Some((_, Some(wkt))) => Some(SpatialRef::from_wkt(wkt)?),
            _ => None,
        };
        let ty = schema
            .geometry
            .as_ref()
            .map_or(OGRwkbGeometryType::wkbNone, |(ty, _)| *ty);
        let layer = dataset.create_layer(LayerOptions {
            name: layer_name,
            srs: srs.as_ref(),
            ty,
            options: None,
        })?;
        for field in &schema.input_fields {
            let defn = FieldDefn::new(&field.name, field.field_type)?;
            defn.set_width(field.width);
            defn.set_precision(field.precision);
            defn.add_to_layer(&layer)?;
        }
        for (name, ty) in schema.own_fields() {
            FieldDefn::new(&name, ty)?.add_to_layer(&layer)?;
        }
        let layer = dataset.into_layer(0)?;
        let defn = layer.defn();
        let input_index = schema
            .input_fields
            .iter()
            .map(|f| defn.field_index(&f.name))
            .collect::<Result<Vec<_>, _>>()?;
        let own_index = schema
            .own_fields()
            .iter()
            .map(|(n, _)| defn.field_index(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OgrWriter {
            layer,
            schema: schema.clone(),
            in_transaction: false,
            rows_in_transaction: 0,
            input_index,
            own_index,
        })
    }

    fn write(&mut self, row: &OutputRow) -> Result<()> {
        if !self.in_transaction {
            // Drivers without transactions simply write through.
            self.in_transaction = unsafe { gdal_sys::OGR_L_StartTransaction(self.layer.c_layer()) } == 0;
        }
        let mut feature = Feature::new(self.layer.defn())?;
        if let (Some(wkb), Some(_)) = (&row.geometry_wkb, &self.schema.geometry) {
            feature.set_geometry(Geometry::from_wkb(wkb)?)?;
        }
        for (value, &index) in row.fields.iter().zip(&self.input_index) {
            if let Some(value) = value {
                feature.set_field(index, value)?;
            }
        }
        let mut own = self.own_index.iter();
        let mut next = || *own.next().expect("one index per own field");
        if self.schema.with_source_id {
            let i = next();
            if let Some(id) = row.source_id {
                feature.set_field_integer64(i, id)?;
            }
        }
        if self.schema.with_image_id {
            let i = next();
            if let Some(id) = &row.image_id {
                feature.set_field_string(i, id)?;
            }
        }
        let label = next();
        if let Some(text) = &row.label {
            feature.set_field_string(label, text)?;
        }
        let confidence = next();
        match &row.confidence {
            Some(Confidence::Single(p)) => feature.set_field_double(confidence, *p)?,
            Some(Confidence::Multi(text)) => feature.set_field_string(confidence, text)?,
            None => {}
        }
        let status = next();
        if let Some(text) = row.status {
            feature.set_field_string(status, text)?;
        }
        feature.create(&self.layer).context("writing an output feature")?;
        drop(feature);
        if self.in_transaction {
            self.rows_in_transaction += 1;
            if self.rows_in_transaction >= Self::ROWS_PER_TRANSACTION {
                self.commit()?;
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_transaction {
            let err = unsafe { gdal_sys::OGR_L_CommitTransaction(self.layer.c_layer()) };
            if err != 0 {
                return Err(anyhow!("committing output rows: {}", crate::raster::last_gdal_error()));
            }
            self.in_transaction = false;
            self.rows_in_transaction = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.commit()?;
        let dataset = self.layer.into_dataset();
        dataset.close().context("closing the output")?;
        Ok(())
    }
}

/// Rows written as CSV text: our own columns first for a table of images, geometry last as WKT.
pub struct CsvWriter {
    out: BufWriter<fs::File>,
    schema: OutputSchema,
}

impl CsvWriter {
    fn create(path: &Path, schema: &OutputSchema) -> Result<CsvWriter> {
        let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
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
        writer.line(&header)?;
        Ok(writer)
    }

    fn line(&mut self, cells: &[String]) -> Result<()> {
        let text = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    fn write(&mut self, row: &OutputRow) -> Result<()> {
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

    fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }
}

/// A field value as CSV text.
pub fn field_text(value: &FieldValue) -> String {
    match value {
        FieldValue::IntegerValue(v) => v.to_string(),
        FieldValue::Integer64Value(v) => v.to_string(),
        FieldValue::RealValue(v) => v.to_string(),
        FieldValue::StringValue(v) => v.clone(),
        FieldValue::DateValue(v) => v.to_string(),
        FieldValue::DateTimeValue(v) => v.to_string(),
        FieldValue::IntegerListValue(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
        FieldValue::Integer64ListValue(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
        FieldValue::RealListValue(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
        FieldValue::StringListValue(v) => v.join(";"),
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

    fn field(name: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            field_type: OGRFieldType::OFTString,
            width: 0,
            precision: 0,
            as_text: false,
        }
    }

    #[test]
    fn clashing_input_fields_are_renamed() {
        let mut schema = OutputSchema {
            input_fields: vec![
                field("classlabel"),
                field("Confidence"),
                field("Confidence_1"),
                field("name"),
            ],
            label_field: "ClassLabel".into(),
            multi_label: false,
            with_source_id: true,
            with_image_id: false,
            geometry: None,
        };
        schema.resolve_clashes();
        let names: Vec<&str> = schema.input_fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["classlabel_1", "Confidence_2", "Confidence_1", "name"]);
    }

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn format_follows_extension() {
        assert_eq!(Format::for_path(Path::new("a/b.gpkg")).unwrap(), Format::Ogr("GPKG"));
        assert_eq!(Format::for_path(Path::new("b.CSV")).unwrap(), Format::Csv);
        assert_eq!(Format::for_path(Path::new("b.fgb")).unwrap(), Format::Ogr("FlatGeobuf"));
        assert!(Format::for_path(Path::new("b.xyz")).is_err());
    }
}
