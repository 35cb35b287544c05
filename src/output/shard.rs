//! What a `--shard I/N` run records in its output, so that `merge` can check that it has every
//! shard of one run, complete and in order, and write exactly what a single run would have: the
//! shard (I, N), how many features the input has, the rows written (and, when a feature can
//! have several rows, how many each has), a fingerprint of the inputs and options, the layer
//! name a single run would take, and the run's QGIS style.
//!
//! A GeoPackage keeps the record as layer metadata (GDAL's `gpkg_metadata` tables, not a layer);
//! a CSV table in a `<name>.shard.json` file beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gdal::Metadata;
use serde::{Deserialize, Serialize};

use crate::bail_input;
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
    /// The fingerprint's parts (model, rasters, features, options), to say what differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<BTreeMap<String, String>>,
    /// A fingerprint of the features' content as read after the filters (every shard reads all
    /// of them), once the run has read them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_content: Option<String>,
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
            Some(text) => Ok(Some(ShardRecord::parse(&text, shown)?)),
        }
    }

    /// Parses and checks a record; `shown` names where it is kept.
    fn parse(text: &str, shown: &str) -> Result<ShardRecord> {
        let record: ShardRecord = match serde_json::from_str(text) {
            Ok(record) => record,
            Err(err) => bail_input!(
                "the shard record of {shown} is damaged ({err}); rerun the shard that wrote it (with --overwrite)"
            ),
        };
        record.check(shown)?;
        Ok(record)
    }

    /// Refuses a record that cannot be true (a hand-edited or damaged one).
    fn check(&self, shown: &str) -> Result<()> {
        let problem = if self.count == 0 {
            Some("0 shards".to_string())
        } else if self.index >= self.count {
            Some(format!("shard {} of {}", self.index, self.count))
        } else if let Some(counts) = &self.row_counts {
            let rows: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            (rows != self.rows).then(|| format!("{} rows but rows per feature adding up to {rows}", self.rows))
        } else {
            None
        };
        match problem {
            Some(problem) => bail_input!(
                "the shard record of {shown} says {problem}, which cannot be; the record was damaged or edited: rerun that shard (with --overwrite)"
            ),
            None => Ok(()),
        }
    }

    /// Reads the record file beside a CSV table, if there is one.
    pub fn read_sidecar(table: &Path) -> Result<Option<ShardRecord>> {
        let path = sidecar(table);
        match std::fs::read_to_string(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
            Ok(text) => Ok(Some(ShardRecord::parse(&text, &path.display().to_string())?)),
        }
    }
}

/// The record file beside a CSV table: `name.csv` -> `name.shard.json`.
pub fn sidecar(table: &Path) -> PathBuf {
    let stem = table.file_stem().unwrap_or_default().to_string_lossy();
    table.with_file_name(format!("{stem}{SIDECAR_SUFFIX}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_replace_the_extension() {
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
            parts: None,
            features_content: None,
        };
        assert_eq!(serde_json::from_str::<ShardRecord>(&record.to_json()).unwrap(), record);
        assert_eq!(ShardRecord::parse(&record.to_json(), "r").unwrap(), record);
        for (edit, says) in [("\"count\":4", "0 shards"), ("\"index\":1", "shard 7 of 4")] {
            let edited = record.to_json().replace(
                edit,
                if says == "0 shards" {
                    "\"count\":0"
                } else {
                    "\"index\":7"
                },
            );
            let err = ShardRecord::parse(&edited, "r").unwrap_err();
            assert!(crate::error::one_line(&err).contains(says), "{err}");
        }
    }
}
