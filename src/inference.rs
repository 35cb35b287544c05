//! Batched ONNX inference through ONNX Runtime (`ort`, loaded dynamically).
//!
//! [`locate_runtime`] finds the ONNX Runtime shared library the way the README describes, so a
//! missing library is a clear error rather than a panic; [`Classifier`] checks the model against
//! the `.emd` (input channels, chip size, class count) and turns chips into per-class scores.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::bail_input;
use crate::emd::{LabelMode, ModelDefinition};

/// Environment variable naming the ONNX Runtime library (ort's own convention).
pub const ORT_ENV: &str = "ORT_DYLIB_PATH";

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// CUDA execution provider on the given GPU; failure to start it is an error.
    Cuda(i32),
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
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => text
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device \"{text}\"; use cpu, cuda, cuda:N or auto")),
        }
    }
}

/// The places searched for the ONNX Runtime library, in order.
pub fn runtime_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(path) = explicit {
        places.push(path.to_path_buf());
        return places;
    }
    if let Some(path) = std::env::var_os(ORT_ENV).filter(|p| !p.is_empty()) {
        places.push(PathBuf::from(path));
        return places;
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        places.push(dir.clone());
        places.push(dir.join("lib"));
        places.push(dir.join("../lib"));
    }
    // The project-local folder that scripts/setup.sh fills (for builds run from the checkout).
    places.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".onnxruntime/lib"));
    places.push(PathBuf::from(".onnxruntime/lib"));
    places.push(PathBuf::from("/opt/onnxruntime/lib"));
    places.push(PathBuf::from("/usr/local/lib"));
    places.push(PathBuf::from("/usr/lib"));
    places
}

/// Finds the ONNX Runtime shared library: `--ort-library`, `$ORT_DYLIB_PATH`, next to the
/// executable, the project's `.onnxruntime/lib`, `/opt/onnxruntime/lib`, the system folders.
pub fn locate_runtime(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates = runtime_candidates(explicit);
    for place in &candidates {
        if place.is_file() {
            return Ok(place.clone());
        }
        if place.is_dir() {
            if let Some(found) = library_in(place) {
                return Ok(found);
            }
        }
    }
    let origin = if explicit.is_some() {
        "--ort-library"
    } else if std::env::var_os(ORT_ENV).is_some_and(|p| !p.is_empty()) {
        ORT_ENV
    } else {
        "the default places"
    };
    Err(anyhow!(
        "ONNX Runtime library not found (searched {origin}: {}); run scripts/setup.sh, or point --ort-library / {ORT_ENV} at libonnxruntime.so",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}

fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join(if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else {
        "libonnxruntime.so"
    });
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so.") || (n.starts_with("libonnxruntime.") && n.ends_with(".dylib"))
            })
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

/// Loads ONNX Runtime from `library` and creates the process's one environment.
pub fn init_runtime(library: &Path) -> Result<Environment> {
    let builder = ort::init_from(library).map_err(|err| {
        anyhow!(
            "cannot load ONNX Runtime from {}: {err}; give a libonnxruntime.so of version 1.21 or newer (scripts/setup.sh installs 1.32)",
            library.display()
        )
    })?;
    builder
        .with_name("classify-objects")
        .build()
        .map_err(|e| anyhow!("starting ONNX Runtime: {e}"))
}

/// Name, element type and shape (-1 for dynamic) of a model input or output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type, e.g. `Float32`.
    pub element_type: String,
    /// Dimensions, -1 where dynamic.
    pub shape: Vec<i64>,
}

/// The inputs and outputs of an ONNX model, as ONNX Runtime sees them.
pub fn describe_model(environment: &Environment, onnx: &[u8]) -> Result<(Vec<TensorInfo>, Vec<TensorInfo>)> {
    let mut builder = Session::builder(environment).context("creating an ONNX Runtime session")?;
    let session = match builder.commit_from_memory(onnx) {
        Ok(session) => session,
        Err(err) => bail_input!("the package's model is not a valid ONNX model ONNX Runtime can load ({err})"),
    };
    let info = |outlets: &[ort::value::Outlet]| -> Vec<TensorInfo> {
        outlets
            .iter()
            .map(|o| match o.dtype() {
                ValueType::Tensor { ty, shape, .. } => TensorInfo {
                    name: o.name().to_string(),
                    element_type: format!("{ty:?}"),
                    shape: shape.to_vec(),
                },
                other => TensorInfo {
                    name: o.name().to_string(),
                    element_type: format!("{other:?}"),
                    shape: Vec::new(),
                },
            })
            .collect()
    };
    Ok((info(session.inputs()), info(session.outputs())))
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
    label_mode: LabelMode,
    /// The execution provider that runs the model.
    pub execution_provider: &'static str,
}

