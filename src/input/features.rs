//! Input features: any OGR source (GeoPackage, Shapefile, GeoJSON, ...), points, lines or
//! polygons, one object to classify per feature.
//!
//! Features are streamed, never all held: [`FeatureSource::for_each`] reads them in order,
//! reprojects each into the raster's CRS and hands over an [`InputFeature`] that owns everything
//! the later stages need (its geometry as WKB for the output, its attributes, and its shape in
//! raster pixel coordinates for the chip).

use std::collections::HashSet;

use anyhow::{Context, Result};
use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::{FieldValue, Geometry, LayerAccess, OGRFieldType, OGRwkbGeometryType};
use gdal::Dataset;
use geo::{BoundingRect, MapCoords};

use crate::bail_input;
use crate::digest::Fingerprint;
use crate::error;
use crate::gdal_ffi;
use crate::gdal_ffi::{srs, vector};
use crate::input::extent::Extent;
use crate::input::http;
use crate::input::items::Item;
use crate::input::raster::RasterGrid;
use crate::input::service::{self, LayerFilter};
use crate::input::source::{self, SourceKind};
use crate::input::validity;
use crate::messages;

/// One attribute column of the input layer.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// Column name.
    pub name: String,
    /// OGR type of the column as written to the output.
    pub field_type: OGRFieldType::Type,
    /// Width, 0 if unknown.
    pub width: i32,
    /// Precision, 0 if unknown.
    pub precision: i32,
    /// Whether the value is read as text (OGR types the gdal crate has no value type for).
    pub as_text: bool,
}

/// Why a feature could not be classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The feature has no geometry.
    NullGeometry,
    /// The geometry is empty.
    EmptyGeometry,
    /// The geometry could not be transformed into the raster's CRS.
    ReprojectionFailed,
    /// The feature lies entirely outside the raster.
    OutsideRaster,
    /// The polygon is not valid (self-intersecting, ...). Such a feature is still classified
    /// (its chip only needs the envelope), and flagged.
    InvalidGeometry,
    /// Its pixels could not be read (a damaged tile, a failed remote read).
    ReadFailed,
    /// The model gave non-finite scores (NaN, infinity) for it.
    NonFiniteScores,
    /// A geometry type that has no 2-D linear form to place (none known today; never "empty").
    UnsupportedGeometry,
}

impl Problem {
    /// Every problem.
    pub const ALL: [Problem; 8] = [
        Problem::NullGeometry,
        Problem::EmptyGeometry,
        Problem::ReprojectionFailed,
        Problem::OutsideRaster,
        Problem::InvalidGeometry,
        Problem::ReadFailed,
        Problem::NonFiniteScores,
        Problem::UnsupportedGeometry,
    ];

    /// Value written to the `Status` field.
    pub fn code(self) -> &'static str {
        match self {
            Problem::NullGeometry => "null_geometry",
            Problem::EmptyGeometry => "empty_geometry",
            Problem::ReprojectionFailed => "reprojection_failed",
            Problem::OutsideRaster => "outside_raster",
            Problem::InvalidGeometry => "invalid_geometry",
            Problem::ReadFailed => "read_failed",
            Problem::NonFiniteScores => "non_finite_scores",
            Problem::UnsupportedGeometry => "unsupported_geometry",
        }
    }
}

/// A feature in raster pixel coordinates (column, row), ready for chip extraction.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelShape {
    /// Envelope (min col, min row, max col, max row).
    pub envelope: [f64; 4],
    /// The geometry itself, in pixel coordinates, for polygon masking.
    pub geometry: geo::Geometry<f64>,
    /// Whether the feature is a point or multipoint.
    pub is_point: bool,
    /// Whether the feature is a polygon or multipolygon.
    pub is_polygon: bool,
}

/// One input feature, owning everything later stages need.
#[derive(Debug, Clone)]
pub struct InputFeature {
    /// Position in the input (0-based), the output order.
    pub index: usize,
    /// Feature id in the source, if it has one (any value but OGR's null id, -1).
    pub fid: Option<i64>,
    /// The geometry as read (source CRS), as WKB.
    pub geometry_wkb: Option<Vec<u8>>,
    /// Attribute values in [`FeatureSource::fields`] order.
    pub fields: Vec<Option<FieldValue>>,
    /// Where it sits on the raster, or why it cannot be classified.
    pub shape: Result<PixelShape, Problem>,
    /// A problem that does not stop classification (an invalid polygon).
    pub flag: Option<Problem>,
    /// The item (image) it was placed on, if any.
    pub item: Option<usize>,
}

