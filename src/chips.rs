//! Image chips: the pixels a model sees for one object, built by the `.emd` chip rules
//! (`dlpk-emd-spec.md` §3.2-3.3).
//!
//! * `CropSizeFixed` 1: an `ImageWidth` x `ImageHeight` window whose top-left pixel is
//!   `floor(cx - W/2), floor(cy - H/2)`, (cx, cy) being the centre of the feature's envelope in
//!   fractional pixel coordinates.
//! * `CropSizeFixed` 0: the envelope snapped outwards to the pixel grid, resampled (bilinear,
//!   aspect not kept) to `ImageWidth` x `ImageHeight`; points, and features larger than the chip,
//!   get the fixed window.
//! * `BlackenAroundFeature` 1: pixels whose centre lies outside the polygon are 0 (polygons only).
//! * Pixels outside the raster, NoData and masked pixels are 0, before normalisation.
//! * Normalisation: `NormalizationStats` (min/max scaling, then scaled mean/std, indexed by the
//!   original band index) or ImageNet statistics on a 0-255 scale for three-band models.
//!
//! Chips are channel-major (`C x H x W`) `f32`.

use anyhow::{Context, Result};

use crate::bail_input;
use crate::emd::ModelDefinition;
use crate::features::PixelShape;
use crate::raster::{PixelWindow, Raster, RasterGrid};

/// ImageNet channel means on a 0-255 scale.
pub const IMAGENET_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
/// ImageNet channel standard deviations on a 0-255 scale.
pub const IMAGENET_STD: [f32; 3] = [58.395, 57.12, 57.375];

/// How chips are cut and normalised for one model on one raster.
#[derive(Debug, Clone)]
pub struct ChipSpec {
    /// Chip width in pixels (`ImageWidth`).
    pub width: usize,
    /// Chip height in pixels (`ImageHeight`).
    pub height: usize,
    /// 1-based raster bands, in model channel order (`ExtractBands`).
    pub bands: Vec<usize>,
    /// `CropSizeFixed`.
    pub crop_size_fixed: bool,
    /// `BlackenAroundFeature`.
    pub blacken_around_feature: bool,
    /// Per channel `x * scale + offset`: `DataRange` rescaling, applied first.
    pub data_range: Option<Vec<(f32, f32)>>,
    /// Per channel `x * scale + offset`: normalisation, applied last.
    pub normalization: Vec<(f32, f32)>,
}

