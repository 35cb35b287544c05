//! Choosing the ONNX Runtime execution provider for `--device`.
//!
//! CPU is always there. CUDA needs a build with the `cuda` cargo feature and the GPU build of
//! ONNX Runtime at run time (`scripts/setup-gpu.sh`); a failed `--device cuda` request is an
//! error, `--device auto` falls back to CPU and says so on stderr.

use anyhow::Result;
use ort::session::builder::SessionBuilder;

use crate::inference::Device;

/// Name of ONNX Runtime's CPU execution provider.
pub const CPU: &str = "CPUExecutionProvider";
/// Name of ONNX Runtime's CUDA execution provider.
pub const CUDA: &str = "CUDAExecutionProvider";

/// Registers the execution provider for `device` on `builder`; returns the builder and the name
/// of the provider that will run the model.
pub fn register(builder: SessionBuilder, device: Device) -> Result<(SessionBuilder, &'static str)> {
    match device {
        Device::Cpu => Ok((builder, CPU)),
        Device::Cuda(id) => register_cuda(builder, id).map_err(|reason| {
            crate::error::input_error(format!(
                "--device cuda:{id} cannot be used: {reason}; use --device cpu, or --device auto to fall back to the CPU"
            ))
        }),
        Device::Auto => match register_cuda_recovering(builder, 0) {
            (builder, Ok(())) => Ok((builder, CUDA)),
            (builder, Err(reason)) => {
                eprintln!("classify-objects: CUDA is not available ({reason}); running on the CPU");
                Ok((builder, CPU))
            }
        },
    }
}

fn register_cuda(builder: SessionBuilder, id: i32) -> Result<(SessionBuilder, &'static str), String> {
    match register_cuda_recovering(builder, id) {
        (builder, Ok(())) => Ok((builder, CUDA)),
        (_, Err(reason)) => Err(reason),
    }
}

#[cfg(feature = "cuda")]
fn register_cuda_recovering(builder: SessionBuilder, id: i32) -> (SessionBuilder, Result<(), String>) {
    use ort::ep::{self, ExecutionProvider};
    match ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return (
                builder,
                Err("the loaded ONNX Runtime library has no CUDA execution provider (install the GPU build with scripts/setup-gpu.sh)".into()),
            )
        }
        Err(err) => return (builder, Err(err.to_string())),
    }
    let provider = ep::CUDA::default().with_device_id(id).build().error_on_failure();
    match builder.with_execution_providers([provider]) {
        Ok(builder) => (builder, Ok(())),
        Err(err) => {
            let reason = err.to_string();
            (err.recover(), Err(reason))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn register_cuda_recovering(builder: SessionBuilder, _id: i32) -> (SessionBuilder, Result<(), String>) {
    (
        builder,
        Err("this build has no CUDA support (rebuild with `cargo build --release --features cuda`)".into()),
    )
}