/// What is read of a features source, as `ogr2ogr` takes it: the layer, or the result of an SQL
/// statement; an attribute filter; the driver's open options; a CRS override.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureQuery {
    /// Layer name (`--layer`); without it, the one layer with geometries.
    pub layer: Option<String>,
    /// CRS replacing the one the source declares (`--features-crs`).
    pub srs_override: Option<String>,
    /// Attribute filter (`--where`).
    pub where_clause: Option<String>,
    /// SQL statement whose result layer is read (`--sql`).
    pub sql: Option<String>,
    /// Dialect of `sql` (`--dialect`).
    pub dialect: SqlDialect,
    /// Open options `NAME=VALUE` of the driver (`--oo`).
    pub open_options: Vec<String>,
}

/// The SQL dialects `--dialect` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqlDialect {
    /// The driver's own SQL where it has one (GeoPackage: SQLite), else OGR SQL.
    #[default]
    Default,
    /// OGR SQL.
    OgrSql,
    /// SQLite SQL (on any source, through a virtual table).
    Sqlite,
}

impl SqlDialect {
    /// The dialect `--dialect` names.
    pub fn named(name: &str) -> Result<SqlDialect> {
        match name.to_ascii_uppercase().as_str() {
            "OGRSQL" | "OGR" => Ok(SqlDialect::OgrSql),
            "SQLITE" => Ok(SqlDialect::Sqlite),
            "" | "DEFAULT" | "NATIVE" => Ok(SqlDialect::Default),
            _ => bail_input!("--dialect {name} is not a dialect classify-objects knows; use OGRSQL or SQLITE (or leave it out for the driver's own)"),
        }
    }

    fn gdal(self) -> gdal::vector::sql::Dialect {
        match self {
            SqlDialect::Default => gdal::vector::sql::Dialect::DEFAULT,
            SqlDialect::OgrSql => gdal::vector::sql::Dialect::OGR,
            SqlDialect::Sqlite => gdal::vector::sql::Dialect::SQLITE,
        }
    }
}

/// An opened feature layer, checked against the raster it will be cut from.
pub struct FeatureSource {
    /// Path or connection string as given.
    pub name: String,
    dataset: Dataset,
    layer_index: usize,
    /// Layer name.
    pub layer_name: String,
    /// Attribute columns.
    pub fields: Vec<FieldSpec>,
    /// Geometry type of the layer.
    pub geometry_type: OGRwkbGeometryType::Type,
    /// The features' CRS as WKT (after any override).
    pub srs_wkt: Option<String>,
    /// Feature count, if the driver knows it cheaply.
    pub count: Option<u64>,
    /// Whether exactly `count` features must be read (a feature service layer, read page by
    /// page: a page lost or read twice must not go unnoticed).
    exact_count: bool,
    /// The SQL statement and attribute filter the layer is read with (here: a feature service
    /// layer's `--where` is the server's, in `server_filter`).
    query: FeatureQuery,
    /// What the server selects of a feature service layer (`--where`, `--extent` as an
    /// envelope); empty for other sources.
    server_filter: LayerFilter,
    /// Only the features whose envelope centre is inside (`--extent`), in positions among them.
    pub extent: Option<Extent>,
    /// Which features to read: a shard, and ids to skip (resumed runs).
    pub selection: Selection,
    /// When set, a fingerprint of every feature the filters keep (id, geometry, attributes),
    /// added to as they are read: what identifies the features of a run by their content.
    pub content: Option<Fingerprint>,
}

/// A subset of the features: positions `p` with `p % count == index` (`--shard index/count`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `(index, count)` of the shard, 0-based.
    pub shard: Option<(usize, usize)>,
}

impl Selection {
    /// Whether the feature at input position `index` is to be classified.
    pub fn takes(&self, index: usize) -> bool {
        self.shard.is_none_or(|(i, n)| index % n == i)
    }

    /// How many of `total` features are taken.
    pub fn size(&self, total: u64) -> u64 {
        match self.shard {
            None => total,
            Some((i, n)) => total / n as u64 + u64::from((i as u64) < total % n as u64),
        }
    }
}

