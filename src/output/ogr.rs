//! Rows written through an OGR vector driver (GeoPackage, GeoJSON, FlatGeobuf, Shapefile, ...),
//! in transactions, with the QGIS style added to new GeoPackage layers.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, OwnedLayer,
};
use gdal::{Dataset, DriverManager};

use crate::bail_input;
use crate::output::schema::{Confidence, OutputRow, OutputSchema};
use crate::output::LayerSettings;

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

    pub(crate) fn create(
        path: &Path,
        driver: &str,
        schema: &OutputSchema,
        settings: &LayerSettings,
    ) -> Result<OgrWriter> {
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
    pub(crate) fn append(path: &Path, original: &Path, schema: &OutputSchema, layer_name: &str) -> Result<OgrWriter> {
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

    pub(crate) fn write(&mut self, row: &OutputRow) -> Result<()> {
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
                return Err(anyhow!("committing output rows: {}", crate::error::last_gdal_error()));
            }
            self.in_transaction = false;
            self.rows_in_transaction = 0;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.commit()?;
        let table = self.layer.name();
        let dataset = self.layer.into_dataset();
        let is_gpkg = dataset.driver().short_name() == "GPKG";
        if let (true, false, Some(colors), Some((geometry, _))) =
            (is_gpkg, self.appending, &self.schema.style, &self.schema.geometry)
        {
            crate::output::style::write_gpkg_style(&dataset, &table, &self.schema.label_field, *geometry, colors)?;
        }
        dataset.close().context("closing the output")?;
        Ok(())
    }
}
