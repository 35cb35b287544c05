//! classify-objects: Esri "Classify Objects Using Deep Learning" without ArcGIS.
//!
//! The modules follow the data: [`package`] (a `.dlpk`/`.emd` with its ONNX model, described by
//! [`emd`]) -> [`raster`] and [`features`] (GDAL/OGR inputs) -> [`chips`] (the pixels a model sees)
//! -> [`inference`] (ONNX Runtime) -> [`output`] (GeoPackage or CSV), driven by [`pipeline`].
//! [`cli`] holds the typed flags and [`plan`] the validated run built from them; [`error`] the one
//! error vocabulary.

pub mod arguments;
pub mod chips;
pub mod cli;
pub mod compare;
pub mod device;
pub mod emd;
pub mod error;
pub mod features;
pub mod inference;
pub mod inspect;
pub mod interrupt;
pub mod items;
pub mod merge;
pub mod output;
pub mod pack;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod raster;
pub mod report;
pub mod source;
pub mod style;
pub mod truth;
