//! Which nodes run in int8 and which values get a quantize/dequantize pair.
//!
//! * Convolutions, and matrix products (`Gemm`, `MatMul`) with constant weights, run in int8,
//!   except the classifier head: in a model with convolutions, every matrix product after the
//!   last one (fastai's head, a ViT's head); in a model without, the last matrix product. The
//!   head is cheap and carries the decision: it stays fp32.
//! * An `Add` of two values, one of which comes out of an int8 node, runs in int8 too (residual
//!   connections); so do `MaxPool`, `AveragePool` and `GlobalAveragePool` on such a value when a
//!   convolution follows them (the stem's max-pool), never in the head.
//! * A `Relu` that alone reads an int8 node's output is folded into that node's quantization (a
//!   zero point of 0 clamps at 0, as ONNX Runtime's own quantizer does).
//! * Every value an int8 node reads or writes gets one quantize/dequantize pair, shared by all
//!   its readers; a max-pool's output shares its input's (so ONNX Runtime runs it on the int8
//!   values themselves).

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use crate::bail_input;
use crate::model::quantize::onnx_model::{float_attribute, int_attribute, onnx_op, OnnxModel};
use crate::onnx_proto::FLOAT;

/// How an int8 node is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Conv`: weights per output channel (axis 0), bias in int32.
    Conv,
    /// `Gemm`: weights per output column (axis 0 with `transB=1`, else 1), bias in int32.
    Gemm {
        /// Whether the weight is `[N, K]`.
        trans_b: bool,
    },
    /// `MatMul` with a `[K, N]` weight: per output column (axis 1).
    MatMul,
    /// `Add` of two values.
    Add,
    /// `MaxPool` (output shares the input's quantization), `AveragePool`, `GlobalAveragePool`.
    Pool,
}

impl Kind {
    /// Whether the node has a constant weight (input 1) to quantize.
    pub fn has_weight(self) -> bool {
        matches!(self, Kind::Conv | Kind::Gemm { .. } | Kind::MatMul)
    }
}

/// One node run in int8.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantNode {
    /// Position among the model's nodes.
    pub index: usize,
    /// How it is written.
    pub kind: Kind,
    /// The value its quantized output is: its own output, or that of the `Relu` folded into it.
    pub output: String,
}

/// The plan of an int8 model.
#[derive(Debug, Clone, Default)]
pub struct QuantPlan {
    /// Nodes run in int8, in model order.
    pub nodes: Vec<QuantNode>,
    /// `Relu` nodes folded into the quantization of the node before them (removed).
    pub folded_relus: Vec<usize>,
    /// Values that get a quantize/dequantize pair, in the order first met.
    pub values: Vec<String>,
    /// Values whose quantization is that of another value (a max-pool's output: its input).
    pub shared: HashMap<String, String>,
    /// Values that are never negative (a folded `Relu`'s output): zero point 0.
    pub non_negative: HashSet<String>,
    /// Matrix products kept in fp32 as the classifier head (node names or operators).
    pub head: Vec<String>,
}

impl QuantPlan {
    /// The values whose range calibration must measure (those that share none).
    pub fn calibrated(&self) -> Vec<String> {
        self.values
            .iter()
            .filter(|v| !self.shared.contains_key(*v))
            .cloned()
            .collect()
    }

    /// Nodes of each operator run in int8 (`Conv: 20, Gemm: 1, ...`).
    pub fn counts(&self, model: &OnnxModel) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for node in &self.nodes {
            let op = model.nodes()[node.index].op_type.clone().unwrap_or_default();
            match counts.iter_mut().find(|(o, _)| *o == op) {
                Some((_, n)) => *n += 1,
                None => counts.push((op, 1)),
            }
        }
        counts
    }
}

