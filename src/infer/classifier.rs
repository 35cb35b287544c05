//! A model checked against what its package declares, scoring batches of chips with ONNX Runtime.

use anyhow::{Context, Result};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::bail_input;
use crate::infer::activation;
use crate::infer::activation::{activate, Activation};
use crate::infer::device;
use crate::infer::device::Device;
use crate::model::definition::{LabelMode, ModelDefinition};

/// What the package declares about the model's input and output, checked when the session is
/// created.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Input channels (bands).
    pub channels: usize,
    /// Chip height in pixels.
    pub height: usize,
    /// Chip width in pixels.
    pub width: usize,
    /// Scores per chip (classes).
    pub classes: usize,
    /// Whether the input is channels-last (`NHWC`).
    pub channels_last: bool,
    /// How the package says outputs become probabilities (softmax for single-label, sigmoid for
    /// multi-label models); a model whose graph already ends in Softmax or Sigmoid gets none.
    pub activation: Activation,
}

impl Expected {
    /// What the model must take and give, as `definition` declares it.
    pub fn declared_by(definition: &ModelDefinition) -> Expected {
        Expected {
            channels: definition.extract_bands.len(),
            height: definition.image_height,
            width: definition.image_width,
            classes: definition.classes.len(),
            channels_last: definition.channels_last,
            activation: match definition.label_mode {
                LabelMode::SingleLabel => Activation::Softmax,
                LabelMode::MultiLabel => Activation::Sigmoid,
            },
        }
    }
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Where to run.
    pub device: Device,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default).
    pub intra_op_threads: usize,
}

/// A model checked against its `.emd`, ready to score batches of chips.
pub struct Classifier {
    session: Session,
    input_name: String,
    /// Model input channels.
    pub channels: usize,
    /// Chip height and width the model is fed.
    pub chip_size: (usize, usize),
    /// The batch size the model requires, if its batch dimension is fixed.
    pub fixed_batch: Option<usize>,
    /// Number of classes (model outputs per chip).
    pub classes: usize,
    channels_last: bool,
    /// How outputs become probabilities, decided once for the model.
    pub activation: Activation,
    /// The execution provider that runs the model.
    pub execution_provider: &'static str,
}

impl Classifier {
    /// Loads `onnx` (named `name` in messages) on the CPU with one thread and checks it against
    /// what `definition` declares, as a run would: what `pack`, `convert` and `inspect` do
    /// before they write or report anything.
    pub fn check(
        environment: &Environment,
        onnx: &[u8],
        name: &str,
        definition: &ModelDefinition,
    ) -> Result<Classifier> {
        let options = SessionOptions {
            device: Device::Cpu,
            intra_op_threads: 1,
        };
        Classifier::new(environment, onnx, name, &Expected::declared_by(definition), &options)
    }

    /// Creates the session and checks the model's input and output against `expected`.
    pub fn new(
        environment: &Environment,
        onnx: &[u8],
        model_name: &str,
        expected: &Expected,
        options: &SessionOptions,
    ) -> Result<Classifier> {
        let (session, execution_provider) = open_session(environment, onnx, model_name, options)?;
        let (input_name, dims) = check_input(&session, model_name, expected)?;
        check_output(&session, model_name, expected.classes)?;
        Ok(Classifier {
            session,
            input_name,
            channels: expected.channels,
            chip_size: (expected.height, expected.width),
            fixed_batch: (dims[0] > 0).then_some(dims[0] as usize),
            classes: expected.classes,
            channels_last: expected.channels_last,
            activation: activation::for_model(onnx, expected.activation),
            execution_provider,
        })
    }

