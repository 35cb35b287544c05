//! `classify-objects merge`: joins the outputs of `--shard I/N` runs into exactly what a single
//! run would have written — same columns, same rows in the same order, the layer name and QGIS
//! style a single run gives its output.
//!
//! Every shard output records its shard, the input's feature count, its rows (and how many rows
//! each feature has when that is not one) and a fingerprint of the inputs and options
//! ([`ShardRecord`]). Merge refuses shards that are missing, duplicated, out of order, from
//! another run or incomplete, naming them. Shard `I` holds the features at input positions
//! `I, I + N, ...`; taking each position's rows from its shard in turn restores the input order,
//! whatever the feature ids are.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gdal::vector::{Feature, FieldDefn, LayerAccess, LayerOptions};
use gdal::Dataset;

use crate::bail_input;
use crate::gdal_ffi::vector;
use crate::output::csv;
use crate::output::csv::parse_records;
use crate::output::existing;
use crate::output::format::Format;
use crate::output::layer::LayerSettings;
use crate::output::ogr;
use crate::output::ogr::geometry_column;
use crate::output::schema::rename_clashing;
use crate::output::shard::ShardRecord;
use crate::output::style;
use crate::output::style::StylePlace;
use crate::output::target::{OutputTarget, WritePolicy};
use crate::output::{IMAGE_ID_FIELD, SOURCE_ID_FIELD};

/// One shard output, read and checked.
struct Shard {
    path: PathBuf,
    record: ShardRecord,
}

impl Shard {
    /// Rows of this shard's `k`-th feature.
    fn rows_of(&self, k: usize) -> usize {
        self.record.row_counts.as_ref().map_or(1, |counts| counts[k] as usize)
    }

    /// Features in this shard.
    fn features(&self) -> usize {
        let (i, n, total) = (self.record.index as u64, self.record.count as u64, self.record.features);
        (total / n + u64::from(i < total % n)) as usize
    }
}

/// Merges `shards` (in shard order) into `output`; returns the number of rows written.
pub fn merge(shards: &[PathBuf], output: &Path, overwrite: bool) -> Result<usize> {
    let format = Format::for_path(output)?;
    let csv = shards.iter().map(|p| Format::for_path(p).map(|f| f == Format::Csv));
    let csv: Vec<bool> = csv.collect::<Result<_>>()?;
    if csv.iter().any(|&c| c != csv[0]) || (format == Format::Csv) != csv[0] {
        bail_input!(
            "merge joins CSV shards into a .csv, or vector shards into a vector output; {} does not match the shards",
            output.display()
        );
    }
    let shards: Vec<Shard> = shards.iter().map(|p| read_shard(p, csv[0])).collect::<Result<_>>()?;
    check_complete_run(&shards)?;
    let layer_name = shards[0].record.layer.clone().unwrap_or_else(|| {
        output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "classified".into())
    });
    let policy = WritePolicy {
        overwrite,
        ..WritePolicy::default()
    };
    let mut target = OutputTarget::prepare(output, &format, policy, &layer_name)?;
    let written = match &format {
        Format::Csv => merge_csv(&shards, &target)?,
        Format::Ogr(driver) => merge_ogr(&shards, &target, driver, &layer_name, format.field_name_limit())?,
    };
    target.commit()?;
    Ok(written)
}

