//! The ONNX graph (opset 17) of a detected FeatureClassifier network, in eval mode, with the
//! weights of its state_dict as initializers named by their PyTorch keys: the [`Builder`] that
//! every family writes its nodes with, and the model around them ([`Builder::finish`]).
//!
//! Operators, as checked against Esri's own outputs: `Conv` (groups for depthwise convolutions;
//! padding symmetric `k // 2` as in torchvision and timm's non-`tf_` models), `BatchNormalization`
//! (on 4-D and 2-D tensors), `Relu`, `Clip` (ReLU6), `Sigmoid` and `Mul` (SiLU), `HardSwish`,
//! `HardSigmoid` (alpha 1/6, beta 1/2: PyTorch's `Hardsigmoid`, not ONNX's default),
//! `LayerNormalization` (opset 17), GELU written as `0.5 x (1 + erf(x / sqrt 2))` (ONNX's `Gelu`
//! needs opset 20; staying at 17 keeps every converted model on the opset the ResNets were
//! checked with), `MaxPool`, `AveragePool`, `GlobalMaxPool`, `GlobalAveragePool`, `Concat`,
//! `Gemm` (`transB=1`, PyTorch's `[out, in]` weights), `MatMul`, `Softmax`, `Reshape`,
//! `Transpose`, `Gather`, `Expand`. Dropout and DropPath are the identity at inference and are left
//! out. The output is logits: the activation (softmax or sigmoid) is applied by the caller, as
//! fastai does.
//!
//! The graph is built without its weights: [`Graph::weights`] names the state_dict tensors that
//! become its initializers, and [`crate::model::arcgis_learn::encode`] writes them into the ONNX
//! bytes, over the `.pth` bytes they come from. Small constants (shapes, scalars) are
//! initializers of the graph itself.

use std::collections::HashSet;

use anyhow::{Context, Result};

use crate::model::arcgis_learn::pth::StateDict;
use crate::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    ValueInfoProto, FLOAT,
};

/// ONNX opset the graph is written for.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// Epsilon of every BatchNorm in torchvision, timm (non-`tf_` models) and fastai.
pub const BN_EPSILON: f32 = 1e-5;
/// Name of the graph input.
pub const INPUT: &str = "image";
/// Name of the graph output.
pub const OUTPUT: &str = "logits";
/// `TensorProto.DataType.INT64`.
const INT64: i32 = 7;

/// Where the model came from, written into the model's metadata.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// `key=value` pairs for `metadata_props`.
    pub props: Vec<(String, String)>,
}

/// An ONNX model without its weights, and the state_dict tensors that are its initializers.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The model; its graph holds only the small constant initializers.
    pub model: ModelProto,
    /// State_dict keys of the initializers, each named by its key in the graph.
    pub weights: Vec<String>,
}

/// An elementwise activation, as PyTorch defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// None.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, 0, 6)`.
    Relu6,
    /// `x * sigmoid(x)` (Swish).
    Silu,
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`.
    Gelu,
}

/// A 2-D convolution's geometry (square kernel read from its weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Stride.
    pub stride: i64,
    /// Symmetric padding.
    pub pad: i64,
    /// Groups (the channel count for a depthwise convolution).
    pub groups: i64,
}

impl ConvSpec {
    /// Stride `stride`, padding `k // 2`, one group: timm's and torchvision's usual convolution.
    pub fn same(kernel: usize, stride: usize) -> ConvSpec {
        ConvSpec {
            stride: stride as i64,
            pad: (kernel / 2) as i64,
            groups: 1,
        }
    }

    /// The same with `groups` groups.
    pub fn grouped(self, groups: usize) -> ConvSpec {
        ConvSpec {
            groups: groups as i64,
            ..self
        }
    }
}

/// Writes the nodes of a graph, naming the state_dict tensors they use.
pub struct Builder<'a> {
    sd: &'a StateDict,
    nodes: Vec<NodeProto>,
    weights: Vec<String>,
    seen: HashSet<String>,
    constants: Vec<TensorProto>,
    next: usize,
}

