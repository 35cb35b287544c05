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

#[path = "../tests/support/onnx.rs"]
mod onnx;

use gdal::vector::{Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::DriverManager;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, size, out, _, n, points, model] = args.as_slice() else {
        return Err("usage: make_large_raster SIZE OUT.tif POINTS N OUT_POINTS.gpkg MODEL.onnx".into());
    };
    let size: usize = size.parse()?;
    let n: usize = n.parse()?;
    let (x0, y0, cell) = (500_000.0, 5_800_000.0, 0.5);
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(32633)?;

    let mut state: u64 = 7;
    let mut next = move || {
        // SplitMix64, uniform in [0, 1).
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };

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
    let _ = std::fs::remove_file(points);
    let mut vector = DriverManager::get_driver_by_name("GPKG")?.create_vector_only(points)?;
    let layer = vector.create_layer(LayerOptions {
        name: "points",
        srs: Some(&srs),
        ty: OGRwkbGeometryType::wkbPoint,
        options: None,
    })?;
    FieldDefn::new("id", OGRFieldType::OFTInteger64)?.add_to_layer(&layer)?;
    let margin = 112.0;
    let span = size as f64 - 2.0 * margin;
    unsafe { gdal_sys::OGR_L_StartTransaction(layer.c_layer()) };
    for i in 0..n {
        let (c, r) = (margin + next() * span, margin + next() * span);
        let mut feature = Feature::new(layer.defn())?;
        feature.set_field_integer64(0, i as i64)?;
        feature.set_geometry(Geometry::from_wkt(&format!(
            "POINT ({} {})",
            x0 + c * cell,
            y0 - r * cell
        ))?)?;
        feature.create(&layer)?;
    }
    unsafe { gdal_sys::OGR_L_CommitTransaction(layer.c_layer()) };
    drop(vector);

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
    println!("wrote {out} ({size} x {size}), {points} ({n} points), {model}");
    Ok(())
}
