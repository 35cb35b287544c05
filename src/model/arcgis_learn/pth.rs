//! A PyTorch `.pth` file (torch's zip serialization, torch >= 1.6) read into named tensors,
//! without Python and without running anything from it.
//!
//! Layout: a zip whose records sit under one top folder (the file stem at save time, or
//! `archive`): `data.pkl` (the pickle, read by [`crate::model::arcgis_learn::pickle`]), `data/<key>` (raw
//! storage bytes), `byteorder` (optional, `little` when absent). Storages are STORED
//! (uncompressed) by torch, so a tensor's values are a range of the `.pth` bytes, which the
//! [`StateDict`] owns: nothing is copied, and each storage's CRC-32 is checked so that a damaged
//! file cannot give wrong weights. [`StateDict::into_parts`] hands the bytes on, so that the ONNX
//! model can be written over them ([`crate::model::arcgis_learn::encode`]).

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::ops::Range;

use anyhow::Result;
use bytes::Bytes;
use zip::ZipArchive;

use crate::bail_input;
use crate::model::arcgis_learn::pickle::{self, Dtype};

/// Largest `data.pkl` accepted (a ResNet-152 state_dict pickle is about 120 KiB).
pub const MAX_PICKLE_BYTES: u64 = 16 << 20;

/// Where a tensor's `numel * dtype.size()` bytes (contiguous, row-major, little-endian) are.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// A range of the state_dict's buffer (the `.pth` file): torch's STORED storages.
    InBuffer(Range<usize>),
    /// Bytes of their own: storages that had to be inflated or byte-swapped.
    Owned(Bytes),
}

/// One tensor of a state_dict.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub values: Values,
}

impl Tensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A state_dict: tensors by name, in file order, and the file bytes they point into.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    /// `(name, tensor)` in file order.
    pub tensors: Vec<(String, Tensor)>,
    index: HashMap<String, usize>,
    buffer: Vec<u8>,
}

impl StateDict {
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.index.get(name).map(|&i| &self.tensors[i].1)
    }

    /// The tensor called `name`, with the name as stored.
    pub fn entry(&self, name: &str) -> Option<(&str, &Tensor)> {
        self.index
            .get(name)
            .map(|&i| (self.tensors[i].0.as_str(), &self.tensors[i].1))
    }

    /// Whether a tensor called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Tensor names in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _)| n.as_str())
    }

    /// The values of `tensor` (a tensor of this state_dict).
    pub fn data<'a>(&'a self, tensor: &'a Tensor) -> &'a [u8] {
        match &tensor.values {
            Values::InBuffer(range) => &self.buffer[range.clone()],
            Values::Owned(bytes) => bytes,
        }
    }

    /// The tensors and the buffer their [`Values::InBuffer`] ranges point into.
    pub fn into_parts(self) -> (Vec<(String, Tensor)>, Vec<u8>) {
        (self.tensors, self.buffer)
    }

    /// A state_dict of named tensors (the names must be distinct) whose [`Values::InBuffer`]
    /// ranges point into `buffer`.
    pub fn from_parts(tensors: Vec<(String, Tensor)>, buffer: Vec<u8>) -> StateDict {
        let index = tensors.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        StateDict { tensors, index, buffer }
    }
}

/// Reads the `.pth` held in `bytes`, which become the state_dict's buffer; `origin` names it in
/// messages.
pub fn read(bytes: Vec<u8>, origin: &str) -> Result<StateDict> {
    if !bytes.starts_with(b"PK\x03\x04") {
        if bytes.first() == Some(&0x80) {
            bail_input!(
                "{origin} is a PyTorch file in the legacy format (torch < 1.6); load it in torch >= 1.6 and save it again with torch.save(model.state_dict(), ...)"
            );
        }
        bail_input!(
            "{origin} is not a PyTorch .pth (a zip written by torch.save); re-export or re-download the package"
        );
    }
    let tensors = read_tensors(&bytes, origin)?;
    Ok(StateDict::from_parts(tensors, bytes))
}

fn read_tensors(bytes: &[u8], origin: &str) -> Result<Vec<(String, Tensor)>> {
    let mut archive = match ZipArchive::new(Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(err) => {
            bail_input!("{origin} is a damaged or truncated zip ({err}); re-export or re-download the package")
        }
    };
    let names: Vec<String> = archive.file_names().map(String::from).collect();
    let top = pickle_folder(&names, origin)?;
    let pickle_bytes = read_record(&mut archive, &format!("{top}data.pkl"), MAX_PICKLE_BYTES, origin)?;
    let big_endian = names.iter().any(|n| *n == format!("{top}byteorder"))
        && big_endian(
            &read_record(&mut archive, &format!("{top}byteorder"), 16, origin)?,
            origin,
        )?;
    let refs = pickle::load_state_dict(&pickle_bytes, &format!("{origin}!{top}data.pkl"))?;
    drop(pickle_bytes);
    let mut reader = Storages {
        bytes,
        archive,
        top,
        origin,
        big_endian,
        loaded: HashMap::new(),
    };
    refs.into_iter()
        .map(|(name, r)| {
            let tensor = reader.tensor(&name, &r)?;
            Ok((name, tensor))
        })
        .collect()
}