impl FeatureSource {
    /// Opens `name` and reads it as `query` says: the result of its SQL statement, or its layer
    /// (by name, or the one layer with geometries: a source with several needs `--layer`), with
    /// its attribute filter. A feature service layer (without `--sql`) is asked for what the
    /// attribute filter and `extent` (an envelope, with its CRS) select, by the server.
    pub fn open_with(name: &str, query: &FeatureQuery, extent: Option<&Extent>) -> Result<FeatureSource> {
        let (query, server_filter) = split_for_server(name, query, extent);
        let query = &query;
        let dataset = source::open_filtered(name, SourceKind::Vector, &query.open_options, &server_filter)?;
        if dataset.layer_count() == 0 {
            bail_input!(
                "features {name} hold no vector layer; give a GeoPackage, Shapefile, GeoJSON or other OGR source"
            );
        }
        let layer_index = pick_layer(&dataset, name, query)?;
        let facts = with_query_layer(&dataset, layer_index, query, name, |layer| {
            LayerFacts::read(layer, name, query, &server_filter)
        })?;
        Ok(FeatureSource {
            name: name.to_string(),
            dataset,
            layer_index,
            layer_name: facts.layer_name,
            fields: facts.fields,
            geometry_type: facts.geometry_type,
            srs_wkt: facts.srs_wkt,
            count: facts.count,
            exact_count: facts.service_count.is_some(),
            query: query.clone(),
            server_filter,
            extent: None,
            selection: Selection::default(),
            content: None,
        })
    }

    /// Whether fewer features than the layer holds are read on purpose (`--where`, `--sql`,
    /// `--extent`), so that its declared count says nothing about what must be read.
    pub fn filtered(&self) -> bool {
        self.query.sql.is_some()
            || self.query.where_clause.is_some()
            || !self.server_filter.is_empty()
            || self.extent.is_some()
    }

