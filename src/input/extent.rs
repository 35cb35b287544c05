//! The processing extent (Esri's "Processing Extent" environment, `--extent XMIN YMIN XMAX YMAX`
//! with `--extent-crs`): which features it keeps — those whose envelope centre falls inside, as
//! `ogr2ogr -spat` but on the centre — and which pixels of a whole image it keeps.
//!
//! A centre `(x, y)` is inside when `XMIN <= x < XMAX` and `YMIN <= y < YMAX`, so that extents
//! that touch (tiles of a larger area) split the features between them without overlap.

use anyhow::{Context, Result};
use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::Geometry;

use crate::bail_input;
use crate::gdal_ffi::srs;
use crate::input::raster::{PixelWindow, RasterGrid};
use crate::messages;

/// A rectangle in a CRS.
#[derive(Debug, Clone, PartialEq)]
pub struct Extent {
    /// `[xmin, ymin, xmax, ymax]`, in x/y (easting/northing, longitude/latitude) order.
    pub bounds: [f64; 4],
    /// Its CRS as WKT; `None`: the first raster's (resolved when the rasters are open).
    pub crs_wkt: Option<String>,
}

/// Tolerance, in pixels, below which an extent edge is taken to lie on a pixel edge.
const PIXEL_EDGE_TOLERANCE: f64 = 1e-6;

impl Extent {
    /// Checks `--extent` values (four finite numbers, min below max) and `--extent-crs`.
    pub fn from_args(values: &[f64], crs: Option<&str>) -> Result<Extent> {
        let [xmin, ymin, xmax, ymax] = values else {
            bail_input!("--extent takes four numbers: XMIN YMIN XMAX YMAX");
        };
        if values.iter().any(|v| !v.is_finite()) || xmin >= xmax || ymin >= ymax {
            bail_input!(
                "--extent {xmin} {ymin} {xmax} {ymax} is not a rectangle; give XMIN YMIN XMAX YMAX with XMIN < XMAX and YMIN < YMAX"
            );
        }
        let crs_wkt = match crs {
            None => None,
            Some(definition) => match SpatialRef::from_definition(definition) {
                Ok(srs) => Some(srs.to_wkt()?),
                Err(err) => bail_input!(
                    "--extent-crs \"{definition}\" is not a coordinate reference system GDAL knows ({err}); use e.g. EPSG:4326 or a WKT/PROJ string"
                ),
            },
        };
        Ok(Extent {
            bounds: [*xmin, *ymin, *xmax, *ymax],
            crs_wkt,
        })
    }

    /// This extent with its CRS given, when it had none, as `default` (the first raster's).
    pub fn with_default_crs(&self, default: Option<&str>) -> Extent {
        Extent {
            bounds: self.bounds,
            crs_wkt: self.crs_wkt.clone().or_else(|| default.map(str::to_string)),
        }
    }

