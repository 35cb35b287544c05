//! A minimal ONNX model writer (protobuf encoding by hand) for test models whose right answers
//! are known by construction. Only what the tests need: nodes with int attributes, float
//! initializers, float tensor inputs and outputs with fixed or symbolic dimensions.
#![allow(dead_code)]

/// A dimension of a graph input or output.
#[derive(Debug, Clone)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic (dynamic) size.
    Param(&'static str),
}

/// A node attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    /// An int64 attribute.
    Int(&'static str, i64),
    /// A list of int64.
    Ints(&'static str, Vec<i64>),
    /// A float attribute.
    Float(&'static str, f32),
}

/// A graph node.
#[derive(Debug, Clone)]
pub struct Node {
    pub op: &'static str,
    pub inputs: Vec<&'static str>,
    pub outputs: Vec<&'static str>,
    pub attrs: Vec<Attr>,
}

/// A constant tensor.
#[derive(Debug, Clone)]
pub struct Initializer {
    pub name: &'static str,
    pub dims: Vec<i64>,
    pub data: Vec<f32>,
}

/// A whole model.
#[derive(Debug, Clone)]
pub struct Model {
    pub nodes: Vec<Node>,
    pub initializers: Vec<Initializer>,
    pub inputs: Vec<(&'static str, Vec<Dim>)>,
    pub outputs: Vec<(&'static str, Vec<Dim>)>,
    pub opset: i64,
    /// ONNX element type of the outputs: 1 float, 7 int64.
    pub output_elem_type: i64,
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn key(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint(((field as u64) << 3) | wire as u64, out);
}

fn int_field(field: u32, v: i64, out: &mut Vec<u8>) {
    key(field, 0, out);
    varint(v as u64, out);
}

fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn str_field(field: u32, s: &str, out: &mut Vec<u8>) {
    bytes_field(field, s.as_bytes(), out);
}

fn value_info(name: &str, dims: &[Dim], elem_type: i64) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Dim::Fixed(v) => int_field(1, *v, &mut dim),
            Dim::Param(p) => str_field(2, p, &mut dim),
        }
        bytes_field(1, &dim, &mut shape);
    }
    let mut tensor_type = Vec::new();
    int_field(1, elem_type, &mut tensor_type); // 1 FLOAT, 7 INT64
    bytes_field(2, &shape, &mut tensor_type);
    let mut type_proto = Vec::new();
    bytes_field(1, &tensor_type, &mut type_proto);
    let mut info = Vec::new();
    str_field(1, name, &mut info);
    bytes_field(2, &type_proto, &mut info);
    info
}

impl Model {
    /// Encodes the model as ONNX protobuf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut graph = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut n = Vec::new();
            for input in &node.inputs {
                str_field(1, input, &mut n);
            }
            for output in &node.outputs {
                str_field(2, output, &mut n);
            }
            str_field(3, &format!("{}_{i}", node.op), &mut n);
            str_field(4, node.op, &mut n);
            for attr in &node.attrs {
                let mut a = Vec::new();
                match attr {
                    Attr::Int(name, v) => {
                        str_field(1, name, &mut a);
                        int_field(3, *v, &mut a);
                        int_field(20, 2, &mut a);
                    }
                    Attr::Ints(name, vs) => {
                        str_field(1, name, &mut a);
                        for v in vs {
                            int_field(8, *v, &mut a);
                        }
                        int_field(20, 7, &mut a);
                    }
                    Attr::Float(name, v) => {
                        str_field(1, name, &mut a);
                        key(2, 5, &mut a);
                        a.extend_from_slice(&v.to_le_bytes());
                        int_field(20, 1, &mut a);
                    }
                }
                bytes_field(5, &a, &mut n);
            }
            bytes_field(1, &n, &mut graph);
        }
        str_field(2, "classify_objects_test", &mut graph);
        for init in &self.initializers {
            let mut t = Vec::new();
            for d in &init.dims {
                int_field(1, *d, &mut t);
            }
            int_field(2, 1, &mut t); // FLOAT
            str_field(8, init.name, &mut t);
            let raw: Vec<u8> = init.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            bytes_field(9, &raw, &mut t);
            bytes_field(5, &t, &mut graph);
        }
        for (name, dims) in &self.inputs {
            bytes_field(11, &value_info(name, dims, 1), &mut graph);
        }
        for (name, dims) in &self.outputs {
            bytes_field(12, &value_info(name, dims, self.output_elem_type), &mut graph);
        }
        let mut model = Vec::new();
        int_field(1, 8, &mut model); // ir_version
        str_field(2, "classify-objects tests", &mut model);
        bytes_field(7, &graph, &mut model);
        let mut opset = Vec::new();
        str_field(1, "", &mut opset);
        int_field(2, self.opset, &mut opset);
        bytes_field(8, &opset, &mut model);
        model
    }
}

