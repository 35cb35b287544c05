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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// An OGR vector driver, by its GDAL short name.
    Ogr(String),
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
            "gpkg" | "" => Format::Ogr("GPKG".into()),
            "geojson" | "json" => Format::Ogr("GeoJSON".into()),
            "fgb" => Format::Ogr("FlatGeobuf".into()),
            "shp" => Format::Ogr("ESRI Shapefile".into()),
            "csv" => Format::Csv,
            other => bail_input!(
                "output {} has extension .{other}, which classify-objects does not know; use .gpkg (default), .geojson, .fgb, .shp or .csv, or name the format with --format",
                path.display()
            ),
        })
    }

    /// The format `--format` names: `CSV` (ours, geometry as WKT) or any OGR vector driver that
    /// can create files, by its GDAL short name (`GPKG`, `GeoJSON`, `FlatGeobuf`, `ESRI Shapefile`...).
    pub fn named(name: &str) -> Result<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => return Ok(Format::Csv),
            "shp" | "shapefile" => return Ok(Format::Ogr("ESRI Shapefile".into())),
            _ => {}
        }
        let Ok(driver) = DriverManager::get_driver_by_name(name) else {
            bail_input!("--format {name} is not a GDAL driver; use GPKG, GeoJSON, FlatGeobuf, \"ESRI Shapefile\", CSV or another name from `ogrinfo --formats`");
        };
        use gdal::Metadata;
        let capable = |key: &str| {
            driver
                .metadata_item(key, "")
                .is_some_and(|v| v.eq_ignore_ascii_case("YES"))
        };
        if !capable("DCAP_VECTOR") || !capable("DCAP_CREATE") {
            bail_input!("--format {name} cannot create vector files; choose a format marked \"w+\" or \"rw+\" in `ogrinfo --formats`");
        }
        Ok(Format::Ogr(driver.short_name()))
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
    /// Class colours for the QGIS style written into GeoPackage outputs.
    pub style: Option<crate::style::ClassColors>,
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

/// The final output path and the temporary file written first. Formats made of several files
/// (a Shapefile's `.shp`, `.shx`, `.dbf`, `.prj`...) are handled as a family: every file named
/// like the output with another extension moves with it.
#[derive(Debug)]
pub struct OutputTarget {
    /// Where the result goes.
    pub path: PathBuf,
    temp: PathBuf,
    /// Whether rows are added to an existing output (copied to the temporary file first).
    pub appending: bool,
    committed: bool,
}

impl OutputTarget {
    /// Checks that `path` may be written (exists only with `overwrite` or `append`, folder
    /// exists) and picks a temporary name beside it with the same extension. With `append` and
    /// an existing output, the output is copied to the temporary name, to be appended to.
    pub fn new(path: &Path, overwrite: bool, append: bool) -> Result<OutputTarget> {
        OutputTarget::with_resume(path, overwrite, append, false)
    }

    /// As [`OutputTarget::new`]; with `resume`, the temporary output of a killed run to the same
    /// output (or else the existing output) is taken over to be continued.
    pub fn with_resume(path: &Path, overwrite: bool, append: bool, resume: bool) -> Result<OutputTarget> {
        if path.is_dir() {
            bail_input!(
                "output {} is a folder; give a file name such as result.gpkg",
                path.display()
            );
        }
        if path.exists() && !overwrite && !append && !resume {
            bail_input!(
                "output {} already exists; pass --overwrite to replace it, --append to add to it, or choose another name",
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
        let (stem, ext) = split_name(path);
        let temp = dir.join(format!(".{stem}.partial-{}{ext}", std::process::id()));
        let adopted = resume && adopt_stale_temporary(&dir, &stem, &ext, &temp)?;
        remove_stale_temporaries(&dir, &stem, &ext);
        crate::interrupt::register_temporary(Some(temp.clone()));
        let appending = adopted || ((append || resume) && path.exists());
        let target = OutputTarget {
            path: path.to_path_buf(),
            temp,
            appending,
            committed: false,
        };
        if appending && !adopted {
            for (file, suffix) in family(&target.path) {
                let copy = with_suffix(&target.temp, &suffix);
                fs::copy(&file, &copy).with_context(|| format!("copying {} to append to it", file.display()))?;
            }
        }
        Ok(target)
    }

    /// The temporary file to write.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Moves the finished temporary file (and its family) over the output. Files of the old
    /// output's family that the new one does not have (an old `.qix` index) are removed first.
    pub fn commit(mut self) -> Result<()> {
        let new: Vec<String> = family(&self.temp).into_iter().map(|(_, suffix)| suffix).collect();
        for (file, suffix) in family(&self.path) {
            if !new.contains(&suffix) {
                fs::remove_file(&file).with_context(|| format!("removing the old {}", file.display()))?;
            }
        }
        for (file, suffix) in family(&self.temp) {
            let target = with_suffix(&self.path, &suffix);
            fs::rename(&file, &target).with_context(|| format!("moving {} to {}", file.display(), target.display()))?;
        }
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

/// The files that make up a Shapefile besides the `.shp`.
const SHAPEFILE_SIDECARS: &[&str] = &[
    ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml", ".qmd",
];

/// `(stem, ".ext")` of a path's file name.
fn split_name(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_string(), format!(".{ext}")),
        None => (name, String::new()),
    }
}

/// The file `path` with its extension replaced by `suffix` (which starts with the dot).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let (stem, _) = split_name(path);
    path.with_file_name(format!("{stem}{suffix}"))
}

/// The files of `path`'s family, as (file, suffix from the first dot after the stem): `path`
/// itself, its SQLite journals, and for a Shapefile its sidecar files.
fn family(path: &Path) -> Vec<(PathBuf, String)> {
    let (stem, ext) = split_name(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut members = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix(&stem) {
                // Only real siblings of a multi-file format, not "<stem>.partial-..." temporaries.
                // SQLite's journals (`.gpkg-journal`, `-wal`, `-shm`) belong to the file: a hot
                // journal must move with it, or the interrupted transaction cannot be rolled back.
                let journal = rest.strip_prefix(ext.as_str()).is_some_and(|j| j.starts_with('-'));
                let sidecar = ext == ".shp" && SHAPEFILE_SIDECARS.contains(&rest.to_ascii_lowercase().as_str());
                if rest.starts_with('.') && !rest.starts_with(".partial-") && (rest == ext || journal || sidecar) {
                    members.push((entry.path(), rest.to_string()));
                }
            }
        }
    }
    members
}

