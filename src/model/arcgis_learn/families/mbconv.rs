//! The blocks of timm's `EfficientNet` and `MobileNetV3` classes (`_efficientnet_blocks`), as
//! fastai's body holds them under `0.2.<stage>.<block>.*`, found from the keys and written as
//! ONNX nodes:
//!
//! * `DepthwiseSeparableConv` (`conv_dw`, `bn1` + act, optional SE, `conv_pw`, `bn2`);
//! * `InvertedResidual` (`conv_pw`, `bn1` + act, `conv_dw`, `bn2` + act, optional SE,
//!   `conv_pwl`, `bn3`);
//! * `ConvBnAct` (`conv`, `bn1` + act; never a skip).
//!
//! Kernels and widths come from the shapes; strides do not: the first block of stage `s` has
//! stride `[1, 2, 2, 2, 1, 2, 1][s]` in every model of these classes that arcgis.learn lists,
//! the others 1. The input is added back when the stride is 1 and the widths agree. Padding is
//! symmetric `k // 2` (timm's non-`tf_` models; `tf_` models pad like TensorFlow and have BN
//! epsilon 1e-3, which the weights do not show, so they are told apart by name only).

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks::{add, conv_bn_act, squeeze_excite};
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::weights::Walker;

/// Stride of the first block of each stage.
pub const STAGE_STRIDES: [usize; 7] = [1, 2, 2, 2, 1, 2, 1];

/// The three block types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Depthwise conv, (SE), pointwise conv.
    DepthwiseSeparable,
    /// Pointwise expansion, depthwise conv, (SE), pointwise projection.
    InvertedResidual,
    /// One conv with BN and activation.
    ConvBnAct,
}

/// One block as found in the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct MbBlock {
    /// Key prefix (`0.2.1.0`).
    pub prefix: String,
    /// Stage (0..=6).
    pub stage: usize,
    /// Type.
    pub kind: Kind,
    /// Input, depthwise (expanded) and output channels.
    pub widths: (usize, usize, usize),
    /// Kernel of the depthwise (or only) convolution.
    pub kernel: usize,
    /// Stride of that convolution.
    pub stride: usize,
    /// Whether the block has squeeze-and-excitation.
    pub se: bool,
    /// Whether the input is added to the output.
    pub skip: bool,
}

/// The activations a model uses: per stage, and inside its SE modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Activation of the blocks of each stage.
    pub stage_act: [Act; 7],
    /// Activation between the SE convolutions.
    pub se_act: Act,
    /// The SE gate.
    pub se_gate: Act,
}

/// Walks the stages `0.2.<s>.<b>` from `channels` input channels; returns the blocks and the
/// channels out of the last.
pub fn walk(w: &mut Walker<'_>, mut channels: usize) -> Result<(Vec<MbBlock>, usize)> {
    let mut blocks = Vec::new();
    for (stage, &first_stride) in STAGE_STRIDES.iter().enumerate() {
        if !block_exists(w, &format!("0.2.{stage}.0")) {
            break;
        }
        let mut b = 0;
        while block_exists(w, &format!("0.2.{stage}.{b}")) {
            let stride = if b == 0 { first_stride } else { 1 };
            let block = block(w, &format!("0.2.{stage}.{b}"), stage, channels, stride)?;
            channels = block.widths.2;
            blocks.push(block);
            b += 1;
        }
    }
    // A stage beyond the last known is left unused: the walker reports its keys.
    Ok((blocks, channels))
}

fn block_exists(w: &Walker<'_>, prefix: &str) -> bool {
    ["conv_dw.weight", "conv.weight"]
        .iter()
        .any(|k| w.has(&format!("{prefix}.{k}")))
}

