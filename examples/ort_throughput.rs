//! Pure ONNX Runtime throughput of a model package: the same session setup and `predict` call
//! that classify-objects uses, fed a fixed batch of chips, no raster, no features, no output.
//! The benchmark (`bench/run.sh`) divides classify-objects' end-to-end rate by this one.
//!
//! ```text
//! cargo run --release --example ort_throughput -- MODEL.dlpk BATCH_SIZE INTRA_OP_THREADS SECONDS
//! ```
//! Prints one line: `images_per_second=<f64> batches=<n> batch_size=<n>`.

use std::path::Path;
use std::time::{Duration, Instant};

use classify_objects::ModelPackage;
use classify_objects::{init_runtime, locate_runtime, Classifier, Device, Expected, SessionOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, batch, threads, seconds] = args.as_slice() else {
        anyhow::bail!("usage: ort_throughput MODEL.dlpk BATCH_SIZE INTRA_OP_THREADS SECONDS");
    };
    let (batch, threads, seconds): (usize, usize, f64) = (batch.parse()?, threads.parse()?, seconds.parse()?);
    let package = ModelPackage::open(Path::new(model))?;
    let environment = init_runtime(&locate_runtime(None)?)?;
    let options = SessionOptions {
        device: Device::Cpu,
        intra_op_threads: threads,
    };
    let mut classifier = Classifier::new(
        &environment,
        &package.onnx,
        &package.model_name,
        &Expected::declared_by(&package.definition),
        &options,
    )?;
    let d = &package.definition;
    let per_chip = d.extract_bands.len() * d.image_width * d.image_height;
    // Deterministic, non-constant input (a constant one can be faster on some kernels).
    let chips: Vec<f32> = (0..batch * per_chip)
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect();
    for _ in 0..3 {
        classifier.predict(&chips, batch)?; // warm-up
    }
    let started = Instant::now();
    let mut batches = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        classifier.predict(&chips, batch)?;
        batches += 1;
    }
    let rate = (batches as f64 * batch as f64) / started.elapsed().as_secs_f64();
    println!("images_per_second={rate:.2} batches={batches} batch_size={batch}");
    Ok(())
}
