//! The ONNX graph (opset 17) of a detected FeatureClassifier ResNet, in eval mode, with the
//! weights of its state_dict as initializers named by their PyTorch keys.
//!
//! Operators, as checked against Esri's own outputs: `Conv` (no bias), `BatchNormalization`
//! (epsilon 1e-5, on the 4-D body tensors and on the 2-D head tensors alike), `Relu`, `MaxPool`
//! (3x3, stride 2, pad 1), `Add`, `GlobalMaxPool` and `GlobalAveragePool` joined by `Concat`
//! on the channel axis **max first**, `Flatten`, `Gemm` (`transB=1`, PyTorch's `[out, in]`
//! weights). Dropout is the identity at inference and is left out. The output is logits: the
//! activation (softmax or sigmoid) is applied by the caller, as fastai does.
//!
//! The graph is built without its weights: [`Graph::weights`] names the state_dict tensors that
//! become its initializers, and [`crate::model::arcgis_learn::encode`] writes them into the ONNX bytes, over
//! the `.pth` bytes they come from.

use anyhow::{Context, Result};

use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::resnet::{Block, BlockKind, ResNet};
use crate::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, ValueInfoProto,
};

/// ONNX opset the graph is written for.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// Epsilon of every BatchNorm in torchvision and fastai.
pub const BN_EPSILON: f32 = 1e-5;
/// Name of the graph input.
pub const INPUT: &str = "image";
/// Name of the graph output.
pub const OUTPUT: &str = "logits";

/// Where the model came from, written into the model's metadata.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// `key=value` pairs for `metadata_props`.
    pub props: Vec<(String, String)>,
}

/// An ONNX model without its weights, and the state_dict tensors that are its initializers.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The model; its graph has no initializers yet.
    pub model: ModelProto,
    /// State_dict keys of the initializers, each named by its key in the graph.
    pub weights: Vec<String>,
}

struct Builder<'a> {
    sd: &'a StateDict,
    nodes: Vec<NodeProto>,
    weights: Vec<String>,
    next: usize,
}

