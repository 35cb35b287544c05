//! The input image: any GDAL raster source (files, VRT mosaics, `/vsicurl/` and other VSI paths).
//!
//! A [`Raster`] owns one GDAL dataset. GDAL datasets are not `Sync`, so every worker thread opens
//! its own with [`Raster::open`]; the metadata is cheap to re-read.

use anyhow::{Context, Result};
use gdal::raster::{GdalDataType, ResampleAlg};
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::{Dataset, Metadata};

use crate::bail_input;
use crate::gdal_ffi::raster_io::{self, Destination, ReadError, SourceWindow};
use crate::input::rest;
use crate::input::source;
use crate::input::source::SourceKind;
use crate::messages;

/// A read that failed because the server of a remote raster stopped answering or cannot be
/// reached: the run cannot go on (every later read would wait as long), unlike a read of one
/// damaged tile or block, which only that feature's row says.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Whether `err` is a read of a remote raster whose server stopped answering ([`Unreachable`]).
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<Unreachable>())
}

/// Runs `read` again after a failure that may pass (a remote raster's server answering 429 or
/// 5xx, a connection reset), as GDAL retries the requests it makes itself but not those of
/// image services' and tile caches' blocks: `GDAL_HTTP_MAX_RETRY` times, after
/// `GDAL_HTTP_RETRY_DELAY` seconds, doubled each time. A stop request ends the wait.
fn retried(mut read: impl FnMut() -> Result<(), ReadError>) -> Result<(), ReadError> {
    let option = |key: &str| gdal::config::get_config_option(key, "").unwrap_or_default();
    let retries: u32 = option("GDAL_HTTP_MAX_RETRY").trim().parse().unwrap_or(0);
    let mut delay: f64 = option("GDAL_HTTP_RETRY_DELAY").trim().parse().unwrap_or(30.0);
    let mut attempt = 0;
    loop {
        match read() {
            Err(ReadError::Gdal(message)) if attempt < retries && rest::is_transient(&message) => {
                let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(delay.clamp(0.0, 3600.0));
                while std::time::Instant::now() < until {
                    if crate::stop::requested() {
                        return Err(ReadError::Stopped);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                delay *= 2.0;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A failed read of `what` with GDAL's `message`, said with what a service answered where GDAL
/// only says the answer was not an image; [`Unreachable`] when the server stopped answering.
fn read_failure(what: String, message: &str) -> anyhow::Error {
    let explained = rest::explain_read_failure(message);
    let reason = explained.as_deref().unwrap_or(message).trim_end_matches('.');
    if rest::is_unreachable(reason) {
        return anyhow::Error::new(Unreachable(format!(
            "{what}: {reason}; its server stopped answering or cannot be reached (a transfer fails after GDAL_HTTP_LOW_SPEED_TIME seconds without a byte): run again once it answers"
        )));
    }
    anyhow::anyhow!("{what}: {reason}")
}

/// A rectangle of pixels, possibly reaching outside the raster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelWindow {
    /// Left column (may be negative).
    pub col: isize,
    /// Top row (may be negative).
    pub row: isize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// A rectangle of raster pixel coordinates, fractional, possibly reaching outside the raster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Left edge (column).
    pub col: f64,
    /// Top edge (row).
    pub row: f64,
    /// Width in pixels.
    pub width: f64,
    /// Height in pixels.
    pub height: f64,
}

/// What one band holds and how its invalid pixels are marked.
#[derive(Debug, Clone)]
pub struct BandInfo {
    /// 1-based GDAL band number.
    pub number: usize,
    /// Band description (may be empty).
    pub description: String,
    /// Colour interpretation name (`Red`, `Gray`, `Alpha`, ...).
    pub color_name: String,
    /// NoData value, if any.
    pub nodata: Option<f64>,
    /// Pixel data type name (`Byte`, `UInt16`, ...).
    pub data_type: GdalDataType,
    /// Whether pixels are masked by a mask or alpha band (not by a NoData value).
    pub has_mask_band: bool,
    /// Whether that mask is one for all bands (an alpha band), read once per window.
    pub mask_per_dataset: bool,
}

impl BandInfo {
    /// Whether some pixels of the band may be invalid (a NoData value, a mask band, or the NaN
    /// and infinities a floating-point band can hold whatever its NoData says).
    pub fn has_invalid_pixels(&self) -> bool {
        self.nodata.is_some() || self.has_mask_band || self.is_float()
    }

    /// Whether the band holds floating-point values.
    pub fn is_float(&self) -> bool {
        matches!(
            self.data_type,
            GdalDataType::Float32 | GdalDataType::Float64 | GdalDataType::Unknown
        ) || self.data_type.name().starts_with("CFloat")
    }
}

/// Where a raster's pixels are: size, georeferencing and CRS. Plain data, shareable between
/// threads (unlike the GDAL dataset).
#[derive(Debug, Clone)]
pub struct RasterGrid {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Affine transform pixel -> world (GDAL order), identity when not georeferenced.
    pub geo_transform: [f64; 6],
    inverse: [f64; 6],
    /// Whether the raster has a geotransform and a spatial reference.
    pub georeferenced: bool,
    /// Spatial reference as WKT, if any.
    pub srs_wkt: Option<String>,
    /// Block (tile or strip) size of its first band in pixels (width, height): the unit GDAL
    /// reads and decodes.
    pub block: (usize, usize),
}

impl RasterGrid {
    /// The raster's spatial reference, with x/y (easting/northing, lon/lat) axis order.
    pub fn spatial_ref(&self) -> Option<SpatialRef> {
        let wkt = self.srs_wkt.as_deref()?;
        let mut srs = SpatialRef::from_wkt(wkt).ok()?;
        srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Some(srs)
    }

    /// Size of one pixel in map units (x, y), positive.
    pub fn cell_size(&self) -> (f64, f64) {
        let gt = &self.geo_transform;
        (
            (gt[1] * gt[1] + gt[4] * gt[4]).sqrt(),
            (gt[2] * gt[2] + gt[5] * gt[5]).sqrt(),
        )
    }

    /// Map coordinates to fractional pixel coordinates (column, row).
    pub fn world_to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let t = &self.inverse;
        (t[0] + t[1] * x + t[2] * y, t[3] + t[4] * x + t[5] * y)
    }

    /// Fractional pixel coordinates (column, row) to map coordinates.
    pub fn pixel_to_world(&self, col: f64, row: f64) -> (f64, f64) {
        let t = &self.geo_transform;
        (t[0] + t[1] * col + t[2] * row, t[3] + t[4] * col + t[5] * row)
    }
}

/// What a run reads of every raster instead of what the raster says (`--bands`, `--nodata`):
/// the raster is read through an in-memory VRT with those bands and that NoData, as
/// `gdal_translate -of VRT -b ... -a_nodata ...` would make it, so that everything else (band
/// names, statistics, masks) follows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RasterOverrides {
    /// 1-based bands of the raster, in the order the run sees them (`--bands 3,2,1`).
    pub bands: Option<Vec<usize>>,
    /// NoData of every band (`--nodata V`, or `--nodata none`).
    pub nodata: Option<NoData>,
}

/// A NoData override.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoData {
    /// This value is NoData in every band.
    Value(f64),
    /// No value is NoData (the raster's own NoData is ignored).
    None,
}

impl RasterOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.bands.is_none() && self.nodata.is_none()
    }

    /// `gdal_translate` arguments making the VRT of `dataset` with these overrides (an alpha
    /// band stays the mask of the bands, whether it is among them or not).
    fn translate_arguments(&self, dataset: &Dataset, name: &str) -> Result<Vec<String>> {
        let count = dataset.raster_count();
        let mut args: Vec<String> = vec!["-of".into(), "VRT".into()];
        if let Some(bands) = &self.bands {
            if let Some(bad) = bands.iter().find(|&&b| b == 0 || b > count) {
                bail_input!(
                    "--bands {} names band {bad} but raster {name} has {count} band(s) (numbered from 1); give bands 1 to {count}",
                    messages::shown(&bands.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","))
                );
            }
            for band in bands {
                args.extend(["-b".into(), band.to_string()]);
            }
        }
        let alpha = (1..=count).rev().find(|&b| {
            dataset
                .rasterband(b)
                .is_ok_and(|band| band.color_interpretation() == gdal::raster::ColorInterpretation::AlphaBand)
        });
        if let Some(alpha) = alpha {
            args.extend(["-mask".into(), alpha.to_string()]);
        }
        match self.nodata {
            Some(NoData::Value(v)) => args.extend(["-a_nodata".into(), format!("{v}")]),
            Some(NoData::None) => args.extend(["-a_nodata".into(), "none".into()]),
            None => {}
        }
        Ok(args)
    }
}

