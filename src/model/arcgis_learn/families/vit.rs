//! timm's VisionTransformer FeatureClassifier (`timm:deit_*_patch16_*`, `timm:vit_*_patch16_*`,
//! `timm:vit_huge_patch14_224`): arcgis.learn's transformer path, `nn.Sequential(timm model,
//! VisionTransformerHead)` with **no fastai head**. The timm model (`0.*`) is built with
//! `img_size = chip`, and its own `head` (Linear) gives the logits; `1.block.*`, `1.norm.*` and
//! `1.head.*` are second names of `0.blocks.<last>`, `0.norm` and `0.head` (the head module keeps
//! them for Grad-CAM) and never enter the computation.
//!
//! Computation (timm 1.0 `VisionTransformer`, `Block`, `Attention`): patch embedding (Conv
//! PxP/P with bias), flattened row-major; the class token first, then `+ pos_embed`; per block
//! `x += proj(attention(LN1(x)))` and `x += fc2(GELU(fc1(LN2(x))))` with LayerNorm epsilon
//! 1e-6, `qkv` rows `[q | k | v]` each `heads x head_dim`, scores `(q * head_dim^-0.5) k^T`,
//! softmax; final LN, the class token, the head. Embedding width, depth and patch come from the
//! shapes; the number of heads is not in the file, so the size must be one of timm's, whose
//! heads are known (DeiT and ViT of the same size are the same network).

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::graph::{Act, Builder, ConvSpec, OUTPUT};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::{Counts, Walker};
use crate::onnx_proto::AttributeProto;

/// LayerNorm epsilon of timm's ViT.
pub const LN_EPSILON: f32 = 1e-6;

/// (name, embedding width, depth, patch, heads).
const SIZES: [(&str, usize, usize, usize, usize); 5] = [
    ("vit_tiny_patch16", 192, 12, 16, 3),
    ("vit_small_patch16", 384, 12, 16, 6),
    ("vit_base_patch16", 768, 12, 16, 12),
    ("vit_large_patch16", 1024, 24, 16, 16),
    ("vit_huge_patch14", 1280, 32, 14, 16),
];

/// A ViT as timm builds it, with its own head.
#[derive(Debug, Clone, PartialEq)]
pub struct Vit {
    /// `vit_tiny_patch16`, ...
    pub name: &'static str,
    /// Embedding width D.
    pub width: usize,
    /// Blocks.
    pub depth: usize,
    /// Patch size P.
    pub patch: usize,
    /// Attention heads.
    pub heads: usize,
    /// Patches per side (the chip is `grid x patch` pixels square).
    pub grid: usize,
    /// Channels, classes and value counts.
    pub counts: Counts,
}

/// Finds the ViT FeatureClassifier that `sd` holds.
pub fn detect(sd: &StateDict, origin: &str) -> Result<Vit> {
    let mut w = Walker::new(sd, origin, "a timm VisionTransformer FeatureClassifier");
    let (width, in_channels, patch) = match w.shape("0.patch_embed.proj.weight") {
        Some([d, c, p, p2]) if p == p2 => (*d, *c, *p),
        other => bail_input!(
            "{origin}: 0.patch_embed.proj.weight has shape {other:?}, not the [width, bands, patch, patch] of a ViT patch embedding"
        ),
    };
    let tokens = match w.shape("0.pos_embed") {
        Some([1, n, d]) if *d == width && *n >= 2 => *n,
        other => bail_input!("{origin}: 0.pos_embed has shape {other:?}, not [1, 1 + patches, {width}]"),
    };
    let grid = (1..=tokens).find(|g| g * g + 1 >= tokens).unwrap_or(0);
    if grid * grid + 1 != tokens {
        bail_input!("{origin}: 0.pos_embed has {tokens} positions, not 1 + a square number of patches");
    }
    w.param("0.cls_token", &[1, 1, width])?;
    w.param("0.pos_embed", &[1, tokens, width])?;
    w.conv("0.patch_embed.proj.weight", width, in_channels, patch)?;
    w.bias("0.patch_embed.proj.bias", width)?;
    let mut depth = 0;
    while w.has(&format!("0.blocks.{depth}.norm1.weight")) {
        block(&mut w, &format!("0.blocks.{depth}"), width)?;
        depth += 1;
    }
    w.layer_norm("0.norm", width)?;
    let classes = w.width("0.head.weight")?;
    w.linear("0.head", classes, width)?;
    aliases(&mut w, depth)?;
    let counts = w.finish(in_channels, classes)?;
    let Some(&(name, _, _, _, heads)) = SIZES
        .iter()
        .find(|(_, d, l, p, _)| (*d, *l, *p) == (width, depth, patch))
    else {
        bail_input!(
            "{origin} holds a ViT of width {width}, depth {depth} and patch {patch}, which is not one of timm's tiny/small/base/large patch16 or huge patch14; its number of attention heads is not known"
        );
    };
    Ok(Vit {
        name,
        width,
        depth,
        patch,
        heads,
        grid,
        counts,
    })
}

