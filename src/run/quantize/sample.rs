//! The chips `quantize` calibrates and checks on: a seeded sample of the features spread over
//! the raster, cut exactly as a run cuts them ([`ChipSpec`]: the `.emd` rules, bands and
//! normalisation), in two disjoint parts: the calibration chips and the held-out chips.
//!
//! Spread: the features' envelope centres are binned into a grid of about as many cells as chips
//! wanted; cells are visited in a seeded order, one feature from each per round (the feature
//! chosen in a cell by a seeded order too), so that the sample covers the raster before any
//! place gets a second feature. A chip whose pixels are all NoData, masked or outside the
//! raster (empty) teaches nothing: it is skipped and the next feature taken.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::Result;

use crate::bail_input;
use crate::chips::ChipSpec;
use crate::digest::Fingerprint;
use crate::input::features::{FeatureQuery, FeatureSource, PixelShape};
use crate::input::items::{self, Item, ProcessingMode};
use crate::input::raster::Raster;
use crate::model::definition::ModelDefinition;
use crate::run::interrupt;

/// Fewest chips of each part.
pub const MIN_CHIPS: usize = 16;

/// Chips, one after another (`C x H x W` each).
#[derive(Debug, Default)]
pub struct Chips {
    /// The values.
    pub data: Vec<f32>,
    /// How many.
    pub count: usize,
    /// Input position of each chip's feature.
    pub positions: Vec<usize>,
    /// Each chip's truth value (`--truth-field`; `None` without one, or where the field is null).
    pub truth: Vec<Option<String>>,
}

/// The two parts of the sample.
#[derive(Debug)]
pub struct Sample {
    /// Chips the ranges are measured on.
    pub calibration: Chips,
    /// Chips the gate compares on.
    pub held_out: Chips,
    /// Features placed on the raster (whatever their chips hold).
    pub usable: usize,
    /// Sampled features skipped because their chip was empty.
    pub empty: usize,
    /// Seconds to cut and normalise one chip, on average.
    pub cut_seconds: f64,
    /// The layer read.
    pub layer: String,
    /// The truth field's name as the features have it (`--truth-field` may differ in case).
    pub truth_field: Option<String>,
}

/// What to sample.
#[derive(Debug, Clone)]
pub struct SampleRequest<'a> {
    /// The raster.
    pub raster: &'a str,
    /// The features.
    pub features: &'a str,
    /// How they are read (`--layer`, `--where`).
    pub query: &'a FeatureQuery,
    /// Calibration chips wanted.
    pub calibration: usize,
    /// Held-out chips wanted.
    pub held_out: usize,
    /// Seed of the order.
    pub seed: u64,
    /// Field holding each feature's true class, if any.
    pub truth_field: Option<&'a str>,
}