/// An open input raster.
pub struct Raster {
    dataset: Dataset,
    /// The source dataset read through `dataset` when the run overrides bands or NoData (kept
    /// open for as long as the VRT made of it, and closed after it).
    _source: Option<Dataset>,
    /// The name it was opened with.
    pub name: String,
    /// Size, georeferencing and CRS.
    pub grid: RasterGrid,
    /// Every band of the raster.
    pub bands: Vec<BandInfo>,
}

impl Raster {
    /// The files the raster is read from (the image, its side files, a VRT's sources), as GDAL
    /// lists them; empty for a remote or in-memory source.
    pub fn files(&self) -> Vec<String> {
        raster_io::file_list(self._source.as_ref().unwrap_or(&self.dataset))
    }
}

impl std::fmt::Debug for Raster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raster")
            .field("name", &self.name)
            .field("grid", &self.grid)
            .finish()
    }
}

impl Raster {
    /// Opens a GDAL raster source read-only.
    pub fn open(name: &str) -> Result<Raster> {
        Raster::open_with(name, &RasterOverrides::default())
    }

    /// Opens a GDAL raster source read-only, seen with `overrides` (`--bands`, `--nodata`).
    pub fn open_with(name: &str, overrides: &RasterOverrides) -> Result<Raster> {
        let dataset = source::open(name, SourceKind::Raster)?;
        if overrides.is_empty() || dataset.raster_count() == 0 {
            return Raster::from_dataset(dataset, None, name);
        }
        let args = overrides.translate_arguments(&dataset, name)?;
        let view = raster_io::translate_to_vrt(&dataset, &args)
            .with_context(|| format!("reading raster {name} with --bands/--nodata"))?;
        Raster::from_dataset(view, Some(dataset), name)
    }