impl Builder<'_> {
    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}_{}", self.next)
    }

    fn weight(&mut self, key: &str) -> Result<String> {
        self.sd
            .get(key)
            .with_context(|| format!("tensor {key} missing after detection"))?;
        self.weights.push(key.to_string());
        Ok(key.to_string())
    }

    fn node(&mut self, op: &str, inputs: Vec<String>, attributes: Vec<AttributeProto>, out: Option<&str>) -> String {
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
            domain: None,
        });
        output
    }

    fn conv(&mut self, x: String, key: &str, kernel: i64, stride: i64, pad: i64) -> Result<String> {
        let w = self.weight(key)?;
        Ok(self.node(
            "Conv",
            vec![x, w],
            vec![
                AttributeProto::ints("kernel_shape", &[kernel, kernel]),
                AttributeProto::ints("strides", &[stride, stride]),
                AttributeProto::ints("pads", &[pad, pad, pad, pad]),
                AttributeProto::ints("dilations", &[1, 1]),
                AttributeProto::int("group", 1),
            ],
            None,
        ))
    }

    fn batch_norm(&mut self, x: String, prefix: &str) -> Result<String> {
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

    fn relu(&mut self, x: String) -> String {
        self.node("Relu", vec![x], vec![], None)
    }

    /// Conv 7x7/2, BatchNorm, ReLU, MaxPool 3x3/2.
    fn resnet_stem(&mut self) -> Result<String> {
        let x = self.conv(INPUT.to_string(), "0.0.weight", 7, 2, 3)?;
        let x = self.batch_norm(x, "0.1")?;
        let x = self.relu(x);
        Ok(self.node(
            "MaxPool",
            vec![x],
            vec![
                AttributeProto::ints("kernel_shape", &[3, 3]),
                AttributeProto::ints("strides", &[2, 2]),
                AttributeProto::ints("pads", &[1, 1, 1, 1]),
            ],
            None,
        ))
    }

    /// A residual block on `input`: the block's branch, plus the input (downsampled when the
    /// block changes shape), then ReLU.
    fn residual_block(&mut self, input: String, block: &Block, kind: BlockKind) -> Result<String> {
        let p = &block.prefix;
        let s = block.stride as i64;
        let y = match kind {
            BlockKind::Basic => {
                let y = self.conv(input.clone(), &format!("{p}.conv1.weight"), 3, s, 1)?;
                let y = self.batch_norm(y, &format!("{p}.bn1"))?;
                let y = self.relu(y);
                let y = self.conv(y, &format!("{p}.conv2.weight"), 3, 1, 1)?;
                self.batch_norm(y, &format!("{p}.bn2"))?
            }
            BlockKind::Bottleneck => {
                let y = self.conv(input.clone(), &format!("{p}.conv1.weight"), 1, 1, 0)?;
                let y = self.batch_norm(y, &format!("{p}.bn1"))?;
                let y = self.relu(y);
                let y = self.conv(y, &format!("{p}.conv2.weight"), 3, s, 1)?;
                let y = self.batch_norm(y, &format!("{p}.bn2"))?;
                let y = self.relu(y);
                let y = self.conv(y, &format!("{p}.conv3.weight"), 1, 1, 0)?;
                self.batch_norm(y, &format!("{p}.bn3"))?
            }
        };
        let shortcut = if block.downsample {
            let d = self.conv(input, &format!("{p}.downsample.0.weight"), 1, s, 0)?;
            self.batch_norm(d, &format!("{p}.downsample.1"))?
        } else {
            input
        };
        let sum = self.node("Add", vec![y, shortcut], vec![], None);
        Ok(self.relu(sum))
    }

    /// The fastai head on the body's output `x`: concat pooling (max first), flatten, BN,
    /// Linear, ReLU, BN, Linear into the graph's output.
    fn fastai_head(&mut self, x: String) -> Result<()> {
        let max = self.node("GlobalMaxPool", vec![x.clone()], vec![], None);
        let avg = self.node("GlobalAveragePool", vec![x], vec![], None);
        let cat = self.node("Concat", vec![max, avg], vec![AttributeProto::int("axis", 1)], None);
        let flat = self.node("Flatten", vec![cat], vec![AttributeProto::int("axis", 1)], None);
        let h = self.batch_norm(flat, "1.2")?;
        let h = self.gemm(h, "1.4", None)?;
        let h = self.relu(h);
        let h = self.batch_norm(h, "1.6")?;
        self.gemm(h, "1.8", Some(OUTPUT))?;
        Ok(())
    }

    fn gemm(&mut self, x: String, prefix: &str, out: Option<&str>) -> Result<String> {
        let inputs = vec![
            x,
            self.weight(&format!("{prefix}.weight"))?,
            self.weight(&format!("{prefix}.bias"))?,
        ];
        Ok(self.node("Gemm", inputs, vec![AttributeProto::int("transB", 1)], out))
    }
}

/// The ONNX graph of `net`, whose weights are in `sd`, for chips of `height x width`.
pub fn build(net: &ResNet, sd: &StateDict, height: usize, width: usize, provenance: &Provenance) -> Result<Graph> {
    let mut b = Builder {
        sd,
        nodes: Vec::new(),
        weights: Vec::new(),
        next: 0,
    };
    let mut x = b.resnet_stem()?;
    for block in &net.blocks {
        x = b.residual_block(x, block, net.kind)?;
    }
    b.fastai_head(x)?;
    let graph = GraphProto {
        node: b.nodes,
        name: Some(format!("feature_classifier_{}", net.name())),
        initializer: Vec::new(),
        doc_string: None,
        input: vec![ValueInfoProto::float_tensor(
            INPUT,
            &[
                Err("batch"),
                Ok(net.in_channels as i64),
                Ok(height as i64),
                Ok(width as i64),
            ],
        )],
        output: vec![ValueInfoProto::float_tensor(
            OUTPUT,
            &[Err("batch"), Ok(net.classes as i64)],
        )],
    };
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("classify-objects".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "arcgis.learn FeatureClassifier ({}, fastai head) converted from PyTorch weights; outputs logits",
            net.name()
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
    };
    Ok(Graph {
        model,
        weights: b.weights,
    })
}
