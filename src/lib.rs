//! classify-objects: Esri "Classify Objects Using Deep Learning" without ArcGIS.
//!
//! The folders follow the data: [`model`] (the `.emd` and its package) and [`input`] (GDAL
//! rasters, OGR features) -> [`chips`] (the pixels a model sees) -> [`infer`] (ONNX Runtime) ->
//! [`output`] (GeoPackage, other OGR formats, CSV), driven by [`run`] (the validated plan and the
//! pipeline) and described by [`report`]. [`cli`] holds the typed flags; [`error`] the one error
//! vocabulary, which every other module may use and which uses none of them.
//!
//! Dependencies point one way: `cli` -> `run` -> {`report`, `chips`, `model`, `input`, `infer`,
//! `output`} -> `error`; among those, `report` -> {`input`, `output`}, `chips` -> {`model`,
//! `input`}, `model` -> {`infer`, `output`}, `output` -> `input` (opening sources to merge and
//! compare).

pub mod chips;
pub mod cli;
pub mod commands;
pub mod error;
pub mod gdal_ffi;
pub mod infer;
pub mod input;
pub mod messages;
pub mod model;
pub mod onnx_proto;
pub mod output;
pub mod report;
pub mod run;
