//! The pieces CNN families share, written as ONNX nodes: convolution + BatchNorm + activation
//! (torchvision's `Conv2dNormActivation`, timm's conv followed by `BatchNormAct2d`), timm's
//! squeeze-and-excitation, the residual add, and fastai's head on a CNN body.

use anyhow::Result;

use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec, OUTPUT};

/// Conv (no bias) at `conv`, BatchNorm at `bn`, then `act`.
pub fn conv_bn_act(b: &mut Builder<'_>, x: String, conv: &str, bn: &str, spec: ConvSpec, act: Act) -> Result<String> {
    let y = b.conv(x, conv, None, spec)?;
    let y = b.batch_norm(y, bn)?;
    Ok(b.act(y, act))
}

/// timm's `SqueezeExcite` at `prefix` (`conv_reduce`, `conv_expand`, both 1x1 with bias):
/// `x * gate(expand(act(reduce(mean_hw(x)))))`.
pub fn squeeze_excite(b: &mut Builder<'_>, x: String, prefix: &str, act: Act, gate: Act) -> Result<String> {
    let z = b.op("GlobalAveragePool", vec![x.clone()]);
    let one = ConvSpec::same(1, 1);
    let z = b.conv(
        z,
        &format!("{prefix}.conv_reduce.weight"),
        Some(&format!("{prefix}.conv_reduce.bias")),
        one,
    )?;
    let z = b.act(z, act);
    let z = b.conv(
        z,
        &format!("{prefix}.conv_expand.weight"),
        Some(&format!("{prefix}.conv_expand.bias")),
        one,
    )?;
    let z = b.act(z, gate);
    Ok(b.op("Mul", vec![x, z]))
}

/// `y + x`.
pub fn add(b: &mut Builder<'_>, y: String, x: String) -> String {
    b.op("Add", vec![y, x])
}

/// fastai's head on the body's output `x`: concat pooling (max first), flatten, BatchNorm1d,
/// Linear, ReLU, BatchNorm1d, Linear into the graph's output.
pub fn fastai_head(b: &mut Builder<'_>, x: String) -> Result<()> {
    let max = b.op("GlobalMaxPool", vec![x.clone()]);
    let avg = b.op("GlobalAveragePool", vec![x]);
    let cat = b.concat(vec![max, avg], 1);
    let flat = b.node(
        "Flatten",
        vec![cat],
        vec![crate::onnx_proto::AttributeProto::int("axis", 1)],
        None,
    );
    let h = b.batch_norm(flat, "1.2")?;
    let h = b.gemm(h, "1.4", None)?;
    let h = b.act(h, Act::Relu);
    let h = b.batch_norm(h, "1.6")?;
    b.gemm(h, "1.8", Some(OUTPUT))?;
    Ok(())
}
