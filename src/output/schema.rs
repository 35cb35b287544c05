//! The columns and rows of an output: the input's attribute columns, then ours (`SourceOID`,
//! `ImageId`, the label field, `Confidence`, `Status`).

use crate::model::colors::ClassColors;
use gdal::vector::{FieldValue, OGRFieldType, OGRwkbGeometryType};

/// Name of the confidence field (Esri's).
pub const CONFIDENCE_FIELD: &str = "Confidence";
/// Name of the per-row status field: empty when classified, else why not.
pub const STATUS_FIELD: &str = "Status";
/// Name of the field keeping the input feature id.
pub const SOURCE_ID_FIELD: &str = "SourceOID";
/// Name of the image id field of image-per-object runs.
pub const IMAGE_ID_FIELD: &str = "ImageId";

/// One attribute column carried over from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name (renamed on a clash with ours).
    pub name: String,
    /// OGR field type.
    pub field_type: OGRFieldType::Type,
    /// Width, 0 if unknown.
    pub width: i32,
    /// Precision, 0 if unknown.
    pub precision: i32,
}

/// The confidence of one row: a probability, or the `;`-joined scores of a multi-label model.
#[derive(Debug, Clone, PartialEq)]
pub enum Confidence {
    /// Top probability, 0..1.
    Single(f64),
    /// All class scores, `;`-joined (multi-label models).
    Multi(String),
}

/// The columns of the output.
#[derive(Debug, Clone)]
pub struct OutputSchema {
    /// Input attribute columns, with their output names (renamed on a clash with ours).
    pub input_fields: Vec<Column>,
    /// Name of the label field (`--class-label-field`).
    pub label_field: String,
    /// Whether confidence is text (multi-label) rather than a number.
    pub multi_label: bool,
    /// Whether rows carry the input feature id.
    pub with_source_id: bool,
    /// Whether rows carry an image id (image-per-object runs).
    pub with_image_id: bool,
    /// Geometry type and CRS (WKT) of the output, `None` for a table.
    pub geometry: Option<(OGRwkbGeometryType::Type, Option<String>)>,
    /// Class colours for the QGIS style written into GeoPackage outputs.
    pub style: Option<ClassColors>,
    /// Names of the per-class probability columns (`--all-scores`), in class order; empty when
    /// not asked for.
    pub score_fields: Vec<String>,
}

impl OutputSchema {
    /// Our own columns, in output order.
    pub(crate) fn own_fields(&self) -> Vec<(String, OGRFieldType::Type)> {
        let mut own = Vec::new();
        if self.with_source_id {
            own.push((SOURCE_ID_FIELD.to_string(), OGRFieldType::OFTInteger64));
        }
        if self.with_image_id {
            own.push((IMAGE_ID_FIELD.to_string(), OGRFieldType::OFTString));
        }
        own.push((self.label_field.clone(), OGRFieldType::OFTString));
        let confidence_type = if self.multi_label {
            OGRFieldType::OFTString
        } else {
            OGRFieldType::OFTReal
        };
        own.push((CONFIDENCE_FIELD.to_string(), confidence_type));
        own.extend(self.score_fields.iter().map(|n| (n.clone(), OGRFieldType::OFTReal)));
        own.push((STATUS_FIELD.to_string(), OGRFieldType::OFTString));
        own
    }

    /// Sets the per-class probability columns (`--all-scores`) for `classes`: each named after
    /// its class, made safe for every format (ASCII letters, digits and `_`; a leading digit gets
    /// `class_` before it, a name with no usable character is `class_<i>`) and unique among our
    /// columns (`_1`, `_2`... appended, case-insensitively).
    pub fn set_score_fields(&mut self, classes: &[&str]) {
        self.score_fields.clear();
        let mut taken: Vec<String> = self
            .own_fields()
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        for (i, class) in classes.iter().enumerate() {
            let safe: String = class
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
                .collect();
            let base = if safe.trim_matches('_').is_empty() {
                format!("class_{i}")
            } else if safe.starts_with(|c: char| c.is_ascii_digit()) {
                format!("class_{safe}")
            } else {
                safe
            };
            let mut name = base.clone();
            let mut k = 1;
            while taken.contains(&name.to_ascii_lowercase()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            taken.push(name.to_ascii_lowercase());
            self.score_fields.push(name);
        }
    }

    /// Renames input fields whose names clash (case-insensitively) with ours: see
    /// [`rename_clashing`].
    pub fn resolve_clashes(&mut self, name_limit: Option<usize>) {
        let own: Vec<String> = self.own_fields().into_iter().map(|(n, _)| n).collect();
        rename_clashing(self.input_fields.iter_mut().map(|f| &mut f.name), &own, name_limit);
    }
}

/// Renames the `inputs` names that clash (case-insensitively) with the `own` ones: `name_1`,
/// `name_2`... Names are compared as a format that keeps only `name_limit` characters writes
/// them (a Shapefile's input `ClassLabelX` would become our `ClassLabel`), and a renamed field is
/// cut to fit (`ClassLab_1`), so that our columns keep their names in the file.
pub fn rename_clashing<'n>(inputs: impl Iterator<Item = &'n mut String>, own: &[String], name_limit: Option<usize>) {
    let written = |name: &str| -> String {
        let kept: String = match name_limit {
            Some(limit) => name.chars().take(limit).collect(),
            None => name.to_string(),
        };
        kept.to_ascii_lowercase()
    };
    let own: Vec<String> = own.iter().map(|n| written(n)).collect();
    let inputs: Vec<&mut String> = inputs.collect();
    let mut taken: Vec<String> = own.clone();
    taken.extend(inputs.iter().map(|n| written(n)));
    for name in inputs {
        if !own.contains(&written(name)) {
            continue;
        }
        let base = name.clone();
        let renamed = (1..)
            .map(|k| {
                let suffix = format!("_{k}");
                let stem: String = match name_limit {
                    Some(limit) => base.chars().take(limit.saturating_sub(suffix.len())).collect(),
                    None => base.clone(),
                };
                stem + &suffix
            })
            .find(|candidate| !taken.contains(&written(candidate)))
            .unwrap_or(base);
        taken.push(written(&renamed));
        *name = renamed;
    }
}