/// Reads a shard's record and checks that it holds the rows it says.
fn read_shard(path: &Path, csv: bool) -> Result<Shard> {
    let shown = path.display().to_string();
    if !path.is_file() {
        bail_input!(
            "shard {shown} does not exist, so a shard is missing; give the outputs of every --shard run (rerun or requeue the missing ones)"
        );
    }
    let (record, rows) = if csv {
        let text = fs::read_to_string(path).with_context(|| format!("reading shard {shown}"))?;
        let (records, _) = parse_records(&text);
        (ShardRecord::read_sidecar(path)?, records.len().saturating_sub(1) as u64)
    } else {
        let dataset = existing::open_output(path)?;
        let found = dataset.layers().find_map(|layer| {
            ShardRecord::read_from(&layer, &shown)
                .transpose()
                .map(|record| record.map(|r| (r, layer.feature_count())))
        });
        match found.transpose()? {
            Some((record, rows)) => (Some(record), rows),
            None => (None, 0),
        }
    };
    let Some(record) = record else {
        bail_input!(
            "{shown} is not the output of a --shard run (it has no shard record); merge joins the outputs of `--shard I/N` runs of one job"
        );
    };
    if rows != record.rows {
        bail_input!(
            "shard {shown} ({}/{}) has {rows} rows but its run wrote {}; it is incomplete or was changed: rerun that shard",
            record.index,
            record.count,
            record.rows
        );
    }
    Ok(Shard {
        path: path.to_path_buf(),
        record,
    })
}

/// Checks that the shards are every shard of one run, each once, in order.
fn check_complete_run(shards: &[Shard]) -> Result<()> {
    check_one_run(shards)?;
    let n = shards[0].record.count;
    for (position, shard) in shards.iter().enumerate() {
        let index = shard.record.index;
        if let Some(other) = shards[..position].iter().find(|s| s.record.index == index) {
            bail_input!(
                "shards {} and {} are both shard {index}/{n}; give each shard once",
                other.path.display(),
                shard.path.display()
            );
        }
        if index != position {
            if position < n && shards.iter().all(|s| s.record.index != position) {
                bail_input!(
                    "shard {position}/{n} is missing (before {}); merge needs all {n} shards: rerun or requeue the missing one",
                    shard.path.display()
                );
            }
            bail_input!(
                "shard {} is shard {index}/{n} but was given in position {position}; give the shards in order 0 to {}",
                shard.path.display(),
                n - 1
            );
        }
    }
    if shards.len() < n {
        bail_input!(
            "shard {}/{n} is missing (after {}); merge needs all {n} shards: rerun or requeue the missing one",
            shards.len(),
            shards[shards.len() - 1].path.display()
        );
    }
    for shard in shards {
        if let Some(counts) = &shard.record.row_counts {
            let rows: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            if counts.len() != shard.features() || rows != shard.record.rows {
                bail_input!(
                    "shard {} has an inconsistent record; rerun that shard",
                    shard.path.display()
                );
            }
        } else if shard.record.rows != shard.features() as u64 {
            bail_input!(
                "shard {} has {} rows for {} features; it is incomplete: rerun that shard",
                shard.path.display(),
                shard.record.rows,
                shard.features()
            );
        }
    }
    Ok(())
}

/// Checks that every shard comes from the same run (the same N, inputs, options and features):
/// the run most shards come from is taken as the job's, and the others are named.
fn check_one_run(shards: &[Shard]) -> Result<()> {
    let key = |s: &Shard| {
        let r = &s.record;
        (r.count, r.fingerprint.clone(), r.features, r.features_content.clone())
    };
    let mut tally: Vec<(_, usize)> = Vec::new();
    for shard in shards {
        match tally.iter_mut().find(|(k, _)| *k == key(shard)) {
            Some((_, n)) => *n += 1,
            None => tally.push((key(shard), 1)),
        }
    }
    // The most common run; on a tie, the one that comes first.
    let Some((majority, count)) = tally.iter().fold(None, |best: Option<&(_, usize)>, t| match best {
        Some(b) if b.1 >= t.1 => Some(b),
        _ => Some(t),
    }) else {
        return Ok(());
    };
    let odd: Vec<&Shard> = shards.iter().filter(|s| key(s) != *majority).collect();
    let Some(first_odd) = odd.first() else {
        return Ok(());
    };
    let like = shards
        .iter()
        .find(|s| key(s) == *majority)
        .expect("a shard of the majority");
    bail_input!(
        "{} come{} from another run than the other {count} shard(s) (like {}): {}; merge the shards of one run, rerunning the odd ones with that run's inputs and options (and --overwrite)",
        odd.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>().join(", "),
        if odd.len() == 1 { "s" } else { "" },
        like.path.display(),
        what_differs(&like.record, &first_odd.record)
    )
}

