//! What the benchmark material generators share: a seeded uniform random sequence, and a
//! GeoPackage of numbered geometries (points, polygons).

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::DriverManager;

/// SplitMix64: a deterministic sequence of `f64` uniform in [0, 1) from `seed`.
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes `points` (x, y in `srs`) to a new GeoPackage `path` (replaced if it exists), layer
/// `points`, with an `id` field numbering them from 0, in one transaction.
#[allow(dead_code)] // not every generator writes points
pub fn write_points(path: &str, srs: &SpatialRef, points: &[(f64, f64)]) -> gdal::errors::Result<()> {
    let wkbs = points.iter().map(|&(x, y)| {
        let mut wkb = vec![1u8];
        wkb.extend_from_slice(&1u32.to_le_bytes());
        wkb.extend_from_slice(&x.to_le_bytes());
        wkb.extend_from_slice(&y.to_le_bytes());
        wkb
    });
    write_geometries(path, srs, "points", OGRwkbGeometryType::wkbPoint, wkbs)
}

/// Writes the geometries `wkbs` (WKB, in `srs`) to a new GeoPackage `path` (replaced if it
/// exists), layer `layer` of type `ty`, with an `id` field numbering them from 0, in one
/// transaction.
pub fn write_geometries(
    path: &str,
    srs: &SpatialRef,
    layer: &str,
    ty: OGRwkbGeometryType::Type,
    wkbs: impl Iterator<Item = Vec<u8>>,
) -> gdal::errors::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut ds = DriverManager::get_driver_by_name("GPKG")?.create_vector_only(path)?;
    let mut transaction = ds.start_transaction()?;
    {
        let layer = transaction.create_layer(LayerOptions {
            name: layer,
            srs: Some(srs),
            ty,
            options: None,
        })?;
        FieldDefn::new("id", OGRFieldType::OFTInteger64)?.add_to_layer(&layer)?;
        for (i, wkb) in wkbs.enumerate() {
            let mut feature = Feature::new(layer.defn())?;
            feature.set_field_integer64(0, i as i64)?;
            feature.set_geometry(Geometry::from_wkb(&wkb)?)?;
            feature.create(&layer)?;
        }
    }
    transaction.commit()
}
