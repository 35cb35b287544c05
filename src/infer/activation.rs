//! From raw model outputs to class probabilities, decided once per model: softmax for
//! single-label models, sigmoid for multi-label ones, nothing when the graph already ends in a
//! Softmax or Sigmoid node ([`graph_final_activation`]). Never decided per chip: a logit that
//! happens to lie in 0..1 is still a logit.

use prost::Message;

use crate::onnx_proto::ModelWiring;

/// How a model's outputs become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Softmax over the classes (one label per object).
    Softmax,
    /// Sigmoid per class (any number of labels per object).
    Sigmoid,
    /// None: the model outputs probabilities already (its graph ends in Softmax or Sigmoid).
    Identity,
}

impl Activation {
    /// A short name for messages and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Softmax => "softmax",
            Activation::Sigmoid => "sigmoid",
            Activation::Identity => "none (the model outputs probabilities)",
        }
    }
}

/// The activation for a model whose package asks for `wanted`: [`Activation::Identity`] when
/// its graph already ends in a probability operator, `wanted` otherwise.
pub fn for_model(onnx: &[u8], wanted: Activation) -> Activation {
    match graph_final_activation(onnx) {
        Some(_) => Activation::Identity,
        None => wanted,
    }
}

/// Operators that only move or reshape values: looked through when finding what produced the
/// model's output.
const PASS_THROUGH: &[&str] = &["Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"];

/// The operator (`Softmax` or `Sigmoid`) that produces the model's first output, looking through
/// reshaping operators; `None` when the output is anything else (logits) or the bytes are not a
/// readable model. Only the graph's wiring is decoded, not its weights.
pub fn graph_final_activation(onnx: &[u8]) -> Option<&'static str> {
    let wiring = ModelWiring::decode(onnx).ok()?;
    let graph = wiring.graph?;
    let mut value = graph.output.first()?.name.clone()?;
    // Each step moves to an earlier node, so the walk ends within the node count.
    for _ in 0..=graph.node.len() {
        let node = graph.node.iter().rev().find(|n| n.output.contains(&value))?;
        if node.domain.as_deref().is_some_and(|d| !d.is_empty() && d != "ai.onnx") {
            return None;
        }
        match node.op_type.as_deref()? {
            "Softmax" => return Some("Softmax"),
            "Sigmoid" => return Some("Sigmoid"),
            op if PASS_THROUGH.contains(&op) => value = node.input.first()?.clone(),
            _ => return None,
        }
    }
    None
}

/// Turns one chip's raw model outputs into probabilities in place.
pub fn activate(row: &mut [f32], activation: Activation) {
    match activation {
        Activation::Softmax => {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                total += *v;
            }
            for v in row.iter_mut() {
                *v /= total;
            }
        }
        Activation::Sigmoid => {
            for v in row.iter_mut() {
                *v = 1.0 / (1.0 + (-*v).exp());
            }
        }
        Activation::Identity => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto};

    fn node(op: &str, input: &str, output: &str) -> NodeProto {
        NodeProto {
            input: vec![input.into()],
            output: vec![output.into()],
            op_type: Some(op.into()),
            ..Default::default()
        }
    }

    fn model(nodes: Vec<NodeProto>, output: &str) -> Vec<u8> {
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                output: vec![ValueInfoProto::float_tensor(output, &[Err("n"), Ok(2)])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn softmax_and_sigmoid_of_logits_whatever_their_range() {
        let mut logits = [1.0f32, 2.0, 3.0];
        activate(&mut logits, Activation::Softmax);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let s: f32 = e.iter().sum();
        for (a, b) in logits.iter().zip(e.iter().map(|v| v / s)) {
            assert!((a - b).abs() < 1e-6);
        }
        // Logits that look like probabilities are still logits.
        let mut in_unit = [0.2f32, 0.7, 0.1];
        activate(&mut in_unit, Activation::Softmax);
        assert!((in_unit.iter().sum::<f32>() - 1.0).abs() < 1e-6 && (in_unit[1] - 0.4640).abs() < 1e-3);
        let mut multi = [0.2f32, 2.0];
        activate(&mut multi, Activation::Sigmoid);
        assert!((multi[0] - 0.549834).abs() < 1e-5 && (multi[1] - 0.880797).abs() < 1e-5);
        let mut kept = [0.2f32, 0.7];
        activate(&mut kept, Activation::Identity);
        assert_eq!(kept, [0.2, 0.7]);
    }

    #[test]
    fn final_operator_found_through_reshapes() {
        let logits = model(vec![node("Gemm", "x", "logits")], "logits");
        assert_eq!(graph_final_activation(&logits), None);
        assert_eq!(for_model(&logits, Activation::Sigmoid), Activation::Sigmoid);
        let probs = model(
            vec![
                node("Gemm", "x", "logits"),
                node("Softmax", "logits", "p"),
                node("Flatten", "p", "out"),
            ],
            "out",
        );
        assert_eq!(graph_final_activation(&probs), Some("Softmax"));
        assert_eq!(for_model(&probs, Activation::Softmax), Activation::Identity);
        let sig = model(vec![node("Sigmoid", "x", "y")], "y");
        assert_eq!(graph_final_activation(&sig), Some("Sigmoid"));
        assert_eq!(graph_final_activation(b"not a model"), None);
    }
}