    /// Scores `count` chips laid out one after another (`C x H x W` each) and returns
    /// `count * classes` probabilities: the model outputs through [`Classifier::activation`]
    /// (softmax, sigmoid, or none for a graph that ends in Softmax or Sigmoid).
    pub fn predict(&mut self, chips: &[f32], count: usize) -> Result<Vec<f32>> {
        let (h, w) = self.chip_size;
        let per_chip = self.channels * h * w;
        assert_eq!(chips.len(), count * per_chip, "chip buffer does not hold {count} chips");
        let mut scores = Vec::with_capacity(count * self.classes);
        let step = self.fixed_batch.unwrap_or(count.max(1));
        let mut padded = Vec::new();
        for start in (0..count).step_by(step) {
            let n = step.min(count - start);
            let mut batch = &chips[start * per_chip..(start + n) * per_chip];
            // A model with a fixed batch dimension gets full batches, zero-padded.
            let run_n = self.fixed_batch.unwrap_or(n);
            if run_n != n {
                padded.clear();
                padded.extend_from_slice(batch);
                padded.resize(run_n * per_chip, 0.0);
                batch = &padded;
            }
            let raw = self.run(batch, run_n)?;
            scores.extend(raw.into_iter().take(n * self.classes));
        }
        for row in scores.chunks_exact_mut(self.classes) {
            activate(row, self.activation);
        }
        Ok(scores)
    }

    fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<f32>> {
        let (h, w) = self.chip_size;
        let c = self.channels;
        let transposed;
        let (shape, data) = if self.channels_last {
            transposed = to_channels_last(batch, n, c, h, w);
            ([n, h, w, c], transposed.as_slice())
        } else {
            ([n, c, h, w], batch)
        };
        let tensor = TensorRef::from_array_view((shape, data)).context("building the input tensor")?;
        let input_name = self.input_name.clone();
        let outputs = self
            .session
            .run(ort::inputs![input_name.as_str() => tensor])
            .context("running the model")?;
        let (out_shape, values) = outputs[0]
            .try_extract_tensor::<f32>()
            .context("reading the model output as float32")?;
        let total = values.len();
        if total != n * self.classes {
            bail_input!(
                "the model output has shape {out_shape:?} ({total} values for {n} chips) but the .emd lists {} classes; list one class per model output in Classes",
                self.classes
            );
        }
        Ok(values.to_vec())
    }
}

/// An element type as ONNX tools name it (`int64`, `float32`, `uint8`).
fn element_name(ty: TensorElementType) -> String {
    format!("{ty:?}").to_lowercase()
}

/// `n` chips of `c x h x w` laid out channels-last (`h x w x c`), for `NHWC` models.
pub fn to_channels_last(batch: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; batch.len()];
    for b in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                out[b * c * h * w + p * c + ch] = batch[b * c * h * w + ch * h * w + p];
            }
        }
    }
    out
}

/// The ONNX Runtime session of `onnx` with `options`, and the execution provider that runs it.
pub fn open_session(
    environment: &Environment,
    onnx: &[u8],
    model_name: &str,
    options: &SessionOptions,
) -> Result<(Session, &'static str)> {
    let mut builder = Session::builder(environment).context("creating an ONNX Runtime session")?;
    // ONNX Runtime's threads spin while a batch runs (light models with many small operators
    // gain about 50 %) and sleep as soon as it returns, leaving the cores to the chip workers
    // between batches (spinning throughout costs reading-bound runs 25 %; see bench/RESULTS.md).
    builder = builder
        .with_config_entry("session.force_spinning_stop", "1")
        .map_err(ort::Error::<()>::from)?;
    if options.intra_op_threads > 0 {
        builder = builder
            .with_intra_threads(options.intra_op_threads)
            .map_err(ort::Error::<()>::from)?;
    }
    let (mut builder, execution_provider) = device::register(builder, options.device)?;
    match builder.commit_from_memory(onnx) {
        Ok(session) => Ok((session, execution_provider)),
        Err(err) => bail_input!(
            "model {model_name} is not a valid ONNX model ONNX Runtime can load ({err}); check that ModelFile names the exported .onnx file"
        ),
    }
}

