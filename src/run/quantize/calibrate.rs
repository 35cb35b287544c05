//! Calibration: the fp32 model (BatchNormalization folded) run over the calibration chips with
//! every value to quantize as an extra output, twice: once for each value's minimum and maximum,
//! once for its histogram between them. The graph input's values are the chips themselves.

use anyhow::Result;
use ort::environment::Environment;

use crate::bail_input;
use crate::infer::probe::Probe;
use crate::infer::{Expected, SessionOptions};
use crate::model::quantize::rewrite::probe_model;
use crate::model::quantize::{OnnxModel, QuantPlan, RangeStats};
use crate::run::interrupt;
use crate::run::quantize::sample::Chips;

/// How the probe's session is made: ONNX Runtime, the model's declared shapes, the session's
/// options, and the model's name for messages.
pub struct ProbeSession<'a> {
    /// ONNX Runtime.
    pub environment: &'a Environment,
    /// The input and output the `.emd` declares.
    pub expected: &'a Expected,
    /// Device and threads.
    pub options: &'a SessionOptions,
    /// The model, as messages name it.
    pub name: &'a str,
}

/// The statistics of every calibrated value of `plan` over `chips`, `batch_size` chips a run.
pub fn measure(
    session: &ProbeSession,
    folded: &OnnxModel,
    plan: &QuantPlan,
    chips: &Chips,
    batch_size: usize,
) -> Result<RangeStats> {
    let ProbeSession {
        environment,
        expected,
        options,
        name,
    } = *session;
    let graph_inputs: Vec<String> = folded
        .proto
        .graph
        .iter()
        .flat_map(|g| &g.input)
        .filter_map(|i| i.name.clone())
        .collect();
    let names = plan.calibrated();
    // The graph input is measured from the chips; every other value from the probe's outputs.
    let inner: Vec<String> = names.iter().filter(|n| !graph_inputs.contains(n)).cloned().collect();
    let input_slot = names.iter().position(|n| graph_inputs.contains(n));
    let slot_of: Vec<usize> = inner
        .iter()
        .map(|n| names.iter().position(|m| m == n).unwrap_or_default())
        .collect();
    let probe_bytes = probe_model(folded, &inner);
    let mut probe = Probe::new(environment, &probe_bytes, name, expected, inner, options)?;
    let batch = probe.fixed_batch().unwrap_or(batch_size).max(1);
    let per_chip = chips.data.len() / chips.count.max(1);
    let mut stats = RangeStats::new(names);
    for pass in 0..2 {
        if pass == 1 {
            stats.start_histograms();
        }
        for start in (0..chips.count).step_by(batch) {
            interrupt::check()?;
            let n = batch.min(chips.count - start);
            let data = &chips.data[start * per_chip..(start + n) * per_chip];
            if let Some(slot) = input_slot {
                match pass {
                    0 => stats.observe_extent(slot, data),
                    _ => stats.observe_histogram(slot, data),
                }
            }
            probe.run(data, n, |k, values| match pass {
                0 => stats.observe_extent(slot_of[k], values),
                _ => stats.observe_histogram(slot_of[k], values),
            })?;
        }
    }
    if let Some(k) = stats.non_finite.iter().position(|&n| n > 0) {
        bail_input!(
            "model {name} computes {} non-finite value(s) (NaN or infinity) in {} on the calibration chips; an int8 range cannot hold them: check the model in fp32 first",
            stats.non_finite[k],
            stats.names[k]
        );
    }
    Ok(stats)
}
