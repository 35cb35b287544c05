//! torchvision's MobileNetV2 FeatureClassifier (`mobilenet_v2`): fastai's body is
//! `nn.Sequential(features)` (keys `0.0.<i>.*`, i = 0..18) and its head is fastai's (`1.*`).
//!
//! `features[0]` is Conv 3x3/2 + BN + ReLU6; `features[1..=17]` are inverted residuals (an
//! expanding 1x1 Conv + BN + ReLU6 when the block has `conv.3.*`, then a depthwise 3x3 Conv + BN +
//! ReLU6, then a projecting 1x1 Conv + BN), with stride 2 at i = 2, 4, 7, 14 and a residual add
//! when stride is 1 and the widths agree; `features[18]` is Conv 1x1 + BN + ReLU6 to 1280. No
//! conv has a bias; every BN has epsilon 1e-5. Strides are not in the file: they are
//! torchvision's, so the widths must be torchvision's too.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks::{self, add, conv_bn_act};
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{fastai_head, Counts, Walker};

/// Output channels of `features[0..=18]` in torchvision's `mobilenet_v2()` (width 1.0).
const WIDTHS: [usize; 19] = [
    32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320, 1280,
];
/// The `features` indices whose depthwise convolution has stride 2.
const STRIDED: [usize; 4] = [2, 4, 7, 14];

/// One inverted residual block.
#[derive(Debug, Clone, PartialEq)]
pub struct InvertedResidual {
    /// `features` index.
    pub index: usize,
    /// Whether it starts with an expanding 1x1 convolution.
    pub expand: bool,
    /// Stride of its depthwise convolution.
    pub stride: usize,
    /// Whether the input is added to its output.
    pub residual: bool,
    /// Channels of its depthwise convolution.
    pub hidden: usize,
}

/// A torchvision MobileNetV2 body with fastai's head.
#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetV2 {
    /// Blocks `features[1..=17]`.
    pub blocks: Vec<InvertedResidual>,
    /// Channels, classes and value counts.
    pub counts: Counts,
}

/// Finds the MobileNetV2 FeatureClassifier that `sd` holds.
pub fn detect(sd: &StateDict, origin: &str) -> Result<MobileNetV2> {
    let mut w = Walker::new(sd, origin, "a torchvision MobileNetV2 FeatureClassifier");
    let in_channels = match w.shape("0.0.0.0.weight") {
        Some([32, inp, 3, 3]) => *inp,
        other => bail_input!(
            "{origin}: 0.0.0.0.weight has shape {other:?}, not the [32, bands, 3, 3] of MobileNetV2's first convolution"
        ),
    };
    w.conv("0.0.0.0.weight", 32, in_channels, 3)?;
    w.batch_norm("0.0.0.1", 32)?;
    let mut blocks = Vec::new();
    for index in 1..=17 {
        blocks.push(block(&mut w, index)?);
    }
    w.conv("0.0.18.0.weight", 1280, 320, 1)?;
    w.batch_norm("0.0.18.1", 1280)?;
    let (_, classes) = fastai_head(&mut w, 1280)?;
    let counts = w.finish(in_channels, classes)?;
    Ok(MobileNetV2 { blocks, counts })
}

/// `features[index]`, an inverted residual from `WIDTHS[index - 1]` to `WIDTHS[index]`
/// channels.
fn block(w: &mut Walker<'_>, index: usize) -> Result<InvertedResidual> {
    let (inp, out) = (WIDTHS[index - 1], WIDTHS[index]);
    let p = format!("0.0.{index}.conv");
    let expand = w.has(&format!("{p}.3.weight"));
    let hidden = if expand { 6 * inp } else { inp };
    if expand {
        w.conv(&format!("{p}.0.0.weight"), hidden, inp, 1)?;
        w.batch_norm(&format!("{p}.0.1"), hidden)?;
        w.conv(&format!("{p}.1.0.weight"), hidden, 1, 3)?;
        w.batch_norm(&format!("{p}.1.1"), hidden)?;
        w.conv(&format!("{p}.2.weight"), out, hidden, 1)?;
        w.batch_norm(&format!("{p}.3"), out)?;
    } else {
        w.conv(&format!("{p}.0.0.weight"), hidden, 1, 3)?;
        w.batch_norm(&format!("{p}.0.1"), hidden)?;
        w.conv(&format!("{p}.1.weight"), out, hidden, 1)?;
        w.batch_norm(&format!("{p}.2"), out)?;
    }
    let stride = if STRIDED.contains(&index) { 2 } else { 1 };
    Ok(InvertedResidual {
        index,
        expand,
        stride,
        residual: stride == 1 && inp == out,
        hidden,
    })
}

impl MobileNetV2 {
    /// Writes the graph: `features`, then fastai's head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let x = b.input();
        let mut x = conv_bn_act(b, x, "0.0.0.0.weight", "0.0.0.1", ConvSpec::same(3, 2), Act::Relu6)?;
        for block in &self.blocks {
            x = inverted_residual(b, x, block)?;
        }
        let x = conv_bn_act(b, x, "0.0.18.0.weight", "0.0.18.1", ConvSpec::same(1, 1), Act::Relu6)?;
        blocks::fastai_head(b, x)
    }
}

fn inverted_residual(b: &mut Builder<'_>, input: String, block: &InvertedResidual) -> Result<String> {
    let p = format!("0.0.{}.conv", block.index);
    let key = |what: &str| format!("{p}.{what}");
    let depthwise = ConvSpec::same(3, block.stride).grouped(block.hidden);
    let y = if block.expand {
        let y = conv_bn_act(
            b,
            input.clone(),
            &key("0.0.weight"),
            &key("0.1"),
            ConvSpec::same(1, 1),
            Act::Relu6,
        )?;
        let y = conv_bn_act(b, y, &key("1.0.weight"), &key("1.1"), depthwise, Act::Relu6)?;
        conv_bn_act(b, y, &key("2.weight"), &key("3"), ConvSpec::same(1, 1), Act::Identity)?
    } else {
        let y = conv_bn_act(b, input.clone(), &key("0.0.weight"), &key("0.1"), depthwise, Act::Relu6)?;
        conv_bn_act(b, y, &key("1.weight"), &key("2"), ConvSpec::same(1, 1), Act::Identity)?
    };
    Ok(if block.residual { add(b, y, input) } else { y })
}