impl ChipSpec {
    /// Derives the chip rules for `definition` on `raster`, checking bands and statistics.
    pub fn new(definition: &ModelDefinition, raster: &Raster) -> Result<ChipSpec> {
        let bands = raster.resolve_bands(&definition.extract_bands)?;
        let normalization = match &definition.normalization {
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
        };
        let data_range = match definition.data_range {
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
        Ok(ChipSpec {
            width: definition.image_width,
            height: definition.image_height,
            bands,
            crop_size_fixed: definition.crop_size_fixed,
            blacken_around_feature: definition.blacken_around_feature,
            data_range,
            normalization,
        })
    }

    /// Number of values in one chip (`C * H * W`).
    pub fn values_per_chip(&self) -> usize {
        self.bands.len() * self.width * self.height
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.bands.len()
    }

    /// The window to read for `shape`, and whether it must be resampled to the chip size.
    pub fn window_for(&self, shape: &PixelShape) -> (PixelWindow, bool) {
        let [x0, y0, x1, y1] = shape.envelope;
        if !self.crop_size_fixed && !shape.is_point {
            let col = x0.floor() as isize;
            let row = y0.floor() as isize;
            let width = ((x1.ceil() as isize) - col).max(1) as usize;
            let height = ((y1.ceil() as isize) - row).max(1) as usize;
            if width <= self.width && height <= self.height {
                return (
                    PixelWindow {
                        col,
                        row,
                        width,
                        height,
                    },
                    (width, height) != (self.width, self.height),
                );
            }
        }
        (fixed_window(shape.envelope, self.width, self.height), false)
    }

    /// Cuts the normalised chip for `shape` into `out` (`values_per_chip()` values). `scratch` is
    /// reused between calls for variable-size crops. Returns the raster window it was cut from.
    pub fn cut(
        &self,
        raster: &Raster,
        shape: &PixelShape,
        out: &mut [f32],
        scratch: &mut Vec<f32>,
    ) -> Result<PixelWindow> {
        let window = self.cut_pixels(raster, shape, out, scratch)?;
        self.normalize(out);
        Ok(window)
    }

    /// Cuts the chip for `shape` into `out` as raster values, before `DataRange` and
    /// normalisation: outside, NoData, masked and blackened pixels are 0; variable crops are
    /// resampled to the chip size. Returns the raster window it was cut from.
    pub fn cut_pixels(
        &self,
        raster: &Raster,
        shape: &PixelShape,
        out: &mut [f32],
        scratch: &mut Vec<f32>,
    ) -> Result<PixelWindow> {
        let (window, resample) = self.window_for(shape);
        let blacken = self.blacken_around_feature && shape.is_polygon;
        if resample {
            scratch.resize(self.channels() * window.width * window.height, 0.0);
            raster.read_window(&self.bands, window, scratch)?;
            if blacken {
                blacken_outside(&shape.geometry, window, scratch);
            }
            let (src_plane, dst_plane) = (window.width * window.height, self.width * self.height);
            for c in 0..self.channels() {
                resize_bilinear(
                    &scratch[c * src_plane..(c + 1) * src_plane],
                    window.width,
                    window.height,
                    &mut out[c * dst_plane..(c + 1) * dst_plane],
                    self.width,
                    self.height,
                );
            }
        } else {
            raster.read_window(&self.bands, window, out)?;
            if blacken {
                blacken_outside(&shape.geometry, window, out);
            }
        }
        Ok(window)
    }

    /// The whole image resampled to the chip size, normalised: one image as one object.
    pub fn whole_image(&self, raster: &Raster, out: &mut [f32]) -> Result<()> {
        raster
            .read_resampled(&self.bands, self.width, self.height, out)
            .with_context(|| format!("reading {} as one chip", raster.name))?;
        self.normalize(out);
        Ok(())
    }

    /// Applies `DataRange` rescaling and normalisation in place.
    pub fn normalize(&self, chip: &mut [f32]) {
        let plane = self.width * self.height;
        for (c, values) in chip.chunks_exact_mut(plane).enumerate() {
            let (mut scale, mut offset) = self.normalization[c];
            if let Some(range) = &self.data_range {
                // (x * a + b) * s + o = x * (a s) + (b s + o)
                let (a, b) = range[c];
                (scale, offset) = (a * scale, b * scale + offset);
            }
            for v in values {
                *v = *v * scale + offset;
            }
        }
    }
}

/// Writes a chip (`C x H x W`, raster values) as a Float32 GeoTIFF placed over the raster window
/// it was cut from (pixel size scaled when the window was resampled), for checking chips by eye
/// or in tests (`--dump-chips`).
pub fn write_chip_tiff(
    path: &std::path::Path,
    chip: &[f32],
    spec: &ChipSpec,
    window: PixelWindow,
    grid: &RasterGrid,
) -> Result<()> {
    let driver = gdal::DriverManager::get_driver_by_name("GTiff")?;
    let (w, h) = (spec.width, spec.height);
    let mut ds = driver
        .create_with_band_type::<f32, _>(path, w, h, spec.channels())
        .with_context(|| format!("creating chip file {}", path.display()))?;
    let gt = grid.geo_transform;
    let (sx, sy) = (window.width as f64 / w as f64, window.height as f64 / h as f64);
    let (x0, y0) = grid.pixel_to_world(window.col as f64, window.row as f64);
    ds.set_geo_transform(&[x0, gt[1] * sx, gt[2] * sy, y0, gt[4] * sx, gt[5] * sy])?;
    if let Some(srs) = grid.spatial_ref() {
        ds.set_spatial_ref(&srs)?;
    }
    for (c, plane) in chip.chunks_exact(w * h).enumerate() {
        let mut buffer = gdal::raster::Buffer::new((w, h), plane.to_vec());
        ds.rasterband(c + 1)?.write((0, 0), (w, h), &mut buffer)?;
    }
    Ok(())
}

/// The fixed chip window for an envelope: top-left at `floor(cx - W/2), floor(cy - H/2)`.
pub fn fixed_window(envelope: [f64; 4], width: usize, height: usize) -> PixelWindow {
    let cx = (envelope[0] + envelope[2]) / 2.0;
    let cy = (envelope[1] + envelope[3]) / 2.0;
    PixelWindow {
        col: (cx - width as f64 / 2.0).floor() as isize,
        row: (cy - height as f64 / 2.0).floor() as isize,
        width,
        height,
    }
}

/// Sets to 0, in every channel, the pixels of `chip` (laid over `window`) whose centre lies
/// outside `polygon` (even-odd rule over all rings; pixel coordinates).
pub fn blacken_outside(polygon: &geo::Geometry<f64>, window: PixelWindow, chip: &mut [f32]) {
    let rings = rings_of(polygon);
    let (w, h) = (window.width, window.height);
    let plane = w * h;
    let mut inside = vec![false; plane];
    let mut crossings: Vec<f64> = Vec::new();
    for j in 0..h {
        let y = window.row as f64 + j as f64 + 0.5;
        crossings.clear();
        for ring in &rings {
            for pair in ring.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if (a.y <= y) != (b.y <= y) {
                    crossings.push(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y));
                }
            }
        }
        crossings.sort_by(f64::total_cmp);
        for span in crossings.chunks_exact(2) {
            // Pixel i has its centre at window.col + i + 0.5; keep centres within [x0, x1).
            let first = (span[0] - window.col as f64 - 0.5).ceil().max(0.0) as usize;
            let last = (span[1] - window.col as f64 - 0.5).ceil().clamp(0.0, w as f64) as usize;
            for i in first..last.min(w) {
                inside[j * w + i] = true;
            }
        }
    }
    for channel in chip.chunks_exact_mut(plane) {
        for (v, &keep) in channel.iter_mut().zip(&inside) {
            if !keep {
                *v = 0.0;
            }
        }
    }
}