    /// The position of the field holding each feature's expected class (`--truth-field`): the
    /// field of that exact name, else one matching without regard to case; an error naming the
    /// fields there are when it is none.
    pub fn truth_column(&self, name: &str, features: &str) -> Result<usize> {
        let exact = self.fields.iter().position(|f| f.name == name);
        match exact.or_else(|| self.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name))) {
            Some(i) => Ok(i),
            None => bail_input!(
                "--truth-field {name} is not a field of {features} (fields: {}); name the field holding the expected class",
                self.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The feature count to expect, when known: the layer's (with its attribute filter), not
    /// known when an extent picks the features.
    pub fn expected_count(&self) -> Option<u64> {
        self.count.filter(|_| self.extent.is_none())
    }

    /// Builds the transformation into the raster's CRS (`None` when none is needed) and checks
    /// that the two CRSs can be related at all.
    pub fn transform_to(&self, raster: &RasterGrid, raster_name: &str) -> Result<Option<CoordTransform>> {
        let features_srs = self.srs_wkt.as_deref().map(srs::traditional).transpose()?;
        let raster_srs = raster.spatial_ref();
        match (features_srs, raster_srs) {
            (None, None) => Ok(None),
            (Some(_), None) => bail_input!(
                "raster {} has no coordinate reference system but features {} have one; georeference the raster (gdal_edit.py -a_srs) so the features can be placed on it",
                raster_name,
                self.name
            ),
            (None, Some(_)) => bail_input!(
                "features {} have no coordinate reference system; declare it with --features-crs (e.g. the raster's, {}) or fix the file (a Shapefile needs its .prj)",
                self.name,
                srs_label(raster.srs_wkt.as_deref().unwrap_or_default())
            ),
            (Some(from), Some(to)) => {
                match srs::transform(&from, &to) {
                    Ok(t) => Ok(t),
                    Err(err) => bail_input!(
                        "cannot transform features {} ({}) into the CRS of raster {} ({}): {err}; declare the features' real CRS with --features-crs",
                        self.name,
                        srs_label(self.srs_wkt.as_deref().unwrap_or_default()),
                        raster_name,
                        srs_label(raster.srs_wkt.as_deref().unwrap_or_default())
                    ),
                }
            }
        }
    }

    /// Reads every feature in order (those `--where`, `--sql` and `--extent` keep), places it on
    /// each of `items`, and calls `sink` once per item it falls on (in item order), or once with
    /// the reason when it falls on none. `checkpoint` is called before each feature (an
    /// interrupted run stops there). Stops at the first error `sink` or `checkpoint` returns.
    /// Returns how many features the filters keep (all of them, not only this shard's).
    pub fn for_each(
        &mut self,
        items: &[Item],
        checkpoint: &dyn Fn() -> Result<()>,
        mut sink: impl FnMut(InputFeature) -> Result<()>,
    ) -> Result<u64> {
        let transforms = items
            .iter()
            .map(|item| self.transform_to(&item.grid, &item.name))
            .collect::<Result<Vec<_>>>()?;
        let centre = self
            .extent
            .as_ref()
            .map(|extent| extent.centre_filter(self.srs_wkt.as_deref(), &self.name))
            .transpose()?;
        let placer = Placer { items, transforms };
        let mut content = self.content.take();
        let this = &*self;
        let read_all = with_query_layer(&this.dataset, this.layer_index, &this.query, &this.name, |layer| {
            let mut read = 0u64;
            // A service layer's object ids, and those read twice (a page repeated).
            let mut seen = HashSet::new();
            let mut repeated = Vec::new();
            // Position among the features the filters keep: the output order and the shard rule.
            let mut position = 0usize;
            gdal_ffi::reset_errors();
            for feature in layer.features() {
                read += 1;
                // A failure while fetching this feature (a damaged file) ends the iteration early.
                this.check_read_error(read)?;
                checkpoint()?;
                if let Some(id) = vector::feature_id(&feature).filter(|_| this.exact_count) {
                    if !seen.insert(id) {
                        repeated.push(id);
                    }
                }
                let geometry = feature.geometry().filter(|g| vector::has_geometry(g));
                if centre.as_ref().is_some_and(|filter| !filter.keeps(geometry)) {
                    // A centre that could not be transformed is outside, not damage.
                    gdal_ffi::reset_errors();
                    continue;
                }
                let index = position;
                position += 1;
                if let Some(content) = content.as_mut() {
                    add_content(content, &feature, this.fields.len());
                }
                if this.selection.takes(index) {
                    this.read_one(&feature, index, &placer, &mut sink)?;
                }
                // Failures placing this feature (a failed reprojection) are its status, not damage.
                gdal_ffi::reset_errors();
            }
            Ok((read, position, seen, repeated))
        });
        self.content = content;
        let (read, kept, seen, repeated) = read_all?;
        self.check_read_error(read)?;
        self.check_pages(read, &seen, &repeated)?;
        self.check_count(read)?;
        Ok(kept as u64)
    }

    /// Reads the feature at position `index`, places it on the images, and hands `sink` one row
    /// per image it falls on (or one with the reason it falls on none).
    fn read_one(
        &self,
        feature: &gdal::vector::Feature<'_>,
        index: usize,
        placer: &Placer<'_>,
        sink: &mut impl FnMut(InputFeature) -> Result<()>,
    ) -> Result<()> {
        let fields = (0..self.fields.len())
            .map(|i| match self.fields[i].as_text {
                true => feature.field_as_string(i).map(|v| v.map(FieldValue::StringValue)),
                false => feature.field(i),
            })
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading attributes of feature {index} of {}", self.name))?;
        // The gdal crate hands out a geometry wrapping a null pointer for a null geometry.
        let geometry = feature.geometry().filter(|g| vector::has_geometry(g));
        // GDAL cannot export some empty geometries (a GeoJSON polygon without rings); such a
        // row keeps no geometry, as it has no shape to keep.
        let geometry_wkb = match geometry {
            Some(g) if g.is_empty() => g.wkb().ok(),
            Some(g) => Some(
                g.wkb()
                    .with_context(|| format!("reading the geometry of feature {index} of {}", self.name))?,
            ),
            None => None,
        };
        let placements = placer.place(geometry);
        let flag = match geometry {
            Some(g) if placements[0].1.is_ok() && is_areal(g) && !is_valid_polygon(g) => Some(Problem::InvalidGeometry),
            _ => None,
        };
        // The gdal crate drops negative ids; OGR's only "no id" is -1.
        let fid = vector::feature_id(feature);
        let last = placements.len() - 1;
        let (mut geometry_wkb, mut fields) = (Some(geometry_wkb), Some(fields));
        for (k, (item, shape)) in placements.into_iter().enumerate() {
            // The last row takes the values, the others get copies.
            let (wkb, values) = if k == last {
                (
                    geometry_wkb.take().unwrap_or_default(),
                    fields.take().unwrap_or_default(),
                )
            } else {
                (
                    geometry_wkb.clone().unwrap_or_default(),
                    fields.clone().unwrap_or_default(),
                )
            };
            sink(InputFeature {
                index,
                fid,
                geometry_wkb: wkb,
                fields: values,
                shape,
                flag,
                item,
            })?;
        }
        Ok(())
    }

    /// Fails a service layer's read page by page that gave a feature twice or missed one, naming
    /// their object ids (those the server holds under the filter, asked for again).
    fn check_pages(&self, read: u64, seen: &HashSet<i64>, repeated: &[i64]) -> Result<()> {
        let Some(count) = self.count.filter(|_| self.exact_count) else {
            return Ok(());
        };
        if repeated.is_empty() && read == count {
            return Ok(());
        }
        let shown = http::redact(&self.name);
        if read < count {
            if let Some(message) = service::page_error(&self.name, &self.server_filter, read) {
                anyhow::bail!(
                    "feature layer {shown} holds {count} features but its page after feature {read} was answered: {message}; run again later, or export the layer to a file"
                );
            }
        }
        let mut missing: Vec<i64> = service::object_ids(&self.name, &self.server_filter)
            .with_context(|| format!("feature layer {shown} was read wrongly page by page"))?
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect();
        missing.sort_unstable();
        let mut repeated = repeated.to_vec();
        repeated.sort_unstable();
        repeated.dedup();
        let mut what = Vec::new();
        if !repeated.is_empty() {
            what.push(format!("OBJECTID {} read twice", listed(&repeated)));
        }
        if !missing.is_empty() {
            what.push(format!("OBJECTID {} never read", listed(&missing)));
        }
        if what.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "feature layer {shown} holds {count} features but its pages gave {read}, {} (a page was lost or repeated, or the layer changed meanwhile); run again, or export the layer to a file",
            what.join(" and ")
        );
    }

    /// Fails a read of fewer features than the layer declares (a damaged file), or of another
    /// number than a service layer declares (a page lost or repeated).
    fn check_count(&self, read: u64) -> Result<()> {
        if let Some(count) = self.count.filter(|&c| self.exact_count && read != c) {
            anyhow::bail!(
                "feature layer {} holds {count} features but {read} were read page by page (a page was lost or repeated, or the layer changed meanwhile); run again",
                http::redact(&self.name)
            );
        }
        if let Some(count) = self.count.filter(|&c| !self.filtered() && read < c) {
            bail_input!(
                "features {} declare {count} features but only {read} could be read; the file is damaged: repair or re-export it (e.g. with ogr2ogr)",
                self.name
            );
        }
        Ok(())
    }

    /// An error if GDAL failed while reading the features (after `read` of them).
    fn check_read_error(&self, read: u64) -> Result<()> {
        if gdal_ffi::failed_since_reset() {
            bail_input!(
                "reading features of {} failed after {} feature(s): {}; the file is damaged: repair or re-export it (e.g. with ogr2ogr)",
                self.name,
                read.saturating_sub(1),
                gdal_ffi::last_error()
            );
        }
        Ok(())
    }
}

