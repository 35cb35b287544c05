//! A QGIS layer style for the output: a categorized renderer on the label field with the `.emd`
//! class colours, so the result opens coloured by class in QGIS. It goes into a `.qml` file
//! beside the output (the default), or into a GeoPackage's `layer_styles` table
//! ([`StyleMode`]).

use anyhow::{Context, Result};
use gdal::vector::OGRwkbGeometryType;
use gdal::Dataset;

use crate::gdal_ffi::vector;
use crate::gdal_ffi::vector::FieldSpec;
use crate::model::colors::ClassColors;

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The QML document: a categorized renderer on `field` for `geometry` features.
pub fn qml(field: &str, geometry: OGRwkbGeometryType::Type, colors: &ClassColors) -> String {
    let flat = gdal::vector::geometry_type_flatten(geometry);
    let (symbol_type, layer_class) = match flat {
        OGRwkbGeometryType::wkbPoint | OGRwkbGeometryType::wkbMultiPoint => ("marker", "SimpleMarker"),
        OGRwkbGeometryType::wkbLineString | OGRwkbGeometryType::wkbMultiLineString => ("line", "SimpleLine"),
        _ => ("fill", "SimpleFill"),
    };
    let symbol = |name: usize, [r, g, b]: [u8; 3]| {
        let options = match symbol_type {
            "marker" => format!(
                r#"<Option name="color" value="{r},{g},{b},255" type="QString"/><Option name="name" value="circle" type="QString"/><Option name="size" value="2.6" type="QString"/><Option name="outline_color" value="35,35,35,255" type="QString"/>"#
            ),
            "line" => format!(
                r#"<Option name="line_color" value="{r},{g},{b},255" type="QString"/><Option name="line_width" value="0.6" type="QString"/>"#
            ),
            _ => format!(
                r#"<Option name="color" value="{r},{g},{b},160" type="QString"/><Option name="outline_color" value="{r},{g},{b},255" type="QString"/><Option name="outline_width" value="0.4" type="QString"/><Option name="style" value="solid" type="QString"/>"#
            ),
        };
        format!(
            r#"<symbol name="{name}" type="{symbol_type}" alpha="1" clip_to_extent="1" force_rhr="0"><layer class="{layer_class}" enabled="1" locked="0" pass="0"><Option type="Map">{options}</Option></layer></symbol>"#
        )
    };
    let mut categories = String::new();
    let mut symbols = String::new();
    for (i, (name, color)) in colors.0.iter().enumerate() {
        let name = xml_escape(name);
        categories.push_str(&format!(
            r#"<category value="{name}" symbol="{i}" label="{name}" render="true"/>"#
        ));
        symbols.push_str(&symbol(i, *color));
    }
    // Objects that could not be classified (empty label) in grey.
    let other = colors.0.len();
    categories.push_str(&format!(
        r#"<category value="" symbol="{other}" label="not classified" render="true"/>"#
    ));
    symbols.push_str(&symbol(other, [160, 160, 160]));
    format!(
        r#"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'><qgis version="3.28.0" styleCategories="Symbology"><renderer-v2 type="categorizedSymbol" attr="{}" forceraster="0" symbollevels="0" enableorderby="0"><categories>{categories}</categories><symbols>{symbols}</symbols></renderer-v2></qgis>"#,
        xml_escape(field)
    )
}

/// Where the QGIS style of an output goes (`--qgis-style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StyleMode {
    /// A `.qml` file beside the output (QGIS loads it as the layer's default style); the output
    /// itself keeps one layer, so plain `ogr2ogr` conversions work.
    #[default]
    File,
    /// Inside a GeoPackage output, in the `layer_styles` table QGIS reads (a second table, which
    /// `ogr2ogr` then needs the layer name to skip).
    Embedded,
    /// No style.
    None,
}

/// Where a layer's style goes: the temporary output (a `.qml` replaces its extension), the
/// layer (table) and its geometry column, and the label field it colours by.
pub struct StylePlace<'a> {
    /// The temporary output file.
    pub temp: &'a std::path::Path,
    /// The layer.
    pub table: &'a str,
    /// Its geometry column.
    pub geometry_column: &'a str,
    /// The label field.
    pub field: &'a str,
}

