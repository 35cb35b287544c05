//! Static int8 quantization of an ONNX classifier, written by this program into the graph:
//! QuantizeLinear/DequantizeLinear pairs around convolutions and matrix products, which ONNX
//! Runtime fuses into its int8 kernels.
//!
//! The steps, each in its file: the model read and checked for what a rewrite must keep
//! ([`onnx_model`]); BatchNormalization folded into the convolutions before it ([`fold`]); which
//! nodes run in int8 and which values get a quantize/dequantize pair, the classifier head kept
//! in fp32 ([`plan`]); per-channel symmetric int8 weights and int32 biases ([`weights`]); the
//! activation ranges from calibration statistics, by min/max or a percentile ([`ranges`]); the
//! int8 graph and the calibration probe written ([`rewrite`]); and what the int8 package records
//! in its `.emd` ([`record`]).
//!
//! Nothing here runs a model: the calibration runs and the gate are the caller's
//! (`run::quantize`).

pub mod fold;
pub mod onnx_model;
pub mod plan;
pub mod ranges;
pub mod record;
pub mod rewrite;
pub mod weights;

pub use onnx_model::OnnxModel;
pub use plan::QuantPlan;
pub use ranges::{Method, RangeStats};
pub use record::QuantRecord;
