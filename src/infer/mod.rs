//! Inference: ONNX Runtime located and loaded at run time ([`runtime`]), the execution provider
//! chosen for `--device` ([`device`]), a model checked against what its package declares and run
//! on batches of chips ([`classifier`]), raw outputs turned into probabilities ([`activation`], decided once per model), and the ONNX
//! format itself ([`onnx_proto`]).
//!
//! Nothing here knows about `.emd` files: callers describe the model with [`Expected`].

pub mod activation;
pub mod classifier;
pub mod device;
pub mod onnx_proto;
pub mod runtime;

pub use activation::Activation;
pub use classifier::{Classifier, Expected, SessionOptions};
pub use device::Device;
pub use runtime::{describe_model, init_runtime, locate_runtime, runtime_version, TensorInfo};
