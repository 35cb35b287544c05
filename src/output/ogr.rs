//! Rows written through an OGR vector driver (GeoPackage, GeoJSON, FlatGeobuf, Shapefile, ...),
//! in transactions, with the QGIS style of the layers it makes (a `.qml` beside the output, or
//! the GeoPackage's `layer_styles` table).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::{
    Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, OwnedLayer,
};
use gdal::{Dataset, DriverManager};

use crate::bail_input;
use crate::gdal_ffi;
use crate::gdal_ffi::{srs, vector};
use crate::messages;
use crate::output::layer::LayerSettings;
use crate::output::schema::{Confidence, OutputRow, OutputSchema};
use crate::output::shard::ShardRecord;
use crate::output::style;
use crate::output::style::StyleMode;
use crate::output::style::StylePlace;
use crate::output::target::{OutputTarget, Start};

/// Rows written through an OGR driver, in transactions of [`OgrWriter::ROWS_PER_TRANSACTION`].
pub struct OgrWriter {
    layer: OwnedLayer,
    schema: OutputSchema,
    in_transaction: bool,
    rows_in_transaction: usize,
    /// Rows go into a layer this run did not make (its style is left alone).
    existing_layer: bool,
    /// Into the CRS of an existing layer, when it differs from the rows'.
    transform: Option<CoordTransform>,
    /// Field index of each input field, then of our own fields, in the output layer.
    input_index: Vec<usize>,
    own_index: Vec<usize>,
    /// Whether the layer takes geometries (a spreadsheet's does not).
    write_geometry: bool,
}

impl OgrWriter {
    /// Rows committed at a time, at most (see also [`OgrWriter::checkpoint`]).
    pub const ROWS_PER_TRANSACTION: usize = 20_000;

    /// Opens the writer on `target`'s temporary output: a new dataset and layer, a new layer in a
    /// copy of a multi-layer file (replacing one of the same name when asked), or the existing
    /// layer of a copy to add rows to (its columns must match; geometries are reprojected into
    /// its CRS when it has another).
    pub(crate) fn open(
        target: &OutputTarget,
        driver: &str,
        schema: &OutputSchema,
        settings: &LayerSettings,
    ) -> Result<OgrWriter> {
        let shown = target.path.display();
        let mut dataset = open_dataset(target, driver, settings)?;
        match target.start {
            Start::Append | Start::Resume => {
                let names: Vec<String> = dataset.layers().map(|l| l.name()).collect();
                let index = match names.iter().position(|n| n == &settings.name) {
                    Some(i) => i,
                    None if names.len() == 1 => 0,
                    None => bail_input!(
                        "output {shown} has no layer {} (layers: {}); pass the one to add to with --layer-name",
                        settings.name,
                        names.join(", ")
                    ),
                };
                let layer = dataset.into_layer(index)?;
                let mut writer = OgrWriter::over_existing(layer, schema, &format!("output {shown}"), driver)?;
                writer.existing_layer = target.start == Start::Append;
                Ok(writer)
            }
            Start::New | Start::CopyWithNewLayer { .. } => {
                OgrWriter::create_layer(&mut dataset, driver, schema, settings)?;
                let index = dataset
                    .layers()
                    .position(|l| l.name() == settings.name)
                    .unwrap_or(dataset.layer_count() - 1);
                let layer = dataset.into_layer(index)?;
                let indices = new_layer_indices(&layer, schema, driver)?;
                let mut writer = OgrWriter::with_indices(layer, schema, indices, None);
                if schema.geometry.is_some() && writer.layer.defn().geom_fields().count() == 0 {
                    messages::warning(format_args!(
                        "the {driver} format keeps no geometry: the rows are written without it (SourceOID joins them to the features); write GPKG to keep it"
                    ));
                    writer.write_geometry = false;
                }
                Ok(writer)
            }
        }
    }

