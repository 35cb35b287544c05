//! A QGIS layer style for the output GeoPackage: the `layer_styles` table QGIS reads, holding a
//! categorized renderer on the label field with the `.emd` class colours, used as the default
//! style, so the result opens coloured by class in QGIS.

use anyhow::{Context, Result};
use gdal::vector::OGRwkbGeometryType;
use gdal::Dataset;

/// Classes to colour: name and RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassColors(pub Vec<(String, [u8; 3])>);

/// A distinct display colour for class `i`, for classes the `.emd` gives none.
pub fn default_color(i: usize) -> [u8; 3] {
    const DEFAULTS: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    DEFAULTS[i % DEFAULTS.len()]
}

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

/// Writes the style into the GeoPackage's `layer_styles` table as the default style of `table`.
pub fn write_gpkg_style(
    dataset: &Dataset,
    table: &str,
    field: &str,
    geometry: OGRwkbGeometryType::Type,
    colors: &ClassColors,
) -> Result<()> {
    let sql_text = |s: &str| s.replace('\'', "''");
    let statements = [
        "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), \
         f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, \
         styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"
            .to_string(),
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) SELECT 'layer_styles', 'attributes', 'layer_styles', \
         'QGIS layer styles' WHERE NOT EXISTS (SELECT 1 FROM gpkg_contents WHERE table_name = 'layer_styles')"
            .to_string(),
        format!("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = '{}'", sql_text(table)),
        format!(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, styleQML, styleSLD, \
             useAsDefault, description, owner, ui) VALUES ('', '', '{}', 'geom', '{}', '{}', '', 1, 'Classes of the model, coloured as in its .emd', '', '')",
            sql_text(table),
            sql_text(&format!("{table} by {field}")),
            sql_text(&qml(field, geometry, colors))
        ),
    ];
    for statement in statements {
        dataset
            .execute_sql(&statement, None, gdal::vector::sql::Dialect::DEFAULT)
            .with_context(|| "writing the QGIS layer style".to_string())?;
    }
    Ok(())
}