/// One output row.
#[derive(Debug, Clone, Default)]
pub struct OutputRow {
    /// Geometry as WKB (the input's, unchanged).
    pub geometry_wkb: Option<Vec<u8>>,
    /// Input feature id.
    pub source_id: Option<i64>,
    /// Image id (path) for image-per-object runs.
    pub image_id: Option<String>,
    /// Input attribute values.
    pub fields: Vec<Option<FieldValue>>,
    /// Class label, `None` when the object was not classified.
    pub label: Option<String>,
    /// Confidence, `None` when the object was not classified.
    pub confidence: Option<Confidence>,
    /// Why the object was not classified.
    pub status: Option<&'static str>,
    /// Every class's probability, in class order (`--all-scores`), when classified.
    pub scores: Option<Vec<f64>>,
}

/// A field value as CSV text.
pub fn field_text(value: &FieldValue) -> String {
    match value {
        FieldValue::IntegerValue(v) => v.to_string(),
        FieldValue::Integer64Value(v) => v.to_string(),
        FieldValue::RealValue(v) => v.to_string(),
        FieldValue::StringValue(v) => v.clone(),
        FieldValue::DateValue(v) => v.to_string(),
        FieldValue::DateTimeValue(v) => v.to_string(),
        FieldValue::IntegerListValue(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
        FieldValue::Integer64ListValue(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
        FieldValue::RealListValue(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
        FieldValue::StringListValue(v) => v.join(";"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Column {
        Column {
            name: name.into(),
            field_type: OGRFieldType::OFTString,
            width: 0,
            precision: 0,
        }
    }

    #[test]
    fn clashing_input_fields_are_renamed() {
        let mut schema = OutputSchema {
            input_fields: vec![
                field("classlabel"),
                field("Confidence"),
                field("Confidence_1"),
                field("name"),
            ],
            label_field: "ClassLabel".into(),
            multi_label: false,
            with_source_id: true,
            with_image_id: false,
            geometry: None,
            style: None,
            score_fields: Vec::new(),
        };
        let mut shapefile = schema.clone();
        schema.resolve_clashes(None);
        let names: Vec<&str> = schema.input_fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["classlabel_1", "Confidence_2", "Confidence_1", "name"]);
        // Where names keep 10 characters, renamed fields are cut to fit, and a longer input name
        // that would be cut into one of ours is renamed too.
        shapefile.input_fields.push(field("ClassLabelX"));
        shapefile.input_fields.push(field("SourceOIDs"));
        shapefile.resolve_clashes(Some(10));
        let names: Vec<&str> = shapefile.input_fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "classlab_1",
                "Confiden_1",
                "Confiden_2",
                "name",
                "ClassLab_2",
                "SourceOIDs"
            ]
        );
    }

    #[test]
    fn score_fields_are_named_after_the_classes_safely_and_uniquely() {
        let mut schema = OutputSchema {
            input_fields: vec![field("red")],
            label_field: "ClassLabel".into(),
            multi_label: false,
            with_source_id: true,
            with_image_id: false,
            geometry: None,
            style: None,
            score_fields: Vec::new(),
        };
        schema.set_score_fields(&["red", "0", "dark green", "Status", "RED", "***", "été"]);
        assert_eq!(
            schema.score_fields,
            vec!["red", "class_0", "dark_green", "Status_1", "RED_1", "class_5", "_t_"]
        );
        // An input field named like a class is renamed, as on a clash with any of our columns
        // (red_1 is taken, case-insensitively, by RED_1).
        schema.resolve_clashes(None);
        assert_eq!(schema.input_fields[0].name, "red_2");
    }
}
