//! timm's VGG FeatureClassifier (`timm:vgg11_bn` ... `vgg19_bn`, and the plain `timm:vgg11` ...
//! `vgg19`): arcgis.learn cuts timm's VGG at -2, so the body is timm's `features` (`0.0.<i>.*`,
//! numbered as timm's `nn.Sequential` numbers them) followed by fastai's head (`1.*`); timm's
//! `pre_logits` and head are not in the model.
//!
//! `features` repeats Conv 3x3 pad 1 with bias (`0.0.<i>`), BatchNorm (`0.0.<i+1>`, `_bn`
//! variants only), ReLU, with a MaxPool 2x2/2 after each group, the last included. Which variant
//! it is (and so where the pools sit) follows from the number of convolutions and whether
//! they have BatchNorm; every key must then be where timm puts it.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::blocks;
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{fastai_head, Counts, Walker};

/// One entry of timm's VGG configuration: a convolution of that many channels, or a pool (0).
const POOL: usize = 0;

/// (name without `_bn`, configuration).
const CONFIGS: [(&str, &[usize]); 4] = [
    (
        "vgg11",
        &[64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    ),
    (
        "vgg13",
        &[
            64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL,
        ],
    ),
    (
        "vgg16",
        &[
            64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL,
        ],
    ),
    (
        "vgg19",
        &[
            64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL,
        ],
    ),
];

/// A layer of `features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Conv (+ BN) + ReLU at this index.
    Conv(usize),
    /// MaxPool 2x2/2.
    Pool,
}

/// A VGG body with fastai's head.
#[derive(Debug, Clone, PartialEq)]
pub struct Vgg {
    /// `vgg11_bn`, `vgg16`, ...
    pub name: String,
    /// Whether the convolutions have BatchNorm.
    pub batch_norm: bool,
    /// `features` in order.
    pub layers: Vec<Layer>,
    /// Channels, classes and value counts.
    pub counts: Counts,
}

/// Finds the VGG FeatureClassifier that `sd` holds.
pub fn detect(sd: &StateDict, origin: &str) -> Result<Vgg> {
    let mut w = Walker::new(sd, origin, "a timm VGG FeatureClassifier");
    let in_channels = match w.shape("0.0.0.weight") {
        Some([64, inp, 3, 3]) => *inp,
        other => bail_input!(
            "{origin}: 0.0.0.weight has shape {other:?}, not the [64, bands, 3, 3] of a VGG's first convolution"
        ),
    };
    let batch_norm = w.has("0.0.1.running_mean");
    let convs = sd
        .names()
        .filter(|n| n.starts_with("0.0.") && n.ends_with(".weight") && sd.get(n).is_some_and(|t| t.shape.len() == 4))
        .count();
    let Some((base, config)) = CONFIGS
        .iter()
        .find(|(_, c)| c.iter().filter(|&&v| v != POOL).count() == convs)
    else {
        bail_input!("{origin} holds {convs} VGG-like convolutions; timm's VGG-11/13/16/19 have 8, 10, 13 or 16");
    };
    let (mut index, mut channels, mut layers) = (0, in_channels, Vec::new());
    for &width in config.iter() {
        if width == POOL {
            layers.push(Layer::Pool);
            index += 1;
            continue;
        }
        w.conv(&format!("0.0.{index}.weight"), width, channels, 3)?;
        w.bias(&format!("0.0.{index}.bias"), width)?;
        if batch_norm {
            w.batch_norm(&format!("0.0.{}", index + 1), width)?;
        }
        layers.push(Layer::Conv(index));
        index += if batch_norm { 3 } else { 2 };
        channels = width;
    }
    let (_, classes) = fastai_head(&mut w, channels)?;
    let counts = w.finish(in_channels, classes)?;
    Ok(Vgg {
        name: format!("{base}{}", if batch_norm { "_bn" } else { "" }),
        batch_norm,
        layers,
        counts,
    })
}

impl Vgg {
    /// Writes the graph: `features`, then fastai's head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let mut x = b.input();
        for layer in &self.layers {
            x = match *layer {
                Layer::Pool => b.pool("MaxPool", x, 2, 2, 0),
                Layer::Conv(i) => {
                    let y = b.conv(
                        x,
                        &format!("0.0.{i}.weight"),
                        Some(&format!("0.0.{i}.bias")),
                        ConvSpec::same(3, 1),
                    )?;
                    let y = if self.batch_norm {
                        b.batch_norm(y, &format!("0.0.{}", i + 1))?
                    } else {
                        y
                    };
                    b.act(y, Act::Relu)
                }
            };
        }
        blocks::fastai_head(b, x)
    }
}