/// Plans the int8 model of `model` (BatchNormalization already folded), named `name` in
/// messages. A model with no convolution or matrix product outside its head is refused.
pub fn plan(model: &OnnxModel, name: &str) -> Result<QuantPlan> {
    let nodes = model.nodes();
    let initializers = model.initializers();
    let graph_outputs: HashSet<&str> = model
        .proto
        .graph
        .iter()
        .flat_map(|g| &g.output)
        .filter_map(|o| o.name.as_deref())
        .collect();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for input in &node.input {
            consumers.entry(input.as_str()).or_default().push(i);
        }
    }
    let is_constant = |v: &str| initializers.contains_key(v);
    let float_dims = |v: &str| {
        initializers
            .get(v)
            .filter(|t| t.data_type == Some(FLOAT))
            .map(|t| t.dims.clone())
    };
    // Nodes with constant weights that can run in int8.
    let weighted: Vec<(usize, Kind)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let op = onnx_op(node)?;
            if node.output.len() != 1 || node.input.len() < 2 || is_constant(&node.input[0]) {
                return None;
            }
            let w = float_dims(&node.input[1])?;
            let bias_ok = |len: i64| match node.input.get(2).filter(|b| !b.is_empty()) {
                None => true,
                Some(b) => float_dims(b).is_some_and(|d| d == [len]),
            };
            match op {
                "Conv" if w.len() == 4 && bias_ok(w[0]) => Some((i, Kind::Conv)),
                "Gemm"
                    if w.len() == 2
                        && int_attribute(node, "transA", 0) == 0
                        && float_attribute(node, "alpha", 1.0) == 1.0
                        && float_attribute(node, "beta", 1.0) == 1.0 =>
                {
                    let trans_b = int_attribute(node, "transB", 0) != 0;
                    let n = if trans_b { w[0] } else { w[1] };
                    bias_ok(n).then_some((i, Kind::Gemm { trans_b }))
                }
                "MatMul" if w.len() == 2 && node.input.len() == 2 => Some((i, Kind::MatMul)),
                _ => None,
            }
        })
        .collect();
    let last_conv = weighted.iter().filter(|(_, k)| *k == Kind::Conv).map(|(i, _)| *i).max();
    let last_product = weighted.iter().filter(|(_, k)| *k != Kind::Conv).map(|(i, _)| *i).max();
    let in_head = |i: usize, kind: Kind| match (kind, last_conv) {
        (Kind::Conv, _) => false,
        (_, Some(last)) => i > last,
        (_, None) => Some(i) == last_product,
    };
    let mut plan = QuantPlan::default();
    let mut int8_kind: HashMap<usize, Kind> = HashMap::new();
    for &(i, kind) in &weighted {
        if in_head(i, kind) {
            let node = &nodes[i];
            plan.head.push(
                node.name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("{} #{i}", node.op_type.as_deref().unwrap_or("?"))),
            );
        } else {
            int8_kind.insert(i, kind);
        }
    }
    if int8_kind.is_empty() {
        bail_input!(
            "model {name} has no convolution or matrix product with constant weights outside its classifier head; int8 would not make it faster, keep the fp32 package"
        );
    }
    let mut int8_values: HashSet<String> = HashSet::new();
    let mut folded: HashSet<usize> = HashSet::new();
    for (i, node) in nodes.iter().enumerate() {
        if folded.contains(&i) {
            continue;
        }
        let op = onnx_op(node).unwrap_or("");
        let kind = match int8_kind.get(&i) {
            Some(&kind) => Some(kind),
            None if op == "Add"
                && node.input.len() == 2
                && node.output.len() == 1
                && node.input.iter().all(|v| !is_constant(v))
                && node.input.iter().any(|v| int8_values.contains(v)) =>
            {
                Some(Kind::Add)
            }
            None if matches!(op, "MaxPool" | "AveragePool" | "GlobalAveragePool")
                && node.output.len() == 1
                && int8_values.contains(&node.input[0])
                && last_conv.is_some_and(|last| i < last) =>
            {
                Some(Kind::Pool)
            }
            None => None,
        };
        let Some(kind) = kind else {
            continue;
        };
        // Values read: the activation inputs.
        let reads: Vec<String> = match kind {
            Kind::Add => node.input.clone(),
            _ => vec![node.input[0].clone()],
        };
        // A Relu that alone reads the output, neither being a graph output, is folded.
        let mut output = node.output[0].clone();
        if kind != Kind::Pool && !graph_outputs.contains(output.as_str()) {
            if let Some([r]) = consumers.get(output.as_str()).map(Vec::as_slice) {
                let relu = &nodes[*r];
                if onnx_op(relu) == Some("Relu") && !graph_outputs.contains(relu.output[0].as_str()) {
                    folded.insert(*r);
                    plan.folded_relus.push(*r);
                    output = relu.output[0].clone();
                    plan.non_negative.insert(output.clone());
                }
            }
        }
        for value in reads.iter().chain(std::iter::once(&output)) {
            if !plan.values.contains(value) {
                plan.values.push(value.clone());
            }
        }
        if op == "MaxPool" {
            plan.shared.insert(output.clone(), reads[0].clone());
        }
        int8_values.insert(output.clone());
        plan.nodes.push(QuantNode { index: i, kind, output });
    }
    Ok(plan)
}
