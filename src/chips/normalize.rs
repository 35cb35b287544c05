//! Normalisation of chip values: `DataRange` rescaling of the raster's value range first, then
//! `NormalizationStats` (min/max scaling, scaled mean/std, indexed by the original band index)
//! or ImageNet statistics on a 0-255 scale for three-band models. Each is one multiply-add per
//! channel.

use anyhow::Result;

use crate::bail_input;
use crate::input::raster::Raster;
use crate::model::definition::ModelDefinition;

/// ImageNet channel means on a 0-255 scale.
pub const IMAGENET_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
/// ImageNet channel standard deviations on a 0-255 scale.
pub const IMAGENET_STD: [f32; 3] = [58.395, 57.12, 57.375];

/// Per channel `x * scale + offset` of `definition`'s normalisation for `bands` (1-based).
pub fn channel_scaling(definition: &ModelDefinition, bands: &[usize]) -> Result<Vec<(f32, f32)>> {
    let scaling = match &definition.normalization {
        Some(stats) => bands
            .iter()
            .map(|&number| {
                let i = number - 1;
                let at = |list: &[Option<f64>], key: &str| -> Result<f64> {
                    match list.get(i).copied().flatten() {
                        Some(v) => Ok(v),
                        None => bail_input!(
                            "the model's NormalizationStats.{key} has no value for band index {i}; complete the statistics in the .emd"
                        ),
                    }
                };
                let (min, max) = (at(&stats.band_min, "band_min_values")?, at(&stats.band_max, "band_max_values")?);
                let (mean, std) = (at(&stats.scaled_mean, "scaled_mean_values")?, at(&stats.scaled_std, "scaled_std_values")?);
                if max <= min || std <= 0.0 {
                    bail_input!(
                        "the model's NormalizationStats for band index {i} are degenerate (min {min}, max {max}, std {std}); fix the .emd"
                    );
                }
                // ((x - min) / (max - min) - mean) / std as one multiply-add.
                let scale = 1.0 / ((max - min) * std);
                let offset = (-min / (max - min) - mean) / std;
                Ok((scale as f32, offset as f32))
            })
            .collect::<Result<Vec<_>>>()?,
        None if bands.len() == 3 => (0..3).map(|c| (1.0 / IMAGENET_STD[c], -IMAGENET_MEAN[c] / IMAGENET_STD[c])).collect(),
        None => bail_input!(
            "the model reads {} band(s) and its .emd has no NormalizationStats; ImageNet statistics only fit three-band (RGB) models: add NormalizationStats to the .emd",
            bands.len()
        ),
    }
    ;
    Ok(scaling)
}

/// Per channel `x * scale + offset` of `DataRange` rescaling for `bands` of `raster`, if the
/// definition has a `DataRange`.
pub fn data_range_scaling(
    definition: &ModelDefinition,
    raster: &Raster,
    bands: &[usize],
) -> Result<Option<Vec<(f32, f32)>>> {
    let scaling = match definition.data_range {
        None => None,
        Some([lo, hi]) => Some(
            bands
                .iter()
                .map(|&number| {
                    let (min, max) = raster.value_range(number)?;
                    let span = if max > min { max - min } else { 1.0 };
                    let scale = (hi - lo) / span;
                    Ok((scale as f32, (lo - min * scale) as f32))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(scaling)
}

/// `data_range` (first) and `normalization` of channel `c` as one `x * scale + offset`.
fn combined(c: usize, normalization: &[(f32, f32)], data_range: Option<&[(f32, f32)]>) -> (f32, f32) {
    let (scale, offset) = normalization[c];
    match data_range {
        // (x * a + b) * s + o = x * (a s) + (b s + o)
        Some(range) => (range[c].0 * scale, range[c].1 * scale + offset),
        None => (scale, offset),
    }
}

/// Applies `data_range` (first) and `normalization` to a `C x plane` chip in place.
pub fn apply(chip: &mut [f32], plane: usize, normalization: &[(f32, f32)], data_range: Option<&[(f32, f32)]>) {
    for (c, values) in chip.chunks_exact_mut(plane).enumerate() {
        let (scale, offset) = combined(c, normalization, data_range);
        for v in values {
            *v = *v * scale + offset;
        }
    }
}

/// Undoes [`apply`] in place: a normalised chip back to raster values (up to `f32` rounding).
/// A channel whose scaling is degenerate (scale 0, a `DataRange` of one value) comes back as 0.
pub fn invert(chip: &mut [f32], plane: usize, normalization: &[(f32, f32)], data_range: Option<&[(f32, f32)]>) {
    for (c, values) in chip.chunks_exact_mut(plane).enumerate() {
        let (scale, offset) = combined(c, normalization, data_range);
        for v in values {
            *v = if scale != 0.0 { (*v - offset) / scale } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invert_gives_back_the_raster_values() {
        // Two channels of 3 pixels: ImageNet-like normalisation after a DataRange rescale.
        let raw = [0.0f32, 17.0, 255.0, 1000.0, 2500.0, 4095.0];
        let normalization = [(1.0 / 58.395, -123.675 / 58.395), (1.0 / 57.12, -116.28 / 57.12)];
        let data_range = [(255.0 / 4095.0, 0.0), (255.0 / 4095.0, 0.0)];
        for range in [None, Some(&data_range[..])] {
            let mut chip = raw;
            apply(&mut chip, 3, &normalization, range);
            assert_ne!(chip, raw);
            invert(&mut chip, 3, &normalization, range);
            for (back, original) in chip.iter().zip(raw) {
                assert!(
                    (back - original).abs() <= original.abs() * 1e-5 + 1e-3,
                    "{back} != {original}"
                );
            }
        }
        let mut degenerate = [5.0f32];
        invert(&mut degenerate, 1, &[(1.0, 0.0)], Some(&[(0.0, 3.0)]));
        assert_eq!(degenerate, [0.0]);
    }
}
