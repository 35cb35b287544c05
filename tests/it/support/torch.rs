//! PyTorch `.pth` files written by hand for tests: a protocol-2 pickle of a state_dict laid out
//! as `torch.save` writes it (OrderedDict, `_rebuild_tensor_v2`, persistent-id storages), and the
//! torch zip around it. Used to build small hostile or damaged weights with known defects.
#![allow(dead_code)]

use std::io::{Cursor, Write};

/// One tensor of a hand-made state_dict: its key, torch storage class and shape.
pub struct TensorSpec {
    pub key: String,
    pub storage_class: &'static str,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn float(key: &str, shape: &[usize]) -> TensorSpec {
        TensorSpec {
            key: key.into(),
            storage_class: "FloatStorage",
            shape: shape.to_vec(),
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn item_size(&self) -> usize {
        match self.storage_class {
            "DoubleStorage" | "LongStorage" => 8,
            "HalfStorage" => 2,
            _ => 4,
        }
    }
}

fn unicode(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
}

fn int(p: &mut Vec<u8>, v: usize) {
    p.push(b'J');
    p.extend((v as i32).to_le_bytes());
}

fn global(p: &mut Vec<u8>, module: &str, name: &str) {
    p.push(b'c');
    p.extend(module.as_bytes());
    p.push(b'\n');
    p.extend(name.as_bytes());
    p.push(b'\n');
}

/// The pickle `torch.save(state_dict)` writes for these tensors (storage `i` for tensor `i`).
pub fn state_dict_pickle(tensors: &[TensorSpec]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    global(&mut p, "collections", "OrderedDict");
    p.extend(b")R(");
    for (i, t) in tensors.iter().enumerate() {
        unicode(&mut p, &t.key);
        global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.extend(b"((");
        unicode(&mut p, "storage");
        global(&mut p, "torch", t.storage_class);
        unicode(&mut p, &i.to_string());
        unicode(&mut p, "cpu");
        int(&mut p, t.numel());
        p.extend(b"tQ");
        int(&mut p, 0);
        p.push(b'(');
        for &d in &t.shape {
            int(&mut p, d);
        }
        p.extend(b"t(");
        let mut stride = vec![1usize; t.shape.len()];
        for k in (0..t.shape.len().saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * t.shape[k + 1];
        }
        for s in stride {
            int(&mut p, s);
        }
        p.push(b't');
        p.push(0x89); // requires_grad=False
        global(&mut p, "collections", "OrderedDict");
        p.extend(b")RtR");
    }
    p.extend(b"u.");
    p
}

/// A pickle that asks for `os.system("echo pwned")`, as a hostile `.pth` would.
pub fn os_system_pickle() -> Vec<u8> {
    let mut p = vec![0x80, 2];
    global(&mut p, "os", "system");
    p.push(b'(');
    unicode(&mut p, "echo pwned > /tmp/classify-objects-pwned");
    p.extend(b"tR.");
    p
}

/// The torch zip of a `.pth`: `<top>/data.pkl`, `<top>/data/<i>` (zeros of each tensor's
/// size), `byteorder`, `version`, all STORED.
pub fn pth_zip(top: &str, pickle: &[u8], tensors: &[TensorSpec]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(format!("{top}/data.pkl"), stored).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file(format!("{top}/byteorder"), stored).unwrap();
    zip.write_all(b"little").unwrap();
    for (i, t) in tensors.iter().enumerate() {
        zip.start_file(format!("{top}/data/{i}"), stored).unwrap();
        zip.write_all(&vec![0u8; t.numel() * t.item_size()]).unwrap();
    }
    zip.start_file(format!("{top}/version"), stored).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap().into_inner()
}

/// The first tensors of a ResNet FeatureClassifier (stem and the start of layer1): enough for the
/// reader to get to architecture detection.
pub fn resnet_stem(first_conv_class: &'static str) -> Vec<TensorSpec> {
    let mut t = vec![TensorSpec {
        key: "0.0.weight".into(),
        storage_class: first_conv_class,
        shape: vec![64, 3, 7, 7],
    }];
    for k in ["weight", "bias", "running_mean", "running_var"] {
        t.push(TensorSpec::float(&format!("0.1.{k}"), &[64]));
    }
    t.push(TensorSpec::float("0.4.0.conv1.weight", &[64, 64, 3, 3]));
    t
}