/// What differs between two shard records, in words.
fn what_differs(a: &ShardRecord, b: &ShardRecord) -> String {
    if a.count != b.count {
        return format!("another N ({} shards, not {})", b.count, a.count);
    }
    if let (Some(pa), Some(pb)) = (&a.parts, &b.parts) {
        let names: Vec<&str> = pa
            .iter()
            .filter(|(k, v)| pb.get(*k) != Some(v))
            .map(|(k, _)| match k.as_str() {
                "model" => "another model",
                "rasters" => "other rasters",
                "features" => "other features",
                _ => "other options",
            })
            .collect();
        if !names.is_empty() {
            return names.join(" and ");
        }
    }
    if a.features != b.features || a.features_content != b.features_content {
        return "other features (another count or content after the filters)".into();
    }
    "other features, rasters, model or options".into()
}

/// The order rows are taken in: for each input position, (shard, how many rows).
fn schedule(shards: &[Shard]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let n = shards.len();
    let total = shards[0].record.features as usize;
    (0..total).map(move |p| (p % n, shards[p % n].rows_of(p / n)))
}

fn merge_csv(shards: &[Shard], target: &OutputTarget) -> Result<usize> {
    let tables: Vec<Vec<Vec<String>>> = shards
        .iter()
        .map(|s| {
            let text = fs::read_to_string(&s.path).with_context(|| format!("reading shard {}", s.path.display()))?;
            Ok(parse_records(&text).0)
        })
        .collect::<Result<_>>()?;
    if tables.iter().any(|t| t.first() != tables[0].first()) {
        bail_input!("the shards have different columns; merge only the shards of one run");
    }
    let mut out = std::io::BufWriter::new(
        fs::File::create(target.temp_path()).with_context(|| format!("creating {}", target.temp_path().display()))?,
    );
    let mut line = |cells: &[String]| -> Result<()> {
        let text: Vec<String> = cells.iter().map(|c| csv::csv_cell(c)).collect();
        writeln!(out, "{}", text.join(","))?;
        Ok(())
    };
    line(&tables[0][0])?;
    let mut next = vec![1usize; shards.len()];
    let mut written = 0;
    for (s, rows) in schedule(shards) {
        for _ in 0..rows {
            line(&tables[s][next[s]])?;
            next[s] += 1;
            written += 1;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(written)
}

fn merge_ogr(
    shards: &[Shard],
    target: &OutputTarget,
    driver: &str,
    layer_name: &str,
    name_limit: Option<usize>,
) -> Result<usize> {
    let datasets: Vec<Dataset> = shards
        .iter()
        .map(|s| existing::open_output(&s.path))
        .collect::<Result<_>>()?;
    let mut layers = shard_layers(&datasets, shards)?;
    let fields = layers[0].defn().fields().count();
    let settings = LayerSettings {
        name: layer_name.to_string(),
        ..Default::default()
    };
    let mut dataset = ogr::open_dataset(target, driver, &settings)?;
    let geometry_column = geometry_column(&layers[0]);
    let names = column_names(&layers[0], &shards[0].record.label_field, name_limit);
    let out_layer = create_like(&mut dataset, &layers[0], driver, (layer_name, &names), &geometry_column)?;
    let in_transaction = vector::start_transaction(&out_layer);
    let mut iterators: Vec<_> = layers.iter_mut().map(|l| l.features()).collect();
    let mut written = 0;
    for (s, rows) in schedule(shards) {
        for _ in 0..rows {
            let feature = iterators[s]
                .next()
                .with_context(|| format!("shard {} ended early", shards[s].path.display()))?;
            copy_feature(&feature, &out_layer, fields)?;
            written += 1;
        }
    }
    if in_transaction {
        if let Err(err) = vector::commit_transaction(&out_layer) {
            anyhow::bail!("committing the merged rows: {err}");
        }
    }
    let record = &shards[0].record;
    if let Some(qml) = &record.qml {
        let place = StylePlace {
            temp: target.temp_path(),
            output: &target.path,
            table: layer_name,
            layer: layer_name,
            geometry_column: &geometry_column,
            field: &record.label_field,
        };
        style::write(record.style, &mut dataset, &place, qml)?;
    }
    dataset.close().context("closing the merged output")?;
    Ok(written)
}

/// Each shard's layer (the one with the record), checked to have the same columns.
fn shard_layers<'a>(datasets: &'a [Dataset], shards: &[Shard]) -> Result<Vec<gdal::vector::Layer<'a>>> {
    let mut layers = Vec::new();
    for (dataset, shard) in datasets.iter().zip(shards) {
        let index = (0..dataset.layer_count())
            .find(|&i| {
                dataset
                    .layer(i)
                    .is_ok_and(|l| ShardRecord::read_from(&l, "").ok().flatten().is_some())
            })
            .with_context(|| format!("finding the shard layer of {}", shard.path.display()))?;
        layers.push(dataset.layer(index)?);
    }
    let columns = |l: &gdal::vector::Layer| -> Vec<(String, u32)> {
        l.defn().fields().map(|f| (f.name(), f.field_type())).collect()
    };
    let first = columns(&layers[0]);
    if let Some(k) = (1..layers.len()).find(|&k| columns(&layers[k]) != first) {
        bail_input!(
            "shard {} has other columns than {}; merge only the shards of one run",
            shards[k].path.display(),
            shards[0].path.display()
        );
    }
    Ok(layers)
}