impl Classifier {
    /// Creates the session and checks the model's input and output against `definition`.
    pub fn new(
        environment: &Environment,
        onnx: &[u8],
        model_name: &str,
        definition: &ModelDefinition,
        options: &SessionOptions,
    ) -> Result<Classifier> {
        let mut builder = Session::builder(environment).context("creating an ONNX Runtime session")?;
        if options.intra_op_threads > 0 {
            builder = builder
                .with_intra_threads(options.intra_op_threads)
                .map_err(ort::Error::<()>::from)?;
        }
        let (builder, execution_provider) = crate::device::register(builder, options.device)?;
        let mut builder = builder;
        let session = match builder.commit_from_memory(onnx) {
            Ok(session) => session,
            Err(err) => bail_input!(
                "model {model_name} is not a valid ONNX model ONNX Runtime can load ({err}); check that ModelFile names the exported .onnx file"
            ),
        };
        let classes = definition.classes.len();
        let channels = definition.extract_bands.len();
        let (width, height) = (definition.image_width, definition.image_height);

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
        let input_type = input.dtype().clone();
        let ValueType::Tensor { ty, shape, .. } = &input_type else {
            bail_input!(
                "model {model_name} input \"{input_name}\" is not a tensor; an object classifier takes an image tensor"
            );
        };
        if *ty != TensorElementType::Float32 {
            bail_input!("model {model_name} input \"{input_name}\" is {ty:?}; classify-objects feeds float32 chips (re-export the model with a float input)");
        }
        let dims: &[i64] = shape;
        if dims.len() != 4 {
            bail_input!(
                "model {model_name} input \"{input_name}\" has shape {dims:?}; an image classifier takes [batch, channels, height, width]"
            );
        }
        let channels_last = definition.channels_last;
        let (c_dim, h_dim, w_dim) = if channels_last {
            (dims[3], dims[1], dims[2])
        } else {
            (dims[1], dims[2], dims[3])
        };
        let fixed = |d: i64| (d > 0).then_some(d as usize);
        if let Some(c) = fixed(c_dim) {
            if c != channels {
                bail_input!(
                    "model {model_name} takes {c} input channel(s) but its .emd ExtractBands lists {channels} band(s); make ExtractBands match the model"
                );
            }
        }
        for (what, model_dim, emd_dim, key) in [
            ("height", h_dim, height, "ImageHeight"),
            ("width", w_dim, width, "ImageWidth"),
        ] {
            if let Some(d) = fixed(model_dim) {
                if d != emd_dim {
                    bail_input!(
                        "model {model_name} takes chips of {what} {d} but its .emd says {key} {emd_dim}; set {key} to {d}"
                    );
                }
            }
        }
        let Some(output) = session.outputs().first() else {
            bail_input!("model {model_name} has no output");
        };
        let (output_name, output_type) = (output.name().to_string(), output.dtype().clone());
        if let ValueType::Tensor { shape, .. } = &output_type {
            let dims: &[i64] = shape;
            let per_chip: Vec<i64> = dims.iter().skip(1).copied().filter(|&d| d != 1).collect();
            match per_chip.as_slice() {
                [k] if *k > 0 && *k as usize != classes => bail_input!(
                    "model {model_name} outputs {k} scores per chip but its .emd lists {classes} class(es); list one class per model output in Classes"
                ),
                [_] | [] => {}
                _ if dims.iter().skip(1).any(|&d| d < 0) => {}
                _ => bail_input!(
                    "model {model_name} output \"{output_name}\" has shape {dims:?}; an object classifier outputs [batch, classes]"
                ),
            }
        }
        Ok(Classifier {
            session,
            input_name,
            channels,
            chip_size: (height, width),
            fixed_batch: fixed(dims[0]),
            classes,
            channels_last,
            label_mode: definition.label_mode,
            execution_provider,
        })
    }

    /// Scores `count` chips laid out one after another (`C x H x W` each) and returns
    /// `count * classes` probabilities: softmax (single-label) or sigmoid (multi-label) of the
    /// model output, unless the model already outputs probabilities.
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
            activate(row, self.label_mode);
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

fn to_channels_last(batch: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
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

/// Turns one chip's raw model outputs into probabilities in place. Outputs that already are
/// probabilities (softmax: all in 0..1 summing to 1; sigmoid: all in 0..1) are kept as they are.
pub fn activate(row: &mut [f32], mode: LabelMode) {
    let in_unit = row.iter().all(|v| (0.0..=1.0).contains(v));
    match mode {
        LabelMode::SingleLabel => {
            let sum: f32 = row.iter().sum();
            if in_unit && (sum - 1.0).abs() < 1e-3 {
                return;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                total += *v;
            }
            for v in row.iter_mut() {
                *v /= total;
            }
        }
        LabelMode::MultiLabel => {
            if in_unit {
                return;
            }
            for v in row.iter_mut() {
                *v = 1.0 / (1.0 + (-*v).exp());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_logits_and_probabilities_kept() {
        let mut logits = [1.0f32, 2.0, 3.0];
        activate(&mut logits, LabelMode::SingleLabel);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let s: f32 = e.iter().sum();
        for (a, b) in logits.iter().zip(e.iter().map(|v| v / s)) {
            assert!((a - b).abs() < 1e-6);
        }
        let mut probs = [0.2f32, 0.7, 0.1];
        activate(&mut probs, LabelMode::SingleLabel);
        assert_eq!(probs, [0.2, 0.7, 0.1]);
        let mut multi = [0.0f32, 2.0];
        activate(&mut multi, LabelMode::MultiLabel);
        assert!((multi[0] - 0.5).abs() < 1e-6 && (multi[1] - 0.880797).abs() < 1e-5);
    }

    #[test]
    fn device_names_parse() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("CUDA:1".parse::<Device>(), Ok(Device::Cuda(1)));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert!("tpu".parse::<Device>().is_err());
    }

    #[test]
    fn channels_last_transpose() {
        // One chip, 2 channels of 2 pixels: [a0 a1 | b0 b1] -> [a0 b0 a1 b1].
        assert_eq!(
            to_channels_last(&[1.0, 2.0, 3.0, 4.0], 1, 2, 1, 2),
            vec![1.0, 3.0, 2.0, 4.0]
        );
    }

    #[test]
    fn missing_library_is_a_clear_error() {
        let err = locate_runtime(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("ONNX Runtime library not found") && message.contains("--ort-library"),
            "{message}"
        );
    }
}
