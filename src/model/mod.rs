//! The model: its Esri definition ([`definition`], the `.emd`), the package that holds it with
//! the ONNX model ([`package`], `.dlpk` or bare `.emd`), the model arguments a run may set
//! ([`arguments`]), the colour of each class ([`colors`]), the packages `pack` and `convert`
//! write ([`pack`], [`convert`]), and the int8 graph `quantize` writes ([`quantize`]).
//!
//! arcgis.learn FeatureClassifier packages hold PyTorch weights instead of ONNX: they are
//! converted in memory ([`arcgis_learn`]).

pub mod arcgis_learn;
pub mod arguments;
pub mod colors;
pub mod convert;
pub mod definition;
pub mod pack;
pub mod package;
pub mod quantize;

pub use definition::ModelDefinition;
pub use package::ModelPackage;
