//! Runs without features: each image is one object (polygons of georeferenced images, a table
//! otherwise).

use crate::support::*;

#[test]
fn georeferenced_images_give_their_extent_polygons() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let blue = d.join("blue.tif");
    let yellow = d.join("yellow.tif");
    write_tiff_u8(&blue, 100, 60, &uniform_planes(100, 60, PALETTE[2].1), true, None);
    write_tiff_u8(&yellow, 45, 70, &uniform_planes(45, 70, PALETTE[3].1), true, None);
    let out = d.join("images.gpkg");
    run_owned_ok(&classify_args(
        &blue,
        &fixture("synthetic/colors.dlpk"),
        None,
        &out,
        &["-r", yellow.to_str().unwrap()],
    ));
    let rows = read_rows(&out, None);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].text("ClassLabel").as_deref(), Some("blue"));
    assert_eq!(rows[1].text("ClassLabel").as_deref(), Some("yellow"));
    assert_eq!(rows[0].text("ImageId").as_deref(), blue.to_str());
    // The extent of a 100 x 60 image of 2 m pixels at (500000, 5800000).
    let g = gdal::vector::Geometry::from_wkt(rows[0].wkt.as_ref().unwrap()).unwrap();
    let e = g.envelope();
    assert_eq!(
        (e.MinX, e.MaxX, e.MinY, e.MaxY),
        (500_000.0, 500_200.0, 5_799_880.0, 5_800_000.0)
    );
    assert!((g.area() - 200.0 * 120.0).abs() < 1e-6);
    let expected = onnx::expected_confidence(&palette(), &imagenet(), 1.0, 2);
    assert!((rows[0].number("Confidence").unwrap() - expected).abs() < 1e-5);
}

#[test]
fn images_without_georeferencing_give_a_csv_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let photo = d.join("photo.tif");
    write_tiff_u8(&photo, 64, 48, &uniform_planes(64, 48, PALETTE[1].1), false, None);
    let out = d.join("labels.csv");
    run_owned_ok(&classify_args(
        &photo,
        &fixture("synthetic/colors.dlpk"),
        None,
        &out,
        &[],
    ));
    let rows = read_csv(&out);
    assert_eq!(rows[0], vec!["ImageId", "ClassLabel", "Confidence", "Status"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0], photo.to_str().unwrap());
    assert_eq!(rows[1][1], "green");
    let p: f64 = rows[1][2].parse().unwrap();
    assert!((p - onnx::expected_confidence(&palette(), &imagenet(), 1.0, 1)).abs() < 1e-5);
}

#[test]
fn the_real_non_georeferenced_image_is_classified_into_a_table() {
    // A real 512 x 512 RGB photo without georeferencing, and the real PaddleOCR model.
    let src = fixture("real/dummy_recognition_map.tif");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("table.csv");
    run_owned_ok(&classify_args(
        &src,
        &fixture("real/textline_cls.dlpk"),
        None,
        &out,
        &[],
    ));
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 2);
    assert!(rows[1][1] == "0" || rows[1][1] == "180");
    let p: f64 = rows[1][2].parse().unwrap();
    assert!((0.5..=1.0).contains(&p));
}