/// Writes `qml` where `mode` says: a `.qml` beside the output, or a GeoPackage's `layer_styles`.
pub fn write(mode: StyleMode, dataset: &mut Dataset, place: &StylePlace<'_>, qml: &str) -> Result<()> {
    match mode {
        StyleMode::File => std::fs::write(place.temp.with_extension("qml"), qml)
            .with_context(|| format!("writing the QGIS style beside {}", place.temp.display())),
        StyleMode::Embedded if dataset.driver().short_name() == "GPKG" => {
            write_gpkg_style(dataset, place.table, place.geometry_column, place.field, qml)
        }
        StyleMode::Embedded | StyleMode::None => Ok(()),
    }
}

/// Writes `qml` into the GeoPackage's `layer_styles` table as the default style of `table`, the
/// way QGIS does: the table is made through OGR (so GDAL reads it without complaint) with
/// The GeoPackage table QGIS keeps layer styles in.
const STYLES: &str = "layer_styles";

/// Creates the `layer_styles` table with the columns QGIS gives it.
fn create_styles_table(dataset: &mut Dataset) -> Result<()> {
    use gdal::vector::{LayerOptions, OGRFieldType};
    let layer = dataset
        .create_layer(LayerOptions {
            name: STYLES,
            ty: OGRwkbGeometryType::wkbNone,
            ..Default::default()
        })
        .context("writing the QGIS layer style")?;
    let columns: [(&str, u32, i32); 12] = [
        ("f_table_catalog", OGRFieldType::OFTString, 256),
        ("f_table_schema", OGRFieldType::OFTString, 256),
        ("f_table_name", OGRFieldType::OFTString, 256),
        ("f_geometry_column", OGRFieldType::OFTString, 256),
        ("styleName", OGRFieldType::OFTString, 30),
        ("styleQML", OGRFieldType::OFTString, 0),
        ("styleSLD", OGRFieldType::OFTString, 0),
        ("useAsDefault", OGRFieldType::OFTInteger, 0),
        ("description", OGRFieldType::OFTString, 0),
        ("owner", OGRFieldType::OFTString, 30),
        ("ui", OGRFieldType::OFTString, 30),
        ("update_time", OGRFieldType::OFTDateTime, 0),
    ];
    for (name, field_type, width) in columns {
        let field = FieldSpec {
            name,
            field_type,
            width,
            boolean: name == "useAsDefault",
            default: (name == "update_time").then_some("CURRENT_TIMESTAMP"),
        };
        if let Err(err) = vector::create_field(&layer, &field) {
            anyhow::bail!("writing the QGIS layer style: {err}");
        }
    }
    Ok(())
}

/// QGIS's columns, and earlier styles of the table stop being the default.
pub fn write_gpkg_style(
    dataset: &mut Dataset,
    table: &str,
    geometry_column: &str,
    field: &str,
    qml: &str,
) -> Result<()> {
    use gdal::vector::{Feature, LayerAccess};
    let context = || "writing the QGIS layer style".to_string();
    if dataset.layer_by_name(STYLES).is_err() {
        create_styles_table(dataset)?;
    }
    let sql_text = |s: &str| s.replace('\'', "''");
    dataset
        .execute_sql(
            format!(
                "UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = '{}'",
                sql_text(table)
            ),
            None,
            gdal::vector::sql::Dialect::DEFAULT,
        )
        .with_context(context)?;
    let layer = dataset.layer_by_name(STYLES).with_context(context)?;
    let mut feature = Feature::new(layer.defn()).with_context(context)?;
    let defn = layer.defn();
    let set = |feature: &mut Feature, name: &str, value: &str| -> Result<()> {
        let index = defn.field_index(name).with_context(context)?;
        feature.set_field_string(index, value).with_context(context)
    };
    set(&mut feature, "f_table_catalog", "")?;
    set(&mut feature, "f_table_schema", "")?;
    set(&mut feature, "f_table_name", table)?;
    set(&mut feature, "f_geometry_column", geometry_column)?;
    set(
        &mut feature,
        "styleName",
        &format!("{table} by {field}").chars().take(30).collect::<String>(),
    )?;
    set(&mut feature, "styleQML", qml)?;
    set(&mut feature, "styleSLD", "")?;
    set(
        &mut feature,
        "description",
        "Classes of the model, coloured as in its .emd",
    )?;
    set(&mut feature, "owner", "")?;
    set(&mut feature, "ui", "")?;
    let index = defn.field_index("useAsDefault").with_context(context)?;
    feature.set_field_integer(index, 1).with_context(context)?;
    feature.create(&layer).with_context(context)?;
    Ok(())
}
