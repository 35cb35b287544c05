//! Regenerates the test fixtures under `fixtures/` (run from the repository root):
//!
//! ```text
//! cargo run --example make_fixtures
//! ```
//!
//! * `fixtures/synthetic/`: a 256 x 256 RGB GeoTIFF (EPSG:32633, 2 m pixels) painted as a 4 x 4
//!   grid of uniform 64 px patches in six known colours; polygons, points and lines over the
//!   patches carrying the colour they lie on in a `truth` field (GeoPackage, and the polygons again
//!   in WGS 84 GeoJSON); a nearest-average-colour ONNX classifier; its `.emd` and `.dlpk`.
//! * `fixtures/real/textline_cls.dlpk`: PaddleOCR's real text-direction classifier
//!   (`../shared/data/models/rapidocr_cls`) packed with an `.emd`, when that file is present.
//!
//! The output is deterministic: running it again gives the same files (the GeoPackage differs
//! only in its internal last-change timestamp).

#[path = "../tests/it/support/onnx.rs"]
mod onnx;

use std::fs;
use std::io::Write;
use std::path::Path;

use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType};
use gdal::DriverManager;

#[path = "../tests/it/support/palette.rs"]
mod palette;
use palette::PALETTE;

const SIZE: usize = 256;
const PATCH: usize = 64;
const PIXEL: f64 = 2.0;
const ORIGIN: (f64, f64) = (500_000.0, 5_800_000.0);
const CHIP: i64 = 32;
const IMAGENET_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
const IMAGENET_STD: [f32; 3] = [58.395, 57.12, 57.375];

fn class_of_patch(row: usize, col: usize) -> usize {
    (row * 4 + col) % PALETTE.len()
}

fn world(col: f64, row: f64) -> (f64, f64) {
    (ORIGIN.0 + col * PIXEL, ORIGIN.1 - row * PIXEL)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("fixtures");
    let synthetic = root.join("synthetic");
    fs::create_dir_all(&synthetic)?;
    write_raster(&synthetic.join("colors.tif"))?;
    write_vectors(&synthetic.join("objects.gpkg"), &synthetic.join("objects_4326.geojson"))?;

    let normalization: [(f32, f32); 3] =
        [0, 1, 2].map(|c| (1.0 / IMAGENET_STD[c], -IMAGENET_MEAN[c] / IMAGENET_STD[c]));
    let palette: Vec<[f32; 3]> = PALETTE.iter().map(|(_, c)| c.map(f32::from)).collect();
    let model = onnx::color_classifier(&palette, &normalization, &onnx::ColorModelOptions::default());
    fs::write(synthetic.join("colors.onnx"), &model)?;
    let emd = colors_emd();
    fs::write(synthetic.join("colors.emd"), &emd)?;
    write_zip(
        &synthetic.join("colors.dlpk"),
        &[("colors.emd", emd.as_bytes()), ("colors.onnx", &model)],
    )?;

    let paddle = Path::new("../shared/data/models/rapidocr_cls/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    if paddle.exists() {
        let real = root.join("real");
        fs::create_dir_all(&real)?;
        let emd = textline_emd();
        fs::write(real.join("textline_cls.emd"), &emd)?;
        write_zip(
            &real.join("textline_cls.dlpk"),
            &[
                ("textline_cls.emd", emd.as_bytes()),
                ("ch_ppocr_mobile_v2.0_cls_infer.onnx", &fs::read(paddle)?),
            ],
        )?;
    }
    println!("fixtures written under {}", root.display());
    Ok(())
}

fn write_raster(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let _ = fs::remove_file(path);
    let driver = DriverManager::get_driver_by_name("GTiff")?;
    let mut ds = driver.create_with_band_type::<u8, _>(path, SIZE, SIZE, 3)?;
    ds.set_geo_transform(&[ORIGIN.0, PIXEL, 0.0, ORIGIN.1, 0.0, -PIXEL])?;
    ds.set_spatial_ref(&SpatialRef::from_epsg(32633)?)?;
    for band in 0..3 {
        let mut data = vec![0u8; SIZE * SIZE];
        for row in 0..SIZE {
            for col in 0..SIZE {
                data[row * SIZE + col] = PALETTE[class_of_patch(row / PATCH, col / PATCH)].1[band];
            }
        }
        let mut buffer = Buffer::new((SIZE, SIZE), data);
        ds.rasterband(band + 1)?.write((0, 0), (SIZE, SIZE), &mut buffer)?;
    }
    Ok(())
}