    /// Creates the run's layer with its columns in `dataset`.
    fn create_layer(
        dataset: &mut Dataset,
        driver: &str,
        schema: &OutputSchema,
        settings: &LayerSettings,
    ) -> Result<()> {
        let srs = match &schema.geometry {
            Some((_, Some(wkt))) => Some(SpatialRef::from_wkt(wkt)?),
            _ => None,
        };
        let ty = schema
            .geometry
            .as_ref()
            .map_or(OGRwkbGeometryType::wkbNone, |(ty, _)| *ty);
        let columns = schema.input_fields.len() + schema.own_fields().len();
        if let Some(most) = max_columns(driver).filter(|&most| columns > most) {
            bail_input!(
                "the output needs {columns} columns (the features' {} and {} of ours) but a {driver} layer holds at most {most}; write CSV, or drop columns from the features (ogr2ogr -select)",
                schema.input_fields.len(),
                schema.own_fields().len()
            );
        }
        let flat = gdal::vector::geometry_type_flatten(ty);
        if driver == "ESRI Shapefile"
            && matches!(
                flat,
                OGRwkbGeometryType::wkbUnknown | OGRwkbGeometryType::wkbGeometryCollection
            )
        {
            bail_input!(
                "the features have mixed geometry types ({}) but a Shapefile holds one type; write a GeoPackage (.gpkg) instead",
                gdal::vector::geometry_type_to_name(ty)
            );
        }
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
        let supported = supported_field_types(driver);
        let columns = schema
            .input_fields
            .iter()
            .map(|f| (f.name.clone(), f.field_type, f.width, f.precision))
            .chain(schema.own_fields().into_iter().map(|(name, ty)| (name, ty, 0, 0)));
        for (name, ty, width, precision) in columns {
            let written = writable_type(ty, &supported);
            let defn = FieldDefn::new(&name, written)?;
            if written == ty {
                defn.set_width(width);
                defn.set_precision(precision);
            }
            if defn.add_to_layer(&layer).is_err() {
                bail_input!(
                    "the {driver} output cannot have the column {name} ({}): {}; choose another format, e.g. GPKG",
                    gdal::vector::field_type_to_name(written),
                    gdal_ffi::last_error()
                );
            }
        }
        Ok(())
    }

