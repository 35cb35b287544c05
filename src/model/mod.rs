//! The model: its Esri definition ([`definition`], the `.emd`), the package that holds it with
//! the ONNX model ([`package`], `.dlpk` or bare `.emd`), the model arguments a run may set
//! ([`arguments`]), and the `pack`, `inspect` and `convert` subcommands that write and describe
//! packages.
//!
//! arcgis.learn FeatureClassifier packages hold PyTorch weights instead of ONNX: they are
//! converted in memory ([`feature_classifier`]) from the `.pth` ([`pth`], read with the
//! restricted unpickler [`pickle`]) through the network found in the weights ([`resnet`]) to an
//! ONNX graph ([`graph`]), encoded over the `.pth` bytes ([`encode`]).

pub mod arguments;
pub mod convert;
pub mod definition;
pub mod encode;
pub mod feature_classifier;
pub mod graph;
pub mod inspect;
pub mod pack;
pub mod package;
pub mod pickle;
pub mod pth;
pub mod resnet;

pub use definition::ModelDefinition;
pub use package::ModelPackage;