/// The folder holding the one `data.pkl` (`archive/`, or the name the file was saved under).
fn pickle_folder(names: &[String], origin: &str) -> Result<String> {
    let pickles: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .collect();
    match pickles.as_slice() {
        [one] => Ok(one.trim_end_matches("data.pkl").to_string()),
        [] => bail_input!("{origin} has no <folder>/data.pkl; it is not a .pth written by torch.save (torch >= 1.6)"),
        many => bail_input!(
            "{origin} has {} data.pkl records; a .pth written by torch.save has one",
            many.len()
        ),
    }
}

/// Whether the `byteorder` record says big-endian.
fn big_endian(record: &[u8], origin: &str) -> Result<bool> {
    match record {
        b"little" => Ok(false),
        b"big" => Ok(true),
        other => bail_input!(
            "{origin}: byteorder is {:?}, expected little or big; the file is damaged",
            String::from_utf8_lossy(other)
        ),
    }
}

/// The storages of a `.pth`, each read once however many tensors view it.
struct Storages<'a> {
    bytes: &'a [u8],
    archive: ZipArchive<Cursor<&'a [u8]>>,
    top: String,
    origin: &'a str,
    big_endian: bool,
    loaded: HashMap<String, Values>,
}

impl Storages<'_> {
    /// The tensor `name` that the pickle describes as `r`: a checked view of its storage.
    fn tensor(&mut self, name: &str, r: &pickle::TensorRef) -> Result<Tensor> {
        let origin = self.origin;
        let storage = &r.storage;
        let record = format!("{}data/{}", self.top, storage.key);
        let item = storage.dtype.size() as u64;
        let data = self.storage(storage, &record)?;
        let shown = short(name);
        let numel = r.size.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let Some(numel) = numel else {
            bail_input!(
                "{origin}: tensor {shown} has an impossible size {:?}; the file is damaged",
                r.size
            );
        };
        // Row-major strides; dimensions of size 1 may carry any stride.
        let mut expected = 1u64;
        for (&size, &stride) in r.size.iter().zip(&r.stride).rev() {
            if size != 1 && stride != expected {
                bail_input!(
                    "{origin}: tensor {shown} is not contiguous (size {:?}, stride {:?}); save the state_dict of a model whose tensors are contiguous",
                    r.size,
                    r.stride
                );
            }
            expected = expected.saturating_mul(size);
        }
        let range = r
            .offset
            .checked_add(numel)
            .filter(|&end| end <= storage.numel)
            .map(|end| (r.offset * item) as usize..(end * item) as usize);
        let Some(range) = range else {
            bail_input!("{origin}: tensor {shown} reaches past the end of its storage {record}; the file is damaged");
        };
        let mut values = match data {
            Values::InBuffer(storage) => Values::InBuffer(storage.start + range.start..storage.start + range.end),
            Values::Owned(owned) => Values::Owned(owned.slice(range)),
        };
        if self.big_endian && item > 1 {
            values = Values::Owned(swapped(&values, self.bytes, item as usize));
        }
        Ok(Tensor {
            dtype: storage.dtype,
            shape: r.size.iter().map(|&d| d as usize).collect(),
            values,
        })
    }

    /// The bytes of `storage` (record `record`), read and checked the first time.
    fn storage(&mut self, storage: &pickle::StorageRef, record: &str) -> Result<Values> {
        if let Some(data) = self.loaded.get(&storage.key) {
            return Ok(data.clone());
        }
        let item = storage.dtype.size() as u64;
        let expected = storage.numel.saturating_mul(item);
        let data = storage_bytes(self.bytes, &mut self.archive, record, expected, self.origin)?;
        let len = match &data {
            Values::InBuffer(range) => range.len(),
            Values::Owned(owned) => owned.len(),
        };
        if Some(len as u64) != storage.numel.checked_mul(item) {
            bail_input!(
                "{}: storage {record} holds {} bytes but the pickle declares {} {} values; the file is damaged",
                self.origin,
                len,
                storage.numel,
                storage.dtype.name()
            );
        }
        self.loaded.insert(storage.key.clone(), data.clone());
        Ok(data)
    }
}

/// `values` with the bytes of each `item`-byte value reversed (big-endian to little-endian).
fn swapped(values: &Values, bytes: &[u8], item: usize) -> Bytes {
    let mut swapped = match values {
        Values::InBuffer(range) => bytes[range.clone()].to_vec(),
        Values::Owned(owned) => owned.to_vec(),
    };
    for chunk in swapped.chunks_exact_mut(item) {
        chunk.reverse();
    }
    Bytes::from(swapped)
}

