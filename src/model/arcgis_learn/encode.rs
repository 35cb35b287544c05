//! The ONNX bytes of a converted model, written over the `.pth` bytes its weights come from, so
//! that converting holds the weights once, not twice.
//!
//! Protobuf lets a message's fields come in any order, so the model is laid out as: the
//! `ModelProto` fields, then the graph with its initializers **first** (each one's `TensorProto`
//! header followed by its raw float32 bytes) and the nodes, inputs and outputs after them. In a
//! torch zip every storage is preceded by more bytes (zip headers, 64-byte alignment padding,
//! `data.pkl` before the first) than an initializer header takes, so each weight moves down to
//! an offset no later than where it was: the writer never overtakes what is still to be read.
//! That is checked for the whole layout before a byte is written; when it does not hold (or the
//! weights are not in the buffer), the model is written to a new buffer instead.

use std::collections::HashMap;
use std::ops::Range;

use anyhow::{Context, Result};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;

use crate::model::arcgis_learn::graph::Graph;
use crate::model::arcgis_learn::pickle::Dtype;
use crate::model::arcgis_learn::pth::Tensor;
use crate::model::arcgis_learn::pth::{StateDict, Values};
use crate::onnx_proto::{TensorProto, FLOAT};

/// `ModelProto.graph`.
const MODEL_GRAPH: u32 = 7;
/// `GraphProto.initializer`.
const GRAPH_INITIALIZER: u32 = 5;
/// `TensorProto.raw_data`.
const TENSOR_RAW_DATA: u32 = 9;

/// One length-delimited piece of the output: fixed bytes, then a tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Everything before the values (field keys, lengths, the tensor's dims, type and name).
    pub head: Vec<u8>,
    /// The values.
    pub values: Values,
}

impl Piece {
    fn values_len(&self) -> usize {
        match &self.values {
            Values::InBuffer(range) => range.len(),
            Values::Owned(bytes) => bytes.len(),
        }
    }
}

/// Encodes `graph` with the weights of `sd` as ONNX bytes, reusing the state_dict's buffer.
pub fn encode(graph: Graph, sd: StateDict) -> Result<Vec<u8>> {
    let Graph { mut model, weights } = graph;
    let rest = model.graph.take().unwrap_or_default().encode_to_vec();
    let (tensors, buffer) = sd.into_parts();
    let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut pieces = Vec::with_capacity(weights.len());
    for key in &weights {
        let t = by_name
            .get(key.as_str())
            .with_context(|| format!("tensor {key} missing after detection"))?;
        anyhow::ensure!(t.dtype == Dtype::F32, "tensor {key} is not float32 after detection");
        let len = t.numel() * 4;
        let header = TensorProto {
            dims: t.shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(FLOAT),
            name: Some(key.clone()),
            ..Default::default()
        }
        .encode_to_vec();
        let tensor_len = header.len() + key_len(TENSOR_RAW_DATA) + encoded_len_varint(len as u64) + len;
        let mut head = Vec::with_capacity(header.len() + 24);
        encode_key(GRAPH_INITIALIZER, WireType::LengthDelimited, &mut head);
        encode_varint(tensor_len as u64, &mut head);
        head.extend_from_slice(&header);
        encode_key(TENSOR_RAW_DATA, WireType::LengthDelimited, &mut head);
        encode_varint(len as u64, &mut head);
        let values = t.values.clone();
        let piece = Piece { head, values };
        anyhow::ensure!(
            piece.values_len() == len,
            "tensor {key} has {} bytes, not {len}",
            piece.values_len()
        );
        pieces.push(piece);
    }
    drop(by_name);
    drop(tensors);
    let graph_len: usize = pieces.iter().map(|p| p.head.len() + p.values_len()).sum::<usize>() + rest.len();
    let mut prefix = model.encode_to_vec();
    encode_key(MODEL_GRAPH, WireType::LengthDelimited, &mut prefix);
    encode_varint(graph_len as u64, &mut prefix);
    // Weights in the buffer go in buffer order, the others after them.
    pieces.sort_by_key(|p| match &p.values {
        Values::InBuffer(range) => (0, range.start),
        Values::Owned(_) => (1, 0),
    });
    let out = assemble(&prefix, &pieces, &rest, buffer);
    anyhow::ensure!(out.len() == prefix.len() + graph_len, "ONNX encoding length mismatch");
    Ok(out)
}

