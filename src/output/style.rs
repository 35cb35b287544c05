//! A QGIS layer style for the output: a categorized renderer on the label field with the `.emd`
//! class colours, so the result opens coloured by class in QGIS. It goes into a `.qml` file
//! beside the output (the default), or into a GeoPackage's `layer_styles` table
//! ([`StyleMode`]).

use anyhow::{Context, Result};
use gdal::vector::OGRwkbGeometryType;
use gdal::Dataset;

use std::path::Path;

use crate::gdal_ffi::vector;
use crate::gdal_ffi::vector::FieldSpec;
use crate::messages;
use crate::model::colors::ClassColors;

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The QML document for `geometry` features labelled in `field` (its name as the output wrote
/// it): a categorized renderer on the label, one category per class in the `.emd` colours and
/// one for rows without a label; for a multi-label model, whose rows hold several labels joined
/// by `;`, a rule-based renderer with one rule per class (drawn for every row whose labels
/// include it) and one for rows without a label, so that every row is drawn.
pub fn qml(field: &str, geometry: OGRwkbGeometryType::Type, colors: &ClassColors, multi_label: bool) -> String {
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
            // Several labels of a multi-label row are drawn over each other: outlines only.
            _ if multi_label => format!(
                r#"<Option name="color" value="{r},{g},{b},0" type="QString"/><Option name="outline_color" value="{r},{g},{b},255" type="QString"/><Option name="outline_width" value="0.6" type="QString"/><Option name="style" value="no" type="QString"/>"#
            ),
            _ => format!(
                r#"<Option name="color" value="{r},{g},{b},160" type="QString"/><Option name="outline_color" value="{r},{g},{b},255" type="QString"/><Option name="outline_width" value="0.4" type="QString"/><Option name="style" value="solid" type="QString"/>"#
            ),
        };
        format!(
            r#"<symbol name="{name}" type="{symbol_type}" alpha="1" clip_to_extent="1" force_rhr="0"><layer class="{layer_class}" enabled="1" locked="0" pass="0"><Option type="Map">{options}</Option></layer></symbol>"#
        )
    };
    let mut entries = String::new();
    let mut symbols = String::new();
    // A QGIS expression's string literal and field reference.
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let column = format!("\"{}\"", field.replace('"', "\"\""));
    for (i, (name, color)) in colors.0.iter().enumerate() {
        let shown = xml_escape(name);
        if multi_label {
            let filter = format!("array_contains(string_to_array({column}, ';'), {})", literal(name));
            entries.push_str(&format!(
                r#"<rule key="{{class-{i}}}" filter="{}" symbol="{i}" label="{shown}"/>"#,
                xml_escape(&filter)
            ));
        } else {
            entries.push_str(&format!(
                r#"<category value="{shown}" symbol="{i}" label="{shown}" render="true"/>"#
            ));
        }
        symbols.push_str(&symbol(i, *color));
    }
    // Objects without a label (not classified, or no class above the threshold) in grey.
    let other = colors.0.len();
    symbols.push_str(&symbol(other, [160, 160, 160]));
    if multi_label {
        let filter = format!("coalesce({column}, '') = ''");
        entries.push_str(&format!(
            r#"<rule key="{{no-label}}" filter="{}" symbol="{other}" label="no label"/>"#,
            xml_escape(&filter)
        ));
        return format!(
            r#"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'><qgis version="3.28.0" styleCategories="Symbology"><renderer-v2 type="RuleRenderer" forceraster="0" symbollevels="0" enableorderby="0"><rules key="{{root}}">{entries}</rules><symbols>{symbols}</symbols></renderer-v2></qgis>"#
        );
    }
    entries.push_str(&format!(
        r#"<category value="" symbol="{other}" label="not classified" render="true"/>"#
    ));
    format!(
        r#"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'><qgis version="3.28.0" styleCategories="Symbology"><renderer-v2 type="categorizedSymbol" attr="{}" forceraster="0" symbollevels="0" enableorderby="0"><categories>{entries}</categories><symbols>{symbols}</symbols></renderer-v2></qgis>"#,
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
/// output it becomes, the layer (table) and its geometry column, and the label field it colours
/// by.
pub struct StylePlace<'a> {
    /// The temporary output file.
    pub temp: &'a Path,
    /// The output it becomes.
    pub output: &'a Path,
    /// The layer (table) as the temporary output holds it.
    pub table: &'a str,
    /// The layer as the output will hold it, which the style is stamped with (a single-layer
    /// file's layer is named after the file: the temporary name becomes the output's).
    pub layer: &'a str,
    /// Its geometry column.
    pub geometry_column: &'a str,
    /// The label field.
    pub field: &'a str,
}

