//! The models written from a plan: the calibration probe (the fp32 model with every calibrated
//! value as an extra output) and the int8 model (QuantizeLinear/DequantizeLinear pairs on the
//! planned values, int8 weights and int32 biases behind DequantizeLinear, folded `Relu`s
//! removed).

use std::collections::HashMap;

use anyhow::{Context, Result};

use crate::model::quantize::fold::drop_unused_initializers;
use crate::model::quantize::onnx_model::{float_tensor, float_values, tensor, OnnxModel};
use crate::model::quantize::plan::{Kind, QuantPlan};
use crate::model::quantize::weights::{quantize_bias, quantize_per_channel, uint8_params, Uint8Params};
use crate::onnx_proto::{
    AttributeProto, NodeProto, StringStringEntryProto, TensorTypeProto, TypeProto, ValueInfoProto, FLOAT,
};

/// `TensorProto.DataType.UINT8`.
const UINT8: i32 = 2;
/// `TensorProto.DataType.INT8`.
const INT8: i32 = 3;
/// `TensorProto.DataType.INT32`.
const INT32: i32 = 6;

/// The fp32 model `model` with `values` added as outputs (float tensors of any shape), after its
/// own outputs.
pub fn probe_model(model: &OnnxModel, values: &[String]) -> Vec<u8> {
    let mut probe = model.clone();
    if let Some(graph) = probe.proto.graph.as_mut() {
        for value in values {
            if graph.output.iter().any(|o| o.name.as_ref() == Some(value)) {
                continue;
            }
            graph.output.push(ValueInfoProto {
                name: Some(value.clone()),
                r#type: Some(TypeProto {
                    tensor_type: Some(TensorTypeProto {
                        elem_type: Some(FLOAT),
                        shape: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    probe.to_bytes()
}

/// The int8 model of `model` by `plan`, with each calibrated value's range from `ranges`;
/// `provenance` goes into its metadata.
pub fn int8_model(
    model: &OnnxModel,
    plan: &QuantPlan,
    ranges: &HashMap<String, (f32, f32)>,
    provenance: &[(String, String)],
) -> Result<Vec<u8>> {
    let params = value_params(plan, ranges)?;
    let mut out = model.clone();
    let graph = out.proto.graph.as_mut().context("the model has no graph")?;
    let initial: HashMap<String, crate::onnx_proto::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.clone().unwrap_or_default(), t.clone()))
        .collect();
    let old_nodes = std::mem::take(&mut graph.node);
    let by_index: HashMap<usize, (Kind, &str)> = plan
        .nodes
        .iter()
        .map(|n| (n.index, (n.kind, n.output.as_str())))
        .collect();
    let dq_name = |v: &str| format!("{v}_DequantizeLinear_Output");
    let mut nodes: Vec<NodeProto> = Vec::with_capacity(old_nodes.len() * 2);
    let mut constants = Vec::new();
    let add_pair = |value: &str, nodes: &mut Vec<NodeProto>, constants: &mut Vec<_>| {
        let p = params[value];
        let (scale, zero) = (format!("{value}_scale"), format!("{value}_zero_point"));
        constants.push(float_tensor(&scale, &[], &[p.scale]));
        constants.push(tensor(&zero, UINT8, &[], vec![p.zero_point]));
        let q = format!("{value}_QuantizeLinear_Output");
        nodes.push(qdq_node(
            "QuantizeLinear",
            vec![value.to_string(), scale.clone(), zero.clone()],
            &q,
            None,
        ));
        nodes.push(qdq_node(
            "DequantizeLinear",
            vec![q, scale, zero],
            &dq_name(value),
            None,
        ));
    };
    let graph_inputs: Vec<String> = graph.input.iter().filter_map(|i| i.name.clone()).collect();
    for input in &graph_inputs {
        if params.contains_key(input) {
            add_pair(input, &mut nodes, &mut constants);
        }
    }
    for (i, mut node) in old_nodes.into_iter().enumerate() {
        if plan.folded_relus.contains(&i) {
            continue;
        }
        // Readers of a quantized value read its dequantized copy.
        for input in node.input.iter_mut() {
            if params.contains_key(input.as_str()) {
                *input = dq_name(input);
            }
        }
        if let Some(&(kind, output)) = by_index.get(&i) {
            node.output[0] = output.to_string();
            if kind.has_weight() {
                let x = plan_input(&node.input[0]);
                let x_scale = params
                    .get(x)
                    .map(|p| p.scale)
                    .context("an int8 node's input has no range")?;
                quantize_weights(&mut node, kind, x_scale, &initial, &mut nodes, &mut constants, i)?;
            }
        }
        let written = node.output.clone();
        nodes.push(node);
        for output in written {
            if params.contains_key(output.as_str()) {
                add_pair(&output, &mut nodes, &mut constants);
            }
        }
    }
    graph.node = nodes;
    graph.initializer.extend(constants);
    // Inner value types recorded by the exporter may name the removed Relu outputs' producers.
    graph.value_info.clear();
    drop_unused_initializers(&mut out);
    out.proto
        .metadata_props
        .extend(provenance.iter().map(|(k, v)| StringStringEntryProto {
            key: Some(k.clone()),
            value: Some(v.clone()),
        }));
    Ok(out.to_bytes())
}

/// The value an int8 node's first input names, before it was renamed to its dequantized copy.
fn plan_input(input: &str) -> &str {
    input.strip_suffix("_DequantizeLinear_Output").unwrap_or(input)
}

/// The uint8 quantization of every planned value (shared ones through their source).
fn value_params(plan: &QuantPlan, ranges: &HashMap<String, (f32, f32)>) -> Result<HashMap<String, Uint8Params>> {
    let mut params = HashMap::new();
    for value in &plan.values {
        let mut source = value;
        // Shares may chain (max-pool after max-pool).
        for _ in 0..plan.values.len() {
            match plan.shared.get(source) {
                Some(next) => source = next,
                None => break,
            }
        }
        let &(lo, hi) = ranges
            .get(source)
            .with_context(|| format!("no calibration range for {source}"))?;
        let lo = if plan.non_negative.contains(value) { 0.0 } else { lo };
        params.insert(value.clone(), uint8_params(lo, hi));
    }
    Ok(params)
}

/// Replaces the weight (and bias) of the int8 node `node` (at position `index`) with their
/// quantized initializers behind DequantizeLinear nodes, appended to `nodes`.
fn quantize_weights(
    node: &mut NodeProto,
    kind: Kind,
    x_scale: f32,
    initial: &HashMap<String, crate::onnx_proto::TensorProto>,
    nodes: &mut Vec<NodeProto>,
    constants: &mut Vec<crate::onnx_proto::TensorProto>,
    index: usize,
) -> Result<()> {
    let w_name = node.input[1].clone();
    let w = initial.get(&w_name).context("weight initializer missing")?;
    let values = float_values(w).context("weight is not float32")?;
    let axis = match kind {
        Kind::Gemm { trans_b: false } | Kind::MatMul => 1,
        _ => 0,
    };
    let Some(q) = quantize_per_channel(&values, &w.dims, axis) else {
        crate::bail_input!("weight {w_name} holds NaN or infinite values; the model itself is damaged");
    };
    let base = format!("{w_name}_{index}");
    let channels = q.scales.len() as i64;
    let (wq, ws, wz) = (
        format!("{base}_quantized"),
        format!("{base}_scale"),
        format!("{base}_zero_point"),
    );
    constants.push(tensor(&wq, INT8, &w.dims, q.values.iter().map(|&v| v as u8).collect()));
    constants.push(float_tensor(&ws, &[channels], &q.scales));
    constants.push(tensor(&wz, INT8, &[channels], vec![0u8; channels as usize]));
    let w_dq = format!("{base}_DequantizeLinear_Output");
    nodes.push(qdq_node("DequantizeLinear", vec![wq, ws, wz], &w_dq, Some(axis as i64)));
    node.input[1] = w_dq;
    if let Some(b_name) = node.input.get(2).filter(|b| !b.is_empty()).cloned() {
        let b = initial.get(&b_name).context("bias initializer missing")?;
        let bias = float_values(b).context("bias is not float32")?;
        let (bq, bs) = quantize_bias(&bias, x_scale, &q.scales);
        let base = format!("{b_name}_{index}");
        let (bqn, bsn, bzn) = (
            format!("{base}_quantized"),
            format!("{base}_scale"),
            format!("{base}_zero_point"),
        );
        constants.push(tensor(
            &bqn,
            INT32,
            &b.dims,
            bq.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        constants.push(float_tensor(&bsn, &[channels], &bs));
        constants.push(tensor(&bzn, INT32, &[channels], vec![0u8; 4 * channels as usize]));
        let b_dq = format!("{base}_DequantizeLinear_Output");
        nodes.push(qdq_node("DequantizeLinear", vec![bqn, bsn, bzn], &b_dq, Some(0)));
        node.input[2] = b_dq;
    }
    Ok(())
}

/// A QuantizeLinear or DequantizeLinear node.
fn qdq_node(op: &str, inputs: Vec<String>, output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        input: inputs,
        output: vec![output.to_string()],
        name: Some(format!("{output}_node")),
        op_type: Some(op.to_string()),
        attribute: axis.map(|a| vec![AttributeProto::int("axis", a)]).unwrap_or_default(),
        ..Default::default()
    }
}