impl<'a> Builder<'a> {
    /// A builder over the weights `sd`.
    pub fn new(sd: &'a StateDict) -> Builder<'a> {
        Builder {
            sd,
            nodes: Vec::new(),
            weights: Vec::new(),
            seen: HashSet::new(),
            constants: Vec::new(),
            next: 0,
        }
    }

    /// The graph input.
    pub fn input(&self) -> String {
        INPUT.to_string()
    }

    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}_{}", self.next)
    }

    /// The state_dict tensor `key` as an initializer (named by its key).
    pub fn weight(&mut self, key: &str) -> Result<String> {
        self.sd
            .get(key)
            .with_context(|| format!("tensor {key} missing after detection"))?;
        if self.seen.insert(key.to_string()) {
            self.weights.push(key.to_string());
        }
        Ok(key.to_string())
    }

    /// A node `op` on `inputs`; its one output is `out` or a fresh name.
    pub fn node(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        attributes: Vec<AttributeProto>,
        out: Option<&str>,
    ) -> String {
        let output = match out {
            Some(name) => name.to_string(),
            None => self.fresh(&op.to_ascii_lowercase()),
        };
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output.clone()],
            name: Some(format!("{op}_{}", self.nodes.len())),
            op_type: Some(op.to_string()),
            attribute: attributes,
            ..Default::default()
        });
        output
    }

    /// A node without attributes.
    pub fn op(&mut self, op: &str, inputs: Vec<String>) -> String {
        self.node(op, inputs, Vec::new(), None)
    }

    /// A float32 constant of `dims` (a scalar for `[]`).
    pub fn const_f32(&mut self, dims: &[i64], values: &[f32]) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(dims, FLOAT, raw)
    }

    /// A 1-D int64 constant (shapes, axes, indices).
    pub fn const_i64(&mut self, values: &[i64]) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(&[values.len() as i64], INT64, raw)
    }

    fn constant(&mut self, dims: &[i64], data_type: i32, raw: Vec<u8>) -> String {
        let name = self.fresh("const");
        self.constants.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(data_type),
            name: Some(name.clone()),
            raw_data: Some(raw.into()),
            ..Default::default()
        });
        name
    }

    /// A convolution with the weight `key` (`[out, in / groups, k, k]`) and optional bias.
    pub fn conv(&mut self, x: String, key: &str, bias: Option<&str>, spec: ConvSpec) -> Result<String> {
        let kernel = match self.sd.get(key).map(|t| t.shape.as_slice()) {
            Some([_, _, kh, kw]) => [*kh as i64, *kw as i64],
            _ => anyhow::bail!("tensor {key} is not a 4-D convolution weight after detection"),
        };
        let mut inputs = vec![x, self.weight(key)?];
        if let Some(bias) = bias {
            inputs.push(self.weight(bias)?);
        }
        let p = spec.pad;
        Ok(self.node(
            "Conv",
            inputs,
            vec![
                AttributeProto::ints("kernel_shape", &kernel),
                AttributeProto::ints("strides", &[spec.stride, spec.stride]),
                AttributeProto::ints("pads", &[p, p, p, p]),
                AttributeProto::ints("dilations", &[1, 1]),
                AttributeProto::int("group", spec.groups),
            ],
            None,
        ))
    }

    /// BatchNorm (eval) with the tensors at `prefix` and [`BN_EPSILON`].
    pub fn batch_norm(&mut self, x: String, prefix: &str) -> Result<String> {
        let inputs = vec![
            x,
            self.weight(&format!("{prefix}.weight"))?,
            self.weight(&format!("{prefix}.bias"))?,
            self.weight(&format!("{prefix}.running_mean"))?,
            self.weight(&format!("{prefix}.running_var"))?,
        ];
        Ok(self.node(
            "BatchNormalization",
            inputs,
            vec![AttributeProto::float("epsilon", BN_EPSILON)],
            None,
        ))
    }

    /// LayerNormalization over the last axis with the tensors at `prefix`.
    pub fn layer_norm(&mut self, x: String, prefix: &str, epsilon: f32) -> Result<String> {
        let inputs = vec![
            x,
            self.weight(&format!("{prefix}.weight"))?,
            self.weight(&format!("{prefix}.bias"))?,
        ];
        Ok(self.node(
            "LayerNormalization",
            inputs,
            vec![
                AttributeProto::int("axis", -1),
                AttributeProto::float("epsilon", epsilon),
            ],
            None,
        ))
    }

    /// `act(x)`.
    pub fn act(&mut self, x: String, act: Act) -> String {
        match act {
            Act::Identity => x,
            Act::Relu => self.op("Relu", vec![x]),
            Act::Relu6 => {
                let (lo, hi) = (self.const_f32(&[], &[0.0]), self.const_f32(&[], &[6.0]));
                self.op("Clip", vec![x, lo, hi])
            }
            Act::Silu => {
                let s = self.op("Sigmoid", vec![x.clone()]);
                self.op("Mul", vec![x, s])
            }
            Act::HardSwish => self.op("HardSwish", vec![x]),
            Act::HardSigmoid => self.node(
                "HardSigmoid",
                vec![x],
                vec![
                    AttributeProto::float("alpha", 1.0 / 6.0),
                    AttributeProto::float("beta", 0.5),
                ],
                None,
            ),
            Act::Sigmoid => self.op("Sigmoid", vec![x]),
            Act::Gelu => self.gelu(x),
        }
    }

    /// `0.5 x (1 + erf(x / sqrt 2))`, PyTorch's exact GELU.
    fn gelu(&mut self, x: String) -> String {
        let sqrt2 = self.const_f32(&[], &[std::f32::consts::SQRT_2]);
        let one = self.const_f32(&[], &[1.0]);
        let half = self.const_f32(&[], &[0.5]);
        let scaled = self.op("Div", vec![x.clone(), sqrt2]);
        let erf = self.op("Erf", vec![scaled]);
        let plus = self.op("Add", vec![erf, one]);
        let prod = self.op("Mul", vec![x, plus]);
        self.op("Mul", vec![prod, half])
    }

    /// A pooling window `op` (`MaxPool`, `AveragePool`) of `kernel`, `stride`, symmetric `pad`.
    pub fn pool(&mut self, op: &str, x: String, kernel: i64, stride: i64, pad: i64) -> String {
        self.node(
            op,
            vec![x],
            vec![
                AttributeProto::ints("kernel_shape", &[kernel, kernel]),
                AttributeProto::ints("strides", &[stride, stride]),
                AttributeProto::ints("pads", &[pad, pad, pad, pad]),
            ],
            None,
        )
    }

    /// `x W^T + b` with the Linear layer at `prefix` (x is 2-D).
    pub fn gemm(&mut self, x: String, prefix: &str, out: Option<&str>) -> Result<String> {
        let inputs = vec![
            x,
            self.weight(&format!("{prefix}.weight"))?,
            self.weight(&format!("{prefix}.bias"))?,
        ];
        Ok(self.node("Gemm", inputs, vec![AttributeProto::int("transB", 1)], out))
    }

    /// `x` reshaped to `shape` (0 keeps a dimension, -1 infers one).
    pub fn reshape(&mut self, x: String, shape: &[i64]) -> String {
        let shape = self.const_i64(shape);
        self.op("Reshape", vec![x, shape])
    }

    /// `x` with its axes permuted.
    pub fn transpose(&mut self, x: String, perm: &[i64]) -> String {
        self.node("Transpose", vec![x], vec![AttributeProto::ints("perm", perm)], None)
    }

    /// `inputs` joined along `axis`.
    pub fn concat(&mut self, inputs: Vec<String>, axis: i64) -> String {
        self.node("Concat", inputs, vec![AttributeProto::int("axis", axis)], None)
    }

    /// The model: the nodes written, input `[batch, in_channels, height, width]`, output
    /// `[batch, classes]` (which the last node must have written to [`OUTPUT`]).
    pub fn finish(self, model: &ModelShape, provenance: &Provenance) -> Graph {
        let graph = GraphProto {
            node: self.nodes,
            name: Some(format!("feature_classifier_{}", model.name)),
            initializer: self.constants,
            doc_string: None,
            input: vec![ValueInfoProto::float_tensor(
                INPUT,
                &[
                    Err("batch"),
                    Ok(model.in_channels as i64),
                    Ok(model.height as i64),
                    Ok(model.width as i64),
                ],
            )],
            output: vec![ValueInfoProto::float_tensor(
                OUTPUT,
                &[Err("batch"), Ok(model.classes as i64)],
            )],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(IR_VERSION),
            producer_name: Some("classify-objects".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            doc_string: Some(format!(
                "arcgis.learn FeatureClassifier ({}) converted from PyTorch weights; outputs logits",
                model.description
            )),
            graph: Some(graph),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            }],
            metadata_props: provenance
                .props
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
            ..Default::default()
        };
        Graph {
            model,
            weights: self.weights,
        }
    }
}

/// What the model's inputs, outputs and texts say.
#[derive(Debug, Clone)]
pub struct ModelShape {
    /// Architecture name (`resnet34`), in the graph's name.
    pub name: String,
    /// What it is, in the model's doc string (`resnet34 body + fastai head`).
    pub description: String,
    /// Input channels.
    pub in_channels: usize,
    /// Chip height.
    pub height: usize,
    /// Chip width.
    pub width: usize,
    /// Outputs.
    pub classes: usize,
}
