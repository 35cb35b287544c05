//! Writes N pseudo-random points (seeded, deterministic) on valid pixels of a raster (band 1 not
//! NoData), in the raster's CRS, as a GeoPackage, for the benchmarks (`bench/run.sh`):
//!
//! ```text
//! cargo run --release --example make_points -- N OUT.gpkg RASTER
//! ```

use gdal::vector::{Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::{Dataset, DriverManager};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, n, out, raster] = args.as_slice() else {
        return Err("usage: make_points N OUT.gpkg RASTER".into());
    };
    let n: usize = n.parse()?;
    let source = Dataset::open(raster)?;
    let (w, h) = source.raster_size();
    let gt = source.geo_transform()?;
    let band = source.rasterband(1)?;
    let nodata = band.no_data_value();
    let values = band.read_as::<f64>((0, 0), (w, h), (w, h), None)?.data().to_vec();
    let srs = source.spatial_ref()?;

    let _ = std::fs::remove_file(out);
    let mut ds = DriverManager::get_driver_by_name("GPKG")?.create_vector_only(out)?;
    let layer = ds.create_layer(LayerOptions {
        name: "points",
        srs: Some(&srs),
        ty: OGRwkbGeometryType::wkbPoint,
        options: None,
    })?;
    FieldDefn::new("id", OGRFieldType::OFTInteger64)?.add_to_layer(&layer)?;
    let mut state: u64 = 42;
    let mut next = || {
        // SplitMix64, uniform in [0, 1).
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let in_transaction = unsafe { gdal_sys::OGR_L_StartTransaction(layer.c_layer()) } == 0;
    let mut written = 0;
    while written < n {
        let (col, row) = (next() * w as f64, next() * h as f64);
        if Some(values[row as usize * w + col as usize]) == nodata {
            continue;
        }
        let (x, y) = (gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]);
        let mut feature = Feature::new(layer.defn())?;
        feature.set_field_integer64(0, written as i64)?;
        feature.set_geometry(Geometry::from_wkt(&format!("POINT ({x} {y})"))?)?;
        feature.create(&layer)?;
        written += 1;
    }
    if in_transaction {
        unsafe { gdal_sys::OGR_L_CommitTransaction(layer.c_layer()) };
    }
    println!("{n} points -> {out}");
    Ok(())
}