/// Draws the sample for `definition`'s chips.
pub fn draw(definition: &ModelDefinition, request: &SampleRequest<'_>) -> Result<Sample> {
    let items = items::for_features(&[request.raster.to_string()], ProcessingMode::ProcessAsMosaickedImage)?;
    let raster = Raster::open(&items[0].name)?;
    let spec = ChipSpec::new(definition, &raster)?;
    let mut source = FeatureSource::open_with(request.features, request.query, None)?;
    let layer = source.layer_name.clone();
    let truth_column = request
        .truth_field
        .map(|name| source.truth_column(name, request.features))
        .transpose()?;
    // First read: where each feature that lies on the raster is, and its truth.
    let mut centres: Vec<(usize, f64, f64)> = Vec::new();
    let mut truth: HashMap<usize, String> = HashMap::new();
    source.for_each(&items, &interrupt::check, |feature| {
        if let (Ok(shape), Some(_)) = (&feature.shape, feature.item) {
            let [x0, y0, x1, y1] = shape.envelope;
            centres.push((feature.index, (x0 + x1) / 2.0, (y0 + y1) / 2.0));
            if let Some(value) = truth_column.and_then(|i| feature.fields.get(i).cloned().flatten()) {
                truth.insert(feature.index, crate::output::field_text(&value));
            }
        }
        Ok(())
    })?;
    let usable = centres.len();
    let wanted = request.calibration + request.held_out;
    if usable < 2 * MIN_CHIPS {
        bail_input!(
            "only {usable} feature(s) of {} lie on raster {}; quantize needs at least {} ({MIN_CHIPS} to calibrate, {MIN_CHIPS} to check): give more features over the raster",
            request.features,
            request.raster,
            2 * MIN_CHIPS
        );
    }
    let order = spread_order(&centres, wanted, request.seed);
    let (calibration_want, held_out_want) = split_wanted(request.calibration, request.held_out, usable);
    let per_chip = spec.values_per_chip();
    let mut sample = Sample {
        calibration: Chips::default(),
        held_out: Chips::default(),
        usable,
        empty: 0,
        cut_seconds: 0.0,
        layer,
        truth_field: truth_column.map(|i| source.fields[i].name.clone()),
    };
    let mut next = 0;
    let (mut cut, mut cut_time) = (0usize, 0.0f64);
    let mut chip = vec![0f32; per_chip];
    let mut scratch = Vec::new();
    while (sample.calibration.count < calibration_want || sample.held_out.count < held_out_want) && next < order.len() {
        let need = calibration_want + held_out_want - sample.calibration.count - sample.held_out.count;
        let chunk = &order[next..order.len().min(next + 2 * need + 64)];
        next += chunk.len();
        let shapes = shapes_of(&mut source, &items, chunk)?;
        for position in chunk {
            let Some(shape) = shapes.get(position) else {
                continue;
            };
            interrupt::check()?;
            let started = Instant::now();
            spec.cut_pixels(&raster, shape, &mut chip, &mut scratch)?;
            let empty = chip.iter().all(|&v| v == 0.0);
            spec.normalize(&mut chip);
            cut_time += started.elapsed().as_secs_f64();
            cut += 1;
            if empty {
                sample.empty += 1;
                continue;
            }
            // Alternate between the parts in proportion to what each still needs.
            let (c, h) = (sample.calibration.count, sample.held_out.count);
            let to_calibration =
                h >= held_out_want || (c < calibration_want && c * held_out_want <= h * calibration_want);
            let part = if to_calibration {
                &mut sample.calibration
            } else {
                &mut sample.held_out
            };
            part.data.extend_from_slice(&chip);
            part.count += 1;
            part.positions.push(*position);
            part.truth.push(truth.get(position).cloned());
            if sample.calibration.count >= calibration_want && sample.held_out.count >= held_out_want {
                break;
            }
        }
    }
    sample.cut_seconds = cut_time / cut.max(1) as f64;
    if sample.calibration.count + sample.held_out.count == 0 {
        bail_input!(
            "every chip of the {} feature(s) sampled from {} is empty (NoData, masked or outside raster {}): nothing to calibrate on; calibrate on imagery that has pixels under the features",
            sample.empty,
            request.features,
            request.raster
        );
    }
    if sample.calibration.count < MIN_CHIPS || sample.held_out.count < MIN_CHIPS {
        bail_input!(
            "only {} of the features of {} have a chip with pixels on raster {} ({} empty: NoData, masked or outside); quantize needs at least {} to calibrate and check: give features over valid pixels",
            sample.calibration.count + sample.held_out.count,
            request.features,
            request.raster,
            sample.empty,
            2 * MIN_CHIPS
        );
    }
    Ok(sample)
}

/// The parts' sizes when only `usable` features lie on the raster: each part in proportion.
fn split_wanted(calibration: usize, held_out: usize, usable: usize) -> (usize, usize) {
    if calibration + held_out <= usable {
        return (calibration, held_out);
    }
    let c = (usable * calibration / (calibration + held_out)).max(MIN_CHIPS);
    (c, usable - c)
}

