//! Which network a FeatureClassifier state_dict holds, found from its key names and tensor
//! shapes: fastai's `nn.Sequential(body, head)` with a torchvision ResNet body (`0.*`:
//! BasicBlock or Bottleneck, with downsample shortcuts) and fastai's head (`1.*`: concat
//! pooling, BatchNorm1d, Linear, ReLU, BatchNorm1d, Linear).
//!
//! Every key must be accounted for, with the shape the architecture implies (as PyTorch's
//! `load_state_dict(strict=True)` requires): a backbone with extra modules (squeeze-excitation,
//! deep stems, anti-aliasing convolutions with weights) or other widths is refused rather than
//! half-converted. Widths are read from the shapes; strides follow torchvision (2 in the first
//! block of layers 2-4).

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::pickle::Dtype;
#[cfg(test)]
use crate::model::arcgis_learn::pth::Values;
use crate::model::arcgis_learn::pth::{StateDict, Tensor};

/// The residual block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34).
    Basic,
    /// 1x1, 3x3 (strided), 1x1 convolutions (ResNet-50/101/152, "v1.5").
    Bottleneck,
}

/// One residual block as found in the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Key prefix, e.g. `0.5.0`.
    pub prefix: String,
    /// Layer (0 for layer1 ... 3 for layer4).
    pub layer: usize,
    /// Stride of the block (of conv1 in a BasicBlock, conv2 in a Bottleneck, and the shortcut).
    pub stride: usize,
    /// Whether the shortcut is a 1x1 convolution with BatchNorm (`downsample`).
    pub downsample: bool,
}

/// A FeatureClassifier network: ResNet body and fastai head.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNet {
    /// Block type.
    pub kind: BlockKind,
    /// Blocks per layer (layer1..layer4).
    pub layers: [usize; 4],
    /// Every block, in order.
    pub blocks: Vec<Block>,
    /// Input channels of the first convolution (bands).
    pub in_channels: usize,
    /// Channels out of the body (512 or 2048): the head pools `2 x` this many features.
    pub body_channels: usize,
    /// Width of the head's hidden layer (512).
    pub hidden: usize,
    /// Outputs (classes).
    pub classes: usize,
    /// Trainable values (weights and biases), as `sum(p.numel() for p in model.parameters())`.
    pub parameters: usize,
    /// All float32 values, BatchNorm running statistics included.
    pub float_values: usize,
}

/// The torchvision name of each supported block layout.
const NAMED: &[(&str, BlockKind, [usize; 4])] = &[
    ("resnet18", BlockKind::Basic, [2, 2, 2, 2]),
    ("resnet34", BlockKind::Basic, [3, 4, 6, 3]),
    ("resnet50", BlockKind::Bottleneck, [3, 4, 6, 3]),
    ("resnet101", BlockKind::Bottleneck, [3, 4, 23, 3]),
    ("resnet152", BlockKind::Bottleneck, [3, 8, 36, 3]),
];

impl ResNet {
    /// The torchvision name (`resnet34`).
    pub fn name(&self) -> &'static str {
        NAMED
            .iter()
            .find(|(_, kind, layers)| *kind == self.kind && *layers == self.layers)
            .map(|(name, _, _)| *name)
            .unwrap_or("resnet")
    }
}

/// Checks keys and shapes while walking the expected layout, and remembers what was used.
struct Walker<'a> {
    sd: &'a StateDict,
    origin: &'a str,
    used: std::collections::HashSet<&'a str>,
    parameters: usize,
}

impl<'a> Walker<'a> {
    fn tensor(&mut self, key: &str, shape: &[usize]) -> Result<&'a Tensor> {
        let origin = self.origin;
        let Some((name, t)) = self.sd.entry(key) else {
            bail_input!(
                "{origin} has no tensor {key:?}, which a ResNet FeatureClassifier has; the weights are incomplete or from another architecture"
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
                "{origin}: tensor {key:?} has shape {:?} where this ResNet needs {shape:?}; the weights are from another architecture",
                t.shape
            );
        }
        self.used.insert(name);
        Ok(t)
    }

    fn param(&mut self, key: &str, shape: &[usize]) -> Result<()> {
        let t = self.tensor(key, shape)?;
        self.parameters += t.numel();
        Ok(())
    }

    fn shape(&self, key: &str) -> Option<&'a [usize]> {
        self.sd.get(key).map(|t| t.shape.as_slice())
    }

    fn conv(&mut self, key: &str, out: usize, inp: usize, k: usize) -> Result<()> {
        self.param(key, &[out, inp, k, k])
    }

    fn batch_norm(&mut self, prefix: &str, channels: usize) -> Result<()> {
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

    /// The first dimension of a key's shape (a width), or a clear error.
    fn width(&self, key: &str) -> Result<usize> {
        match self.shape(key) {
            Some(shape) if !shape.is_empty() => Ok(shape[0]),
            _ => bail_input!(
                "{} has no tensor {key:?}, which a ResNet FeatureClassifier has; the weights are incomplete or from another architecture",
                self.origin
            ),
        }
    }
}

