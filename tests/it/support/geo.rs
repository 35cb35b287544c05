//! Small geometry helpers: envelope centres, reprojection of points, inclusion in a box.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::Geometry;

use super::Row;

/// The centre of a WKT geometry's envelope.
pub fn centre(wkt: &str) -> (f64, f64) {
    let e = Geometry::from_wkt(wkt).unwrap().envelope();
    ((e.MinX + e.MaxX) / 2.0, (e.MinY + e.MaxY) / 2.0)
}

/// The transformation between two EPSG codes, in x/y (longitude/latitude) order.
pub fn transform(from: u32, to: u32) -> CoordTransform {
    let mut a = SpatialRef::from_epsg(from).unwrap();
    let mut b = SpatialRef::from_epsg(to).unwrap();
    a.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    b.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    CoordTransform::new(&a, &b).unwrap()
}

pub fn point_in(t: &CoordTransform, (x, y): (f64, f64)) -> (f64, f64) {
    let (mut xs, mut ys) = ([x], [y]);
    t.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    (xs[0], ys[0])
}

/// `(xmin, ymin, xmax, ymax)` contains `(x, y)` as the README says: min included, max excluded.
pub fn inside((xmin, ymin, xmax, ymax): (f64, f64, f64, f64), (x, y): (f64, f64)) -> bool {
    (xmin..xmax).contains(&x) && (ymin..ymax).contains(&y)
}

pub fn ids(rows: &[Row], field: &str) -> Vec<String> {
    rows.iter().map(|r| r.text(field).unwrap()).collect()
}
