//! timm's DenseNet FeatureClassifier (`timm:densenet121`, `161`, `169`, `201`): fastai's body is
//! timm's `features` (`0.0.<name>.*`), followed by fastai's head (`1.*`).
//!
//! `conv0` (7x7/2, pad 3) and `norm0` (BN + ReLU), MaxPool 3x3/2 pad 1; four dense blocks whose
//! layers each see the concatenation of the block input and every earlier layer's output
//! (`norm1` BN + ReLU, `conv1` 1x1 to 4 x growth, `norm2` BN + ReLU, `conv2` 3x3 pad 1 to growth,
//! appended in order); between blocks a transition (`norm` BN + ReLU, `conv` 1x1 halving the
//! channels, AvgPool 2x2/2); at the end `norm5` (BN + ReLU, the ReLU inside timm's
//! `BatchNormAct2d`). Layers per block and growth come from the keys and shapes and must be one
//! of timm's four sizes.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks::{self, conv_bn_act};
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{fastai_head, Counts, Walker};

/// (name, stem width, growth, layers per block).
const SIZES: [(&str, usize, usize, [usize; 4]); 4] = [
    ("densenet121", 64, 32, [6, 12, 24, 16]),
    ("densenet169", 64, 32, [6, 12, 32, 32]),
    ("densenet201", 64, 32, [6, 12, 48, 32]),
    ("densenet161", 96, 48, [6, 12, 36, 24]),
];

/// A DenseNet body with fastai's head.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseNet {
    /// `densenet121`, ...
    pub name: &'static str,
    /// Layers in each dense block.
    pub layers: [usize; 4],
    /// Channels, classes and value counts.
    pub counts: Counts,
}

/// Finds the DenseNet FeatureClassifier that `sd` holds.
pub fn detect(sd: &StateDict, origin: &str) -> Result<DenseNet> {
    let mut w = Walker::new(sd, origin, "a timm DenseNet FeatureClassifier");
    let (stem, in_channels) = match w.shape("0.0.conv0.weight") {
        Some([stem, inp, 7, 7]) => (*stem, *inp),
        other => bail_input!(
            "{origin}: 0.0.conv0.weight has shape {other:?}, not the [stem, bands, 7, 7] of a DenseNet's conv0"
        ),
    };
    w.conv("0.0.conv0.weight", stem, in_channels, 7)?;
    w.batch_norm("0.0.norm0", stem)?;
    let growth = w.width("0.0.denseblock1.denselayer1.conv2.weight")?;
    let mut channels = stem;
    let mut layers = [0usize; 4];
    for (j, count) in layers.iter_mut().enumerate() {
        let block = j + 1;
        while w.has(&format!("0.0.denseblock{block}.denselayer{}.conv1.weight", *count + 1)) {
            *count += 1;
            dense_layer(
                &mut w,
                &format!("0.0.denseblock{block}.denselayer{count}"),
                channels,
                growth,
            )?;
            channels += growth;
        }
        if block < 4 {
            w.batch_norm(&format!("0.0.transition{block}.norm"), channels)?;
            w.conv(&format!("0.0.transition{block}.conv.weight"), channels / 2, channels, 1)?;
            channels /= 2;
        }
    }
    w.batch_norm("0.0.norm5", channels)?;
    let (_, classes) = fastai_head(&mut w, channels)?;
    let counts = w.finish(in_channels, classes)?;
    let Some((name, ..)) = SIZES
        .iter()
        .find(|(_, s, g, l)| *s == stem && *g == growth && *l == layers)
    else {
        bail_input!(
            "{origin} holds a DenseNet with stem {stem}, growth {growth} and {layers:?} layers per block, which is not one of timm's densenet121/161/169/201"
        );
    };
    Ok(DenseNet { name, layers, counts })
}

/// One dense layer at `prefix` on `channels` concatenated channels.
fn dense_layer(w: &mut Walker<'_>, prefix: &str, channels: usize, growth: usize) -> Result<()> {
    w.batch_norm(&format!("{prefix}.norm1"), channels)?;
    w.conv(&format!("{prefix}.conv1.weight"), 4 * growth, channels, 1)?;
    w.batch_norm(&format!("{prefix}.norm2"), 4 * growth)?;
    w.conv(&format!("{prefix}.conv2.weight"), growth, 4 * growth, 3)
}

impl DenseNet {
    /// Writes the graph: stem, dense blocks and transitions, norm5, fastai's head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let x = b.input();
        let x = b.conv(x, "0.0.conv0.weight", None, ConvSpec::same(7, 2))?;
        let x = b.batch_norm(x, "0.0.norm0")?;
        let x = b.act(x, Act::Relu);
        let mut x = b.pool("MaxPool", x, 3, 2, 1);
        for (j, &count) in self.layers.iter().enumerate() {
            let block = j + 1;
            for l in 1..=count {
                let new = dense_layer_graph(b, x.clone(), &format!("0.0.denseblock{block}.denselayer{l}"))?;
                x = b.concat(vec![x, new], 1);
            }
            if block < 4 {
                let t = format!("0.0.transition{block}");
                let y = b.batch_norm(x, &format!("{t}.norm"))?;
                let y = b.act(y, Act::Relu);
                let y = b.conv(y, &format!("{t}.conv.weight"), None, ConvSpec::same(1, 1))?;
                x = b.pool("AveragePool", y, 2, 2, 0);
            }
        }
        let x = b.batch_norm(x, "0.0.norm5")?;
        let x = b.act(x, Act::Relu);
        blocks::fastai_head(b, x)
    }
}

/// A dense layer's new feature maps from the concatenation `x`: BN, ReLU, 1x1 conv, BN, ReLU,
/// 3x3 conv.
fn dense_layer_graph(b: &mut Builder<'_>, x: String, prefix: &str) -> Result<String> {
    let y = b.batch_norm(x, &format!("{prefix}.norm1"))?;
    let y = b.act(y, Act::Relu);
    let y = conv_bn_act(
        b,
        y,
        &format!("{prefix}.conv1.weight"),
        &format!("{prefix}.norm2"),
        ConvSpec::same(1, 1),
        Act::Relu,
    )?;
    b.conv(y, &format!("{prefix}.conv2.weight"), None, ConvSpec::same(3, 1))
}