/// How the colour classifier's output is shaped, to exercise the classifier's checks.
#[derive(Debug, Clone)]
pub struct ColorModelOptions {
    /// Batch dimension: symbolic, or fixed.
    pub batch: Dim,
    /// Chip height and width in the input shape (symbolic when `None`).
    pub chip: Option<(i64, i64)>,
    /// Append a Softmax node (the model then outputs probabilities).
    pub softmax: bool,
    /// Sharpness `s` of the logits `-s * |x - c_k|^2`.
    pub sharpness: f32,
    /// Declare the channel dimension symbolic (the graph still computes on three channels).
    pub dynamic_channels: bool,
}

impl Default for ColorModelOptions {
    fn default() -> Self {
        ColorModelOptions {
            batch: Dim::Param("batch"),
            chip: Some((32, 32)),
            softmax: false,
            sharpness: 1.0,
            dynamic_channels: false,
        }
    }
}

/// A nearest-average-colour classifier: global average pooling of the (normalised) chip, then
/// logits `-s * |x - c_k|^2 + s * |x|^2` for each palette colour `c_k` given on a 0-255 scale and
/// normalised with the same per-channel `(scale, offset)` the tool applies. The class of a chip
/// that lies in a uniform patch of colour `c_k` is therefore `k`, with a confidence computable
/// from the palette alone.
pub fn color_classifier(palette: &[[f32; 3]], normalization: &[(f32, f32); 3], options: &ColorModelOptions) -> Vec<u8> {
    let k = palette.len();
    let s = options.sharpness;
    let centres: Vec<[f32; 3]> = palette
        .iter()
        .map(|c| [0, 1, 2].map(|ch| c[ch] * normalization[ch].0 + normalization[ch].1))
        .collect();
    // Gemm: logits = x · W + b, W is 3 x K.
    let mut w = vec![0.0f32; 3 * k];
    let mut b = vec![0.0f32; k];
    for (j, c) in centres.iter().enumerate() {
        for ch in 0..3 {
            w[ch * k + j] = 2.0 * s * c[ch];
        }
        b[j] = -s * c.iter().map(|v| v * v).sum::<f32>();
    }
    let (h, wd) = match options.chip {
        Some((h, w)) => (Dim::Fixed(h), Dim::Fixed(w)),
        None => (Dim::Param("height"), Dim::Param("width")),
    };
    let mut nodes = vec![
        Node {
            op: "GlobalAveragePool",
            inputs: vec!["image"],
            outputs: vec!["pooled"],
            attrs: vec![],
        },
        Node {
            op: "Flatten",
            inputs: vec!["pooled"],
            outputs: vec!["features"],
            attrs: vec![Attr::Int("axis", 1)],
        },
    ];
    let final_name = if options.softmax { "probabilities" } else { "logits" };
    nodes.push(Node {
        op: "Gemm",
        inputs: vec!["features", "W", "b"],
        outputs: vec!["logits"],
        attrs: vec![],
    });
    if options.softmax {
        nodes.push(Node {
            op: "Softmax",
            inputs: vec!["logits"],
            outputs: vec!["probabilities"],
            attrs: vec![Attr::Int("axis", 1)],
        });
    }
    Model {
        nodes,
        initializers: vec![
            Initializer {
                name: "W",
                dims: vec![3, k as i64],
                data: w,
            },
            Initializer {
                name: "b",
                dims: vec![k as i64],
                data: b,
            },
        ],
        inputs: vec![(
            "image",
            vec![
                options.batch.clone(),
                if options.dynamic_channels {
                    Dim::Param("channels")
                } else {
                    Dim::Fixed(3)
                },
                h,
                wd,
            ],
        )],
        outputs: vec![(final_name, vec![options.batch.clone(), Dim::Fixed(k as i64)])],
        opset: 13,
        output_elem_type: 1,
    }
    .to_bytes()
}

