//! arcgis.learn FeatureClassifier packages generated without torch: the weights are seeded (each
//! tensor a pure function of the package's seed, its key, dtype and shape), and the `.pth` is
//! written byte for byte as torch 2.15's `torch.save` writes it. The same weights were built
//! inside Esri's own arcgis.learn by `tools/arcgis_learn/make_reference.py`, saved with Esri's
//! `save()`, and run through Esri's inference code; what that wrote is committed in
//! `fixtures/arcgis_learn/<name>/` (`.emd`, `layout.json`, `fingerprint.json`,
//! `reference.json`). `tools/arcgis_learn/README.md` specifies the weights and the file layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::fixture;

/// A seeded package described by its committed fixture files.
pub struct SeededPackage {
    /// The package's name (`fc_resnet18_seeded`).
    pub name: String,
    /// The `.emd` as Esri's `save()` wrote it.
    pub emd: String,
    /// `layout.json`.
    pub layout: Value,
    /// `fingerprint.json`: what torch wrote.
    pub fingerprint: Value,
    /// `reference.json`: Esri's outputs on the reference chips.
    pub reference: Value,
}

/// One tensor of the state_dict: key, dtype (`float32`, `int64`), shape, and the key of the
/// storage it views (`"0"`, `"1"`, ... in order of first use; a module saved under two names has
/// its second name's tensors view the first one's storages, written once).
pub struct TensorLayout {
    pub key: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub storage_key: String,
}

