//! timm's MobileNetV3-Large 1.0 FeatureClassifier (`timm:mobilenetv3_large_100`): fastai cuts
//! the timm model at `global_pool`, so the body is `conv_stem` (`0.0`, 3x3/2), `bn1` (`0.1`, BN +
//! HardSwish) and `blocks` (`0.2.<s>.<b>`, see [`super::mbconv`]); timm's `conv_head` (960 ->
//! 1280) comes after the pool and is not in the model. fastai's head (`1.*`) pools the 960
//! channels of the last block.
//!
//! Stages 0-2 use ReLU, stages 3-6 HardSwish; squeeze-and-excitation (stages 2, 4, 5) has a ReLU
//! inside and a HardSigmoid gate. Every block must be the one timm builds at its place (type,
//! widths, kernel, SE), since activations and strides are not in the file.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks::{self, conv_bn_act};
use crate::model::arcgis_learn::families::mbconv::{self, Kind, MbBlock, Style};
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{fastai_head, Counts, Walker};

/// The name of the one size converted.
pub const NAME: &str = "mobilenetv3_large_100";

/// timm's `mobilenetv3_large_100` blocks: (stage, type, expanded width, output width, kernel, SE).
const BLOCKS: [(usize, Kind, usize, usize, usize, bool); 15] = [
    (0, Kind::DepthwiseSeparable, 16, 16, 3, false),
    (1, Kind::InvertedResidual, 64, 24, 3, false),
    (1, Kind::InvertedResidual, 72, 24, 3, false),
    (2, Kind::InvertedResidual, 72, 40, 5, true),
    (2, Kind::InvertedResidual, 120, 40, 5, true),
    (2, Kind::InvertedResidual, 120, 40, 5, true),
    (3, Kind::InvertedResidual, 240, 80, 3, false),
    (3, Kind::InvertedResidual, 200, 80, 3, false),
    (3, Kind::InvertedResidual, 184, 80, 3, false),
    (3, Kind::InvertedResidual, 184, 80, 3, false),
    (4, Kind::InvertedResidual, 480, 112, 3, true),
    (4, Kind::InvertedResidual, 672, 112, 3, true),
    (5, Kind::InvertedResidual, 672, 160, 5, true),
    (5, Kind::InvertedResidual, 960, 160, 5, true),
    (5, Kind::InvertedResidual, 960, 160, 5, true),
];

/// The last block: ConvBnAct 160 -> 960, 1x1.
const LAST: (usize, Kind, usize, usize, usize, bool) = (6, Kind::ConvBnAct, 960, 960, 1, false);

/// The activations of MobileNetV3-Large.
const STYLE: Style = Style {
    stage_act: [
        Act::Relu,
        Act::Relu,
        Act::Relu,
        Act::HardSwish,
        Act::HardSwish,
        Act::HardSwish,
        Act::HardSwish,
    ],
    se_act: Act::Relu,
    se_gate: Act::HardSigmoid,
};

/// A MobileNetV3-Large body with fastai's head.
#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetV3 {
    /// The blocks.
    pub blocks: Vec<MbBlock>,
    /// Channels, classes and value counts.
    pub counts: Counts,
}

/// Finds the MobileNetV3 FeatureClassifier that `sd` holds.
pub fn detect(sd: &StateDict, origin: &str) -> Result<MobileNetV3> {
    let mut w = Walker::new(sd, origin, "a timm MobileNetV3-Large FeatureClassifier");
    let in_channels = match w.shape("0.0.weight") {
        Some([16, inp, 3, 3]) => *inp,
        other => bail_input!(
            "{origin}: 0.0.weight has shape {other:?}, not the [16, bands, 3, 3] of MobileNetV3-Large's conv_stem"
        ),
    };
    w.conv("0.0.weight", 16, in_channels, 3)?;
    w.batch_norm("0.1", 16)?;
    let (blocks, channels) = mbconv::walk(&mut w, 16)?;
    let (_, classes) = fastai_head(&mut w, channels)?;
    let counts = w.finish(in_channels, classes)?;
    let expected = BLOCKS.iter().chain(std::iter::once(&LAST));
    let found: Vec<_> = blocks
        .iter()
        .map(|b| (b.stage, b.kind, b.widths.1, b.widths.2, b.kernel, b.se))
        .collect();
    if !found.iter().eq(expected) {
        bail_input!(
            "{origin} holds a MobileNetV3-like network with {} blocks that are not timm's {NAME} (type, widths, kernels or SE differ); only {NAME} is converted",
            blocks.len()
        );
    }
    Ok(MobileNetV3 { blocks, counts })
}

impl MobileNetV3 {
    /// Writes the graph: stem, blocks, fastai's head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let x = b.input();
        let mut x = conv_bn_act(b, x, "0.0.weight", "0.1", ConvSpec::same(3, 2), Act::HardSwish)?;
        for block in &self.blocks {
            x = mbconv::graph(b, x, block, &STYLE)?;
        }
        blocks::fastai_head(b, x)
    }
}
