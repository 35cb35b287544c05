//! Choosing the ONNX Runtime execution provider for `--device`.
//!
//! CPU is always there. CUDA needs a build with the `cuda` cargo feature and the GPU build of
//! ONNX Runtime at run time (`scripts/setup-gpu.sh`); a failed `--device cuda` request is an
//! error, `--device auto` falls back to CPU and says so on stderr.

use crate::error;
use crate::messages;
use anyhow::Result;
use ort::session::builder::SessionBuilder;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// CUDA execution provider on GPU `id`; failure to start it is an error. `spelled` is the
    /// name given (`cuda`, `gpu`), empty for `cuda:N`, so that messages echo what was typed.
    Cuda {
        /// The GPU's index.
        id: i32,
        /// The name given for GPU 0 (`cuda`, `gpu`), empty for `cuda:N`.
        spelled: &'static str,
    },
    /// CUDA on GPU 0 when it starts, CPU otherwise (said on stderr).
    Auto,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(text: &str) -> Result<Device, String> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "cpu" => Ok(Device::Cpu),
            "auto" => Ok(Device::Auto),
            "cuda" => Ok(Device::Cuda { id: 0, spelled: "cuda" }),
            "gpu" => Ok(Device::Cuda { id: 0, spelled: "gpu" }),
            _ => text
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(|id| Device::Cuda { id, spelled: "" })
                .ok_or_else(|| format!("unknown device \"{text}\"; use cpu, cuda, cuda:N or auto")),
        }
    }
}

impl std::fmt::Display for Device {
    /// The device as given to `--device`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Auto => f.write_str("auto"),
            Device::Cuda { id, spelled: "" } => write!(f, "cuda:{id}"),
            Device::Cuda { spelled, .. } => f.write_str(spelled),
        }
    }
}

/// Name of ONNX Runtime's CPU execution provider.
pub const CPU: &str = "CPUExecutionProvider";
/// Name of ONNX Runtime's CUDA execution provider.
pub const CUDA: &str = "CUDAExecutionProvider";

/// Registers the execution provider for `device` on `builder`; returns the builder and the name
/// of the provider that will run the model.
pub fn register(builder: SessionBuilder, device: Device) -> Result<(SessionBuilder, &'static str)> {
    match device {
        Device::Cpu => Ok((builder, CPU)),
        Device::Cuda { id, .. } => register_cuda(builder, id).map_err(|reason| {
            error::input_error(format!(
                "--device {device} cannot be used: {reason}; use --device cpu, or --device auto to fall back to the CPU"
            ))
        }),
        Device::Auto => match register_cuda_recovering(builder, 0) {
            (builder, Ok(())) => Ok((builder, CUDA)),
            (builder, Err(reason)) => {
                messages::info(format_args!("CUDA is not available ({reason}); running on the CPU"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("CUDA:1".parse::<Device>(), Ok(Device::Cuda { id: 1, spelled: "" }));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda { id: 0, spelled: "cuda" }));
        assert_eq!("GPU".parse::<Device>(), Ok(Device::Cuda { id: 0, spelled: "gpu" }));
        for name in ["cpu", "auto", "cuda", "gpu", "cuda:3"] {
            assert_eq!(name.parse::<Device>().unwrap().to_string(), name);
        }
        assert!("tpu".parse::<Device>().is_err());
    }
}
