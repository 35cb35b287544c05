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

/// Applies `data_range` (first) and `normalization` to a `C x plane` chip in place.
pub fn apply(chip: &mut [f32], plane: usize, normalization: &[(f32, f32)], data_range: Option<&[(f32, f32)]>) {
    for (c, values) in chip.chunks_exact_mut(plane).enumerate() {
        let (mut scale, mut offset) = normalization[c];
        if let Some(range) = data_range {
            // (x * a + b) * s + o = x * (a s) + (b s + o)
            let (a, b) = range[c];
            (scale, offset) = (a * scale, b * scale + offset);
        }
        for v in values {
            *v = *v * scale + offset;
        }
    }
}