/// Takes over the temporary output of a killed run (the newest, if several) by renaming it (and
/// its family) to `temp`; returns whether there was one.
fn adopt_stale_temporary(dir: &Path, stem: &str, ext: &str, temp: &Path) -> Result<bool> {
    let prefix = format!(".{stem}.partial-");
    let mut stale: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(ext)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            stale.push((modified, entry.path()));
        }
    }
    stale.sort();
    let Some((_, newest)) = stale.pop() else {
        return Ok(false);
    };
    for (file, suffix) in family(&newest) {
        fs::rename(&file, with_suffix(temp, &suffix)).with_context(|| format!("taking over {}", file.display()))?;
    }
    Ok(true)
}

/// The input feature ids (`SourceOID`) already written to the output being continued.
pub fn written_source_ids(target: &OutputTarget, layer_name: &str) -> Result<std::collections::HashSet<u64>> {
    // Opened for update: a killed run may have left a hot journal that SQLite must roll back.
    let options = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
        ..Default::default()
    };
    let dataset = Dataset::open_ex(target.temp_path(), options)
        .with_context(|| format!("reading {} to resume it", target.path.display()))?;
    let mut layer = match dataset.layer_by_name(layer_name) {
        Ok(layer) => layer,
        Err(_) => dataset.layer(0)?,
    };
    let Ok(index) = layer.defn().field_index(SOURCE_ID_FIELD) else {
        bail_input!(
            "output {} has no {SOURCE_ID_FIELD} column to resume from; resume only runs with --features",
            target.path.display()
        );
    };
    let mut ids = std::collections::HashSet::new();
    for feature in layer.features() {
        if let Some(id) = feature.field_as_integer64(index)? {
            ids.insert(id as u64);
        }
    }
    Ok(ids)
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

/// Removes a file and its family: SQLite journals, a Shapefile's sidecar files.
pub fn remove_with_sidecars(path: &Path) {
    for (file, _) in family(path) {
        let _ = fs::remove_file(file);
    }
}

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

/// Rows written through an OGR driver, in transactions of [`OgrWriter::ROWS_PER_TRANSACTION`].
pub struct OgrWriter {
    layer: OwnedLayer,
    schema: OutputSchema,
    in_transaction: bool,
    rows_in_transaction: usize,
    transaction_started: std::time::Instant,
    /// Rows go into an existing layer (its style is left alone).
    appending: bool,
    /// Field index of each input field, then of our own fields, in the output layer.
    input_index: Vec<usize>,
    own_index: Vec<usize>,
}

impl OgrWriter {
    /// Rows committed at a time, at most (see also [`OgrWriter::SECONDS_PER_TRANSACTION`]).
    pub const ROWS_PER_TRANSACTION: usize = 20_000;
    /// Seconds between commits, at most: what a killed run loses and `--resume` redoes.
    pub const SECONDS_PER_TRANSACTION: u64 = 2;