/// Expected softmax confidence of the colour classifier on a uniform chip of palette colour
/// `class`: `1 / sum_j exp(-s (|c_j - c_class|^2))` in normalised space.
pub fn expected_confidence(palette: &[[f32; 3]], normalization: &[(f32, f32); 3], sharpness: f32, class: usize) -> f64 {
    let norm = |c: &[f32; 3]| [0, 1, 2].map(|ch| (c[ch] * normalization[ch].0 + normalization[ch].1) as f64);
    let target = norm(&palette[class]);
    let total: f64 = palette
        .iter()
        .map(|c| {
            let n = norm(c);
            let d2: f64 = (0..3).map(|i| (n[i] - target[i]).powi(2)).sum();
            (-(sharpness as f64) * d2).exp()
        })
        .sum();
    1.0 / total
}

/// Expected probabilities of the colour classifier on a chip whose average colour is `mean`
/// (0-255 scale): softmax of `-s |x - c_k|^2` in normalised space, one per palette colour.
pub fn expected_probabilities(
    palette: &[[f32; 3]],
    normalization: &[(f32, f32); 3],
    sharpness: f32,
    mean: [f64; 3],
) -> Vec<f64> {
    let norm = |c: [f64; 3]| [0, 1, 2].map(|ch| c[ch] * normalization[ch].0 as f64 + normalization[ch].1 as f64);
    let x = norm(mean);
    let logits: Vec<f64> = palette
        .iter()
        .map(|c| {
            let n = norm(c.map(f64::from));
            -(sharpness as f64) * (0..3).map(|i| (n[i] - x[i]).powi(2)).sum::<f64>()
        })
        .collect();
    let top = logits.iter().copied().fold(f64::MIN, f64::max);
    let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
    logits.iter().map(|l| (l - top).exp() / total).collect()
}

/// A dense classifier over every pixel: logits = flatten(chip) · W + b, with `W` of shape
/// `[c * h * w, k]` (row-major). Unlike the colour model it sees orientation, so test-time
/// augmentation changes its answers.
pub fn dense_classifier(c: i64, h: i64, w: i64, weights: Vec<f32>, bias: Vec<f32>) -> Vec<u8> {
    let k = bias.len() as i64;
    assert_eq!(weights.len() as i64, c * h * w * k);
    Model {
        nodes: vec![
            Node {
                op: "Flatten",
                inputs: vec!["image"],
                outputs: vec!["flat"],
                attrs: vec![Attr::Int("axis", 1)],
            },
            Node {
                op: "Gemm",
                inputs: vec!["flat", "W", "b"],
                outputs: vec!["logits"],
                attrs: vec![],
            },
        ],
        initializers: vec![
            Initializer {
                name: "W",
                dims: vec![c * h * w, k],
                data: weights,
            },
            Initializer {
                name: "b",
                dims: vec![k],
                data: bias,
            },
        ],
        inputs: vec![(
            "image",
            vec![Dim::Param("batch"), Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)],
        )],
        outputs: vec![("logits", vec![Dim::Param("batch"), Dim::Fixed(k)])],
        opset: 13,
        output_elem_type: 1,
    }
    .to_bytes()
}

/// A classifier whose output is the index of the brightest channel as int64 (ArgMax), as some
/// exports do: not the float scores classify-objects needs.
pub fn argmax_classifier(h: i64, w: i64) -> Vec<u8> {
    Model {
        nodes: vec![
            Node {
                op: "GlobalAveragePool",
                inputs: vec!["image"],
                outputs: vec!["pooled"],
                attrs: vec![],
            },
            Node {
                op: "Flatten",
                inputs: vec!["pooled"],
                outputs: vec!["features"],
                attrs: vec![Attr::Int("axis", 1)],
            },
            Node {
                op: "ArgMax",
                inputs: vec!["features"],
                outputs: vec!["class"],
                attrs: vec![Attr::Int("axis", 1), Attr::Int("keepdims", 0)],
            },
        ],
        initializers: vec![],
        inputs: vec![(
            "image",
            vec![Dim::Param("batch"), Dim::Fixed(3), Dim::Fixed(h), Dim::Fixed(w)],
        )],
        outputs: vec![("class", vec![Dim::Param("batch")])],
        opset: 13,
        output_elem_type: 7,
    }
    .to_bytes()
}
