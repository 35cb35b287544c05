//! `classify-objects merge`: joins the outputs of `--shard i/n` runs into exactly what a single
//! run would have written — same columns, same rows, same order.
//!
//! Shard `i` holds the features at input positions `i, i + n, i + 2n, ...`, each as one row (or
//! several consecutive rows with the same `SourceOID` when images were processed separately).
//! Taking one such group from each shard in turn restores the input order, whatever the feature
//! ids are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gdal::vector::{Feature, FieldDefn, LayerAccess, LayerOptions};
use gdal::{Dataset, DriverManager};

use crate::bail_input;
use crate::output::{Format, OutputTarget, SOURCE_ID_FIELD};

/// Merges `shards` (in shard order) into `output`; returns the number of rows written.
pub fn merge(shards: &[PathBuf], output: &Path, overwrite: bool) -> Result<usize> {
    let Format::Ogr(driver) = Format::for_path(output)? else {
        bail_input!("merge writes vector formats (.gpkg, .geojson, .fgb, .shp); write the shards and the merged output as .gpkg");
    };
    let datasets: Vec<Dataset> = shards
        .iter()
        .map(|p| crate::input::source::open(&p.display().to_string(), crate::input::source::SourceKind::Vector))
        .collect::<Result<_>>()?;
    let mut layers: Vec<_> = datasets.iter().map(|ds| ds.layer(0)).collect::<Result<_, _>>()?;
    let columns =
        |i: usize| -> Vec<(String, u32)> { layers[i].defn().fields().map(|f| (f.name(), f.field_type())).collect() };
    let first = columns(0);
    for i in 1..layers.len() {
        if columns(i) != first {
            bail_input!(
                "shard {} has other columns than {}; merge only outputs of the same run split with --shard",
                shards[i].display(),
                shards[0].display()
            );
        }
    }
    let Some(id_index) = first.iter().position(|(n, _)| n == SOURCE_ID_FIELD) else {
        bail_input!(
            "{} has no {SOURCE_ID_FIELD} column; merge joins outputs of --features runs",
            shards[0].display()
        );
    };

    let name = layers[0].name();
    let policy = crate::output::WritePolicy {
        overwrite,
        ..Default::default()
    };
    let target = OutputTarget::prepare(output, &Format::Ogr(driver.clone()), policy, &name)?;
    let mut out = DriverManager::get_driver_by_name(&driver)?
        .create_vector_only(target.temp_path())
        .with_context(|| format!("creating {}", output.display()))?;
    let srs = layers[0].spatial_ref();
    let out_layer = out.create_layer(LayerOptions {
        name: &name,
        srs: srs.as_ref(),
        ty: layers[0].defn().geometry_type(),
        options: None,
    })?;
    for field in layers[0].defn().fields() {
        let defn = FieldDefn::new(&field.name(), field.field_type())?;
        defn.set_width(field.width());
        defn.set_precision(field.precision());
        defn.add_to_layer(&out_layer)?;
    }
    let in_transaction = unsafe { gdal_sys::OGR_L_StartTransaction(out_layer.c_layer()) } == 0;
    let mut iterators: Vec<_> = layers.iter_mut().map(|l| l.features()).collect();
    let mut heads: Vec<Option<Feature>> = iterators.iter_mut().map(|it| it.next()).collect();
    let mut written = 0;
    let mut round = 0usize;
    'rounds: loop {
        for s in 0..iterators.len() {
            let Some(head) = heads[s].take() else {
                // The input ended at this position: every later shard must be done too.
                if let Some(t) = (s..iterators.len()).find(|&t| heads[t].is_some()) {
                    bail_input!(
                        "shard {} ended at group {round} but {} goes on; pass the shards in order 0..N-1, all from the same features",
                        shards[s].display(),
                        shards[t].display()
                    );
                }
                break 'rounds;
            };
            let id = head.field_as_integer64(id_index)?;
            let mut row = Some(head);
            while let Some(feature) = row.take() {
                copy_feature(&feature, &out_layer, first.len())?;
                written += 1;
                match iterators[s].next() {
                    Some(next) if next.field_as_integer64(id_index)? == id => row = Some(next),
                    other => heads[s] = other,
                }
            }
        }
        round += 1;
    }
    if in_transaction {
        unsafe { gdal_sys::OGR_L_CommitTransaction(out_layer.c_layer()) };
    }
    out.close().context("closing the merged output")?;
    target.commit()?;
    Ok(written)
}

fn copy_feature(source: &Feature, layer: &impl LayerAccess, fields: usize) -> Result<()> {
    let mut feature = Feature::new(layer.defn())?;
    for i in 0..fields {
        if let Some(value) = source.field(i)? {
            feature.set_field(i, &value)?;
        }
    }
    if let Some(g) = source.geometry().filter(|g| !unsafe { g.c_geometry() }.is_null()) {
        feature.set_geometry(g.clone())?;
    }
    feature.create(layer)?;
    Ok(())
}
