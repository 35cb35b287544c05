//! Writes N pseudo-random points (seeded, deterministic) on valid pixels of a raster (band 1 not
//! NoData), in the raster's CRS, as a GeoPackage, for the benchmarks (`bench/run.sh`):
//!
//! ```text
//! cargo run --release --example make_points -- N OUT.gpkg RASTER
//! ```

#[path = "common/points.rs"]
mod points;

use gdal::Dataset;

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

    let mut next = points::uniform(42);
    let mut written = Vec::with_capacity(n);
    while written.len() < n {
        let (col, row) = (next() * w as f64, next() * h as f64);
        if Some(values[row as usize * w + col as usize]) == nodata {
            continue;
        }
        written.push((gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]));
    }
    points::write_points(out, &srs, &written)?;
    println!("{n} points -> {out}");
    Ok(())
}