    fn create(path: &Path, driver: &str, schema: &OutputSchema, settings: &LayerSettings) -> Result<OgrWriter> {
        let gdal_driver = DriverManager::get_driver_by_name(driver)?;
        let mut dataset: Dataset = gdal_driver
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
        let options: Vec<&str> = settings.creation_options.iter().map(String::as_str).collect();
        let layer = match dataset.create_layer(LayerOptions {
            name: &settings.name,
            srs: srs.as_ref(),
            ty,
            options: (!options.is_empty()).then_some(options.as_slice()),
        }) {
            Ok(layer) => layer,
            Err(err) => bail_input!(
                "cannot create layer {} in the {driver} output: {err}; check --layer-name and --lco for this format",
                settings.name
            ),
        };
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
        OgrWriter::over(layer, schema, "the new output")
    }

    /// Opens layer `layer_name` (or the only layer) of the copy of `original` at `path` to append
    /// rows, checking that it has every output column with a compatible type.
    fn append(path: &Path, original: &Path, schema: &OutputSchema, layer_name: &str) -> Result<OgrWriter> {
        let shown = original.display();
        let options = gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
            ..Default::default()
        };
        let dataset = match Dataset::open_ex(path, options) {
            Ok(ds) => ds,
            Err(err) => {
                bail_input!("cannot open output {shown} to append to it: {err}; give a vector file GDAL can update")
            }
        };
        let names: Vec<String> = dataset.layers().map(|l| l.name()).collect();
        let index = match names.iter().position(|n| n == layer_name) {
            Some(i) => i,
            None if names.len() == 1 => 0,
            None => bail_input!(
                "output {shown} has no layer {layer_name} (layers: {}); pass the one to append to with --layer-name",
                names.join(", ")
            ),
        };
        let layer = dataset.into_layer(index)?;
        let mut writer = OgrWriter::over(layer, schema, &format!("output {shown}"))?;
        writer.appending = true;
        Ok(writer)
    }

    /// Maps the schema's columns onto `layer`'s fields, which must all exist with compatible types.
    fn over(layer: OwnedLayer, schema: &OutputSchema, what: &str) -> Result<OgrWriter> {
        let existing: Vec<(String, OGRFieldType::Type)> =
            layer.defn().fields().map(|f| (f.name(), f.field_type())).collect();
        let wanted: Vec<(String, OGRFieldType::Type)> = schema
            .input_fields
            .iter()
            .map(|f| (f.name.clone(), f.field_type))
            .chain(schema.own_fields())
            .collect();
        let integer = |t: OGRFieldType::Type| t == OGRFieldType::OFTInteger || t == OGRFieldType::OFTInteger64;
        let mut indices = Vec::with_capacity(wanted.len());
        let mut problems = Vec::new();
        for (name, ty) in &wanted {
            match existing.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some(i) if existing[i].1 == *ty || (integer(existing[i].1) && integer(*ty)) => indices.push(i),
                Some(i) => problems.push(format!(
                    "{name} is {} but should be {}",
                    gdal::vector::field_type_to_name(existing[i].1),
                    gdal::vector::field_type_to_name(*ty)
                )),
                None => problems.push(format!("{name} is missing")),
            }
        }
        if !problems.is_empty() {
            bail_input!(
                "{what} does not have the columns this run writes ({}); append only runs with the same features and model, or write a new output",
                problems.join(", ")
            );
        }
        let own_index = indices.split_off(schema.input_fields.len());
        Ok(OgrWriter {
            layer,
            schema: schema.clone(),
            in_transaction: false,
            rows_in_transaction: 0,
            transaction_started: std::time::Instant::now(),
            appending: false,
            input_index: indices,
            own_index,
        })
    }

    fn write(&mut self, row: &OutputRow) -> Result<()> {
        if !self.in_transaction {
            // Drivers without transactions simply write through.
            self.in_transaction = unsafe { gdal_sys::OGR_L_StartTransaction(self.layer.c_layer()) } == 0;
            self.transaction_started = std::time::Instant::now();
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
            if self.rows_in_transaction >= Self::ROWS_PER_TRANSACTION
                || self.transaction_started.elapsed().as_secs() >= Self::SECONDS_PER_TRANSACTION
            {
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
        let table = self.layer.name();
        let dataset = self.layer.into_dataset();
        let is_gpkg = dataset.driver().short_name() == "GPKG";
        if let (true, false, Some(colors), Some((geometry, _))) =
            (is_gpkg, self.appending, &self.schema.style, &self.schema.geometry)
        {
            crate::style::write_gpkg_style(&dataset, &table, &self.schema.label_field, *geometry, colors)?;
        }
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
    fn create(path: &Path, original: &Path, schema: &OutputSchema, appending: bool) -> Result<CsvWriter> {
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
            style: None,
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
        assert_eq!(
            Format::for_path(Path::new("a/b.gpkg")).unwrap(),
            Format::Ogr("GPKG".into())
        );
        assert_eq!(Format::for_path(Path::new("b.CSV")).unwrap(), Format::Csv);
        assert_eq!(
            Format::for_path(Path::new("b.fgb")).unwrap(),
            Format::Ogr("FlatGeobuf".into())
        );
        assert!(Format::for_path(Path::new("b.xyz")).is_err());
    }
}
