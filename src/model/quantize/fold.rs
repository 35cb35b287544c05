//! BatchNormalization folded into the convolution before it, as ONNX Runtime does for fp32 and
//! as a quantized convolution needs (a quantize/dequantize pair between the two would keep them
//! apart): `w' = w * g / sqrt(v + eps)`, `b' = (b - m) * g / sqrt(v + eps) + beta`, per output
//! channel. Only where the convolution's output goes to that BatchNormalization alone and every
//! tensor involved is a float32 initializer; anything else is left as it was.

use std::collections::{HashMap, HashSet};

use crate::model::quantize::onnx_model::{float_attribute, float_tensor, float_values, onnx_op, OnnxModel};
use crate::onnx_proto::TensorProto;

/// Folds every foldable BatchNormalization into its convolution; returns how many were folded.
pub fn fold_batch_norms(model: &mut OnnxModel) -> usize {
    let Some(graph) = model.proto.graph.as_mut() else {
        return 0;
    };
    let outputs: HashSet<String> = graph.output.iter().filter_map(|o| o.name.clone()).collect();
    let mut consumers: HashMap<String, usize> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            *consumers.entry(input.clone()).or_default() += 1;
        }
    }
    let producer: HashMap<String, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i)))
        .collect();
    let mut new_tensors: Vec<TensorProto> = Vec::new();
    let mut removed = std::collections::HashSet::new();
    let mut folded = 0;
    for bn_index in 0..graph.node.len() {
        let bn = &graph.node[bn_index];
        if onnx_op(bn) != Some("BatchNormalization") || bn.output.len() != 1 || bn.input.len() != 5 {
            continue;
        }
        let Some(&conv_index) = producer.get(&bn.input[0]) else {
            continue;
        };
        let conv = &graph.node[conv_index];
        if onnx_op(conv) != Some("Conv")
            || conv.output.len() != 1
            || consumers.get(&conv.output[0]) != Some(&1)
            || outputs.contains(&conv.output[0])
        {
            continue;
        }
        let find = |name: &str| {
            graph
                .initializer
                .iter()
                .find(|t| t.name.as_deref() == Some(name))
                .and_then(float_values)
        };
        let Some(weight) = conv
            .input
            .get(1)
            .and_then(|w| graph.initializer.iter().find(|t| t.name.as_ref() == Some(w)))
        else {
            continue;
        };
        let (Some(w), Some(gamma), Some(beta), Some(mean), Some(var)) = (
            float_values(weight),
            find(&bn.input[1]),
            find(&bn.input[2]),
            find(&bn.input[3]),
            find(&bn.input[4]),
        ) else {
            continue;
        };
        let channels = weight.dims.first().copied().unwrap_or(0) as usize;
        if channels == 0 || [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != channels) || w.len() % channels != 0
        {
            continue;
        }
        let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => match find(b) {
                Some(values) if values.len() == channels => values,
                _ => continue,
            },
            None => vec![0.0; channels],
        };
        let eps = float_attribute(bn, "epsilon", 1e-5);
        let per = w.len() / channels;
        let mut new_w = w;
        let mut new_b = vec![0f32; channels];
        for c in 0..channels {
            let f = gamma[c] / (var[c] + eps).sqrt();
            new_w[c * per..(c + 1) * per].iter_mut().for_each(|x| *x *= f);
            new_b[c] = (bias[c] - mean[c]) * f + beta[c];
        }
        let (w_name, b_name) = (
            format!("{}_bnfolded", conv.input[1]),
            format!("{}_bnfolded_bias", bn.output[0]),
        );
        new_tensors.push(float_tensor(&w_name, &weight.dims, &new_w));
        new_tensors.push(float_tensor(&b_name, &[channels as i64], &new_b));
        let bn_output = bn.output[0].clone();
        let conv = &mut graph.node[conv_index];
        conv.input.truncate(2);
        conv.input[1] = w_name;
        conv.input.push(b_name);
        conv.output[0] = bn_output;
        removed.insert(bn_index);
        folded += 1;
    }
    let mut index = 0;
    graph.node.retain(|_| {
        index += 1;
        !removed.contains(&(index - 1))
    });
    graph.initializer.extend(new_tensors);
    drop_unused_initializers(model);
    folded
}

/// Removes the initializers no node reads any more (and their graph inputs, if listed).
pub fn drop_unused_initializers(model: &mut OnnxModel) {
    let Some(graph) = model.proto.graph.as_mut() else {
        return;
    };
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().filter_map(|o| o.name.as_deref()))
        .collect();
    let keep: Vec<bool> = graph
        .initializer
        .iter()
        .map(|t| used.contains(t.name.as_deref().unwrap_or("")))
        .collect();
    let dropped: HashSet<String> = graph
        .initializer
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| !k)
        .filter_map(|(t, _)| t.name.clone())
        .collect();
    let mut index = 0;
    graph.initializer.retain(|_| {
        index += 1;
        keep[index - 1]
    });
    // Models of IR version 3 list their initializers among the graph's inputs too.
    graph
        .input
        .retain(|i| !i.name.as_ref().is_some_and(|n| dropped.contains(n)));
}
