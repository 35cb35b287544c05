//! `ExtractBands`: which raster bands feed the model's channels, by 0-based index or by name.

use anyhow::Result;

use crate::bail_input;
use crate::error;
use crate::input::raster::Raster;
use crate::model::definition::BandSelector;

/// Turns `ExtractBands` into 1-based band numbers of `raster`.
pub fn resolve_bands(raster: &Raster, selectors: &[BandSelector]) -> Result<Vec<usize>> {
    let count = raster.bands.len();
    selectors
        .iter()
        .map(|selector| match selector {
            BandSelector::Index(i) if *i < count => Ok(i + 1),
            BandSelector::Index(i) => bail_input!(
                "the model reads band index {i} (0-based \"ExtractBands\") but raster {} has {count} band(s); {}",
                raster.name,
                fewer_bands_hint(count, selectors)
            ),
            BandSelector::Name(name) => raster
                .bands
                .iter()
                .find(|b| b.description.eq_ignore_ascii_case(name) || b.color_name.eq_ignore_ascii_case(name))
                .map(|b| b.number)
                .ok_or_else(|| {
                    error::input_error(format!(
                        "the model reads a band named \"{name}\" but raster {} has none (bands: {}); name the bands (band descriptions) or use 0-based indices in ExtractBands",
                        raster.name,
                        raster.bands
                            .iter()
                            .map(|b| if b.description.is_empty() { b.color_name.clone() } else { b.description.clone() })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }),
        })
        .collect()
}

/// What to do with a raster of `count` bands for a model that reads more: repeat a grey image's
/// band, or choose bands with `--bands` (which makes the raster the model reads).
fn fewer_bands_hint(count: usize, selectors: &[BandSelector]) -> String {
    let needed = selectors
        .iter()
        .filter_map(|s| match s {
            BandSelector::Index(i) => Some(i + 1),
            BandSelector::Name(_) => None,
        })
        .max()
        .unwrap_or(selectors.len());
    let example = (0..needed)
        .map(|k| (k % count.max(1) + 1).to_string())
        .collect::<Vec<_>>()
        .join(",");
    if count == 1 {
        format!("for a one-band (grey) image repeat its band with --bands {example}, or give a raster with the model's bands")
    } else {
        format!("choose the raster's bands for the model's {needed} with --bands (e.g. --bands {example}), or give a raster with the model's bands")
    }
}
