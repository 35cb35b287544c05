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

//!
//! One concept per file: [`bands`] (`ExtractBands`), [`window`] (which pixels), [`resample`]
//! (variable crops), [`mask`] (`BlackenAroundFeature`), [`normalize`], [`tta`] (test-time
//! augmentation transforms), [`dump`] (`--dump-chips`).

pub mod bands;
pub mod dump;
pub mod mask;
pub mod normalize;
pub mod resample;
pub mod tta;
pub mod window;

use anyhow::{Context, Result};

use crate::input::features::PixelShape;
use crate::input::raster::{PixelWindow, Raster, Region};
use crate::model::definition::ModelDefinition;
use gdal::raster::ResampleAlg;

/// How much larger than the chip a whole image with invalid pixels is read before it is
/// resampled to the chip (each side).
pub const WHOLE_IMAGE_OVERSAMPLING: usize = 4;

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
    /// Raster pixels per chip pixel (x, y): 1 at the raster's own cell size (`--cell-size`).
    pub scale: (f64, f64),
    /// How chips at another cell size are resampled.
    pub resampling: ResampleAlg,
    /// Per channel `x * scale + offset`: normalisation, applied last.
    pub normalization: Vec<(f32, f32)>,
}

impl ChipSpec {
    /// Derives the chip rules for `definition` on `raster`, checking bands and statistics.
    pub fn new(definition: &ModelDefinition, raster: &Raster) -> Result<ChipSpec> {
        let bands = bands::resolve_bands(raster, &definition.extract_bands)?;
        let normalization = normalize::channel_scaling(definition, &bands)?;
        let data_range = normalize::data_range_scaling(definition, raster, &bands)?;
        Ok(ChipSpec {
            scale: (1.0, 1.0),
            resampling: ResampleAlg::Bilinear,
            width: definition.image_width,
            height: definition.image_height,
            bands,
            crop_size_fixed: definition.crop_size_fixed,
            blacken_around_feature: definition.blacken_around_feature,
            data_range,
            normalization,
        })
    }

    /// Cuts chips at `cell_size` (raster units per chip pixel) instead of the raster's own,
    /// resampled with `resampling`.
    pub fn at_cell_size(mut self, cell_size: f64, native: (f64, f64), resampling: ResampleAlg) -> ChipSpec {
        self.scale = (cell_size / native.0, cell_size / native.1);
        self.resampling = resampling;
        self
    }

    /// Whether chips are cut at another cell size than the raster's.
    pub fn rescaled(&self) -> bool {
        self.scale != (1.0, 1.0)
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
        (window::fixed_window(shape.envelope, self.width, self.height), false)
    }

    /// The geometry of `shape` as it lies on its chip, in fractions of the chip's width and
    /// height (0 to 1 across the chip, y down), after the same window rules as
    /// [`ChipSpec::cut_pixels`]: for drawing the feature over its chip.
    pub fn on_chip(&self, shape: &PixelShape) -> geo::Geometry<f64> {
        use geo::MapCoords;
        let scaled;
        let shape = if self.rescaled() {
            scaled = window::in_chip_grid(shape, self.scale);
            &scaled
        } else {
            shape
        };
        let (window, _) = self.window_for(shape);
        let (col, row) = (window.col as f64, window.row as f64);
        let (width, height) = (window.width as f64, window.height as f64);
        shape.geometry.map_coords(|c| geo::Coord {
            x: (c.x - col) / width,
            y: (c.y - row) / height,
        })
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
        // At another cell size, the chip rules apply in the grid of that cell size.
        let scaled;
        let shape = if self.rescaled() {
            scaled = window::in_chip_grid(shape, self.scale);
            &scaled
        } else {
            shape
        };
        let (window, resample) = self.window_for(shape);
        let blacken = self.blacken_around_feature && shape.is_polygon;
        if resample {
            scratch.resize(self.channels() * window.width * window.height, 0.0);
            self.read(raster, window, scratch)?;
            if blacken {
                mask::blacken_outside(&shape.geometry, window, scratch);
            }
            let (src_plane, dst_plane) = (window.width * window.height, self.width * self.height);
            for c in 0..self.channels() {
                resample::resize_bilinear(
                    &scratch[c * src_plane..(c + 1) * src_plane],
                    window.width,
                    window.height,
                    &mut out[c * dst_plane..(c + 1) * dst_plane],
                    self.width,
                    self.height,
                );
            }
        } else {
            self.read(raster, window, out)?;
            if blacken {
                mask::blacken_outside(&shape.geometry, window, out);
            }
        }
        Ok(window)
    }

    /// Reads a window of the chip grid: raster pixels, or at another cell size the raster
    /// region under it, resampled.
    fn read(&self, raster: &Raster, window: PixelWindow, out: &mut [f32]) -> Result<()> {
        if !self.rescaled() {
            return raster.read_window(&self.bands, window, out);
        }
        let (kx, ky) = self.scale;
        let region = Region {
            col: window.col as f64 * kx,
            row: window.row as f64 * ky,
            width: window.width as f64 * kx,
            height: window.height as f64 * ky,
        };
        raster.read_region(&self.bands, region, (window.width, window.height), self.resampling, out)
    }

    /// As [`ChipSpec::whole_image`], for the part `window` of the image (inside it): an image
    /// clipped to the processing extent. Only the pixels inside `window` count.
    pub fn image_window(&self, raster: &Raster, window: PixelWindow, out: &mut [f32]) -> Result<()> {
        let plane = self.width * self.height;
        // GDAL's resampling reads beyond a window's edges; a part of the image is read pixel for
        // pixel and resampled here, so that nothing outside it counts.
        let whole = window.col == 0
            && window.row == 0
            && (window.width, window.height) == (raster.grid.width, raster.grid.height);
        for (k, &number) in self.bands.iter().enumerate() {
            let target = &mut out[k * plane..(k + 1) * plane];
            if whole && !raster.bands[number - 1].has_invalid_pixels() {
                raster
                    .read_band_resampled(number, window, self.width, self.height, target)
                    .with_context(|| format!("reading {} as one chip", raster.name))?;
                continue;
            }
            let (full_w, full_h) = (window.width, window.height);
            let read_w = full_w.min(self.width * WHOLE_IMAGE_OVERSAMPLING);
            let read_h = full_h.min(self.height * WHOLE_IMAGE_OVERSAMPLING);
            let mut read = vec![0f32; read_w * read_h];
            raster
                .read_window_scaled(&[number], window, (read_w, read_h), &mut read)
                .with_context(|| format!("reading {} as one chip", raster.name))?;
            resample::resize_bilinear(&read, read_w, read_h, target, self.width, self.height);
        }
        self.normalize(out);
        Ok(())
    }

    /// Applies `DataRange` rescaling and normalisation in place.
    pub fn normalize(&self, chip: &mut [f32]) {
        normalize::apply(
            chip,
            self.width * self.height,
            &self.normalization,
            self.data_range.as_deref(),
        );
    }

    /// Undoes [`ChipSpec::normalize`] in place: the chip's raster values, as read before
    /// normalisation (for looking at the chip, `--report`).
    pub fn denormalize(&self, chip: &mut [f32]) {
        normalize::invert(
            chip,
            self.width * self.height,
            &self.normalization,
            self.data_range.as_deref(),
        );
    }
}
