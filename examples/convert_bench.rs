//! Time and memory of converting an arcgis.learn FeatureClassifier package to ONNX, the way a
//! run does it: open the `.dlpk`, inflate the `.pth` once, read the weights, detect the network,
//! encode the ONNX graph. Each round runs in a fresh child process, so that the peak resident
//! memory (VmHWM) of each round is its own.
//!
//! ```text
//! cargo run --release --example convert_bench -- [PACKAGE.dlpk] [ROUNDS]
//! ```
//! Default package: `../shared/data/arcgis_learn/fc_resnet50_multilabeled_tiles/…dlpk`, 5 rounds.
//! Prints one line per round and a median line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use classify_objects::ModelPackage;

fn rss(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

const MB: f64 = 1e6;

fn one_round(package: &Path) -> anyhow::Result<()> {
    let before = rss("VmRSS:");
    let started = Instant::now();
    let opened = ModelPackage::open(package)?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = rss("VmHWM:");
    let c = opened
        .conversion
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{} holds no .pth to convert", package.display()))?;
    println!(
        "backbone={} open_and_convert_s={seconds:.3} convert_s={:.3} pth_mb={:.1} onnx_mb={:.1} rss_before_mb={:.1} peak_rss_mb={:.1} peak_over_before_mb={:.1} peak_over_before_per_pth={:.2}",
        c.architecture,
        c.seconds,
        c.weights_bytes as f64 / MB,
        c.onnx_bytes as f64 / MB,
        before as f64 / MB,
        peak as f64 / MB,
        (peak - before) as f64 / MB,
        (peak - before) as f64 / c.weights_bytes as f64,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one") {
        return one_round(Path::new(&args[2]));
    }
    let package = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/arcgis_learn/fc_resnet50_multilabeled_tiles/fc_resnet50_multilabeled_tiles.dlpk")
    });
    let rounds: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let mut lines = Vec::new();
    for _ in 0..rounds {
        let out = Command::new(std::env::current_exe()?)
            .args(["--one", &package.display().to_string()])
            .output()?;
        if !out.status.success() {
            anyhow::bail!("round failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{line}");
        lines.push(line);
    }
    let field = |line: &str, key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let median = |key: &str| {
        let mut v: Vec<f64> = lines.iter().map(|l| field(l, key)).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of {rounds}: open_and_convert_s={:.3} convert_s={:.3} peak_rss_mb={:.1} peak_over_before_mb={:.1} peak_over_before_per_pth={:.2}",
        median("open_and_convert_s"),
        median("convert_s"),
        median("peak_rss_mb"),
        median("peak_over_before_mb"),
        median("peak_over_before_per_pth")
    );
    Ok(())
}
