//! An ONNX model read to be rewritten: decoded with every field this program knows, and refused
//! when it holds something a rewrite would lose (fields not declared in `onnx_proto`, weights in
//! external files, sub-graphs) or an opset without per-channel quantization.

use std::collections::HashMap;

use anyhow::Result;
use prost::Message;

use crate::bail_input;
use crate::onnx_proto::{ModelProto, NodeProto, TensorProto, FLOAT};

/// First opset whose `QuantizeLinear`/`DequantizeLinear` take a per-channel `axis`.
pub const MIN_OPSET: i64 = 13;

/// A decoded model, checked to be rewritable.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The model.
    pub proto: ModelProto,
}

impl OnnxModel {
    /// Decodes `bytes` (named `name` in messages) and checks that it can be rewritten whole.
    pub fn read(bytes: &[u8], name: &str) -> Result<OnnxModel> {
        let proto = match ModelProto::decode(bytes) {
            Ok(proto) => proto,
            Err(err) => bail_input!("model {name} is not an ONNX model ({err}); give an ONNX or arcgis.learn package"),
        };
        // A field this program does not declare is dropped when decoding: the model would come
        // back smaller. Refuse rather than write a model missing part of itself.
        if proto.encoded_len() != bytes.len() {
            bail_input!(
                "model {name} uses ONNX features quantize cannot carry over (functions, sparse or training data, or other fields: {} of its {} bytes would be lost); export the model as a plain inference graph (e.g. torch.onnx.export with opset 13 or later) and quantize that",
                bytes.len() - proto.encoded_len().min(bytes.len()),
                bytes.len()
            );
        }
        let Some(graph) = &proto.graph else {
            bail_input!("model {name} has no graph");
        };
        if graph.initializer.iter().any(|t| t.data_location == Some(1)) {
            bail_input!("model {name} keeps weights in external files; save it as one .onnx (onnx.save with save_as_external_data=False) and package that");
        }
        let opset = proto
            .opset_import
            .iter()
            .find(|o| o.domain.as_deref().unwrap_or("").is_empty() || o.domain.as_deref() == Some("ai.onnx"))
            .and_then(|o| o.version)
            .unwrap_or(0);
        if opset < MIN_OPSET {
            bail_input!(
                "model {name} uses ONNX opset {opset}; int8 per-channel quantization needs opset {MIN_OPSET} or later: re-export the model with opset_version={MIN_OPSET} or later (e.g. torch.onnx.export(..., opset_version=17))"
            );
        }
        Ok(OnnxModel { proto })
    }

    /// The model's nodes, in order.
    pub fn nodes(&self) -> &[NodeProto] {
        self.proto.graph.as_ref().map(|g| g.node.as_slice()).unwrap_or_default()
    }

    /// Initializers by name.
    pub fn initializers(&self) -> HashMap<&str, &TensorProto> {
        self.proto
            .graph
            .iter()
            .flat_map(|g| &g.initializer)
            .map(|t| (t.name.as_deref().unwrap_or(""), t))
            .collect()
    }

    /// The bytes of the model as it is now.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }
}

/// The float32 values of `tensor`, if it is a float32 tensor holding them.
pub fn float_values(tensor: &TensorProto) -> Option<Vec<f32>> {
    if tensor.data_type != Some(FLOAT) {
        return None;
    }
    let count: i64 = tensor.dims.iter().product();
    let values: Vec<f32> = match &tensor.raw_data {
        Some(raw) if raw.len() % 4 == 0 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Some(_) => return None,
        None => tensor.float_data.clone(),
    };
    (values.len() as i64 == count).then_some(values)
}

/// An initializer named `name` of `data_type` and `dims` holding `raw` little-endian bytes.
pub fn tensor(name: &str, data_type: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(data_type),
        name: Some(name.to_string()),
        raw_data: Some(raw.into()),
        ..Default::default()
    }
}

/// A float32 initializer.
pub fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    tensor(name, FLOAT, dims, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// The int attribute `name` of `node`, or `default`.
pub fn int_attribute(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .and_then(|a| a.i)
        .unwrap_or(default)
}

/// The float attribute `name` of `node`, or `default`.
pub fn float_attribute(node: &NodeProto, name: &str, default: f32) -> f32 {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .and_then(|a| a.f)
        .unwrap_or(default)
}

/// The operator of `node` in the default domain (`None` for other domains).
pub fn onnx_op(node: &NodeProto) -> Option<&str> {
    let domain = node.domain.as_deref().unwrap_or("");
    (domain.is_empty() || domain == "ai.onnx").then(|| node.op_type.as_deref().unwrap_or(""))
}
