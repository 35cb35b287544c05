//! Material for the large-imagery benchmark (`bench/large.sh`), made deterministically:
//!
//! ```text
//! cargo run --release --example make_large_raster -- SIZE OUT.tif POINTS N OUT_POINTS.gpkg MODEL.onnx
//! ```
//!
//! * `OUT.tif`: a SIZE x SIZE three-band Byte GeoTIFF (EPSG:32633, 0.5 m pixels), striped, whose
//!   pixels look like imagery to a JPEG encoder: smooth fields with texture and edges. The script
//!   turns it into a JPEG-compressed, tiled COG with `gdal_translate`.
//! * `OUT_POINTS.gpkg`: N points spread uniformly over the raster, in random order (seeded).
//! * `MODEL.onnx`: a near-free 224 x 224 classifier (global average pooling, one matrix product:
//!   the test suite's colour model), so that reading and decoding chips is the work measured.

#[path = "../tests/it/support/onnx.rs"]
mod onnx;
#[path = "common/points.rs"]
mod points;

use gdal::DriverManager;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, size, out, _, n, points_path, model] = args.as_slice() else {
        return Err("usage: make_large_raster SIZE OUT.tif POINTS N OUT_POINTS.gpkg MODEL.onnx".into());
    };
    let size: usize = size.parse()?;
    let n: usize = n.parse()?;
    let (x0, y0, cell) = (500_000.0, 5_800_000.0, 0.5);
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(32633)?;

    let mut next = points::uniform(7);

    // The raster, written in strips of 256 rows.
    let _ = std::fs::remove_file(out);
    let driver = DriverManager::get_driver_by_name("GTiff")?;
    let mut ds = driver.create_with_band_type_with_options::<u8, _>(
        out,
        size,
        size,
        3,
        &gdal::raster::RasterCreationOptions::from_iter(["BIGTIFF=IF_NEEDED", "INTERLEAVE=PIXEL"]),
    )?;
    ds.set_geo_transform(&[x0, cell, 0.0, y0, 0.0, -cell])?;
    ds.set_spatial_ref(&srs)?;
    let strip = 256;
    for top in (0..size).step_by(strip) {
        let rows = strip.min(size - top);
        for b in 0..3 {
            let mut data = vec![0u8; size * rows];
            for r in 0..rows {
                let y = (top + r) as f64;
                for c in 0..size {
                    let x = c as f64;
                    // Fields (large smooth waves), texture (fine waves), edges (a grid of parcels).
                    let field = 96.0 + 60.0 * ((x / 700.0 + b as f64).sin() * (y / 900.0).cos());
                    let texture = 18.0 * ((x * 0.37 + y * 0.11 + b as f64).sin() * (y * 0.29).cos());
                    let parcel = if (c / 160 + (top + r) / 200) % 3 == b {
                        40.0
                    } else {
                        0.0
                    };
                    data[r * size + c] = (field + texture + parcel).clamp(0.0, 255.0) as u8;
                }
            }
            let mut buffer = gdal::raster::Buffer::new((size, rows), data);
            ds.rasterband(b + 1)?
                .write((0, top as isize), (size, rows), &mut buffer)?;
        }
    }
    drop(ds);

    // Points in random order, each chip fully inside the raster.
    let margin = 112.0;
    let span = size as f64 - 2.0 * margin;
    let coordinates: Vec<(f64, f64)> = (0..n)
        .map(|_| {
            let (c, r) = (margin + next() * span, margin + next() * span);
            (x0 + c * cell, y0 - r * cell)
        })
        .collect();
    points::write_points(points_path, &srs, &coordinates)?;

    // The near-free model: the colour classifier at 224 x 224 with four classes.
    let palette = [
        [200.0, 30.0, 30.0],
        [30.0, 160.0, 60.0],
        [40.0, 70.0, 200.0],
        [230.0, 210.0, 40.0],
    ];
    let imagenet = {
        let mean = [123.675f32, 116.28, 103.53];
        let std = [58.395f32, 57.12, 57.375];
        [0, 1, 2].map(|c| (1.0 / std[c], -mean[c] / std[c]))
    };
    let options = onnx::ColorModelOptions {
        chip: Some((224, 224)),
        ..Default::default()
    };
    std::fs::write(model, onnx::color_classifier(&palette, &imagenet, &options))?;
    println!("wrote {out} ({size} x {size}), {points_path} ({n} points), {model}");
    Ok(())
}
