//! Pictures in the report: raster values stretched to display values, RGB pixels encoded as PNG
//! (the `png` crate) and embedded as `data:` URIs (the `base64` crate), so that the page needs
//! nothing but itself.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use base64::Engine as _;
use gdal::raster::GdalDataType;

use crate::input::raster::Raster;
use crate::report::gallery::Thumbnail;

/// A linear stretch of raster values `lo..hi` to display values `0..255`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    /// Value shown black.
    pub lo: f64,
    /// Value shown at full intensity.
    pub hi: f64,
}

impl Stretch {
    /// Byte imagery, shown as it is.
    pub const BYTE: Stretch = Stretch { lo: 0.0, hi: 255.0 };

    /// The display value of `v`.
    pub fn apply(&self, v: f64) -> u8 {
        let span = if self.hi > self.lo { self.hi - self.lo } else { 1.0 };
        (((v - self.lo) / span) * 255.0).round().clamp(0.0, 255.0) as u8
    }
}

/// Display stretches of a raster's bands, by band number (1-based): byte bands as they are,
/// other types over their value range (GDAL statistics, approximate).
#[derive(Debug, Clone, Default)]
pub struct Stretches(BTreeMap<usize, Stretch>);

impl Stretches {
    /// The stretches of `bands` of `raster`.
    pub fn of(raster: &Raster, bands: impl IntoIterator<Item = usize>) -> Result<Stretches> {
        let mut out = BTreeMap::new();
        for number in bands {
            if out.contains_key(&number) || number == 0 || number > raster.bands.len() {
                continue;
            }
            let stretch = if raster.bands[number - 1].data_type == GdalDataType::UInt8 {
                Stretch::BYTE
            } else {
                // A band whose values cannot be read (a damaged tile) is shown as bytes.
                match raster.value_range(number) {
                    Ok((lo, hi)) => Stretch { lo, hi },
                    Err(_) => continue,
                }
            };
            out.insert(number, stretch);
        }
        Ok(Stretches(out))
    }

    /// The stretch of band `number` (byte when unknown).
    pub fn band(&self, number: usize) -> Stretch {
        self.0.get(&number).copied().unwrap_or(Stretch::BYTE)
    }
}

/// RGB pixels of a thumbnail whose planes come from raster `bands` (grey for one plane).
pub fn thumbnail_rgb(thumbnail: &Thumbnail, bands: &[usize], stretches: &Stretches) -> Vec<u8> {
    let n = thumbnail.width * thumbnail.height;
    let planes: Vec<(&[f32], Stretch)> = (0..3)
        .map(|c| {
            let p = c.min(thumbnail.planes.len() - 1);
            (
                thumbnail.planes[p].as_slice(),
                stretches.band(bands.get(p).copied().unwrap_or(0)),
            )
        })
        .collect();
    let mut rgb = Vec::with_capacity(n * 3);
    for i in 0..n {
        for (plane, stretch) in &planes {
            rgb.push(stretch.apply(plane[i] as f64));
        }
    }
    rgb
}

/// `width x height` RGB pixels (row by row) as PNG bytes.
pub fn png(width: usize, height: usize, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("encoding a PNG")?;
    writer.write_image_data(rgb).context("encoding a PNG")?;
    writer.finish().context("encoding a PNG")?;
    Ok(bytes)
}

/// PNG bytes as a `data:` URI for an `img` element.
pub fn data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_maps_the_range_to_bytes_and_clamps() {
        let s = Stretch { lo: 100.0, hi: 1100.0 };
        assert_eq!((s.apply(100.0), s.apply(600.0), s.apply(1100.0)), (0, 128, 255));
        assert_eq!((s.apply(-5.0), s.apply(5000.0), s.apply(f64::NAN)), (0, 255, 0));
        assert_eq!(Stretch::BYTE.apply(37.0), 37);
    }

    #[test]
    fn thumbnails_become_rgb_pngs_in_data_uris() {
        let thumbnail = Thumbnail {
            width: 2,
            height: 1,
            planes: vec![vec![0.0, 255.0]],
        };
        let rgb = thumbnail_rgb(&thumbnail, &[1], &Stretches::default());
        assert_eq!(rgb, vec![0, 0, 0, 255, 255, 255], "one plane: grey");
        let png = png(2, 1, &rgb).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let uri = data_uri(&png);
        assert!(uri.starts_with("data:image/png;base64,iVBORw0KGgo"), "{uri}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(uri.trim_start_matches("data:image/png;base64,"))
            .unwrap();
        assert_eq!(decoded, png);
    }
}