/// One transformer block at `prefix`.
fn block(w: &mut Walker<'_>, prefix: &str, width: usize) -> Result<()> {
    w.layer_norm(&format!("{prefix}.norm1"), width)?;
    w.linear(&format!("{prefix}.attn.qkv"), 3 * width, width)?;
    w.linear(&format!("{prefix}.attn.proj"), width, width)?;
    w.layer_norm(&format!("{prefix}.norm2"), width)?;
    w.linear(&format!("{prefix}.mlp.fc1"), 4 * width, width)?;
    w.linear(&format!("{prefix}.mlp.fc2"), width, 4 * width)
}

/// `1.block.*`, `1.norm.*`, `1.head.*`: the second names of the last block, the final norm and
/// the head.
fn aliases(w: &mut Walker<'_>, depth: usize) -> Result<()> {
    let Some(last) = depth.checked_sub(1) else {
        bail_input!("{} has no transformer block (0.blocks.0.*)", w.origin);
    };
    let names: Vec<String> =
        w.sd.names()
            .filter(|n| n.starts_with(&format!("0.blocks.{last}.")))
            .map(str::to_string)
            .collect();
    for name in names {
        let alias = name.replacen(&format!("0.blocks.{last}."), "1.block.", 1);
        w.alias(&alias, &name)?;
    }
    for key in ["norm.weight", "norm.bias", "head.weight", "head.bias"] {
        w.alias(&format!("1.{key}"), &format!("0.{key}"))?;
    }
    Ok(())
}

impl Vit {
    /// Checks that the chip is the square the model was built for.
    pub fn check_chip(&self, height: usize, width: usize, origin: &str) -> Result<()> {
        if height != width || height / self.patch != self.grid {
            bail_input!(
                "{origin} is a ViT built for {side} x {side} chips ({grid} x {grid} patches of {patch} px) but its .emd says ImageHeight {height}, ImageWidth {width}; the package is inconsistent, re-export it",
                side = self.grid * self.patch,
                grid = self.grid,
                patch = self.patch
            );
        }
        Ok(())
    }

    /// Writes the graph: patch embedding, class token and positions, blocks, norm, head.
    pub fn graph(&self, b: &mut Builder<'_>) -> Result<()> {
        let (d, n) = (self.width as i64, (self.grid * self.grid + 1) as i64);
        let x = b.input();
        let spec = ConvSpec {
            stride: self.patch as i64,
            pad: 0,
            groups: 1,
        };
        let x = b.conv(x, "0.patch_embed.proj.weight", Some("0.patch_embed.proj.bias"), spec)?;
        let x = b.reshape(x, &[0, d, n - 1]);
        let patches = b.transpose(x, &[0, 2, 1]);
        let cls = class_tokens(b, &patches, d)?;
        let x = b.concat(vec![cls, patches], 1);
        let pos = b.weight("0.pos_embed")?;
        let x = b.op("Add", vec![x, pos]);
        // Tokens as rows [batch * n, d], so that every Linear is a Gemm on PyTorch's weights.
        let mut x = b.reshape(x, &[-1, d]);
        for i in 0..self.depth {
            x = self.block_graph(b, x, &format!("0.blocks.{i}"))?;
        }
        let x = b.layer_norm(x, "0.norm", LN_EPSILON)?;
        let x = b.reshape(x, &[-1, n, d]);
        let zero = b.const_i64(&[0]);
        let x = b.node("Gather", vec![x, zero], vec![AttributeProto::int("axis", 1)], None);
        let x = b.reshape(x, &[-1, d]);
        b.gemm(x, "0.head", Some(OUTPUT))?;
        Ok(())
    }