/// At most ten ids, comma-separated, with how many more there are.
fn listed(ids: &[i64]) -> String {
    let mut text = ids.iter().take(10).map(i64::to_string).collect::<Vec<_>>().join(", ");
    if ids.len() > 10 {
        text.push_str(&format!(" and {} more", ids.len() - 10));
    }
    text
}

/// The query to read `name` with locally, and what a feature service layer's server selects:
/// its `--where` (without `--sql`, which is OGR's, run on what the server sends) and `extent`
/// as an envelope (unless `--features-crs` says the layer's CRS is not what it declares). The
/// envelope keeps more than the extent's centre rule; the rest is dropped as it is read.
fn split_for_server(name: &str, query: &FeatureQuery, extent: Option<&Extent>) -> (FeatureQuery, LayerFilter) {
    let is_layer = service::parse(name).is_some_and(|u| u.kind == service::ServiceKind::FeatureLayer);
    if !is_layer || query.sql.is_some() {
        return (query.clone(), LayerFilter::default());
    }
    let mut local = query.clone();
    let filter = LayerFilter {
        where_clause: local.where_clause.take(),
        envelope: extent
            .filter(|_| query.srs_override.is_none())
            .and_then(|e| Some((e.bounds, e.crs_wkt.clone()?))),
    };
    (local, filter)
}