/// Writes `qml` where `mode` says: a `.qml` beside the output, or a GeoPackage's `layer_styles`.
/// A `.qml` beside the output that holds another layer's style (another layer of the same
/// GeoPackage, or another output of the same name: `n.shp` beside `n.gpkg`), or a style this
/// program did not write, is never replaced: a GeoPackage layer's style then goes into its
/// `layer_styles`, and other formats go without one (said).
pub fn write(mode: StyleMode, dataset: &mut Dataset, place: &StylePlace<'_>, qml: &str) -> Result<()> {
    let gpkg = dataset.driver().short_name() == "GPKG";
    match mode {
        StyleMode::File => {
            let owner = owner(place.output, place.layer);
            let beside = place.output.with_extension("qml");
            let other = match owner_of(&beside) {
                None => None,
                Some(Owner::Layer(layer)) if layer == owner => None,
                Some(Owner::Layer(layer)) => Some(Owner::Other(match layer.split_once('|') {
                    Some((file, table)) => format!("layer {table} of {file}"),
                    None => layer,
                })),
                other => other,
            };
            match other {
                Some(Owner::Other(other)) if gpkg => {
                    messages::note(format_args!(
                        "{} holds the style of {other}: the style of layer {} goes into the GeoPackage's layer_styles",
                        beside.display(),
                        place.table
                    ));
                    write_gpkg_style(dataset, place.table, place.geometry_column, place.field, qml)
                }
                Some(Owner::Other(other)) => {
                    messages::warning(format_args!(
                        "no QGIS style written: {} holds the style of {other}; move it away, or name the output otherwise",
                        beside.display()
                    ));
                    Ok(())
                }
                _ => std::fs::write(place.temp.with_extension("qml"), stamped(qml, &owner))
                    .with_context(|| format!("writing the QGIS style beside {}", place.temp.display())),
            }
        }
        StyleMode::Embedded if gpkg => write_gpkg_style(dataset, place.table, place.geometry_column, place.field, qml),
        StyleMode::Embedded | StyleMode::None => Ok(()),
    }
}

/// Whose style a `.qml` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The layer (`output name|layer`) this program wrote it for.
    Layer(String),
    /// Another layer or output, or another program, in words.
    Other(String),
}

/// The stamp of the style of `layer` of `output`: the output's file name and the layer.
fn owner(output: &Path, layer: &str) -> String {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}|{layer}")
}

/// Whose style the `.qml` at `path` is (`None` when there is none).
pub fn owner_of(path: &Path) -> Option<Owner> {
    let text = std::fs::read_to_string(path).ok()?;
    let stamp = text
        .split(OWNER_PROPERTY)
        .nth(1)
        .and_then(|rest| rest.split("value=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(xml_unescape);
    Some(match stamp {
        Some(layer) => Owner::Layer(layer),
        None => Owner::Other("another program (not classify-objects)".to_string()),
    })
}

/// Whether the `.qml` at `path` is the style of `layer` of `output` (written for it).
pub fn is_style_of(path: &Path, output: &Path, layer: &str) -> bool {
    owner_of(path) == Some(Owner::Layer(owner(output, layer)))
}

/// The name of the custom property that says whose style a `.qml` is.
const OWNER_PROPERTY: &str = "name=\"classify-objects:layer\"";

/// `qml` with the custom property naming its layer.
fn stamped(qml: &str, owner: &str) -> String {
    let property = format!(
        r#"<customproperties><Option type="Map"><Option {OWNER_PROPERTY} value="{}" type="QString"/></Option></customproperties>"#,
        xml_escape(owner)
    );
    match qml.rfind("</qgis>") {
        Some(end) => format!("{}{property}{}", &qml[..end], &qml[end..]),
        None => qml.to_string(),
    }
}

fn xml_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

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

/// The description of the styles this program writes into `layer_styles`.
const STYLE_DESCRIPTION: &str = "Classes of the model, coloured as in its .emd";

/// Writes `qml` into the GeoPackage's `layer_styles` table as the default style of `table`, the
/// way QGIS does: the table is made through OGR (so GDAL reads it without complaint) with
/// QGIS's columns; this program's earlier style of the table is replaced, and others stop being
/// the default.
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
    let style_name: String = format!("{table} by {field}").chars().take(30).collect();
    // This program's earlier style of the layer (a replaced layer) goes; a user's stays, no
    // longer the default.
    for statement in [
        format!(
            "DELETE FROM layer_styles WHERE f_table_name = '{}' AND styleName = '{}' AND description = '{}'",
            sql_text(table),
            sql_text(&style_name),
            sql_text(STYLE_DESCRIPTION)
        ),
        format!(
            "UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = '{}'",
            sql_text(table)
        ),
    ] {
        dataset
            .execute_sql(statement, None, gdal::vector::sql::Dialect::DEFAULT)
            .with_context(context)?;
    }
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
    set(&mut feature, "styleName", &style_name)?;
    set(&mut feature, "styleQML", qml)?;
    set(&mut feature, "styleSLD", "")?;
    set(&mut feature, "description", STYLE_DESCRIPTION)?;
    set(&mut feature, "owner", "")?;
    set(&mut feature, "ui", "")?;
    let index = defn.field_index("useAsDefault").with_context(context)?;
    feature.set_field_integer(index, 1).with_context(context)?;
    feature.create(&layer).with_context(context)?;
    Ok(())
}
