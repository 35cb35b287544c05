//! The state_dict checked key by key while a network is walked: every tensor a family expects
//! must be there, float32, with the shape the architecture implies, and every tensor of the file
//! must be accounted for (as PyTorch's `load_state_dict(strict=True)` requires), so that a
//! backbone with extra or other modules is refused rather than half-converted.
//!
//! The walker also counts what [`Counts`] reports: trainable values (as
//! `sum(p.numel() for p in model.parameters())`, aliases counted once) and all float32 values.

use std::collections::HashSet;

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::pickle::Dtype;
use crate::model::arcgis_learn::pth::{StateDict, Tensor};

/// What every detected network reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Input channels of the first layer (bands).
    pub in_channels: usize,
    /// Outputs (classes).
    pub classes: usize,
    /// Trainable values (weights and biases).
    pub parameters: usize,
    /// All float32 values, BatchNorm running statistics included, aliases once.
    pub float_values: usize,
}

/// Checks keys and shapes while a family walks its expected layout, and remembers what was used.
pub struct Walker<'a> {
    /// The weights.
    pub sd: &'a StateDict,
    /// Names the weights in messages.
    pub origin: &'a str,
    /// The family being walked, for messages (`a ResNet FeatureClassifier`).
    pub what: &'static str,
    used: HashSet<&'a str>,
    parameters: usize,
    float_values: usize,
}

impl<'a> Walker<'a> {
    /// A walker over `sd` for a network described as `what` in messages.
    pub fn new(sd: &'a StateDict, origin: &'a str, what: &'static str) -> Walker<'a> {
        Walker {
            sd,
            origin,
            what,
            used: HashSet::new(),
            parameters: 0,
            float_values: 0,
        }
    }

    /// The float32 tensor `key` of exactly `shape`, marked as used (a buffer: not counted as a
    /// parameter).
    pub fn tensor(&mut self, key: &str, shape: &[usize]) -> Result<&'a Tensor> {
        let (origin, what) = (self.origin, self.what);
        let Some((name, t)) = self.sd.entry(key) else {
            bail_input!(
                "{origin} has no tensor {key:?}, which {what} has; the weights are incomplete or from another architecture"
            );
        };
        if t.dtype != Dtype::F32 {
            bail_input!(
                "{origin}: tensor {key:?} is {}; FeatureClassifier weights are float32 (convert the model with model.float() before saving)",
                t.dtype.name()
            );
        }
        if t.shape != shape {
            bail_input!(
                "{origin}: tensor {key:?} has shape {:?} where {what} needs {shape:?}; the weights are from another architecture",
                t.shape
            );
        }
        if self.used.insert(name) {
            self.float_values += t.numel();
        }
        Ok(t)
    }

    /// A trainable tensor (weight or bias): checked, used and counted.
    pub fn param(&mut self, key: &str, shape: &[usize]) -> Result<()> {
        let t = self.tensor(key, shape)?;
        self.parameters += t.numel();
        Ok(())
    }

