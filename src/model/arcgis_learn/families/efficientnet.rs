//! timm's EfficientNet-B0..B3 FeatureClassifier (`timm:efficientnet_b0` ... `_b3`): fastai cuts
//! the timm model at `global_pool`, so the body is `conv_stem` (`0.0`, 3x3/2), `bn1` (`0.1`,
//! BN + SiLU), `blocks` (`0.2.<s>.<b>`, see [`super::mbconv`]), `conv_head` (`0.3`, 1x1) and
//! `bn2` (`0.4`, BN + SiLU), followed by fastai's head (`1.*`). Every block uses SiLU and has
//! squeeze-and-excitation (SiLU inside, sigmoid gate).
//!
//! The size is read from the shapes (stem width, blocks and channels per stage, head width) and
//! must be one of B0..B3 exactly, with timm's kernels (3, 3, 5, 3, 5, 5, 3 per stage) and
//! expansion 6.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks::{self, conv_bn_act};
use crate::model::arcgis_learn::families::mbconv::{self, Kind, MbBlock, Style};
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{fastai_head, Counts, Walker};

/// Kernel of each stage's depthwise convolutions.
const KERNELS: [usize; 7] = [3, 3, 5, 3, 5, 5, 3];

/// (name, stem width, blocks per stage, output channels per stage, head width).
type Size = (&'static str, usize, [usize; 7], [usize; 7], usize);

/// The sizes converted.
const SIZES: [Size; 4] = [
    (
        "efficientnet_b0",
        32,
        [1, 2, 2, 3, 3, 4, 1],
        [16, 24, 40, 80, 112, 192, 320],
        1280,
    ),
    (
        "efficientnet_b1",
        32,
        [2, 3, 3, 4, 4, 5, 2],
        [16, 24, 40, 80, 112, 192, 320],
        1280,
    ),
    (
        "efficientnet_b2",
        32,
        [2, 3, 3, 4, 4, 5, 2],
        [16, 24, 48, 88, 120, 208, 352],
        1408,
    ),
    (
        "efficientnet_b3",
        40,
        [2, 3, 3, 5, 5, 6, 2],
        [24, 32, 48, 96, 136, 232, 384],
        1536,
    ),
];

/// The activations of EfficientNet.
const STYLE: Style = Style {
    stage_act: [Act::Silu; 7],
    se_act: Act::Silu,
    se_gate: Act::Sigmoid,
};

/// An EfficientNet body with fastai's head.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNet {
    /// `efficientnet_b0` ... `efficientnet_b3`.
    pub name: &'static str,
    /// The blocks.
    pub blocks: Vec<MbBlock>,
    /// Channels, classes and value counts.
    pub counts: Counts,
}

/// Finds the EfficientNet FeatureClassifier that `sd` holds.
pub fn detect(sd: &StateDict, origin: &str) -> Result<EfficientNet> {
    let mut w = Walker::new(sd, origin, "a timm EfficientNet FeatureClassifier");
    let (stem, in_channels) = match w.shape("0.0.weight") {
        Some([stem, inp, 3, 3]) => (*stem, *inp),
        other => bail_input!(
            "{origin}: 0.0.weight has shape {other:?}, not the [stem, bands, 3, 3] of an EfficientNet's conv_stem"
        ),
    };
    w.conv("0.0.weight", stem, in_channels, 3)?;
    w.batch_norm("0.1", stem)?;
    let (blocks, channels) = mbconv::walk(&mut w, stem)?;
    let head = w.width("0.3.weight")?;
    w.conv("0.3.weight", head, channels, 1)?;
    w.batch_norm("0.4", head)?;
    let (_, classes) = fastai_head(&mut w, head)?;
    let counts = w.finish(in_channels, classes)?;
    let (per_stage, outs, _) = mbconv::signature(&blocks);
    let size = SIZES
        .iter()
        .find(|(_, s, n, c, h)| *s == stem && n.as_slice() == per_stage && c.as_slice() == outs && *h == head);
    let Some((name, ..)) = size else {
        bail_input!(
            "{origin} holds an EfficientNet-like network (stem {stem}, blocks per stage {per_stage:?}, channels {outs:?}, head {head}) that is not EfficientNet-B0..B3 as timm builds them"
        );
    };
    if let Some(odd) = blocks.iter().find(|b| !is_standard(b)) {
        bail_input!(
            "{origin}: block {} ({:?}, kernel {}, widths {:?}, SE {}) is not timm's {name}; the backbone is another EfficientNet variant",
            odd.prefix,
            odd.kind,
            odd.kernel,
            odd.widths,
            odd.se
        );
    }
    Ok(EfficientNet { name, blocks, counts })
}

/// Whether `block` is what timm's EfficientNet-B0..B3 has at its place: a depthwise-separable
/// block in stage 0, inverted residuals with expansion 6 after, timm's kernel, always SE.
fn is_standard(block: &MbBlock) -> bool {
    let (inp, mid, _) = block.widths;
    let kind_ok = match block.kind {
        Kind::DepthwiseSeparable => block.stage == 0,
        Kind::InvertedResidual => block.stage > 0 && mid == 6 * inp,
        Kind::ConvBnAct => false,
    };
    kind_ok && block.se && block.kernel == KERNELS[block.stage]
}

impl EfficientNet {
    /// Writes the graph: stem, blocks, conv_head, fastai's head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let x = b.input();
        let mut x = conv_bn_act(b, x, "0.0.weight", "0.1", ConvSpec::same(3, 2), Act::Silu)?;
        for block in &self.blocks {
            x = mbconv::graph(b, x, block, &STYLE)?;
        }
        let x = conv_bn_act(b, x, "0.3.weight", "0.4", ConvSpec::same(1, 1), Act::Silu)?;
        blocks::fastai_head(b, x)
    }
}
