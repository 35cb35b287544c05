//! The model: its Esri definition ([`definition`], the `.emd`), the package that holds it with
//! the ONNX model ([`package`], `.dlpk` or bare `.emd`), the model arguments a run may set
//! ([`arguments`]), and the `pack` and `inspect` subcommands that write and describe packages.

pub mod arguments;
pub mod definition;
pub mod inspect;
pub mod pack;
pub mod package;

pub use definition::ModelDefinition;
pub use package::ModelPackage;