/// Whether `pieces` (in-buffer ones first, in buffer order) can be written over `buffer_len`
/// bytes after `prefix_len` bytes without overwriting a value before it is moved.
pub fn fits_in_place(prefix_len: usize, pieces: &[Piece], buffer_len: usize) -> bool {
    let mut written = prefix_len;
    let mut read_end = 0;
    let mut any = false;
    for piece in pieces {
        let Values::InBuffer(range) = &piece.values else {
            break;
        };
        if range.start < read_end || range.end > buffer_len || written + piece.head.len() > range.start {
            return false;
        }
        written += piece.head.len() + range.len();
        read_end = range.end;
        any = true;
    }
    any
}

/// `prefix`, each piece (head, then values), then `rest`: written over `buffer` when
/// [`fits_in_place`], into a new buffer otherwise.
pub fn assemble(prefix: &[u8], pieces: &[Piece], rest: &[u8], buffer: Vec<u8>) -> Vec<u8> {
    let total = prefix.len() + pieces.iter().map(|p| p.head.len() + p.values_len()).sum::<usize>() + rest.len();
    if !fits_in_place(prefix.len(), pieces, buffer.len()) {
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(prefix);
        for piece in pieces {
            out.extend_from_slice(&piece.head);
            out.extend_from_slice(value_bytes(&piece.values, &buffer));
        }
        out.extend_from_slice(rest);
        return out;
    }
    let mut buf = buffer;
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut written = prefix.len();
    let mut owned = Vec::new();
    for piece in pieces {
        match &piece.values {
            Values::InBuffer(range) => {
                buf[written..written + piece.head.len()].copy_from_slice(&piece.head);
                written += piece.head.len();
                buf.copy_within(range.clone(), written);
                written += range.len();
            }
            Values::Owned(bytes) => owned.push((&piece.head, bytes)),
        }
    }
    buf.truncate(written);
    for (head, bytes) in owned {
        buf.extend_from_slice(head);
        buf.extend_from_slice(bytes);
    }
    buf.extend_from_slice(rest);
    buf.shrink_to_fit();
    buf
}

fn value_bytes<'a>(values: &'a Values, buffer: &'a [u8]) -> &'a [u8] {
    match values {
        Values::InBuffer(range) => &buffer[Range::clone(range)],
        Values::Owned(bytes) => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(bytes: &[u8]) -> Values {
        Values::Owned(bytes::Bytes::copy_from_slice(bytes))
    }

    fn piece(head: &[u8], range: Range<usize>) -> Piece {
        Piece {
            head: head.to_vec(),
            values: Values::InBuffer(range),
        }
    }

    #[test]
    fn in_place_and_new_buffer_give_the_same_bytes() {
        // A buffer laid out like a torch zip: a header, then values with padding between them.
        let mut buffer = vec![0xEEu8; 64];
        let mut ranges = Vec::new();
        for (i, len) in [10usize, 3, 40].iter().enumerate() {
            let start = buffer.len();
            buffer.extend((0..*len).map(|k| (i * 50 + k) as u8));
            ranges.push(start..start + len);
            buffer.extend([0xEE; 16]);
        }
        let pieces = vec![
            piece(b"h0-", ranges[0].clone()),
            piece(b"h1--", ranges[1].clone()),
            piece(b"h2", ranges[2].clone()),
            Piece {
                head: b"own".to_vec(),
                values: owned(b"xyz"),
            },
        ];
        let prefix = b"PREFIX".to_vec();
        assert!(fits_in_place(prefix.len(), &pieces, buffer.len()));
        let in_place = assemble(&prefix, &pieces, b"REST", buffer.clone());
        let mut expected = prefix.clone();
        for p in &pieces {
            expected.extend(&p.head);
            expected.extend(value_bytes(&p.values, &buffer));
        }
        expected.extend(b"REST");
        assert_eq!(in_place, expected);
        // A prefix too long to fit before the first value: a new buffer, same bytes.
        let long_prefix = vec![b'P'; 70];
        assert!(!fits_in_place(long_prefix.len(), &pieces, buffer.len()));
        let copied = assemble(&long_prefix, &pieces, b"REST", buffer.clone());
        assert_eq!(&copied[..70], long_prefix.as_slice());
        assert_eq!(&copied[70..], &expected[prefix.len()..]);
    }

    #[test]
    fn overlapping_or_unordered_values_are_not_written_in_place() {
        let pieces = vec![piece(b"a", 10..20), piece(b"b", 15..30)];
        assert!(!fits_in_place(0, &pieces, 100));
        let pieces = vec![piece(b"a", 30..40), piece(b"b", 10..20)];
        assert!(!fits_in_place(0, &pieces, 100));
        let pieces = vec![piece(b"a", 10..20)];
        assert!(!fits_in_place(0, &pieces, 15), "past the end of the buffer");
        assert!(fits_in_place(0, &pieces, 20));
    }
}
