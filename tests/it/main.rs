//! The integration tests, one crate by feature (one link against GDAL and ONNX Runtime): they
//! run the built program on bundled or generated material with known answers. Helpers shared by
//! several features live once in `support`. The real Slurm test (`tests/slurm.rs`) and the
//! layout check (`tests/layout.rs`) are crates of their own: the first needs the CPUs to itself.

mod support;

mod classify;
mod cli;
mod inputs;
mod outputs;
mod packages;
mod reports;
mod resume_and_shards;
mod services;