fn rings_of(geometry: &geo::Geometry<f64>) -> Vec<Vec<geo::Coord<f64>>> {
    let mut rings = Vec::new();
    let mut push_polygon = |p: &geo::Polygon<f64>| {
        rings.push(p.exterior().0.clone());
        for hole in p.interiors() {
            rings.push(hole.0.clone());
        }
    };
    match geometry {
        geo::Geometry::Polygon(p) => push_polygon(p),
        geo::Geometry::MultiPolygon(mp) => mp.0.iter().for_each(push_polygon),
        geo::Geometry::GeometryCollection(gc) => {
            for g in &gc.0 {
                if let geo::Geometry::Polygon(p) = g {
                    push_polygon(p)
                }
            }
        }
        _ => {}
    }
    rings
}

/// The test-time augmentation variants for a chip shape: fastai's 8 dihedral transforms in
/// `MAP_SPACE` (the 4 without a transpose for non-square chips), identity and horizontal flip in
/// `PIXEL_SPACE`.
pub fn tta_variants(space: crate::emd::ImageSpace, height: usize, width: usize) -> Vec<u8> {
    match space {
        crate::emd::ImageSpace::PixelSpace => vec![0, 2],
        crate::emd::ImageSpace::MapSpace if height == width => (0..8).collect(),
        crate::emd::ImageSpace::MapSpace => (0..4).collect(),
    }
}

/// fastai's `dihedral(k)` of one `C x H x W` chip into `out`: bit 1 flips rows (H), bit 2 flips
/// columns (W), bit 4 then swaps H and W (square chips only).
pub fn dihedral(chip: &[f32], channels: usize, height: usize, width: usize, k: u8, out: &mut [f32]) {
    assert!(
        k & 4 == 0 || height == width,
        "a transposing dihedral transform needs a square chip"
    );
    let plane = height * width;
    for c in 0..channels {
        let src = &chip[c * plane..(c + 1) * plane];
        let dst = &mut out[c * plane..(c + 1) * plane];
        for y in 0..height {
            for x in 0..width {
                let sy = if k & 1 != 0 { height - 1 - y } else { y };
                let sx = if k & 2 != 0 { width - 1 - x } else { x };
                let value = src[sy * width + sx];
                if k & 4 != 0 {
                    dst[x * width + y] = value;
                } else {
                    dst[y * width + x] = value;
                }
            }
        }
    }
}