/// Finds the FeatureClassifier ResNet that `sd` holds; `origin` names the weights in messages.
pub fn detect(sd: &StateDict, origin: &str) -> Result<ResNet> {
    let mut w = Walker {
        sd,
        origin,
        used: Default::default(),
        parameters: 0,
    };
    if !sd.contains("0.0.weight") || !sd.contains("0.4.0.conv1.weight") {
        let example = sd.names().next().unwrap_or("-");
        bail_input!(
            "{origin} does not hold a ResNet body (no 0.0.weight / 0.4.0.conv1.weight; first key {example:?}); only FeatureClassifier models with a ResNet backbone are converted"
        );
    }
    let (stem_width, in_channels) = stem(&mut w)?;
    let kind = if sd.contains("0.4.0.conv3.weight") {
        BlockKind::Bottleneck
    } else {
        BlockKind::Basic
    };
    let (layers, blocks, channels) = body(&mut w, kind, stem_width)?;
    let (hidden, classes) = fastai_head(&mut w, channels)?;
    let unknown: Vec<&str> = sd.names().filter(|n| !w.used.contains(n)).collect();
    if let Some(first) = unknown.first() {
        bail_input!(
            "{origin} has {} tensor(s) a torchvision ResNet FeatureClassifier does not have (e.g. {first:?}); the backbone is another architecture (supported: {})",
            unknown.len(),
            supported_list()
        );
    }
    let net = ResNet {
        kind,
        layers,
        blocks,
        in_channels,
        body_channels: channels,
        hidden,
        classes,
        parameters: w.parameters,
        float_values: sd
            .tensors
            .iter()
            .filter(|(_, t)| t.dtype == Dtype::F32)
            .map(|(_, t)| t.numel())
            .sum(),
    };
    if net.name() == "resnet" || !standard_widths(sd, &net, stem_width) {
        bail_input!(
            "{origin} holds a ResNet with {:?} blocks {:?} and non-standard widths or depth; only {} are converted",
            kind,
            layers,
            supported_list()
        );
    }
    Ok(net)
}

/// The stem: Conv 7x7/2, BatchNorm, ReLU, MaxPool 3x3/2; returns its width and the input
/// channels.
fn stem(w: &mut Walker<'_>) -> Result<(usize, usize)> {
    let (stem_width, in_channels) = match w.shape("0.0.weight") {
        Some([out, inp, 7, 7]) => (*out, *inp),
        other => bail_input!(
            "{}: 0.0.weight has shape {other:?}, not the [64, bands, 7, 7] of a ResNet's first convolution; the backbone is not a torchvision ResNet",
            w.origin
        ),
    };
    w.conv("0.0.weight", stem_width, in_channels, 7)?;
    w.batch_norm("0.1", stem_width)?;
    Ok((stem_width, in_channels))
}

/// The four layers of residual blocks (`0.4` to `0.7`): blocks per layer, the blocks, and the
/// body's output channels.
fn body(w: &mut Walker<'_>, kind: BlockKind, stem_width: usize) -> Result<([usize; 4], Vec<Block>, usize)> {
    let mut channels = stem_width;
    let mut layers = [0usize; 4];
    let mut blocks = Vec::new();
    for (l, count) in layers.iter_mut().enumerate() {
        let mut b = 0;
        while w.sd.contains(&format!("0.{}.{b}.conv1.weight", 4 + l)) {
            let prefix = format!("0.{}.{b}", 4 + l);
            let stride = if l > 0 && b == 0 { 2 } else { 1 };
            let (out, downsample) = block(w, kind, &prefix, channels, stride)?;
            blocks.push(Block {
                prefix,
                layer: l,
                stride,
                downsample,
            });
            channels = out;
            b += 1;
        }
        if b == 0 {
            bail_input!(
                "{} has no block in layer{} (0.{}.0.*); the weights are not a torchvision ResNet",
                w.origin,
                l + 1,
                4 + l
            );
        }
        *count = b;
    }
    Ok((layers, blocks, channels))
}

