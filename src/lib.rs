//! classify-objects: Esri "Classify Objects Using Deep Learning" without ArcGIS.
//!
//! The folders follow the data: `model` (the `.emd` and its package) and `input` (GDAL rasters,
//! OGR features) -> `chips` (the pixels a model sees) -> `infer` (ONNX Runtime) -> `output`
//! (GeoPackage, other OGR formats, CSV), driven by `run` (the validated plan and the pipeline)
//! and described by `report`; [`cli`] holds the typed flags and [`commands`] one function per
//! subcommand. `ARCHITECTURE.md` draws the layers and lists every file.
//!
//! The crate is a program first: its modules are private to it, so that the compiler finds
//! code nothing uses. The public surface is [`cli`] and [`commands`] (for `main.rs`) and the few
//! items below, which the integration tests, examples and fuzz targets use.

pub(crate) mod chips;
pub mod cli;
pub(crate) mod clock;
pub mod commands;
pub(crate) mod digest;
pub(crate) mod error;
pub(crate) mod gdal_ffi;
pub(crate) mod infer;
pub(crate) mod input;
pub(crate) mod messages;
pub(crate) mod model;
pub(crate) mod onnx_proto;
pub(crate) mod output;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod secrets;
pub(crate) mod stop;

pub use error::exit_code;
pub use infer::{init_runtime, locate_runtime, Classifier, Device, Expected, SessionOptions};
pub use input::source::{open as open_source, SourceKind};
pub use model::definition::{BandSelector, ImageSpace, ModelDefinition};
pub use model::ModelPackage;

/// Entry points for the fuzz targets: the parsers that read untrusted bytes.
pub mod fuzzing {
    pub use crate::model::arcgis_learn::network::detect as detect_network;
    pub use crate::model::arcgis_learn::pickle::load_state_dict;
    pub use crate::model::arcgis_learn::pth::read as read_pth;
    pub use crate::model::arguments::{parse_esri_string, resolve as resolve_arguments};
}