    fn from_dataset(dataset: Dataset, source: Option<Dataset>, name: &str) -> Result<Raster> {
        let (width, height) = dataset.raster_size();
        if dataset.raster_count() == 0 || width == 0 || height == 0 {
            bail_input!("{name} has no raster bands; give an image, not a vector dataset");
        }
        let transform = dataset.geo_transform().ok();
        let srs_wkt = dataset
            .spatial_ref()
            .ok()
            .and_then(|s| s.to_wkt().ok())
            .filter(|w| !w.is_empty());
        let georeferenced = transform.is_some() && srs_wkt.is_some();
        let geo_transform = transform.unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let Some(inverse) = invert_geo_transform(&geo_transform) else {
            bail_input!("raster {name} has a degenerate geotransform {geo_transform:?}; fix its georeferencing");
        };
        let block = dataset
            .rasterband(1)
            .map(|band| band.block_size())
            .unwrap_or((width, 1));
        let block = (block.0.max(1), block.1.max(1));
        let bands = (1..=dataset.raster_count())
            .map(|number| {
                let band = dataset.rasterband(number)?;
                let flags = band.mask_flags()?;
                Ok(BandInfo {
                    number,
                    description: band.description().unwrap_or_default(),
                    color_name: band.color_interpretation().name(),
                    nodata: band.no_data_value(),
                    data_type: band.band_type(),
                    has_mask_band: !flags.is_all_valid() && !flags.is_nodata(),
                    mask_per_dataset: flags.is_per_dataset(),
                })
            })
            .collect::<Result<Vec<_>, gdal::errors::GdalError>>()
            .with_context(|| format!("reading band information of {name}"))?;
        Ok(Raster {
            dataset,
            _source: source,
            name: name.to_string(),
            grid: RasterGrid {
                block,
                width,
                height,
                geo_transform,
                inverse,
                georeferenced,
                srs_wkt,
            },
            bands,
        })
    }

    /// The value range of a band (1-based) for `DataRange` rescaling: its statistics if the file
    /// has them, else an approximate scan; NoData is excluded by GDAL.
    pub fn value_range(&self, number: usize) -> Result<(f64, f64)> {
        let band = self.dataset.rasterband(number)?;
        let stats = band
            .compute_raster_min_max(true)
            .with_context(|| format!("computing the value range of band {number} of {}", self.name))?;
        Ok((stats.min, stats.max))
    }

    /// Reads `bands` (1-based) over `window` into `out`, band after band (`bands.len() * height *
    /// width` values). Pixels outside the raster, NoData pixels, masked pixels and non-finite
    /// values are 0.
    pub fn read_window(&self, bands: &[usize], window: PixelWindow, out: &mut [f32]) -> Result<()> {
        self.read_window_scaled(bands, window, (window.width, window.height), out)
    }

