//! Inference: ONNX Runtime located and loaded at run time ([`runtime`]), the execution provider
//! chosen for `--device` ([`device`]), a model checked against what its package declares and run
//! on batches of chips ([`classifier`]), and raw outputs turned into probabilities
//! ([`activation`], decided once per model from the ONNX graph, read with `onnx_proto`); a
//! model run for its inner values, to calibrate an int8 model ([`probe`]).
//!
//! What a model must take and give is read from its definition ([`Expected::declared_by`]).

pub mod activation;
pub mod classifier;
pub mod device;
pub mod probe;
pub mod runtime;

pub use classifier::{Classifier, Expected, SessionOptions};
pub use device::Device;
pub use runtime::{describe_model, init_runtime, locate_runtime, runtime_version, start_runtime};
