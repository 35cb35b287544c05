//! Writes N jagged ring polygons of V vertices each (seeded, deterministic) on a raster, in its
//! CRS, as a GeoPackage, for `bench/polygons.sh`: each is centred on a random pixel with a radius
//! of R pixels, its vertices at random distances between 0.7 R and R, so that polygons with many
//! vertices have the shape of real footprints digitised finely.
//!
//! ```text
//! cargo run --release --example make_polygons -- N V R OUT.gpkg RASTER
//! ```

#[path = "common/points.rs"]
mod points;

use gdal::vector::OGRwkbGeometryType;
use gdal::Dataset;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, n, vertices, radius, out, raster] = args.as_slice() else {
        return Err("usage: make_polygons N VERTICES RADIUS_PIXELS OUT.gpkg RASTER".into());
    };
    let (n, vertices, radius): (usize, usize, f64) = (n.parse()?, vertices.parse()?, radius.parse()?);
    let source = Dataset::open(raster)?;
    let (w, h) = source.raster_size();
    let gt = source.geo_transform()?;
    let srs = source.spatial_ref()?;
    let mut next = points::uniform(7);
    let to_map = move |col: f64, row: f64| (gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]);
    let polygons = (0..n).map(move |_| {
        let (cx, cy) = (next() * w as f64, next() * h as f64);
        // WKB polygon: one ring of `vertices` points, closed.
        let mut wkb = vec![1u8];
        wkb.extend_from_slice(&3u32.to_le_bytes());
        wkb.extend_from_slice(&1u32.to_le_bytes());
        wkb.extend_from_slice(&(vertices as u32 + 1).to_le_bytes());
        let mut first = None;
        for k in 0..vertices {
            let angle = k as f64 / vertices as f64 * std::f64::consts::TAU;
            let r = radius * (0.7 + 0.3 * next());
            let (x, y) = to_map(cx + r * angle.cos(), cy + r * angle.sin());
            first.get_or_insert((x, y));
            wkb.extend_from_slice(&x.to_le_bytes());
            wkb.extend_from_slice(&y.to_le_bytes());
        }
        let (x, y) = first.unwrap_or_default();
        wkb.extend_from_slice(&x.to_le_bytes());
        wkb.extend_from_slice(&y.to_le_bytes());
        wkb
    });
    points::write_geometries(out, &srs, "polygons", OGRwkbGeometryType::wkbPolygon, polygons)?;
    println!("{n} polygons of {vertices} vertices -> {out}");
    Ok(())
}