    /// The shape of `key`, if present.
    pub fn shape(&self, key: &str) -> Option<&'a [usize]> {
        self.sd.get(key).map(|t| t.shape.as_slice())
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.sd.contains(key)
    }

    /// A convolution's weight `[out, inp, k, k]`.
    pub fn conv(&mut self, key: &str, out: usize, inp: usize, k: usize) -> Result<()> {
        self.param(key, &[out, inp, k, k])
    }

    /// A convolution (or linear layer) bias `[out]` at `key`.
    pub fn bias(&mut self, key: &str, out: usize) -> Result<()> {
        self.param(key, &[out])
    }

    /// A BatchNorm at `prefix` over `channels`: weight, bias, running statistics and the
    /// optional int64 counter `num_batches_tracked`.
    pub fn batch_norm(&mut self, prefix: &str, channels: usize) -> Result<()> {
        self.param(&format!("{prefix}.weight"), &[channels])?;
        self.param(&format!("{prefix}.bias"), &[channels])?;
        self.tensor(&format!("{prefix}.running_mean"), &[channels])?;
        self.tensor(&format!("{prefix}.running_var"), &[channels])?;
        let counter = format!("{prefix}.num_batches_tracked");
        if let Some((name, t)) = self.sd.entry(&counter) {
            if t.dtype != Dtype::I64 || t.numel() != 1 {
                bail_input!(
                    "{}: {counter:?} is not an int64 scalar; the weights are damaged",
                    self.origin
                );
            }
            self.used.insert(name);
        }
        Ok(())
    }

    /// A LayerNorm at `prefix` over `width` (weight and bias).
    pub fn layer_norm(&mut self, prefix: &str, width: usize) -> Result<()> {
        self.param(&format!("{prefix}.weight"), &[width])?;
        self.param(&format!("{prefix}.bias"), &[width])
    }

    /// A Linear layer at `prefix`: weight `[out, inp]` and bias `[out]`.
    pub fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> Result<()> {
        self.param(&format!("{prefix}.weight"), &[out, inp])?;
        self.param(&format!("{prefix}.bias"), &[out])
    }

    /// `alias`, a second name PyTorch saved for the tensor `of` (a module registered twice):
    /// same shape and the same values, used but not counted again. When the two differ, PyTorch
    /// would load the later one into both places, so the file is refused.
    pub fn alias(&mut self, alias: &str, of: &str) -> Result<()> {
        let origin = self.origin;
        let (Some((name, a)), Some(b)) = (self.sd.entry(alias), self.sd.get(of)) else {
            bail_input!(
                "{origin} has no tensor {alias:?} (the alias of {of:?} that arcgis.learn saves); the weights are incomplete or from another architecture"
            );
        };
        if a.dtype != b.dtype || a.shape != b.shape || self.sd.data(a) != self.sd.data(b) {
            bail_input!(
                "{origin}: {alias:?} and {of:?} are one module in arcgis.learn but hold different values; the weights were not saved by arcgis.learn, re-export them"
            );
        }
        self.used.insert(name);
        Ok(())
    }

    /// The first dimension of a key's shape (a width), or a clear error.
    pub fn width(&self, key: &str) -> Result<usize> {
        match self.shape(key) {
            Some(shape) if !shape.is_empty() => Ok(shape[0]),
            _ => bail_input!(
                "{} has no tensor {key:?}, which {} has; the weights are incomplete or from another architecture",
                self.origin,
                self.what
            ),
        }
    }

    /// Checks that every tensor of the file was walked; returns the counts.
    pub fn finish(self, in_channels: usize, classes: usize) -> Result<Counts> {
        let unknown: Vec<&str> = self.sd.names().filter(|n| !self.used.contains(n)).collect();
        if let Some(first) = unknown.first() {
            bail_input!(
                "{} has {} tensor(s) that {} does not have (e.g. {first:?}); the backbone is another architecture or variant",
                self.origin,
                unknown.len(),
                self.what
            );
        }
        Ok(Counts {
            in_channels,
            classes,
            parameters: self.parameters,
            float_values: self.float_values,
        })
    }
}

/// The fastai head of a CNN FeatureClassifier (`1.*`): AdaptiveConcatPool2d, Flatten,
/// BatchNorm1d, Dropout, Linear, ReLU, BatchNorm1d, Dropout, Linear, on `channels` body
/// channels; returns its hidden width and classes.
pub fn fastai_head(w: &mut Walker<'_>, channels: usize) -> Result<(usize, usize)> {
    let pooled = 2 * channels;
    if !w.has("1.2.weight") || !w.has("1.8.weight") {
        bail_input!(
            "{} has no fastai head (1.2.* BatchNorm1d ... 1.8.* Linear); only FeatureClassifier models (fastai cnn_learner) are converted",
            w.origin
        );
    }
    w.batch_norm("1.2", pooled)?;
    let hidden = w.width("1.4.weight")?;
    w.linear("1.4", hidden, pooled)?;
    w.batch_norm("1.6", hidden)?;
    let classes = w.width("1.8.weight")?;
    w.linear("1.8", classes, hidden)?;
    Ok((hidden, classes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arcgis_learn::pth::Values;

    fn floats(values: &[f32]) -> Tensor {
        Tensor {
            dtype: Dtype::F32,
            shape: vec![values.len()],
            values: Values::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into()),
        }
    }

    #[test]
    fn aliases_must_hold_the_same_values_and_count_once() {
        let sd = StateDict::from_parts(
            vec![
                ("0.norm.weight".into(), floats(&[1.0, 2.0])),
                ("1.norm.weight".into(), floats(&[1.0, 2.0])),
                ("1.other.weight".into(), floats(&[1.0, 2.5])),
            ],
            Vec::new(),
        );
        let mut w = Walker::new(&sd, "v.pth", "a test network");
        w.param("0.norm.weight", &[2]).unwrap();
        w.alias("1.norm.weight", "0.norm.weight").unwrap();
        let err = w.alias("1.other.weight", "0.norm.weight").unwrap_err().to_string();
        assert!(err.contains("hold different values"), "{err}");
        let err = w.finish(3, 2).unwrap_err().to_string();
        assert!(
            err.contains("1.other.weight") && err.contains("a test network"),
            "{err}"
        );
        let mut w = Walker::new(&sd, "v.pth", "a test network");
        w.param("0.norm.weight", &[2]).unwrap();
        w.alias("1.norm.weight", "0.norm.weight").unwrap();
        w.param("1.other.weight", &[2]).unwrap();
        let counts = w.finish(3, 2).unwrap();
        assert_eq!((counts.parameters, counts.float_values), (4, 4), "the alias once");
    }
}