/// One object per patch and geometry kind, offset from the patch centre by up to 4 px so that a
/// 32 px chip centred on it stays inside the patch.
fn write_vectors(gpkg: &Path, geojson: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let _ = fs::remove_file(gpkg);
    let _ = fs::remove_file(geojson);
    let srs = SpatialRef::from_epsg(32633)?;
    let mut ds = DriverManager::get_driver_by_name("GPKG")?.create_vector_only(gpkg)?;
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut utm = srs.clone();
    utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs84 = CoordTransform::new(&utm, &wgs84)?;
    let mut json_ds = DriverManager::get_driver_by_name("GeoJSON")?.create_vector_only(geojson)?;
    let json_layer = json_ds.create_layer(LayerOptions {
        name: "objects_4326",
        srs: Some(&wgs84),
        ty: OGRwkbGeometryType::wkbPolygon,
        options: Some(&["COORDINATE_PRECISION=10"]),
    })?;
    for (name, ty) in [
        ("id", OGRFieldType::OFTInteger),
        ("name", OGRFieldType::OFTString),
        ("truth", OGRFieldType::OFTString),
    ] {
        FieldDefn::new(name, ty)?.add_to_layer(&json_layer)?;
    }

    for (layer_name, ty) in [
        ("polygons", OGRwkbGeometryType::wkbPolygon),
        ("points", OGRwkbGeometryType::wkbPoint),
        ("lines", OGRwkbGeometryType::wkbLineString),
    ] {
        let layer = ds.create_layer(LayerOptions {
            name: layer_name,
            srs: Some(&srs),
            ty,
            options: None,
        })?;
        for (name, ty) in [
            ("id", OGRFieldType::OFTInteger),
            ("name", OGRFieldType::OFTString),
            ("truth", OGRFieldType::OFTString),
            ("weight", OGRFieldType::OFTReal),
        ] {
            FieldDefn::new(name, ty)?.add_to_layer(&layer)?;
        }
        for row in 0..4 {
            for col in 0..4 {
                let id = (row * 4 + col + 1) as i32;
                let dx = ((row * 3 + col * 5) % 9) as f64 - 4.0;
                let dy = ((row * 5 + col * 3) % 9) as f64 - 4.0;
                let cx = (col * PATCH) as f64 + 32.0 + dx;
                let cy = (row * PATCH) as f64 + 32.0 + dy;
                let wkt = match layer_name {
                    "polygons" => {
                        // An irregular pentagon, envelope centred on (cx, cy): x in cx±10, y in cy±7.
                        let pts = [
                            (-10.0, -7.0),
                            (6.0, -7.0),
                            (10.0, 0.0),
                            (4.0, 7.0),
                            (-10.0, 3.0),
                            (-10.0, -7.0),
                        ];
                        let ring: Vec<String> = pts
                            .iter()
                            .map(|(px, py)| {
                                let (x, y) = world(cx + px, cy + py);
                                format!("{x} {y}")
                            })
                            .collect();
                        format!("POLYGON(({}))", ring.join(","))
                    }
                    "points" => {
                        let (x, y) = world(cx, cy);
                        format!("POINT({x} {y})")
                    }
                    _ => {
                        let (x0, y0) = world(cx - 8.0, cy - 3.0);
                        let (x1, y1) = world(cx + 8.0, cy + 3.0);
                        format!("LINESTRING({x0} {y0},{x1} {y1})")
                    }
                };
                let truth = PALETTE[class_of_patch(row, col)].0;
                let name = format!("{layer_name}-{row}{col}");
                let geometry = Geometry::from_wkt(&wkt)?;
                let mut feature = Feature::new(layer.defn())?;
                feature.set_field_integer(0, id)?;
                feature.set_field_string(1, &name)?;
                feature.set_field_string(2, truth)?;
                feature.set_field_double(3, id as f64 * 0.5)?;
                feature.set_geometry(geometry.clone())?;
                feature.create(&layer)?;
                if layer_name == "polygons" {
                    let mut f = Feature::new(json_layer.defn())?;
                    f.set_field_integer(0, id)?;
                    f.set_field_string(1, &name)?;
                    f.set_field_string(2, truth)?;
                    f.set_geometry(geometry.transform(&to_wgs84)?)?;
                    f.create(&json_layer)?;
                }
            }
        }
    }
    Ok(())
}

fn colors_emd() -> String {
    let classes: Vec<String> = PALETTE
        .iter()
        .enumerate()
        .map(|(i, (name, c))| {
            format!(
                "    {{ \"Value\": {}, \"Name\": \"{name}\", \"Color\": [{}, {}, {}] }}",
                i + 1,
                c[0],
                c[1],
                c[2]
            )
        })
        .collect();
    format!(
        "{{\n  \"Framework\": \"ONNX\",\n  \"ModelConfiguration\": \"AverageColour\",\n  \"ModelType\": \"ObjectClassification\",\n  \"ModelName\": \"NearestAverageColour\",\n  \"ModelFile\": \"colors.onnx\",\n  \"ImageWidth\": {CHIP},\n  \"ImageHeight\": {CHIP},\n  \"ExtractBands\": [0, 1, 2],\n  \"CropSizeFixed\": 1,\n  \"BlackenAroundFeature\": 0,\n  \"ImageSpaceUsed\": \"MAP_SPACE\",\n  \"Classes\": [\n{}\n  ]\n}}\n",
        classes.join(",\n")
    )
}

/// PaddleOCR's direction classifier expects 48 x 192 chips scaled as (x / 255 - 0.5) / 0.5, which
/// NormalizationStats express exactly.
fn textline_emd() -> String {
    r#"{
  "Framework": "ONNX",
  "ModelConfiguration": "PaddleOCRTextDirection",
  "ModelType": "ObjectClassification",
  "ModelName": "ch_ppocr_mobile_v2.0_cls",
  "ModelFile": ".\\ch_ppocr_mobile_v2.0_cls_infer.onnx",
  "ImageWidth": 192,
  "ImageHeight": 48,
  "ExtractBands": [0, 1, 2],
  "CropSizeFixed": 1,
  "BlackenAroundFeature": 0,
  "ImageSpaceUsed": "PIXEL_SPACE",
  "NormalizationStats": {
    "band_min_values": [0, 0, 0],
    "band_max_values": [255, 255, 255],
    "scaled_mean_values": [0.5, 0.5, 0.5],
    "scaled_std_values": [0.5, 0.5, 0.5]
  },
  "Classes": [
    { "Value": 0, "Name": "0", "Color": [0, 128, 255] },
    { "Value": 180, "Name": "180", "Color": [255, 128, 0] }
  ]
}
"#
    .to_string()
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) -> Result<(), Box<dyn std::error::Error>> {
    let mut zip = zip::ZipWriter::new(fs::File::create(path)?);
    // A fixed timestamp keeps the archive byte-identical between runs.
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, bytes) in entries {
        zip.start_file(*name, options)?;
        zip.write_all(bytes)?;
    }
    zip.finish()?;
    Ok(())
}