impl SeededPackage {
    /// Reads the fixture files of package `name`.
    pub fn load(name: &str) -> SeededPackage {
        let dir = fixture(&format!("arcgis_learn/{name}"));
        let json =
            |file: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap() };
        SeededPackage {
            name: name.to_string(),
            emd: std::fs::read_to_string(dir.join(format!("{name}.emd"))).unwrap(),
            layout: json("layout.json"),
            fingerprint: json("fingerprint.json"),
            reference: json("reference.json"),
        }
    }

    /// The state_dict's tensors, in order: `[key, dtype, shape]`, with the key of an earlier
    /// storage as a 4th element when the tensor shares it.
    pub fn tensors(&self) -> Vec<TensorLayout> {
        let mut fresh = 0usize;
        self.layout["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let storage_key = match t.get(3) {
                    Some(shared) => shared.as_str().unwrap().to_string(),
                    None => {
                        fresh += 1;
                        (fresh - 1).to_string()
                    }
                };
                TensorLayout {
                    key: t[0].as_str().unwrap().to_string(),
                    dtype: t[1].as_str().unwrap().to_string(),
                    shape: t[2]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect(),
                    storage_key,
                }
            })
            .collect()
    }

    /// The first tensor of each storage, in storage key order: its key seeds the storage.
    pub fn storage_owners(&self) -> Vec<TensorLayout> {
        let mut seen = std::collections::HashSet::new();
        let owners: Vec<TensorLayout> = self
            .tensors()
            .into_iter()
            .filter(|t| seen.insert(t.storage_key.clone()))
            .collect();
        assert!(owners.iter().enumerate().all(|(i, t)| t.storage_key == i.to_string()));
        owners
    }

    /// Each storage's bytes (little-endian), by the seeded-weights rules, in storage key order.
    pub fn storages(&self) -> Vec<Vec<u8>> {
        let seed = self.layout["seed"].as_u64().unwrap();
        let gain = self.layout["gain"].as_f64().unwrap();
        self.storage_owners()
            .iter()
            .map(|t| seeded_tensor(seed, gain, t))
            .collect()
    }

    /// The pickle (`data.pkl`).
    pub fn data_pkl(&self) -> Vec<u8> {
        let metadata: Vec<(String, u32)> = self.layout["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m[0].as_str().unwrap().to_string(), m[1].as_u64().unwrap() as u32))
            .collect();
        data_pkl(&self.tensors(), &metadata)
    }

    /// The whole `.pth`, as torch writes it.
    pub fn pth(&self) -> Vec<u8> {
        let mut records: Vec<(String, Vec<u8>)> = vec![
            ("data.pkl".into(), self.data_pkl()),
            (".format_version".into(), b"1".to_vec()),
            (".storage_alignment".into(), b"64".to_vec()),
            ("byteorder".into(), b"little".to_vec()),
        ];
        for (k, storage) in self.storages().into_iter().enumerate() {
            records.push((format!("data/{k}"), storage));
        }
        records.push(("version".into(), b"3\n".to_vec()));
        let names: Vec<&str> = records.iter().map(|(n, _)| n.as_str()).collect();
        let crcs: Vec<u32> = records.iter().map(|(_, d)| crc32fast::hash(d)).collect();
        let id = serialization_id(&names, &crcs);
        records.push((".data/serialization_id".into(), id.into_bytes()));
        zip_records(self.layout["archive_name"].as_str().unwrap(), &records)
    }

    /// Writes the package (`<name>.emd` and `<name>.pth`, deflated, as `save()` packs them) into
    /// `dir`; returns its path.
    pub fn write_dlpk(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.dlpk", self.name));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(format!("{}.emd", self.name), options).unwrap();
        zip.write_all(self.emd.as_bytes()).unwrap();
        zip.start_file(format!("{}.pth", self.name), options).unwrap();
        zip.write_all(&self.pth()).unwrap();
        zip.finish().unwrap();
        path
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn draw(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The values of tensor `t` (float32 or int64), little-endian.
pub fn seeded_tensor(seed: u64, gain: f64, t: &TensorLayout) -> Vec<u8> {
    let numel: usize = t.shape.iter().product();
    if t.dtype == "int64" {
        return vec![0; numel * 8];
    }
    assert_eq!(t.dtype, "float32", "{}: only float32 and int64 are seeded", t.key);
    let mut rng = SplitMix(seed ^ fnv1a64(t.key.as_bytes()));
    let fan_in: usize = t.shape.iter().skip(1).product();
    let bound = (gain / fan_in.max(1) as f64).sqrt() as f32;
    let mut out = Vec::with_capacity(numel * 4);
    for _ in 0..numel {
        let u = (rng.draw() >> 40) as f32 / 16_777_216.0;
        let v = 2.0 * u - 1.0;
        let value = if t.key.ends_with("running_var") {
            0.5 + u
        } else if t.key.ends_with("running_mean") {
            v * 0.1
        } else if t.shape.len() >= 2 {
            v * bound
        } else if t.key.ends_with(".weight") {
            1.0 + v * 0.25
        } else {
            v * 0.1
        };
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// A protocol-2 pickle written as CPython's C pickler writes torch's state_dict: memo indices
/// taken in order, strings memoised by object identity.
struct Pickle {
    out: Vec<u8>,
    memo: Vec<String>,
}

impl Pickle {
    fn put(&mut self, identity: Option<String>) {
        let index = self.memo.len();
        self.memo.push(identity.unwrap_or_else(|| format!("\u{0}anon{index}")));
        if index < 256 {
            self.out.extend([b'q', index as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend((index as u32).to_le_bytes());
        }
    }

    fn get(&mut self, identity: &str) -> bool {
        let Some(index) = self.memo.iter().position(|m| m == identity) else {
            return false;
        };
        if index < 256 {
            self.out.extend([b'h', index as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend((index as u32).to_le_bytes());
        }
        true
    }

    fn global(&mut self, module: &str, name: &str) {
        let identity = format!("\u{0}global {module} {name}");
        if !self.get(&identity) {
            self.out.push(b'c');
            self.out.extend(format!("{module}\n{name}\n").bytes());
            self.put(Some(identity));
        }
    }

    /// A string; `shared` names the strings CPython reuses as one object.
    fn string(&mut self, s: &str, shared: Option<&str>) {
        let identity = shared.map(|k| format!("\u{0}str {k}"));
        if identity.as_deref().is_some_and(|id| self.get(id)) {
            return;
        }
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.bytes());
        self.put(identity);
    }

    fn int(&mut self, v: usize) {
        match v {
            0..=0xFF => self.out.extend([b'K', v as u8]),
            0x100..=0xFFFF => {
                self.out.push(b'M');
                self.out.extend((v as u16).to_le_bytes());
            }
            _ => {
                self.out.push(b'J');
                self.out.extend((v as i32).to_le_bytes());
            }
        }
    }

    fn int_tuple(&mut self, values: &[usize]) {
        if values.is_empty() {
            self.out.push(b')');
            return;
        }
        if values.len() <= 3 {
            for &v in values {
                self.int(v);
            }
            self.out.push([0x85, 0x86, 0x87][values.len() - 1]);
        } else {
            self.out.push(b'(');
            for &v in values {
                self.int(v);
            }
            self.out.push(b't');
        }
        self.put(None);
    }

    fn empty_ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.out.extend(b")R");
        self.put(None);
    }

    /// Dictionary items as CPython batches them (SETITEM for a batch of one, else MARK ...
    /// SETITEMS, 1000 at a time).
    fn items<T>(&mut self, pairs: &[T], mut write: impl FnMut(&mut Pickle, &T)) {
        for batch in pairs.chunks(1000) {
            if batch.len() == 1 {
                write(self, &batch[0]);
                self.out.push(b's');
            } else {
                self.out.push(b'(');
                for pair in batch {
                    write(self, pair);
                }
                self.out.push(b'u');
            }
        }
    }
}

/// torch.save's `data.pkl` of the state_dict `tensors` with module versions `metadata`.
fn data_pkl(tensors: &[TensorLayout], metadata: &[(String, u32)]) -> Vec<u8> {
    let mut p = Pickle {
        out: vec![0x80, 2],
        memo: Vec::new(),
    };
    p.empty_ordered_dict();
    p.items(tensors, |p, t| {
        p.string(&t.key, None);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.out.extend(b"((");
        p.string("storage", Some("storage"));
        p.global(
            "torch",
            if t.dtype == "int64" {
                "LongStorage"
            } else {
                "FloatStorage"
            },
        );
        // torch hands back the same key string for a storage seen before: a BINGET then.
        p.string(&t.storage_key, Some(&format!("storage_key:{}", t.storage_key)));
        p.string("cpu", Some("location:cpu"));
        p.int(t.shape.iter().product());
        p.out.push(b't');
        p.put(None);
        p.out.push(b'Q');
        p.int(0);
        p.int_tuple(&t.shape);
        let mut stride = vec![1usize; t.shape.len()];
        for i in (0..t.shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * t.shape[i + 1];
        }
        p.int_tuple(&stride);
        p.out.push(0x89);
        p.empty_ordered_dict();
        p.out.push(b't');
        p.put(None);
        p.out.push(b'R');
        p.put(None);
    });
    p.out.push(b'}');
    p.put(None);
    p.items(&[()], |p, ()| {
        p.string("_metadata", None);
        p.empty_ordered_dict();
        p.items(metadata, |p, (path, version)| {
            p.string(path, None);
            p.out.push(b'}');
            p.put(None);
            p.string("version", Some("version"));
            p.int(*version as usize);
            p.out.push(b's');
        });
    });
    p.out.extend(b"b.");
    p.out
}

/// libstdc++'s `std::hash<std::string>` on 64-bit (`_Hash_bytes` with seed 0xc70f6907).
pub fn std_hash(data: &[u8]) -> u64 {
    let mul: u64 = 0xc6a4_a793_5bd1_e995;
    let mut h = 0xc70f_6907u64 ^ (data.len() as u64).wrapping_mul(mul);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut d = u64::from_le_bytes(chunk.try_into().unwrap()).wrapping_mul(mul);
        d = (d ^ (d >> 47)).wrapping_mul(mul);
        h = (h ^ d).wrapping_mul(mul);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut bytes = [0u8; 8];
        bytes[..tail.len()].copy_from_slice(tail);
        h = (h ^ u64::from_le_bytes(bytes)).wrapping_mul(mul);
    }
    h = (h ^ (h >> 47)).wrapping_mul(mul);
    h ^ (h >> 47)
}

fn hash_combine(seed: u64, value: u64) -> u64 {
    seed ^ value
        .wrapping_add(0x9e37_79b9)
        .wrapping_add(seed << 6)
        .wrapping_add(seed >> 2)
}

/// libstdc++'s bucket counts (`__prime_list`), enough for a few thousand records.
const PRIMES: &[u64] = &[
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127,
    137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409, 439, 467, 503, 541,
    577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357,
    2549, 2753, 2971, 3209, 3469, 3739, 4027, 4349, 4703, 5087, 5503, 5953, 6427, 6949, 7517, 8123, 8783, 9497, 10273,
    11113, 12011, 12983, 14033, 15173, 16411, 17749, 19183, 20753, 22447, 24281, 26267, 28411, 30727, 33223, 35933,
    38873, 42043, 45481, 49201, 53201, 57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733,
];
const FAST_BUCKETS: [u64; 14] = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13];

/// The iteration order of a libstdc++ `std::unordered_set<std::string>` after inserting `names`
/// in order (torch hashes its record names in this order into the serialization id).
fn unordered_set_order<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let (mut buckets, mut next_resize) = (1u64, 0u64);
    let mut order: Vec<(u64, &str)> = Vec::new();
    let first_in_bucket =
        |list: &[(u64, &str)], bucket: u64, count: u64| list.iter().position(|(h, _)| h % count == bucket);
    for &name in names {
        let hash = std_hash(name.as_bytes());
        let n = order.len() as u64;
        if n + 1 > next_resize {
            let min = (n + 1).max(if next_resize == 0 { 11 } else { 0 });
            if min >= buckets {
                let want = (min + 1).max(2 * buckets);
                let new = if want < FAST_BUCKETS.len() as u64 {
                    FAST_BUCKETS[want as usize]
                } else {
                    *PRIMES[6..].iter().find(|&&p| p >= want).expect("few records")
                };
                next_resize = new;
                let mut rehashed: Vec<(u64, &str)> = Vec::new();
                for node in order {
                    let at = first_in_bucket(&rehashed, node.0 % new, new).unwrap_or(0);
                    rehashed.insert(at, node);
                }
                order = rehashed;
                buckets = new;
            } else {
                next_resize = buckets;
            }
        }
        let at = first_in_bucket(&order, hash % buckets, buckets).unwrap_or(0);
        order.insert(at, (hash, name));
    }
    order.into_iter().map(|(_, name)| name).collect()
}

/// `.data/serialization_id`: the combined hashes of the record names (in the set's order) and of
/// their CRC32s (in write order), 20 digits each.
fn serialization_id(names: &[&str], crcs: &[u32]) -> String {
    let names_hash = unordered_set_order(names)
        .iter()
        .fold(0, |h, name| hash_combine(h, std_hash(name.as_bytes())));
    let crc_hash = crcs.iter().fold(0, |h, &c| hash_combine(h, u64::from(c)));
    format!("{names_hash:020}{crc_hash:020}")
}

/// The zip torch writes: records stored, payloads aligned to 64 bytes with an `FB` extra
/// field, data descriptors, no timestamps, zip64 end records.
fn zip_records(archive: &str, records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in records {
        let full = format!("{archive}/{name}");
        let offset = out.len();
        let pad = (64 - (offset + 30 + full.len() + 4) % 64) % 64;
        let crc = crc32fast::hash(data);
        out.extend(0x0403_4b50u32.to_le_bytes());
        for v in [0u16, 0x0808, 0, 0, 0] {
            out.extend(v.to_le_bytes());
        }
        out.extend([0u8; 12]);
        out.extend((full.len() as u16).to_le_bytes());
        out.extend(((4 + pad) as u16).to_le_bytes());
        out.extend(full.bytes());
        out.extend(b"FB");
        out.extend((pad as u16).to_le_bytes());
        out.extend(std::iter::repeat_n(b'Z', pad));
        out.extend(data);
        for v in [0x0807_4b50u32, crc, data.len() as u32, data.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        central.extend(0x0201_4b50u32.to_le_bytes());
        for v in [0u16, 0, 0x0808, 0, 0, 0] {
            central.extend(v.to_le_bytes());
        }
        for v in [crc, data.len() as u32, data.len() as u32] {
            central.extend(v.to_le_bytes());
        }
        for v in [full.len() as u16, 0, 0, 0, 0] {
            central.extend(v.to_le_bytes());
        }
        central.extend(0u32.to_le_bytes());
        central.extend((offset as u32).to_le_bytes());
        central.extend(full.bytes());
    }
    let (cd_offset, cd_size, n) = (out.len() as u64, central.len() as u64, records.len() as u64);
    out.extend(central);
    let z64 = out.len() as u64;
    out.extend(0x0606_4b50u32.to_le_bytes());
    out.extend(44u64.to_le_bytes());
    out.extend(0x031eu16.to_le_bytes());
    out.extend(0x002du16.to_le_bytes());
    out.extend([0u8; 8]);
    for v in [n, n, cd_size, cd_offset] {
        out.extend(v.to_le_bytes());
    }
    out.extend(0x0706_4b50u32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(z64.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((n as u16).to_le_bytes());
    out.extend((n as u16).to_le_bytes());
    out.extend((cd_size as u32).to_le_bytes());
    out.extend((cd_offset as u32).to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}
