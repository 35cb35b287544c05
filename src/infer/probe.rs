//! A model run for its inner values: the calibration probe `quantize` writes (the fp32 model
//! with the values to calibrate as extra outputs), fed batches of chips, each value handed to
//! the caller as it comes out.

use anyhow::{Context, Result};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use crate::infer::classifier::{open_session, to_channels_last, Expected, SessionOptions};

/// The probe's session.
pub struct Probe {
    session: Session,
    input_name: String,
    values: Vec<String>,
    expected: Expected,
    fixed_batch: Option<usize>,
}

impl Probe {
    /// Loads the probe `onnx` (named `name` in messages) whose outputs include `values`.
    pub fn new(
        environment: &Environment,
        onnx: &[u8],
        name: &str,
        expected: &Expected,
        values: Vec<String>,
        options: &SessionOptions,
    ) -> Result<Probe> {
        let (session, _) = open_session(environment, onnx, name, options)?;
        let input = session.inputs().first().context("the calibration probe has no input")?;
        let input_name = input.name().to_string();
        let fixed_batch = input
            .dtype()
            .tensor_shape()
            .and_then(|s| s.first().copied())
            .filter(|&d| d > 0)
            .map(|d| d as usize);
        Ok(Probe {
            session,
            input_name,
            values,
            expected: expected.clone(),
            fixed_batch,
        })
    }

    /// The batch size the model requires, if its batch dimension is fixed.
    pub fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }

    /// Runs `count` chips (`C x H x W` each, one batch; a fixed batch is filled with copies of
    /// the last chip) and hands `sink` each value's numbers, by its position in `values`.
    pub fn run(&mut self, chips: &[f32], count: usize, mut sink: impl FnMut(usize, &[f32])) -> Result<()> {
        let Expected {
            channels: c,
            height: h,
            width: w,
            channels_last,
            ..
        } = self.expected;
        let per_chip = c * h * w;
        let n = self.fixed_batch.unwrap_or(count);
        let mut batch = chips[..count * per_chip].to_vec();
        while batch.len() < n * per_chip {
            batch.extend_from_within((count - 1) * per_chip..count * per_chip);
        }
        batch.truncate(n * per_chip);
        let (shape, data) = if channels_last {
            ([n, h, w, c], to_channels_last(&batch, n, c, h, w))
        } else {
            ([n, c, h, w], batch)
        };
        let tensor = TensorRef::from_array_view((shape, data.as_slice())).context("building the input tensor")?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .context("running the calibration probe")?;
        for (k, name) in self.values.iter().enumerate() {
            let value = outputs
                .get(name.as_str())
                .with_context(|| format!("the calibration probe did not output {name}"))?;
            let (_, numbers) = value
                .try_extract_tensor::<f32>()
                .with_context(|| format!("reading {name} as float32"))?;
            sink(k, numbers);
        }
        Ok(())
    }
}