/// The block at `prefix` taking `inp` channels.
fn block(w: &mut Walker<'_>, prefix: &str, stage: usize, inp: usize, stride: usize) -> Result<MbBlock> {
    let key = |what: &str| format!("{prefix}.{what}");
    let (kind, mid, out, kernel) = if w.has(&key("conv_pwl.weight")) {
        let mid = w.width(&key("conv_pw.weight"))?;
        let kernel = square_kernel(w, &key("conv_dw.weight"))?;
        let out = w.width(&key("conv_pwl.weight"))?;
        w.conv(&key("conv_pw.weight"), mid, inp, 1)?;
        w.batch_norm(&key("bn1"), mid)?;
        w.conv(&key("conv_dw.weight"), mid, 1, kernel)?;
        w.batch_norm(&key("bn2"), mid)?;
        w.conv(&key("conv_pwl.weight"), out, mid, 1)?;
        w.batch_norm(&key("bn3"), out)?;
        (Kind::InvertedResidual, mid, out, kernel)
    } else if w.has(&key("conv_dw.weight")) {
        let kernel = square_kernel(w, &key("conv_dw.weight"))?;
        let out = w.width(&key("conv_pw.weight"))?;
        w.conv(&key("conv_dw.weight"), inp, 1, kernel)?;
        w.batch_norm(&key("bn1"), inp)?;
        w.conv(&key("conv_pw.weight"), out, inp, 1)?;
        w.batch_norm(&key("bn2"), out)?;
        (Kind::DepthwiseSeparable, inp, out, kernel)
    } else {
        let kernel = square_kernel(w, &key("conv.weight"))?;
        let out = w.width(&key("conv.weight"))?;
        w.conv(&key("conv.weight"), out, inp, kernel)?;
        w.batch_norm(&key("bn1"), out)?;
        (Kind::ConvBnAct, out, out, kernel)
    };
    let se = kind != Kind::ConvBnAct && w.has(&key("se.conv_reduce.weight"));
    if se {
        let reduced = w.width(&key("se.conv_reduce.weight"))?;
        w.conv(&key("se.conv_reduce.weight"), reduced, mid, 1)?;
        w.bias(&key("se.conv_reduce.bias"), reduced)?;
        w.conv(&key("se.conv_expand.weight"), mid, reduced, 1)?;
        w.bias(&key("se.conv_expand.bias"), mid)?;
    }
    Ok(MbBlock {
        prefix: prefix.to_string(),
        stage,
        kind,
        widths: (inp, mid, out),
        kernel,
        stride,
        se,
        skip: kind != Kind::ConvBnAct && stride == 1 && inp == out,
    })
}

/// The kernel size of the square convolution weight `key`.
fn square_kernel(w: &Walker<'_>, key: &str) -> Result<usize> {
    match w.shape(key) {
        Some([_, _, k, k2]) if k == k2 => Ok(*k),
        other => bail_input!(
            "{}: {key:?} has shape {other:?}, not a square convolution kernel; the backbone is not one of the timm models converted",
            w.origin
        ),
    }
}

/// Writes `block` on `input` in `style`.
pub fn graph(b: &mut Builder<'_>, input: String, block: &MbBlock, style: &Style) -> Result<String> {
    let key = |what: &str| format!("{}.{what}", block.prefix);
    let act = style.stage_act[block.stage];
    let one = ConvSpec::same(1, 1);
    let depthwise = ConvSpec::same(block.kernel, block.stride).grouped(block.widths.1);
    let se = |b: &mut Builder<'_>, y: String| -> Result<String> {
        if block.se {
            squeeze_excite(b, y, &key("se"), style.se_act, style.se_gate)
        } else {
            Ok(y)
        }
    };
    let y = match block.kind {
        Kind::DepthwiseSeparable => {
            let y = conv_bn_act(b, input.clone(), &key("conv_dw.weight"), &key("bn1"), depthwise, act)?;
            let y = se(b, y)?;
            conv_bn_act(b, y, &key("conv_pw.weight"), &key("bn2"), one, Act::Identity)?
        }
        Kind::InvertedResidual => {
            let y = conv_bn_act(b, input.clone(), &key("conv_pw.weight"), &key("bn1"), one, act)?;
            let y = conv_bn_act(b, y, &key("conv_dw.weight"), &key("bn2"), depthwise, act)?;
            let y = se(b, y)?;
            conv_bn_act(b, y, &key("conv_pwl.weight"), &key("bn3"), one, Act::Identity)?
        }
        Kind::ConvBnAct => {
            let spec = ConvSpec::same(block.kernel, block.stride);
            conv_bn_act(b, input.clone(), &key("conv.weight"), &key("bn1"), spec, act)?
        }
    };
    Ok(if block.skip { add(b, y, input) } else { y })
}

/// Blocks per stage, output channels per stage, and kernel per stage, for comparing with a
/// named architecture.
pub fn signature(blocks: &[MbBlock]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let stages = blocks.last().map_or(0, |b| b.stage + 1);
    let mut counts = vec![0; stages];
    let mut outs = vec![0; stages];
    let mut kernels = vec![0; stages];
    for block in blocks {
        counts[block.stage] += 1;
        outs[block.stage] = block.widths.2;
        kernels[block.stage] = block.kernel;
    }
    (counts, outs, kernels)
}