/// One residual block at `prefix` taking `channels`: its output channels, and whether it has a
/// downsample branch.
fn block(w: &mut Walker<'_>, kind: BlockKind, prefix: &str, channels: usize, stride: usize) -> Result<(usize, bool)> {
    let planes = w.width(&format!("{prefix}.conv1.weight"))?;
    let out = match kind {
        BlockKind::Basic => {
            w.conv(&format!("{prefix}.conv1.weight"), planes, channels, 3)?;
            w.batch_norm(&format!("{prefix}.bn1"), planes)?;
            w.conv(&format!("{prefix}.conv2.weight"), planes, planes, 3)?;
            w.batch_norm(&format!("{prefix}.bn2"), planes)?;
            planes
        }
        BlockKind::Bottleneck => {
            let out = w.width(&format!("{prefix}.conv3.weight"))?;
            w.conv(&format!("{prefix}.conv1.weight"), planes, channels, 1)?;
            w.batch_norm(&format!("{prefix}.bn1"), planes)?;
            w.conv(&format!("{prefix}.conv2.weight"), planes, planes, 3)?;
            w.batch_norm(&format!("{prefix}.bn2"), planes)?;
            w.conv(&format!("{prefix}.conv3.weight"), out, planes, 1)?;
            w.batch_norm(&format!("{prefix}.bn3"), out)?;
            out
        }
    };
    let downsample = w.sd.contains(&format!("{prefix}.downsample.0.weight"));
    if downsample {
        w.conv(&format!("{prefix}.downsample.0.weight"), out, channels, 1)?;
        w.batch_norm(&format!("{prefix}.downsample.1"), out)?;
    } else if stride != 1 || out != channels {
        bail_input!(
            "{}: block {prefix} changes shape ({channels} -> {out} channels, stride {stride}) but has no downsample; the weights are not a torchvision ResNet",
            w.origin
        );
    }
    Ok((out, downsample))
}

/// The fastai head on `channels` body channels: AdaptiveConcatPool2d, Flatten, BatchNorm1d,
/// Dropout, Linear, ReLU, BatchNorm1d, Dropout, Linear; returns its hidden width and classes.
fn fastai_head(w: &mut Walker<'_>, channels: usize) -> Result<(usize, usize)> {
    let pooled = 2 * channels;
    if !w.sd.contains("1.2.weight") || !w.sd.contains("1.8.weight") {
        bail_input!(
            "{} has no fastai head (1.2.* BatchNorm1d ... 1.8.* Linear); only FeatureClassifier models (fastai cnn_learner) are converted",
            w.origin
        );
    }
    w.batch_norm("1.2", pooled)?;
    let hidden = w.width("1.4.weight")?;
    w.param("1.4.weight", &[hidden, pooled])?;
    w.param("1.4.bias", &[hidden])?;
    w.batch_norm("1.6", hidden)?;
    let classes = w.width("1.8.weight")?;
    w.param("1.8.weight", &[classes, hidden])?;
    w.param("1.8.bias", &[classes])?;
    Ok((hidden, classes))
}

/// Whether the widths are torchvision's (64, 128, 256, 512 planes, expanded 4x in bottlenecks).
fn standard_widths(sd: &StateDict, net: &ResNet, stem_width: usize) -> bool {
    let expansion = match net.kind {
        BlockKind::Basic => 1,
        BlockKind::Bottleneck => 4,
    };
    let width = |key: String| sd.get(&key).map(|t| t.shape[0]);
    stem_width == 64
        && net.blocks.iter().all(|b| {
            let planes = width(format!("{}.conv1.weight", b.prefix));
            planes == Some(64 << b.layer) && width(format!("{}.conv2.weight", b.prefix)) == planes
        })
        && net.body_channels == 512 * expansion
}

