//! What a `--shard I/N` run records in its output, so that `merge` can check that it has every
//! shard of one run, complete and in order, and write exactly what a single run would have: the
//! shard (I, N), how many features the input has, the rows written (and, when a feature can
//! have several rows, how many each has), a fingerprint of the inputs and options, the layer
//! name a single run would take, and the run's QGIS style.
//!
//! A GeoPackage keeps the record as layer metadata (GDAL's `gpkg_metadata` tables, not a layer);
//! a CSV table in a `<name>.shard.json` file beside it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gdal::Metadata;
use serde::{Deserialize, Serialize};

use crate::output::style::StyleMode;

/// Metadata domain of the record in a GeoPackage layer.
pub const METADATA_DOMAIN: &str = "CLASSIFY_OBJECTS";
/// Metadata key of the record.
pub const METADATA_KEY: &str = "SHARD";
/// Suffix of the record file beside a CSV table (it replaces `.csv`).
pub const SIDECAR_SUFFIX: &str = ".shard.json";

/// The record of one shard run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// This shard, 0-based.
    pub index: usize,
    /// How many shards the run was split into.
    pub count: usize,
    /// Features in the whole input.
    pub features: u64,
    /// Rows this shard wrote.
    pub rows: u64,
    /// Rows of each of this shard's features, in order, when some feature has other than one
    /// row (images processed separately); `None` when each has exactly one.
    pub row_counts: Option<Vec<u32>>,
    /// Fingerprint of the inputs and the options that shape the output.
    pub fingerprint: String,
    /// The layer name given with `--layer-name`; `None` when the output's name gives it.
    pub layer: Option<String>,
    /// The label field.
    pub label_field: String,
    /// Where the run put its QGIS style.
    pub style: StyleMode,
    /// The style itself.
    pub qml: Option<String>,
}

impl ShardRecord {
    /// The record as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a shard record serialises")
    }

    /// Writes the record into an OGR layer's metadata.
    pub fn write_into(&self, layer: &mut impl Metadata) -> Result<()> {
        layer
            .set_metadata_item(METADATA_KEY, &self.to_json(), METADATA_DOMAIN)
            .context("recording the shard in the output")
    }

    /// Reads the record from an OGR layer's metadata, if it has one.
    pub fn read_from(layer: &impl Metadata, shown: &str) -> Result<Option<ShardRecord>> {
        match layer.metadata_item(METADATA_KEY, METADATA_DOMAIN) {
            None => Ok(None),
            Some(text) => Ok(Some(
                serde_json::from_str(&text).with_context(|| format!("reading the shard record of {shown}"))?,
            )),
        }
    }

    /// Reads the record file beside a CSV table, if there is one.
    pub fn read_sidecar(table: &Path) -> Result<Option<ShardRecord>> {
        let path = sidecar(table);
        match std::fs::read_to_string(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
            Ok(text) => Ok(Some(
                serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?,
            )),
        }
    }
}

/// The record file beside a CSV table: `name.csv` -> `name.shard.json`.
pub fn sidecar(table: &Path) -> PathBuf {
    let stem = table.file_stem().unwrap_or_default().to_string_lossy();
    table.with_file_name(format!("{stem}{SIDECAR_SUFFIX}"))
}

/// A stable 64-bit fingerprint (FNV-1a) of some bytes, as 16 hex digits; stable across builds and
/// machines, unlike the standard library's hasher.
#[derive(Debug, Clone)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    /// Adds `bytes`, with their length (so that ("ab", "c") and ("a", "bc") differ).
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// The fingerprint as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_fnv1a_and_length_delimited() {
        let mut a = Fingerprint::default();
        a.add(b"ab").add(b"c");
        let mut b = Fingerprint::default();
        b.add(b"a").add(b"bc");
        assert_ne!(a.hex(), b.hex());
        let mut c = Fingerprint::default();
        c.add(b"ab").add(b"c");
        assert_eq!(a.hex(), c.hex());
        assert_eq!(
            sidecar(Path::new("r/shard_001.csv")),
            Path::new("r/shard_001.shard.json")
        );
    }

    #[test]
    fn records_round_trip_through_json() {
        let record = ShardRecord {
            index: 1,
            count: 4,
            features: 2000,
            rows: 500,
            row_counts: None,
            fingerprint: "00ff".into(),
            layer: None,
            label_field: "ClassLabel".into(),
            style: StyleMode::File,
            qml: Some("<qgis/>".into()),
        };
        assert_eq!(serde_json::from_str::<ShardRecord>(&record.to_json()).unwrap(), record);
    }
}