    /// Whether the point `(x, y)`, in the extent's CRS, is inside.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let [xmin, ymin, xmax, ymax] = self.bounds;
        (xmin..xmax).contains(&x) && (ymin..ymax).contains(&y)
    }

    /// The filter keeping the features (in CRS `features_wkt`) whose envelope centre is inside.
    pub fn centre_filter(&self, features_wkt: Option<&str>, features: &str) -> Result<CentreFilter> {
        let transform = match (features_wkt, self.crs_wkt.as_deref()) {
            (Some(from), Some(to)) => srs::transform_wkt(from, to)
                .with_context(|| format!("taking the features {features} into the CRS of --extent"))?,
            (None, Some(_)) => bail_input!(
                "features {features} have no coordinate reference system, so --extent cannot be placed on them; declare it with --features-crs"
            ),
            _ => None,
        };
        Ok(CentreFilter {
            extent: self.clone(),
            transform,
        })
    }

    /// The pixels of an image (`grid`) inside the extent, snapped outwards to whole pixels and
    /// clipped to the image; `None` when the extent does not overlap the image.
    pub fn pixel_window(&self, grid: &RasterGrid, raster: &str) -> Result<Option<PixelWindow>> {
        let bounds = match (self.crs_wkt.as_deref(), grid.srs_wkt.as_deref()) {
            (Some(from), Some(to)) => match srs::transform_wkt(from, to)? {
                Some(t) => t
                    .transform_bounds(&self.bounds, 21)
                    .with_context(|| format!("taking --extent into the CRS of raster {raster}"))?,
                None => self.bounds,
            },
            _ if !grid.georeferenced => bail_input!(
                "raster {raster} is not georeferenced, so --extent cannot be placed on it; georeference it (gdal_edit.py -a_srs -a_ullr) or run without --extent"
            ),
            _ => self.bounds,
        };
        let [xmin, ymin, xmax, ymax] = bounds;
        let corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)].map(|(x, y)| grid.world_to_pixel(x, y));
        let fold =
            |f: fn(f64, f64) -> f64, start: f64, pick: fn(&(f64, f64)) -> f64| corners.iter().map(pick).fold(start, f);
        let (c0, c1) = (
            fold(f64::min, f64::INFINITY, |p| p.0),
            fold(f64::max, f64::NEG_INFINITY, |p| p.0),
        );
        let (r0, r1) = (
            fold(f64::min, f64::INFINITY, |p| p.1),
            fold(f64::max, f64::NEG_INFINITY, |p| p.1),
        );
        if ![c0, c1, r0, r1].iter().all(|v| v.is_finite()) {
            return Ok(None);
        }
        let col0 = ((c0 + PIXEL_EDGE_TOLERANCE).floor().max(0.0)) as isize;
        let row0 = ((r0 + PIXEL_EDGE_TOLERANCE).floor().max(0.0)) as isize;
        let col1 = ((c1 - PIXEL_EDGE_TOLERANCE).ceil().min(grid.width as f64)) as isize;
        let row1 = ((r1 - PIXEL_EDGE_TOLERANCE).ceil().min(grid.height as f64)) as isize;
        if col1 <= col0 || row1 <= row0 {
            return Ok(None);
        }
        Ok(Some(PixelWindow {
            col: col0,
            row: row0,
            width: (col1 - col0) as usize,
            height: (row1 - row0) as usize,
        }))
    }
}

/// Keeps the features whose envelope centre (in their own CRS, taken into the extent's) is
/// inside the extent.
pub struct CentreFilter {
    extent: Extent,
    transform: Option<CoordTransform>,
}

impl CentreFilter {
    /// Whether the feature with `geometry` is kept: a feature without a geometry (or whose centre
    /// cannot be taken into the extent's CRS) is not inside any extent.
    pub fn keeps(&self, geometry: Option<&Geometry>) -> bool {
        let Some(geometry) = geometry.filter(|g| !g.is_empty()) else {
            return false;
        };
        let envelope = geometry.envelope();
        let (mut x, mut y) = (
            [(envelope.MinX + envelope.MaxX) / 2.0],
            [(envelope.MinY + envelope.MaxY) / 2.0],
        );
        if let Some(t) = &self.transform {
            if messages::gdal_muted(|| t.transform_coords(&mut x, &mut y, &mut [])).is_err() {
                return false;
            }
        }
        self.extent.contains(x[0], y[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_extents_share_no_centre() {
        let left = Extent {
            bounds: [0.0, 0.0, 10.0, 10.0],
            crs_wkt: None,
        };
        let right = Extent {
            bounds: [10.0, 0.0, 20.0, 10.0],
            crs_wkt: None,
        };
        assert!(left.contains(0.0, 0.0) && !left.contains(10.0, 5.0) && right.contains(10.0, 5.0));
        assert!(!left.contains(5.0, 10.0));
    }

    #[test]
    fn extents_must_be_rectangles() {
        assert!(Extent::from_args(&[0.0, 0.0, 1.0, 1.0], None).is_ok());
        assert!(Extent::from_args(&[1.0, 0.0, 1.0, 1.0], None).is_err());
        assert!(Extent::from_args(&[0.0, 0.0, f64::NAN, 1.0], None).is_err());
        assert!(Extent::from_args(&[0.0, 0.0, 1.0, 1.0], Some("EPSG:99999999")).is_err());
    }
}