/// Runs `read` on the layer `query` reads from `dataset` (features `name`): the result of its
/// SQL statement, or layer `layer_index`, with its attribute filter.
fn with_query_layer<T>(
    dataset: &Dataset,
    layer_index: usize,
    query: &FeatureQuery,
    name: &str,
    read: impl FnOnce(&mut gdal::vector::Layer<'_>) -> Result<T>,
) -> Result<T> {
    let mut result_set;
    let mut plain;
    let layer: &mut gdal::vector::Layer<'_> = match &query.sql {
        Some(sql) => {
            result_set = execute_sql(dataset, sql, query.dialect, name)?;
            &mut result_set
        }
        None => {
            plain = dataset.layer(layer_index)?;
            &mut plain
        }
    };
    if let Some(filter) = &query.where_clause {
        set_filter(layer, filter, name)?;
    }
    read(layer)
}

/// Adds a kept feature's id, geometry and attribute values to the features' content
/// fingerprint.
fn add_content(content: &mut Fingerprint, feature: &gdal::vector::Feature<'_>, fields: usize) {
    content.add(&vector::feature_id(feature).unwrap_or(-1).to_le_bytes());
    let wkb = feature
        .geometry()
        .filter(|g| vector::has_geometry(g))
        .and_then(|g| g.wkb().ok())
        .unwrap_or_default();
    content.add(&wkb);
    for i in 0..fields {
        let value = feature.field_as_string(i).ok().flatten().unwrap_or_default();
        content.add(value.as_bytes());
    }
}

/// Places geometries on the images: each image with the transformation into its CRS.
struct Placer<'a> {
    items: &'a [Item],
    transforms: Vec<Option<CoordTransform>>,
}

impl Placer<'_> {
    /// Where `geometry` falls: one `(item, shape)` per image it falls on, or one `(None, why)`
    /// when it falls on none (or has no shape).
    fn place(&self, geometry: Option<&Geometry>) -> Vec<(Option<usize>, Result<PixelShape, Problem>)> {
        let g = match geometry {
            None => return vec![(None, Err(Problem::NullGeometry))],
            Some(g) if g.is_empty() => return vec![(None, Err(Problem::EmptyGeometry))],
            Some(g) => g,
        };
        let all: Vec<Result<PixelShape, Problem>> = self
            .items
            .iter()
            .zip(&self.transforms)
            .map(|(item, t)| place_on_raster(g, t.as_ref(), &item.grid))
            .collect();
        let on: Vec<(Option<usize>, Result<PixelShape, Problem>)> = all
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_ok())
            .map(|(i, p)| (Some(i), p.clone()))
            .collect();
        if !on.is_empty() {
            return on;
        }
        // Off every item: outside if it could be placed anywhere, else why not.
        let problem = if all.contains(&Err(Problem::OutsideRaster)) {
            Problem::OutsideRaster
        } else {
            all.first()
                .and_then(|p| p.clone().err())
                .unwrap_or(Problem::OutsideRaster)
        };
        vec![(None, Err(problem))]
    }
}