    /// One block on the token rows `x`.
    fn block_graph(&self, b: &mut Builder<'_>, x: String, p: &str) -> Result<String> {
        let h = b.layer_norm(x.clone(), &format!("{p}.norm1"), LN_EPSILON)?;
        let h = self.attention(b, h, p)?;
        let h = b.gemm(h, &format!("{p}.attn.proj"), None)?;
        let x = b.op("Add", vec![x, h]);
        let h = b.layer_norm(x.clone(), &format!("{p}.norm2"), LN_EPSILON)?;
        let h = b.gemm(h, &format!("{p}.mlp.fc1"), None)?;
        let h = b.act(h, Act::Gelu);
        let h = b.gemm(h, &format!("{p}.mlp.fc2"), None)?;
        Ok(b.op("Add", vec![x, h]))
    }

    /// Multi-head self-attention of the token rows `h` (before `proj`), as token rows.
    fn attention(&self, b: &mut Builder<'_>, h: String, p: &str) -> Result<String> {
        let (n, heads) = ((self.grid * self.grid + 1) as i64, self.heads as i64);
        let head_dim = self.width as i64 / heads;
        let qkv = b.gemm(h, &format!("{p}.attn.qkv"), None)?;
        let qkv = b.reshape(qkv, &[-1, n, 3, heads, head_dim]);
        let qkv = b.transpose(qkv, &[2, 0, 3, 1, 4]);
        let [q, k, v] = [0, 1, 2].map(|i| pick(b, &qkv, i));
        let scale = b.const_f32(&[], &[(head_dim as f32).powf(-0.5)]);
        let q = b.op("Mul", vec![q, scale]);
        let kt = b.transpose(k, &[0, 1, 3, 2]);
        let scores = b.op("MatMul", vec![q, kt]);
        let attn = b.node("Softmax", vec![scores], vec![AttributeProto::int("axis", -1)], None);
        let out = b.op("MatMul", vec![attn, v]);
        let out = b.transpose(out, &[0, 2, 1, 3]);
        Ok(b.reshape(out, &[-1, self.width as i64]))
    }
}

/// `qkv[index]` (q, k or v: `[batch, heads, n, head_dim]`).
fn pick(b: &mut Builder<'_>, qkv: &str, index: i64) -> String {
    let i = b.const_i64(&[index]);
    let picked = b.node(
        "Gather",
        vec![qkv.to_string(), i],
        vec![AttributeProto::int("axis", 0)],
        None,
    );
    let axes = b.const_i64(&[0]);
    b.op("Squeeze", vec![picked, axes])
}

/// The class token `[1, 1, d]` repeated for every chip of the batch of `patches`.
fn class_tokens(b: &mut Builder<'_>, patches: &str, d: i64) -> Result<String> {
    let cls = b.weight("0.cls_token")?;
    let shape = b.op("Shape", vec![patches.to_string()]);
    let start = b.const_i64(&[0]);
    let end = b.const_i64(&[1]);
    let batch = b.op("Slice", vec![shape, start, end]);
    let rest = b.const_i64(&[1, d]);
    let target = b.concat(vec![batch, rest], 0);
    Ok(b.op("Expand", vec![cls, target]))
}