/// The backbone names converted, for messages.
pub fn supported_list() -> String {
    NAMED.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor {
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            values: Values::Owned(bytes::Bytes::from(vec![0u8; n * 4])),
        }
    }

    /// The keys and shapes of a FeatureClassifier ResNet-18 with `classes` outputs.
    type Named = Vec<(String, Tensor)>;

    pub(crate) fn resnet18_state_dict(classes: usize) -> StateDict {
        let mut t: Vec<(String, Tensor)> = Vec::new();
        let bn = |t: &mut Vec<(String, Tensor)>, p: &str, c: usize| {
            for k in ["weight", "bias", "running_mean", "running_var"] {
                t.push((format!("{p}.{k}"), zeros(&[c])));
            }
            t.push((
                format!("{p}.num_batches_tracked"),
                Tensor {
                    dtype: Dtype::I64,
                    shape: vec![],
                    values: Values::Owned(bytes::Bytes::from(vec![0u8; 8])),
                },
            ));
        };
        t.push(("0.0.weight".into(), zeros(&[64, 3, 7, 7])));
        bn(&mut t, "0.1", 64);
        let mut c = 64;
        for l in 0..4 {
            let p = 64 << l;
            for b in 0..2 {
                let pre = format!("0.{}.{b}", 4 + l);
                t.push((format!("{pre}.conv1.weight"), zeros(&[p, c, 3, 3])));
                bn(&mut t, &format!("{pre}.bn1"), p);
                t.push((format!("{pre}.conv2.weight"), zeros(&[p, p, 3, 3])));
                bn(&mut t, &format!("{pre}.bn2"), p);
                if l > 0 && b == 0 {
                    t.push((format!("{pre}.downsample.0.weight"), zeros(&[p, c, 1, 1])));
                    bn(&mut t, &format!("{pre}.downsample.1"), p);
                }
                c = p;
            }
        }
        bn(&mut t, "1.2", 1024);
        t.push(("1.4.weight".into(), zeros(&[512, 1024])));
        t.push(("1.4.bias".into(), zeros(&[512])));
        bn(&mut t, "1.6", 512);
        t.push(("1.8.weight".into(), zeros(&[classes, 512])));
        t.push(("1.8.bias".into(), zeros(&[classes])));
        StateDict::from_parts(t, Vec::new())
    }

    #[test]
    fn detects_resnet18_layout() {
        let sd = resnet18_state_dict(5);
        assert_eq!(
            sd.tensors.len(),
            134,
            "arcgis.learn's resnet18 FeatureClassifier has 134 keys"
        );
        let net = detect(&sd, "r18.pth").unwrap();
        assert_eq!(net.name(), "resnet18");
        assert_eq!((net.kind, net.layers, net.classes), (BlockKind::Basic, [2, 2, 2, 2], 5));
        assert_eq!((net.body_channels, net.hidden, net.in_channels), (512, 512, 3));
        let strided: Vec<&str> = net
            .blocks
            .iter()
            .filter(|b| b.stride == 2)
            .map(|b| b.prefix.as_str())
            .collect();
        assert_eq!(strided, ["0.5.0", "0.6.0", "0.7.0"]);
    }

    #[test]
    fn refuses_other_layouts_naming_what_is_wrong() {
        let base = resnet18_state_dict(2);
        let edit = |f: &dyn Fn(&mut Named)| {
            let mut t = base.tensors.clone();
            f(&mut t);
            detect(&StateDict::from_parts(t, Vec::new()), "x.pth")
                .unwrap_err()
                .to_string()
        };
        // A squeeze-excitation module (seresnet): an extra key.
        let err = edit(&|t| t.push(("0.4.0.se.fc1.weight".into(), zeros(&[4, 64, 1, 1]))));
        assert!(err.contains("0.4.0.se.fc1.weight") && err.contains("resnet34"), "{err}");
        // A missing key.
        let err = edit(&|t| t.retain(|(n, _)| n != "0.5.1.bn2.running_var"));
        assert!(err.contains("0.5.1.bn2.running_var"), "{err}");
        // float64 weights.
        let err = edit(&|t| t[0].1.dtype = Dtype::F64);
        assert!(err.contains("float64"), "{err}");
        // A mobilenet_v2 body.
        let err = detect(
            &StateDict::from_parts(vec![("0.0.0.0.weight".into(), zeros(&[32, 3, 3, 3]))], Vec::new()),
            "m.pth",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ResNet"), "{err}");
    }
}
