//! Coordinate reference systems compared and transformed in one way everywhere: both in x/y
//! (traditional GIS) axis order, compared with OGR's `IsSame`, and transformed only when they
//! differ.

use anyhow::{Context, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// `wkt` as a CRS with x/y axis order.
pub fn traditional(wkt: &str) -> Result<SpatialRef> {
    let mut srs = SpatialRef::from_wkt(wkt).context("reading a coordinate reference system")?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// Whether `a` and `b` are the same CRS (OGR's `IsSame`, which ignores names and axis order
/// settings).
pub fn same(a: &SpatialRef, b: &SpatialRef) -> bool {
    // The gdal crate's equality is OSRIsSame.
    a == b
}

/// The transformation from `from` to `to` (both in x/y order), `None` when they are the same
/// CRS; the error is GDAL's when no transformation exists.
pub fn transform(from: &SpatialRef, to: &SpatialRef) -> Result<Option<CoordTransform>> {
    let mut from = from.clone();
    let mut to = to.clone();
    from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    to.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    if same(&from, &to) {
        return Ok(None);
    }
    Ok(Some(CoordTransform::new(&from, &to)?))
}

/// As [`transform`], from and to CRSs given as WKT.
pub fn transform_wkt(from: &str, to: &str) -> Result<Option<CoordTransform>> {
    transform(&traditional(from)?, &traditional(to)?)
}