    /// As [`Raster::read_window`], with the window resampled (nearest neighbour, GDAL using
    /// overviews when coarser) to `size` (width, height) pixels.
    pub fn read_window_scaled(
        &self,
        bands: &[usize],
        window: PixelWindow,
        size: (usize, usize),
        out: &mut [f32],
    ) -> Result<()> {
        let region = Region {
            col: window.col as f64,
            row: window.row as f64,
            width: window.width as f64,
            height: window.height as f64,
        };
        self.read_region(bands, region, size, ResampleAlg::NearestNeighbour, out)
    }

    /// Reads `bands` over `region` (raster pixel coordinates, fractional, possibly reaching
    /// outside) resampled with `resampling` (GDAL using overviews when coarser) to `size`
    /// (width, height) pixels, band after band. The part outside the raster, NoData, masked and
    /// non-finite pixels are 0.
    pub fn read_region(
        &self,
        bands: &[usize],
        region: Region,
        size: (usize, usize),
        resampling: ResampleAlg,
        out: &mut [f32],
    ) -> Result<()> {
        let (w, h) = size;
        assert_eq!(out.len(), bands.len() * w * h, "output buffer does not fit the window");
        // The part of the region inside the raster, and where it lands in the output.
        let c0 = region.col.max(0.0);
        let r0 = region.row.max(0.0);
        let c1 = (region.col + region.width).min(self.grid.width as f64);
        let r1 = (region.row + region.height).min(self.grid.height as f64);
        if c0 >= c1 || r0 >= r1 {
            out.fill(0.0);
            return Ok(());
        }
        let (sx, sy) = (w as f64 / region.width, h as f64 / region.height);
        let x0 = ((c0 - region.col) * sx).round() as usize;
        let y0 = ((r0 - region.row) * sy).round() as usize;
        let x1 = (((c1 - region.col) * sx).round() as usize).min(w);
        let y1 = (((r1 - region.row) * sy).round() as usize).min(h);
        // The source rectangle of exactly the output pixels kept.
        let (c0, c1) = (region.col + x0 as f64 / sx, region.col + x1 as f64 / sx);
        let (r0, r1) = (region.row + y0 as f64 / sy, region.row + y1 as f64 / sy);
        let whole = |v: f64| (v - v.round()).abs() < 1e-9;
        let exact = [c0, c1, r0, r1].iter().all(|&v| whole(v));
        let (ic0, ir0) = (c0.floor().max(0.0) as isize, r0.floor().max(0.0) as isize);
        let ic1 = (c1.ceil() as isize).min(self.grid.width as isize);
        let ir1 = (r1.ceil() as isize).min(self.grid.height as isize);
        let inner = Inner {
            src: (ic0, ir0, (ic1 - ic0).max(1) as usize, (ir1 - ir0).max(1) as usize),
            dst: (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)),
            plane: (w, h),
        };
        if inner.dst.2 == 0 || inner.dst.3 == 0 {
            out.fill(0.0);
            return Ok(());
        }
        if inner.dst != (0, 0, w, h) {
            out.fill(0.0);
        }
        // One strided read of every band straight into the chip buffer.
        let source = SourceWindow {
            pixels: inner.src,
            fractional: (!exact).then_some((c0, r0, c1 - c0, r1 - r0)),
        };
        let to = Destination {
            dst: inner.dst,
            plane: inner.plane,
        };
        if let Err(err) = retried(|| raster_io::read_bands_f32(&self.dataset, bands, source, resampling, to, out)) {
            let (sc, sr, sw, sh) = inner.src;
            match err {
                ReadError::Stopped => anyhow::bail!("reading {} was stopped", self.name),
                ReadError::Gdal(message) => {
                    return Err(read_failure(
                        format!("reading pixels {sc},{sr} +{sw}x{sh} of {}", self.name),
                        &message,
                    ))
                }
            }
        }
        self.zero_invalid(bands, &inner, out)
    }

    /// Reads band `number` (1-based) over `window` (inside the raster), resampled by GDAL
    /// (bilinear) to `width` x `height`. NoData, masks and non-finite values are not handled: use
    /// this only for bands without them ([`BandInfo::has_invalid_pixels`]).
    pub fn read_band_resampled(
        &self,
        number: usize,
        window: PixelWindow,
        width: usize,
        height: usize,
        out: &mut [f32],
    ) -> Result<()> {
        assert_eq!(out.len(), width * height);
        assert!(
            window.col >= 0
                && window.row >= 0
                && window.col as usize + window.width <= self.grid.width
                && window.row as usize + window.height <= self.grid.height,
            "the window lies inside the raster"
        );
        let band = self.dataset.rasterband(number)?;
        let pixels = (window.col, window.row, window.width, window.height);
        match retried(|| raster_io::read_band_resampled_f32(&band, pixels, ResampleAlg::Bilinear, (width, height), out))
        {
            Ok(()) => Ok(()),
            Err(ReadError::Stopped) => anyhow::bail!("reading {} was stopped", self.name),
            Err(ReadError::Gdal(message)) => Err(read_failure(
                format!("reading band {number} of {}", self.name),
                &message,
            )),
        }
    }

    /// Sets NoData, masked and non-finite pixels of the part of `out` read from the raster to 0.
    fn zero_invalid(&self, bands: &[usize], inner: &Inner, out: &mut [f32]) -> Result<()> {
        let (x0, y0, iw, ih) = inner.dst;
        let (w, h) = inner.plane;
        let (sc, sr, sw, sh) = inner.src;
        let start = y0 * w + x0;
        // A per-dataset mask (alpha) is the same for every band: read it once per window.
        let mut shared_mask: Option<Vec<u8>> = None;
        for (k, &number) in bands.iter().enumerate() {
            let info = &self.bands[number - 1];
            let plane = &mut out[k * w * h + start..];
            let nodata = info.nodata.map(|v| v as f32);
            if nodata.is_some() || info.is_float() {
                for row in 0..ih {
                    for v in &mut plane[row * w..row * w + iw] {
                        if !v.is_finite() || Some(*v) == nodata {
                            *v = 0.0;
                        }
                    }
                }
            }
            if info.has_mask_band {
                let own;
                let valid: &[u8] = match &shared_mask {
                    Some(mask) if info.mask_per_dataset => mask,
                    _ => {
                        let band = self.dataset.rasterband(number)?;
                        let mut read = vec![0u8; iw * ih];
                        band.open_mask_band()?
                            .read_into_slice::<u8>((sc, sr), (sw, sh), (iw, ih), &mut read, None)
                            .with_context(|| format!("reading the mask of band {number} of {}", self.name))?;
                        if info.mask_per_dataset {
                            shared_mask.insert(read).as_slice()
                        } else {
                            own = read;
                            &own
                        }
                    }
                };
                for row in 0..ih {
                    let dst = &mut plane[row * w..row * w + iw];
                    for (v, &m) in dst.iter_mut().zip(&valid[row * iw..(row + 1) * iw]) {
                        if m == 0 {
                            *v = 0.0;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The part of a window that lies inside the raster: its source rectangle (col, row, width,
/// height), where it lands in the output (x, y, width, height), and the output plane size.
struct Inner {
    src: (isize, isize, usize, usize),
    dst: (usize, usize, usize, usize),
    plane: (usize, usize),
}

fn invert_geo_transform(gt: &[f64; 6]) -> Option<[f64; 6]> {
    let det = gt[1] * gt[5] - gt[2] * gt[4];
    if det.abs() < 1e-300 || !det.is_finite() {
        return None;
    }
    let inv_det = 1.0 / det;
    let (a, b, d, e) = (gt[5] * inv_det, -gt[2] * inv_det, -gt[4] * inv_det, gt[1] * inv_det);
    Some([-a * gt[0] - b * gt[3], a, b, -d * gt[0] - e * gt[3], d, e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_geotransform_round_trips() {
        let gt = [500000.0, 2.0, 0.5, 4000000.0, 0.25, -3.0];
        let inv = invert_geo_transform(&gt).unwrap();
        let (col, row) = (12.5, 7.25);
        let x = gt[0] + gt[1] * col + gt[2] * row;
        let y = gt[3] + gt[4] * col + gt[5] * row;
        let back = (inv[0] + inv[1] * x + inv[2] * y, inv[3] + inv[4] * x + inv[5] * y);
        assert!((back.0 - col).abs() < 1e-9 && (back.1 - row).abs() < 1e-9, "{back:?}");
        assert!(invert_geo_transform(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).is_none());
    }
}