/// The merged output's column names: the shards' own, except where a format that cuts names
/// (`name_limit`) would cut an input column into one of the run's (the input's `ClassLabel_1`
/// into our `ClassLabel` in a Shapefile): those are renamed as a run renames them.
fn column_names(like: &gdal::vector::Layer<'_>, label_field: &str, name_limit: Option<usize>) -> Vec<String> {
    let mut names: Vec<String> = like.defn().fields().map(|f| f.name()).collect();
    // The run's columns come after the input's, from the first of these on.
    let first_own = [SOURCE_ID_FIELD, IMAGE_ID_FIELD, label_field]
        .iter()
        .find_map(|own| names.iter().position(|n| n == own))
        .unwrap_or(names.len());
    let (inputs, own) = names.split_at_mut(first_own);
    rename_clashing(inputs.iter_mut(), own, name_limit);
    names
}

/// A layer named `layer_name` in `dataset` with the CRS, geometry type, geometry column and
/// columns of `like`, named `names`.
fn create_like<'a>(
    dataset: &'a mut Dataset,
    like: &gdal::vector::Layer<'_>,
    driver: &str,
    (layer_name, names): (&str, &[String]),
    geometry_column: &str,
) -> Result<gdal::vector::Layer<'a>> {
    let srs = like.spatial_ref();
    let mut options = Vec::new();
    if !geometry_column.is_empty() && geometry_column != "geom" && driver == "GPKG" {
        options.push(format!("GEOMETRY_NAME={geometry_column}"));
    }
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let out_layer = dataset.create_layer(LayerOptions {
        name: layer_name,
        srs: srs.as_ref(),
        ty: like.defn().geometry_type(),
        options: (!options.is_empty()).then_some(options.as_slice()),
    })?;
    for (field, name) in like.defn().fields().zip(names) {
        let defn = FieldDefn::new(name, field.field_type())?;
        defn.set_width(field.width());
        defn.set_precision(field.precision());
        defn.add_to_layer(&out_layer)?;
    }
    Ok(out_layer)
}

fn copy_feature(source: &Feature, layer: &impl LayerAccess, fields: usize) -> Result<()> {
    let mut feature = Feature::new(layer.defn())?;
    for i in 0..fields {
        if let Some(value) = source.field(i)? {
            feature.set_field(i, &value)?;
        }
    }
    if let Some(g) = source.geometry().filter(|g| vector::has_geometry(g)) {
        feature.set_geometry(g.clone())?;
    }
    feature.create(layer)?;
    Ok(())
}