fn short(text: &str) -> String {
    let s: String = text.chars().take(80).collect();
    format!("{s:?}")
}

/// A record read through the zip reader (inflated if needed, CRC checked), at most `cap` bytes.
fn read_record(archive: &mut ZipArchive<Cursor<&[u8]>>, name: &str, cap: u64, origin: &str) -> Result<Vec<u8>> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(err) => bail_input!("{origin}: record {name} cannot be read ({err}); the file is damaged"),
    };
    if entry.size() > cap {
        bail_input!(
            "{origin}: record {name} declares {} bytes, more than the {cap} allowed; the file is damaged or hostile",
            entry.size()
        );
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    if let Err(err) = entry.take(cap + 1).read_to_end(&mut out) {
        bail_input!("{origin}: record {name} cannot be read ({err}); the file is damaged");
    }
    if out.len() as u64 > cap {
        bail_input!("{origin}: record {name} is larger than {cap} bytes; the file is damaged or hostile");
    }
    Ok(out)
}

/// Where a storage record's bytes are: a range of the file when STORED (as torch writes them),
/// checked against the record's CRC-32; inflated otherwise.
/// An inflated storage may take at most `expected` bytes (what the pickle declares), so a
/// compressed record cannot inflate beyond it.
fn storage_bytes(
    file: &[u8],
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    expected: u64,
    origin: &str,
) -> Result<Values> {
    let Some(index) = archive.index_for_name(name) else {
        bail_input!(
            "{origin}: the pickle names storage {name}, which is not in the file; the .pth is truncated or damaged, re-export it"
        );
    };
    let (stored, start, size, crc) = match archive.by_index_raw(index) {
        Ok(entry) => (
            entry.compression() == zip::CompressionMethod::Stored && !entry.encrypted(),
            entry.data_start(),
            entry.compressed_size(),
            entry.crc32(),
        ),
        Err(err) => bail_input!("{origin}: storage {name} cannot be read ({err}); the file is damaged"),
    };
    if !stored {
        return Ok(Values::Owned(Bytes::from(read_record(
            archive, name, expected, origin,
        )?)));
    }
    let range = start
        .checked_add(size)
        .filter(|&end| end <= file.len() as u64)
        .map(|end| start as usize..end as usize);
    let Some(range) = range else {
        bail_input!("{origin}: storage {name} reaches past the end of the file; the .pth is truncated, re-export it");
    };
    if crc32fast::hash(&file[range.clone()]) != crc {
        bail_input!(
            "{origin}: storage {name} fails its CRC-32 check; the .pth is damaged, re-export or re-download it"
        );
    }
    Ok(Values::InBuffer(range))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A `.pth` zip with the given pickle and storages, as torch lays it out.
    pub(crate) fn pth_zip(top: &str, pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(format!("{top}/data.pkl"), stored).unwrap();
        zip.write_all(pickle).unwrap();
        zip.start_file(format!("{top}/byteorder"), stored).unwrap();
        zip.write_all(b"little").unwrap();
        for (key, data) in storages {
            zip.start_file(format!("{top}/data/{key}"), stored).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.start_file(format!("{top}/version"), stored).unwrap();
        zip.write_all(b"3\n").unwrap();
        zip.finish().unwrap().into_inner()
    }

    fn two_floats() -> Vec<u8> {
        [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn reads_tensors_as_slices_of_the_file() {
        let pickle = crate::model::arcgis_learn::pickle::tests::state_dict_pickle();
        let file = pth_zip("m", &pickle, &[("0", &two_floats())]);
        let sd = read(file, "m.pth").unwrap();
        let w = sd.get("w").unwrap();
        assert_eq!((w.dtype, w.shape.clone()), (Dtype::F32, vec![2]));
        assert!(matches!(w.values, Values::InBuffer(_)));
        assert_eq!(sd.data(w), two_floats().as_slice());
    }

    #[test]
    fn refuses_damaged_files() {
        let pickle = crate::model::arcgis_learn::pickle::tests::state_dict_pickle();
        let good = pth_zip("m", &pickle, &[("0", &two_floats())]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() / 2].to_vec(), "damaged or truncated zip"),
            (pth_zip("m", &pickle, &[]), "not in the file"),
            (pth_zip("m", &pickle, &[("0", &[0u8; 4])]), "holds 4 bytes"),
            (vec![0x80, 2, b'.'], "legacy format"),
        ];
        for (bytes, needle) in cases {
            let err = read(bytes, "m.pth").unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2);
            assert!(err.to_string().contains(needle), "{err} should say {needle}");
        }
        // A flipped bit in the weights is caught by the CRC.
        let mut flipped = good.clone();
        let at = flipped.windows(4).position(|w| w == 1.5f32.to_le_bytes()).unwrap();
        flipped[at] ^= 1;
        assert!(read(flipped, "m.pth").unwrap_err().to_string().contains("CRC"));
    }
}