/// The layer of `dataset` (features `name`) that `query` reads: its `--layer`, or the one
/// layer with geometries (several need `--layer`); an SQL statement's result is read instead.
fn pick_layer(dataset: &Dataset, name: &str, query: &FeatureQuery) -> Result<usize> {
    match (&query.layer, &query.sql) {
        (_, Some(_)) => Ok(0),
        (None, None) => {
            let with_geometry: Vec<(usize, String)> = dataset
                .layers()
                .enumerate()
                .filter(|(_, l)| l.defn().geom_fields().count() > 0)
                .map(|(i, l)| (i, l.name()))
                .collect();
            match with_geometry.as_slice() {
                [] => Ok(0),
                [(i, _)] => Ok(*i),
                many => bail_input!(
                    "features {name} have {} layers with geometries ({}); say which to classify with --layer",
                    many.len(),
                    many.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        (Some(wanted), None) => match dataset.layers().position(|l| &l.name() == wanted) {
            Some(i) => Ok(i),
            None => bail_input!(
                "features {name} have no layer \"{wanted}\" (layers: {}); pass one of them to --layer",
                dataset.layers().map(|l| l.name()).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

/// What is known of the layer read before its features are: columns, CRS, geometry type,
/// feature count, name.
struct LayerFacts {
    fields: Vec<FieldSpec>,
    srs_wkt: Option<String>,
    geometry_type: OGRwkbGeometryType::Type,
    count: Option<u64>,
    service_count: Option<u64>,
    layer_name: String,
}

impl LayerFacts {
    /// Reads the facts of `layer` (features `name`) as `query` reads it.
    fn read(
        layer: &gdal::vector::Layer<'_>,
        name: &str,
        query: &FeatureQuery,
        server_filter: &LayerFilter,
    ) -> Result<LayerFacts> {
        if layer.defn().geom_fields().count() == 0 {
            bail_input!(
                "features {name} (layer {}) have no geometry column, so there is nothing to place on the raster; give a layer with geometries (points, lines or polygons), or run without --features to classify whole images",
                layer.name()
            );
        }
        // A service layer's own count under the server's filter, asked for apart from the pages
        // (not when what is read is filtered here).
        let filtered = query.sql.is_some() || query.where_clause.is_some();
        let service_count = service::feature_count(name, server_filter).filter(|_| !filtered);
        Ok(LayerFacts {
            fields: field_specs(layer),
            srs_wkt: features_crs(layer, query.srs_override.as_deref())?,
            geometry_type: layer.defn().geometry_type(),
            count: service_count.or_else(|| layer.try_feature_count()),
            service_count,
            layer_name: layer.name(),
        })
    }
}

/// The columns of `layer` as the output takes them: types OGR cannot write everywhere are read
/// as text.
fn field_specs(layer: &gdal::vector::Layer<'_>) -> Vec<FieldSpec> {
    layer
        .defn()
        .fields()
        .map(|f| {
            let ty = f.field_type();
            let supported = matches!(
                ty,
                OGRFieldType::OFTString
                    | OGRFieldType::OFTStringList
                    | OGRFieldType::OFTReal
                    | OGRFieldType::OFTRealList
                    | OGRFieldType::OFTInteger
                    | OGRFieldType::OFTIntegerList
                    | OGRFieldType::OFTInteger64
                    | OGRFieldType::OFTInteger64List
                    | OGRFieldType::OFTDate
                    | OGRFieldType::OFTDateTime
            );
            FieldSpec {
                name: f.name(),
                field_type: if supported { ty } else { OGRFieldType::OFTString },
                width: if supported { f.width() } else { 0 },
                precision: if supported { f.precision() } else { 0 },
                as_text: !supported,
            }
        })
        .collect()
}

/// The features' CRS as WKT: `--features-crs` when given, else the layer's.
fn features_crs(layer: &gdal::vector::Layer<'_>, srs_override: Option<&str>) -> Result<Option<String>> {
    match srs_override {
        None => Ok(layer.spatial_ref().and_then(|s| s.to_wkt().ok())),
        Some(definition) => match SpatialRef::from_definition(definition) {
            Ok(srs) => Ok(Some(srs.to_wkt()?)),
            Err(err) => bail_input!(
                "--features-crs \"{definition}\" is not a coordinate reference system GDAL knows ({err}); use e.g. EPSG:32633 or a WKT/PROJ string"
            ),
        },
    }
}

/// The result layer of `sql` on `dataset` (features `name`).
fn execute_sql<'a>(
    dataset: &'a Dataset,
    sql: &str,
    dialect: SqlDialect,
    name: &str,
) -> Result<gdal::vector::sql::ResultSet<'a>> {
    gdal_ffi::reset_errors();
    match dataset.execute_sql(sql, None, dialect.gdal()) {
        Ok(Some(result)) => Ok(result),
        Ok(None) => {
            let reason = gdal_ffi::last_error();
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            };
            bail_input!("--sql on features {name} gave no result layer{reason}; give a SELECT statement")
        }
        Err(err) => {
            let reason = match err {
                gdal::errors::GdalError::CplError { msg, .. } => msg,
                other => other.to_string(),
            };
            bail_input!("--sql on features {name} failed: {reason}; fix the statement (see --dialect)")
        }
    }
}

/// Sets the attribute filter `filter` (`--where`) on `layer` of features `name`, and reads the
/// first feature through it: drivers that hand the filter to their database (GeoPackage) only
/// find a mistake in it then.
fn set_filter(layer: &mut gdal::vector::Layer<'_>, filter: &str, name: &str) -> Result<()> {
    let refused = |reason: String| {
        error::input_error(format!(
            "--where \"{filter}\" is not a filter for features {name}: {reason}; write it as ogr2ogr -where takes it, e.g. \"id > 3\""
        ))
    };
    gdal_ffi::reset_errors();
    if layer.set_attribute_filter(filter).is_err() {
        return Err(refused(gdal_ffi::last_error()));
    }
    if vector::first_read_fails(layer) {
        return Err(refused(gdal_ffi::last_error()));
    }
    Ok(())
}

/// Projects a geometry into raster pixel space and checks that it touches the raster.
fn place_on_raster(
    geometry: &Geometry,
    transform: Option<&CoordTransform>,
    raster: &RasterGrid,
) -> Result<PixelShape, Problem> {
    let projected;
    let geometry = match transform {
        None => geometry,
        Some(t) => {
            projected = geometry.transform(t).map_err(|_| Problem::ReprojectionFailed)?;
            &projected
        }
    };
    let planar = vector::planar_2d(geometry).ok_or(Problem::UnsupportedGeometry)?;
    let geometry = &planar;
    let flat = gdal::vector::geometry_type_flatten(geometry.geometry_type());
    let world = geometry.to_geo().map_err(|_| Problem::UnsupportedGeometry)?;
    let pixel = world.map_coords(|c| {
        let (col, row) = raster.world_to_pixel(c.x, c.y);
        geo::Coord { x: col, y: row }
    });
    let rect = pixel.bounding_rect().ok_or(Problem::EmptyGeometry)?;
    let envelope = [rect.min().x, rect.min().y, rect.max().x, rect.max().y];
    if envelope.iter().any(|v| !v.is_finite()) {
        return Err(Problem::ReprojectionFailed);
    }
    let (w, h) = (raster.width as f64, raster.height as f64);
    if envelope[2] < 0.0 || envelope[3] < 0.0 || envelope[0] > w || envelope[1] > h {
        return Err(Problem::OutsideRaster);
    }
    Ok(PixelShape {
        envelope,
        geometry: pixel,
        is_point: matches!(flat, OGRwkbGeometryType::wkbPoint | OGRwkbGeometryType::wkbMultiPoint),
        is_polygon: matches!(
            flat,
            OGRwkbGeometryType::wkbPolygon | OGRwkbGeometryType::wkbMultiPolygon
        ),
    })
}

/// Whether a polygon is valid: by GEOS up to [`validity::GEOS_VERTICES`] vertices (every OGC
/// rule), by [`validity::is_valid`] beyond (GEOS can take minutes on a finely jagged outline).
fn is_valid_polygon(geometry: &Geometry) -> bool {
    if vertex_count(geometry) <= validity::GEOS_VERTICES {
        return messages::gdal_muted(|| geometry.is_valid());
    }
    match geometry.to_geo() {
        Ok(shape) => validity::is_valid(&shape),
        Err(_) => messages::gdal_muted(|| geometry.is_valid()),
    }
}

/// The vertices of a geometry, its parts and rings included.
fn vertex_count(geometry: &Geometry) -> usize {
    match geometry.geometry_count() {
        0 => geometry.point_count(),
        parts => (0..parts).map(|i| vertex_count(&geometry.get_geometry(i))).sum(),
    }
}

fn is_areal(geometry: &Geometry) -> bool {
    matches!(
        gdal::vector::geometry_type_flatten(geometry.geometry_type()),
        OGRwkbGeometryType::wkbPolygon | OGRwkbGeometryType::wkbMultiPolygon
    )
}

/// A short human name for a CRS: `EPSG:32633` or its name.
pub fn srs_label(wkt: &str) -> String {
    let Ok(srs) = SpatialRef::from_wkt(wkt) else {
        return "unknown CRS".into();
    };
    match (srs.auth_name(), srs.auth_code()) {
        (Some(auth), Ok(code)) => format!("{auth}:{code}"),
        _ => srs.name().unwrap_or_else(|| "unnamed CRS".into()),
    }
}