/// Bilinear resampling of one plane (pixel centres aligned, edges clamped), aspect not kept.
pub fn resize_bilinear(src: &[f32], sw: usize, sh: usize, dst: &mut [f32], dw: usize, dh: usize) {
    let (sx, sy) = (sw as f64 / dw as f64, sh as f64 / dh as f64);
    for j in 0..dh {
        let fy = ((j as f64 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f64);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let ty = (fy - y0 as f64) as f32;
        for i in 0..dw {
            let fx = ((i as f64 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f64);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let tx = (fx - x0 as f64) as f32;
            let top = src[y0 * sw + x0] * (1.0 - tx) + src[y0 * sw + x1] * tx;
            let bottom = src[y1 * sw + x0] * (1.0 - tx) + src[y1 * sw + x1] * tx;
            dst[j * dw + i] = top * (1.0 - ty) + bottom * ty;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_follows_the_floor_rule() {
        // Envelope centre (10.5, 20.25), 8x4 chip: col floor(6.5) = 6, row floor(18.25) = 18.
        let w = fixed_window([10.0, 20.0, 11.0, 20.5], 8, 4);
        assert_eq!(
            w,
            PixelWindow {
                col: 6,
                row: 18,
                width: 8,
                height: 4
            }
        );
        // A point at a pixel corner: centre (3, 3), 4x4 chip starts at (1, 1).
        assert_eq!(fixed_window([3.0, 3.0, 3.0, 3.0], 4, 4).col, 1);
        // Negative coordinates floor downwards.
        assert_eq!(fixed_window([-0.2, -0.2, -0.2, -0.2], 2, 2).col, -2);
    }

    #[test]
    fn dihedral_flips_and_transposes() {
        // 2x2 chip [a b; c d] = [1 2; 3 4].
        let chip = [1.0, 2.0, 3.0, 4.0];
        let apply = |k| {
            let mut out = [0.0; 4];
            dihedral(&chip, 1, 2, 2, k, &mut out);
            out
        };
        assert_eq!(apply(0), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(apply(1), [3.0, 4.0, 1.0, 2.0]); // rows flipped
        assert_eq!(apply(2), [2.0, 1.0, 4.0, 3.0]); // columns flipped
        assert_eq!(apply(4), [1.0, 3.0, 2.0, 4.0]); // transposed
        assert_eq!(apply(7), [4.0, 2.0, 3.0, 1.0]); // both flips, then transposed
        let all: std::collections::BTreeSet<[u32; 4]> = (0..8).map(|k| apply(k).map(|v| v as u32)).collect();
        assert_eq!(all.len(), 8, "the 8 variants are distinct");
        assert_eq!(tta_variants(crate::emd::ImageSpace::PixelSpace, 4, 4), vec![0, 2]);
        assert_eq!(tta_variants(crate::emd::ImageSpace::MapSpace, 4, 8).len(), 4);
    }

    #[test]
    fn bilinear_identity_and_constant() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 12];
        resize_bilinear(&src, 4, 3, &mut dst, 4, 3);
        assert_eq!(src, dst);
        let flat = vec![7.0; 6];
        let mut big = vec![0.0; 35];
        resize_bilinear(&flat, 3, 2, &mut big, 7, 5);
        assert!(big.iter().all(|&v| (v - 7.0).abs() < 1e-6));
    }

    #[test]
    fn bilinear_downsample_by_two_averages_pairs() {
        // 4 -> 2 with aligned centres samples at 0.5 and 2.5: the mean of each pair.
        let src = [0.0, 2.0, 4.0, 6.0];
        let mut dst = [0.0; 2];
        resize_bilinear(&src, 4, 1, &mut dst, 2, 1);
        assert_eq!(dst, [1.0, 5.0]);
    }

    #[test]
    fn blackening_keeps_pixel_centres_inside_the_polygon() {
        // Triangle covering the lower-left half of a 4x4 window at (10, 10).
        let triangle = geo::Geometry::Polygon(geo::Polygon::new(
            geo::LineString::from(vec![(10.0, 10.0), (10.0, 14.0), (14.0, 14.0), (10.0, 10.0)]),
            vec![],
        ));
        let window = PixelWindow {
            col: 10,
            row: 10,
            width: 4,
            height: 4,
        };
        let mut chip = vec![1.0; 16];
        blacken_outside(&triangle, window, &mut chip);
        // Row j keeps the pixels whose centre lies left of the diagonal: i < j.
        let kept: Vec<usize> = (0..4)
            .map(|j| chip[j * 4..j * 4 + 4].iter().filter(|&&v| v == 1.0).count())
            .collect();
        assert_eq!(kept, vec![0, 1, 2, 3]);
    }

    #[test]
    fn blackening_respects_holes() {
        let donut = geo::Geometry::Polygon(geo::Polygon::new(
            geo::LineString::from(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)]),
            vec![geo::LineString::from(vec![
                (1.0, 1.0),
                (3.0, 1.0),
                (3.0, 3.0),
                (1.0, 3.0),
                (1.0, 1.0),
            ])],
        ));
        let mut chip = vec![1.0; 16];
        blacken_outside(
            &donut,
            PixelWindow {
                col: 0,
                row: 0,
                width: 4,
                height: 4,
            },
            &mut chip,
        );
        let zeros: Vec<usize> = chip
            .iter()
            .enumerate()
            .filter(|(_, &v)| v == 0.0)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(zeros, vec![5, 6, 9, 10]);
    }
}