/// The shapes of the features at `positions`, read again (only those are kept).
fn shapes_of(source: &mut FeatureSource, items: &[Item], positions: &[usize]) -> Result<HashMap<usize, PixelShape>> {
    let wanted: std::collections::HashSet<usize> = positions.iter().copied().collect();
    let mut shapes = HashMap::new();
    source.for_each(items, &interrupt::check, |feature| {
        if wanted.contains(&feature.index) {
            if let Ok(shape) = feature.shape {
                shapes.insert(feature.index, shape);
            }
        }
        Ok(())
    })?;
    Ok(shapes)
}

/// The features' positions in sampling order: spread over a grid of about `wanted` cells,
/// seeded by `seed`.
pub fn spread_order(centres: &[(usize, f64, f64)], wanted: usize, seed: u64) -> Vec<usize> {
    if centres.is_empty() {
        return Vec::new();
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &(_, x, y) in centres {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let side = (wanted.max(1) as f64).sqrt().ceil().max(1.0);
    let cell_of = |v: f64, lo: f64, hi: f64| {
        if hi > lo {
            (((v - lo) / (hi - lo)) * side).floor().min(side - 1.0) as u64
        } else {
            0
        }
    };
    let mut cells: BTreeMap<(u64, u64), Vec<(u64, usize)>> = BTreeMap::new();
    for &(index, x, y) in centres {
        let cell = (cell_of(x, x0, x1), cell_of(y, y0, y1));
        cells
            .entry(cell)
            .or_default()
            .push((hash(seed, &[1, index as u64]), index));
    }
    let mut visits: Vec<(u64, Vec<(u64, usize)>)> = cells
        .into_iter()
        .map(|((cx, cy), mut members)| {
            members.sort_unstable();
            (hash(seed, &[2, cx, cy]), members)
        })
        .collect();
    visits.sort_unstable_by_key(|(key, _)| *key);
    let mut order = Vec::with_capacity(centres.len());
    for round in 0.. {
        let before = order.len();
        for (_, members) in &visits {
            if let Some(&(_, index)) = members.get(round) {
                order.push(index);
            }
        }
        if order.len() == before {
            break;
        }
    }
    order
}

/// A stable hash of `seed` and `parts`.
fn hash(seed: u64, parts: &[u64]) -> u64 {
    let mut f = Fingerprint::default();
    f.add(&seed.to_le_bytes());
    for p in parts {
        f.add(&p.to_le_bytes());
    }
    u64::from_str_radix(&f.hex(), 16).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_covers_the_raster_before_repeating_a_place() {
        // 400 features on a 20 x 20 grid, plus 400 more crowded into one corner cell.
        let mut centres: Vec<(usize, f64, f64)> = (0..400).map(|i| (i, (i % 20) as f64, (i / 20) as f64)).collect();
        centres.extend((0..400).map(|i| (400 + i, 0.1 + i as f64 * 1e-4, 0.1)));
        let order = spread_order(&centres, 16, 7);
        assert_eq!(order.len(), 800);
        // The first 16 features come from 16 different cells of the 4 x 4 grid.
        let cells: std::collections::HashSet<(usize, usize)> = order[..16]
            .iter()
            .map(|&i| {
                let (_, x, y) = centres[i];
                (
                    (x / 19.0 * 4.0).floor().min(3.0) as usize,
                    (y / 19.0 * 4.0).floor().min(3.0) as usize,
                )
            })
            .collect();
        assert_eq!(cells.len(), 16);
        // Seeded: the same seed gives the same order, another seed another.
        assert_eq!(order, spread_order(&centres, 16, 7));
        assert_ne!(order, spread_order(&centres, 16, 8));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 800);
    }

    #[test]
    fn parts_shrink_in_proportion() {
        assert_eq!(split_wanted(256, 256, 1000), (256, 256));
        assert_eq!(split_wanted(300, 100, 200), (150, 50));
        assert_eq!(split_wanted(10, 1000, 100), (16, 84));
    }
}
