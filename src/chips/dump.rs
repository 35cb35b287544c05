//! `--dump-chips`: chips written as GeoTIFFs over the raster window they were cut from.

use anyhow::{Context, Result};

use crate::chips::ChipSpec;
use crate::input::raster::{PixelWindow, RasterGrid};

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
    // The window is in the chip's grid: raster pixels times the cell-size scale.
    let (kx, ky) = spec.scale;
    let (sx, sy) = (
        kx * window.width as f64 / w as f64,
        ky * window.height as f64 / h as f64,
    );
    let (x0, y0) = grid.pixel_to_world(window.col as f64 * kx, window.row as f64 * ky);
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
