//! The ResNet FeatureClassifier: fastai's `nn.Sequential(body, head)` with a torchvision ResNet
//! body (`0.*`: BasicBlock or Bottleneck, with downsample shortcuts) and fastai's head (`1.*`),
//! found from the state_dict's key names and tensor shapes, and its ONNX graph.
//!
//! Widths are read from the shapes; strides follow torchvision (2 in the first block of layers
//! 2-4). A backbone with extra modules (squeeze-excitation, deep stems, anti-aliasing
//! convolutions with weights) or other widths is refused rather than half-converted.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks::{self, add, conv_bn_act};
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{fastai_head, Counts, Walker};

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
    /// Channels out of the body (512 or 2048): the head pools `2 x` this many features.
    pub body_channels: usize,
    /// Width of the head's hidden layer (512).
    pub hidden: usize,
    /// Channels, classes and value counts.
    pub counts: Counts,
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

    /// Writes the graph: stem, residual blocks, fastai head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let x = b.input();
        let x = conv_bn_act(b, x, "0.0.weight", "0.1", ConvSpec::same(7, 2), Act::Relu)?;
        let mut x = b.pool("MaxPool", x, 3, 2, 1);
        for block in &self.blocks {
            x = residual_block(b, x, block, self.kind)?;
        }
        blocks::fastai_head(b, x)
    }
}

/// Finds the FeatureClassifier ResNet that `sd` holds; `origin` names the weights in messages.
pub fn detect(sd: &StateDict, origin: &str) -> Result<ResNet> {
    let mut w = Walker::new(sd, origin, "a torchvision ResNet FeatureClassifier");
    if !sd.contains("0.0.weight") || !sd.contains("0.4.0.conv1.weight") {
        let example = sd.names().next().unwrap_or("-");
        bail_input!("{origin} does not hold a ResNet body (no 0.0.weight / 0.4.0.conv1.weight; first key {example:?})");
    }
    let (stem_width, in_channels) = stem(&mut w)?;
    let kind = if sd.contains("0.4.0.conv3.weight") {
        BlockKind::Bottleneck
    } else {
        BlockKind::Basic
    };
    let (layers, blocks, channels) = body(&mut w, kind, stem_width)?;
    let (hidden, classes) = fastai_head(&mut w, channels)?;
    let counts = w.finish(in_channels, classes)?;
    let net = ResNet {
        kind,
        layers,
        blocks,
        body_channels: channels,
        hidden,
        counts,
    };
    if net.name() == "resnet" || !standard_widths(sd, &net, stem_width) {
        bail_input!(
            "{origin} holds a ResNet with {:?} blocks {:?} and non-standard widths or depth; only {} are converted",
            kind,
            layers,
            NAMED.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
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
        while w.has(&format!("0.{}.{b}.conv1.weight", 4 + l)) {
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
    let downsample = w.has(&format!("{prefix}.downsample.0.weight"));
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

/// A residual block on `input`: the block's branch, plus the input (downsampled when the
/// block changes shape), then ReLU.
fn residual_block(b: &mut Builder<'_>, input: String, block: &Block, kind: BlockKind) -> Result<String> {
    let p = &block.prefix;
    let s = block.stride;
    let key = |what: &str| format!("{p}.{what}");
    let y = match kind {
        BlockKind::Basic => {
            let y = conv_bn_act(
                b,
                input.clone(),
                &key("conv1.weight"),
                &key("bn1"),
                ConvSpec::same(3, s),
                Act::Relu,
            )?;
            conv_bn_act(
                b,
                y,
                &key("conv2.weight"),
                &key("bn2"),
                ConvSpec::same(3, 1),
                Act::Identity,
            )?
        }
        BlockKind::Bottleneck => {
            let y = conv_bn_act(
                b,
                input.clone(),
                &key("conv1.weight"),
                &key("bn1"),
                ConvSpec::same(1, 1),
                Act::Relu,
            )?;
            let y = conv_bn_act(b, y, &key("conv2.weight"), &key("bn2"), ConvSpec::same(3, s), Act::Relu)?;
            conv_bn_act(
                b,
                y,
                &key("conv3.weight"),
                &key("bn3"),
                ConvSpec::same(1, 1),
                Act::Identity,
            )?
        }
    };
    let shortcut = if block.downsample {
        let spec = ConvSpec::same(1, s);
        conv_bn_act(
            b,
            input,
            &key("downsample.0.weight"),
            &key("downsample.1"),
            spec,
            Act::Identity,
        )?
    } else {
        input
    };
    let sum = add(b, y, shortcut);
    Ok(b.act(sum, Act::Relu))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arcgis_learn::pickle::Dtype;
    use crate::model::arcgis_learn::pth::{Tensor, Values};

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
        assert_eq!(
            (net.kind, net.layers, net.counts.classes),
            (BlockKind::Basic, [2, 2, 2, 2], 5)
        );
        assert_eq!((net.body_channels, net.hidden, net.counts.in_channels), (512, 512, 3));
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
        assert!(
            err.contains("0.4.0.se.fc1.weight") && err.contains("torchvision ResNet"),
            "{err}"
        );
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