    /// Maps the schema's columns onto an existing `layer`'s fields, which must all exist with
    /// compatible types (by name; by position when the driver shortens names, as a Shapefile's
    /// does). Geometries are reprojected into the layer's CRS when it differs from the rows'.
    fn over_existing(layer: OwnedLayer, schema: &OutputSchema, what: &str, driver: &str) -> Result<OgrWriter> {
        let existing: Vec<(String, OGRFieldType::Type)> =
            layer.defn().fields().map(|f| (f.name(), f.field_type())).collect();
        let wanted: Vec<(String, OGRFieldType::Type)> = schema
            .input_fields
            .iter()
            .map(|f| (f.name.clone(), f.field_type))
            .chain(schema.own_fields())
            .collect();
        let integer = |t: OGRFieldType::Type| t == OGRFieldType::OFTInteger || t == OGRFieldType::OFTInteger64;
        // As this run would create the column in this format (a File Geodatabase keeps 64-bit
        // integers as reals).
        let supported = supported_field_types(driver);
        let compatible = |a: OGRFieldType::Type, b: OGRFieldType::Type| {
            a == b || (integer(a) && integer(b)) || a == writable_type(b, &supported)
        };
        let mut indices = Vec::with_capacity(wanted.len());
        let mut problems = Vec::new();
        for (k, (name, ty)) in wanted.iter().enumerate() {
            let by_name = existing.iter().position(|(n, _)| n.eq_ignore_ascii_case(name));
            // A driver that shortens names: the column at the same position, named as shortened.
            let by_position = (driver == "ESRI Shapefile" && existing.len() == wanted.len())
                .then_some(k)
                .filter(|&k| {
                    name.to_ascii_lowercase()
                        .starts_with(&existing[k].0.to_ascii_lowercase())
                });
            match by_name.or(by_position) {
                Some(i) if compatible(existing[i].1, *ty) => indices.push(i),
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
        let transform = match (&schema.geometry, layer.spatial_ref()) {
            (Some((_, Some(wkt))), Some(to)) => match srs::transform(&srs::traditional(wkt)?, &to) {
                Ok(transform) => transform,
                Err(err) => bail_input!(
                    "{what} is in another CRS than the features and they cannot be transformed into it ({err}); write a new output"
                ),
            },
            (Some((_, Some(_))), None) => {
                bail_input!("{what} has no CRS but the rows of this run have one; write a new output")
            }
            _ => None,
        };
        Ok(OgrWriter::with_indices(layer, schema, indices, transform))
    }

    fn with_indices(
        layer: OwnedLayer,
        schema: &OutputSchema,
        mut indices: Vec<usize>,
        transform: Option<CoordTransform>,
    ) -> OgrWriter {
        let own_index = indices.split_off(schema.input_fields.len());
        OgrWriter {
            layer,
            schema: schema.clone(),
            in_transaction: false,
            rows_in_transaction: 0,
            existing_layer: false,
            input_index: indices,
            own_index,
            transform,
            write_geometry: true,
        }
    }

    pub(crate) fn write(&mut self, row: &OutputRow) -> Result<()> {
        if !self.in_transaction {
            // Drivers without transactions simply write through.
            self.in_transaction = vector::start_transaction(&self.layer);
        }
        let mut feature = Feature::new(self.layer.defn())?;
        if let (Some(wkb), Some(_), true) = (&row.geometry_wkb, &self.schema.geometry, self.write_geometry) {
            let mut geometry = Geometry::from_wkb(wkb)?;
            if let Some(transform) = &self.transform {
                geometry = geometry
                    .transform(transform)
                    .context("reprojecting a geometry into the CRS of the output layer")?;
            }
            feature.set_geometry(geometry)?;
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
        for k in 0..self.schema.score_fields.len() {
            let i = next();
            if let Some(p) = row.scores.as_ref().and_then(|s| s.get(k)) {
                feature.set_field_double(i, *p)?;
            }
        }
        let status = next();
        if let Some(text) = row.status {
            feature.set_field_string(status, text)?;
        }
        if let Err(err) = feature.create(&self.layer) {
            return Err(anyhow!("writing an output row: {err}: {}", gdal_ffi::last_error()));
        }
        drop(feature);
        if self.in_transaction {
            self.rows_in_transaction += 1;
            if self.rows_in_transaction >= Self::ROWS_PER_TRANSACTION {
                self.commit()?;
            }
        }
        Ok(())
    }

    /// Records the run in the layer's metadata now (made durable at once), so that a run killed
    /// before it finishes leaves the record for `--resume` to check.
    pub(crate) fn record(&mut self, record: &ShardRecord) -> Result<()> {
        self.commit()?;
        record.write_into(&mut self.layer)?;
        vector::sync_to_disk(&self.layer).map_err(|err| anyhow!("recording the run in the output: {err}"))
    }

    /// Commits the rows written so far. The pipeline checkpoints after each window (about two
    /// seconds of work), which bounds what a killed run loses and `--resume` redoes.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        self.commit()
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_transaction {
            if let Err(err) = vector::commit_transaction(&self.layer) {
                return Err(anyhow!("committing output rows: {err}"));
            }
            self.in_transaction = false;
            self.rows_in_transaction = 0;
        }
        Ok(())
    }

    /// Commits the last rows, writes the QGIS style (`style`) unless the layer is not this
    /// run's, and closes the file.
    /// Commits the last rows, writes the run's record and the layer's style (`temp` the file
    /// written, `output` the one it becomes), and closes the file.
    pub(crate) fn finish(
        mut self,
        style: StyleMode,
        (temp, output): (&Path, &Path),
        shard: Option<&ShardRecord>,
    ) -> Result<()> {
        self.commit()?;
        if let Some(record) = shard {
            record.write_into(&mut self.layer)?;
        }
        let table = self.layer.name();
        let geometry_column = geometry_column(&self.layer);
        // The label field as the driver wrote it (a Shapefile keeps 10 characters, a File
        // Geodatabase replaces spaces).
        let label_index =
            self.own_index[usize::from(self.schema.with_source_id) + usize::from(self.schema.with_image_id)];
        let field = self.layer.defn().fields().nth(label_index).map_or_else(
            || self.schema.label_field.clone(),
            |f| as_named(&f.name(), &self.schema.label_field),
        );
        let mut dataset = self.layer.into_dataset();
        if let (false, Some(colors), Some((geometry, _))) =
            (self.existing_layer, &self.schema.style, &self.schema.geometry)
        {
            let qml = style::qml(&field, *geometry, colors, self.schema.multi_label);
            // A single-layer file's layer is named after the file: after the commit, the output's.
            let temp_stem = temp.file_stem().map(|s| s.to_string_lossy().into_owned());
            let layer = match output.file_stem() {
                Some(stem) if temp_stem.as_deref() == Some(table.as_str()) => stem.to_string_lossy().into_owned(),
                _ => table.clone(),
            };
            let place = StylePlace {
                temp,
                output,
                table: &table,
                layer: &layer,
                geometry_column: &geometry_column,
                field: &field,
            };
            style::write(style, &mut dataset, &place, &qml)?;
        }
        dataset.close().context("closing the output")?;
        Ok(())
    }
}

/// Where each of the schema's columns went in the layer this run made: by position when the
/// driver made exactly them (it may launder names: a Shapefile keeps 10 characters), by name when
/// it adds columns of its own (KML's `Name` and `Description`).
fn new_layer_indices(layer: &OwnedLayer, schema: &OutputSchema, driver: &str) -> Result<Vec<usize>> {
    let made: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let wanted: Vec<String> = schema
        .input_fields
        .iter()
        .map(|f| f.name.clone())
        .chain(schema.own_fields().into_iter().map(|(name, _)| name))
        .collect();
    if made.len() == wanted.len() {
        return Ok((0..wanted.len()).collect());
    }
    // The driver's own columns come first: the latest column of a name is the one this run made.
    let by_name = |name: &String| {
        made.iter()
            .rposition(|m| m == name)
            .or_else(|| made.iter().rposition(|m| m.eq_ignore_ascii_case(name)))
    };
    let indices: Option<Vec<usize>> = wanted.iter().map(by_name).collect();
    match indices {
        Some(indices) if distinct(&indices) => Ok(indices),
        _ => bail_input!(
            "the {driver} driver made {} columns ({}) for the {} this run writes ({}); check --lco for this format, or write GPKG",
            made.len(),
            made.join(", "),
            wanted.len(),
            wanted.join(", ")
        ),
    }
}

fn distinct(indices: &[usize]) -> bool {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// The name of a layer's geometry column (empty when the driver has none).
pub(crate) fn geometry_column(layer: &impl LayerAccess) -> String {
    vector::geometry_column(layer)
}

/// Opens `target`'s temporary output for the run's layer (`settings`): a new dataset (with its
/// dataset creation options), or the copy of the existing output (a layer of the same name
/// deleted when it is to be replaced).
pub(crate) fn open_dataset(target: &OutputTarget, driver: &str, settings: &LayerSettings) -> Result<Dataset> {
    let layer = settings.name.as_str();
    let path = target.temp_path();
    let shown = target.path.display();
    if target.start == Start::New {
        return match vector::create_vector_dataset(driver, path, &settings.dataset_options) {
            Ok(dataset) => Ok(dataset),
            Err(err) if settings.dataset_options.is_empty() => Err(anyhow!("creating {}: {err}", path.display())),
            Err(err) => bail_input!("cannot create the {driver} output {shown}: {err}; check --dsco for this format"),
        };
    }
    let update = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
        ..Default::default()
    };
    let mut dataset = match Dataset::open_ex(path, update) {
        Ok(ds) => ds,
        Err(err) => {
            bail_input!("cannot open output {shown} to write into it: {err}; give a vector file GDAL can update")
        }
    };
    if let Start::CopyWithNewLayer { replace: true } = target.start {
        if let Some(index) = dataset.layers().position(|l| l.name() == layer) {
            if let Err(err) = dataset.delete_layer(index) {
                return Err(anyhow!("replacing layer {layer} of {shown}: {err}"));
            }
        }
    }
    Ok(dataset)
}

/// The field types `driver` can create (`DMD_CREATIONFIELDDATATYPES`); empty when it does not say.
fn supported_field_types(driver: &str) -> Vec<String> {
    use gdal::Metadata;
    DriverManager::get_driver_by_name(driver)
        .ok()
        .and_then(|d| d.metadata_item("DMD_CREATIONFIELDDATATYPES", ""))
        .map(|list| list.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The type a column of type `ty` is written as by a driver that creates `supported` types, as
/// ogr2ogr does: 64-bit integers as reals (exact to 2^53), lists and dates as text.
fn writable_type(ty: OGRFieldType::Type, supported: &[String]) -> OGRFieldType::Type {
    let name = gdal::vector::field_type_to_name(ty);
    if supported.is_empty() || supported.contains(&name) {
        return ty;
    }
    match ty {
        OGRFieldType::OFTInteger64 if supported.iter().any(|t| t == "Real") => OGRFieldType::OFTReal,
        OGRFieldType::OFTInteger64 => OGRFieldType::OFTInteger,
        _ => OGRFieldType::OFTString,
    }
}

/// Most attribute columns a layer of `driver` holds, where the format limits them.
fn max_columns(driver: &str) -> Option<usize> {
    match driver {
        // SQLite's 2000 columns, less the feature id and the geometry.
        "GPKG" | "SQLite" => Some(1998),
        // dBase.
        "ESRI Shapefile" => Some(255),
        _ => None,
    }
}

/// A field name read back from the layer being written, with the characters the driver has not
/// yet recoded filled in from the name asked for: a Shapefile holds its names in its own
/// encoding (Latin-1 here) until it is reopened, so `ÜÜÜÜÜÜLabel` truncated to 10 characters
/// reads as `\u{FFFD}` six times, then `Labe`.
fn as_named(read: &str, asked: &str) -> String {
    if !read.contains('\u{FFFD}') || read.chars().count() > asked.chars().count() {
        return read.to_string();
    }
    read.chars()
        .zip(asked.chars())
        .map(|(r, a)| if r == '\u{FFFD}' { a } else { r })
        .collect()
}
