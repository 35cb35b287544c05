//! Writing results: a GeoPackage (or another OGR vector format, [`format`]) holding the input
//! geometry and attributes plus the label, `Confidence` and `Status` fields ([`schema`], written by
//! [`ogr`]), or a CSV table ([`csv`]) for images without a spatial reference.
//!
//! Everything is written to a temporary file beside the output and renamed over it at the end
//! ([`target`]), so a failed or interrupted run leaves either the previous output or nothing.
//! Also here: the rows' [`writer`], the output [`layer`]'s settings, the QGIS layer style
//! ([`style`]), what an earlier run wrote ([`resume`]) and a shard records ([`shard`]), and the
//! outputs `merge` joins and `compare` reads ([`merge`], [`compare`], [`existing`]).

pub mod compare;
pub mod csv;
pub mod existing;
pub mod feature_layer;
pub mod format;
pub mod layer;
pub mod lock;
pub mod merge;
pub mod ogr;
pub mod resume;
pub mod schema;
pub mod shard;
pub mod style;
pub mod target;
pub mod writer;

pub use format::Format;
pub use layer::LayerSettings;
pub use schema::{
    field_text, Column, Confidence, OutputRow, OutputSchema, CONFIDENCE_FIELD, IMAGE_ID_FIELD, SOURCE_ID_FIELD,
    STATUS_FIELD,
};
pub use style::StyleMode;
pub use target::{OutputTarget, WritePolicy};
pub use writer::OutputWriter;