/// Checks the model's one input against what the package declares; returns its name and shape.
fn check_input(session: &Session, model_name: &str, expected: &Expected) -> Result<(String, Vec<i64>)> {
    let [input] = session.inputs() else {
        bail_input!(
            "model {model_name} has {} inputs ({}); an object classifier takes one image tensor",
            session.inputs().len(),
            session
                .inputs()
                .iter()
                .map(|i| i.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let input_name = input.name().to_string();
    let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
        bail_input!(
            "model {model_name} input \"{input_name}\" is not a tensor; an object classifier takes an image tensor"
        );
    };
    if *ty != TensorElementType::Float32 {
        bail_input!("model {model_name} input \"{input_name}\" has element type {}; classify-objects feeds float32 chips (re-export the model with a float input)", element_name(*ty));
    }
    let dims: Vec<i64> = shape.to_vec();
    if dims.len() != 4 {
        bail_input!(
            "model {model_name} input \"{input_name}\" has shape {dims:?}; an image classifier takes [batch, channels, height, width]"
        );
    }
    let (c_dim, h_dim, w_dim) = if expected.channels_last {
        (dims[3], dims[1], dims[2])
    } else {
        (dims[1], dims[2], dims[3])
    };
    let fixed = |d: i64| (d > 0).then_some(d as usize);
    if let Some(c) = fixed(c_dim).filter(|&c| c != expected.channels) {
        bail_input!(
            "model {model_name} takes {c} input channel(s) but its .emd ExtractBands lists {} band(s); make ExtractBands match the model",
            expected.channels
        );
    }
    for (what, model_dim, emd_dim, key) in [
        ("height", h_dim, expected.height, "ImageHeight"),
        ("width", w_dim, expected.width, "ImageWidth"),
    ] {
        if let Some(d) = fixed(model_dim).filter(|&d| d != emd_dim) {
            bail_input!(
                "model {model_name} takes chips of {what} {d} but its .emd says {key} {emd_dim}; set {key} to {d}"
            );
        }
    }
    Ok((input_name, dims))
}

/// Checks that the model's first output is float32 scores, one per class.
fn check_output(session: &Session, model_name: &str, classes: usize) -> Result<()> {
    let Some(output) = session.outputs().first() else {
        bail_input!("model {model_name} has no output");
    };
    let (output_name, output_type) = (output.name().to_string(), output.dtype());
    let ValueType::Tensor { ty, shape, .. } = output_type else {
        bail_input!(
            "model {model_name} output \"{output_name}\" is not a tensor but {output_type}; an object classifier outputs [batch, classes] float32 scores"
        );
    };
    if *ty != TensorElementType::Float32 {
        bail_input!(
            "model {model_name} output \"{output_name}\" has element type {}; classify-objects reads float32 class scores (re-export the model with a float32 output, e.g. its logits or probabilities rather than class indices)",
            element_name(*ty)
        );
    }
    let dims: &[i64] = shape;
    let per_chip: Vec<i64> = dims.iter().skip(1).copied().filter(|&d| d != 1).collect();
    match per_chip.as_slice() {
        [k] if *k > 0 && *k as usize != classes => bail_input!(
            "model {model_name} outputs {k} scores per chip but its .emd lists {classes} class(es); list one class per model output in Classes"
        ),
        [] if dims.len() > 1 && classes != 1 => bail_input!(
            "model {model_name} outputs one score per chip (shape {dims:?}) but its .emd lists {classes} classes; a classifier needs one score per class (re-export it with [batch, {classes}] outputs)"
        ),
        [_] | [] => Ok(()),
        _ if dims.iter().skip(1).any(|&d| d < 0) => Ok(()),
        _ => bail_input!(
            "model {model_name} output \"{output_name}\" has shape {dims:?}; an object classifier outputs [batch, classes]"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_last_transpose() {
        // One chip, 2 channels of 2 pixels: [a0 a1 | b0 b1] -> [a0 b0 a1 b1].
        assert_eq!(
            to_channels_last(&[1.0, 2.0, 3.0, 4.0], 1, 2, 1, 2),
            vec![1.0, 3.0, 2.0, 4.0]
        );
    }
}
