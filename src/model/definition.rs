//! The Esri model definition (`.emd`): a JSON file describing the model, its chip size, bands,
//! classes and chip rules.
//!
//! Real `.emd` files are hand-edited and sloppy, so the reader is tolerant where Esri's own Python
//! is (`ModelConfiguration` as a string or `{"Name": ..}`, `Value|ClassValue`, `Name|ClassName`,
//! numbers and booleans given as strings, nulls, unknown keys) and strict, with a message naming
//! the key, where a wrong value would silently give wrong answers. See
//! `dlpk-emd-spec.md` §2 for the key table.

use anyhow::Result;
use serde_json::{Map, Value};

use crate::bail_input;
use crate::error;
use crate::messages;
use crate::model::colors::{default_color, ClassColors};

/// Largest chip side (`ImageWidth`, `ImageHeight`) accepted, in pixels.
pub const MAX_CHIP_SIDE: usize = 16_384;
/// Largest number of bands (`ExtractBands`) accepted.
pub const MAX_BANDS: usize = 1_024;
/// Largest batch accepted (`BatchSize`, the `batch_size` model argument).
pub const MAX_BATCH_SIZE: usize = 65_536;

/// The only `ModelType` this tool runs.
pub const OBJECT_CLASSIFICATION: &str = "ObjectClassification";

/// One band of `ExtractBands`: a 0-based index or a band name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BandSelector {
    /// 0-based band index, as Esri writes it.
    Index(usize),
    /// A band name, matched against the raster's band descriptions and colour interpretations.
    Name(String),
}

/// One entry of `Classes`; model output `i` is `Classes[i]` (array position, not `Value`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassInfo {
    /// `Value` / `ClassValue`, informational.
    pub value: Option<i64>,
    /// `Name` / `ClassName`: the label written to the output.
    pub name: String,
    /// `Color` as RGB, if given.
    pub color: Option<[u8; 3]>,
}

/// `ImageSpaceUsed`: selects the test-time augmentation transform set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSpace {
    /// `MAP_SPACE` (default): all 8 dihedral transforms.
    MapSpace,
    /// `PIXEL_SPACE`: identity and horizontal flip only.
    PixelSpace,
}

/// `MetaDataMode`: how outputs become labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelMode {
    /// One label per object (softmax, argmax): `Labeled_Tiles`, `Imagenet` or absent.
    SingleLabel,
    /// Any number of labels per object (sigmoid, threshold): `MultiLabeled_Tiles`.
    MultiLabel,
}

/// A cell size the model was trained for (`MinCellSize`, `MaxCellSize`), in the units of the
/// spatial reference `wkid` when the `.emd` names one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainedCellSize {
    /// The size.
    pub size: f64,
    /// Its spatial reference (EPSG or Esri code), when given.
    pub wkid: Option<u32>,
}

/// `NormalizationStats`, indexed by original band index (the reader indexes them with
/// `ExtractBands`). Values may be missing (`null`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NormalizationStats {
    /// `band_min_values`.
    pub band_min: Vec<Option<f64>>,
    /// `band_max_values`.
    pub band_max: Vec<Option<f64>>,
    /// `scaled_mean_values`.
    pub scaled_mean: Vec<Option<f64>>,
    /// `scaled_std_values`.
    pub scaled_std: Vec<Option<f64>>,
}

/// A parsed, checked model definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDefinition {
    /// `ModelType`; always [`OBJECT_CLASSIFICATION`] once parsed.
    pub model_type: String,
    /// `Framework`, informational.
    pub framework: Option<String>,
    /// `ModelConfiguration` (string form or `Name` of the object form), informational.
    pub model_configuration: Option<String>,
    /// `ModelName`, informational.
    pub model_name: Option<String>,
    /// `ModelFile`, normalised to forward slashes without a leading `./`.
    pub model_file: Option<String>,
    /// `InferenceFunction`, informational only: package code is never executed.
    pub inference_function: Option<String>,
    /// `ImageWidth`: chip width in pixels.
    pub image_width: usize,
    /// `ImageHeight`: chip height in pixels.
    pub image_height: usize,
    /// `ExtractBands`, in model channel order. Defaults to `[0, 1, 2]`.
    pub extract_bands: Vec<BandSelector>,
    /// `Classes`, in model output order.
    pub classes: Vec<ClassInfo>,
    /// `CropSizeFixed` (default 1).
    pub crop_size_fixed: bool,
    /// `BlackenAroundFeature` (default 0).
    pub blacken_around_feature: bool,
    /// `ImageSpaceUsed` (default `MAP_SPACE`).
    pub image_space: ImageSpace,
    /// `MetaDataMode`.
    pub label_mode: LabelMode,
    /// `BatchSize`: when present it wins over the `batch_size` model argument, as in ArcGIS.
    pub batch_size: Option<usize>,
    /// `DataRange`: the chip is rescaled from the raster's value range to this range.
    pub data_range: Option<[f64; 2]>,
    /// `MinCellSize` and `MaxCellSize`: the cell sizes the model was trained for (their `x`, in
    /// their `spatialReference` when they give one), when given.
    pub cell_size_range: (Option<TrainedCellSize>, Option<TrainedCellSize>),
    /// `NormalizationStats`; ImageNet statistics on a 0-255 scale are used when absent.
    pub normalization: Option<NormalizationStats>,
    /// `test_time_augmentation`: default of the model argument of the same name.
    pub test_time_augmentation: bool,
    /// `ModelFormat`: `NCHW` (default) or `NHWC`.
    pub channels_last: bool,
    /// `ModelParameters.backbone` (arcgis.learn models), e.g. `resnet34`.
    pub backbone: Option<String>,
    /// `IsMultispectral` (arcgis.learn models).
    pub multispectral: bool,
    /// `ExpMap`: the package offers the `explainability_map` argument (arcgis.learn 2.4).
    pub explainability_map: bool,
}

impl ModelDefinition {
    /// Parses `.emd` text. `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<ModelDefinition> {
        let text = text.trim_start_matches('\u{feff}');
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => bail_input!(
                "model definition {origin} is not valid JSON ({err}); fix the .emd file (a missing comma or quote is common in hand-edited files)"
            ),
        };
        let Value::Object(map) = value else {
            bail_input!("model definition {origin} is not a JSON object; an .emd file holds one {{...}} object");
        };
        Reader { map: &map, origin }.definition()
    }

    /// The class names, in model output order.
    pub fn class_names(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.name.as_str()).collect()
    }

    /// Values (`f32`) in one chip, `ExtractBands` x `ImageHeight` x `ImageWidth` (bounded by the
    /// parser's limits, so this cannot overflow).
    pub fn values_per_chip(&self) -> usize {
        self.extract_bands.len() * self.image_height * self.image_width
    }

    /// The classes with their `Color`, or a distinct default colour where none is given.
    pub fn class_colors(&self) -> ClassColors {
        ClassColors(
            self.classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), c.color.unwrap_or(default_color(i))))
                .collect(),
        )
    }
}

/// Reads keys out of the JSON object with Esri's tolerance and our error messages.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    origin: &'a str,
}

impl Reader<'_> {
    fn definition(&self) -> Result<ModelDefinition> {
        let origin = self.origin;
        let model_type = match self.string("ModelType")? {
            Some(t) => t,
            None => bail_input!(
                "model definition {origin} has no \"ModelType\"; add \"ModelType\": \"ObjectClassification\""
            ),
        };
        if model_type != OBJECT_CLASSIFICATION {
            bail_input!(
                "model definition {origin} has \"ModelType\": \"{model_type}\"; classify-objects runs \"ObjectClassification\" models only (use a model trained for object classification)"
            );
        }
        let image_width = self.required_size("ImageWidth")?;
        let image_height = self.required_size("ImageHeight")?;
        let classes = self.classes()?;
        let label_mode = match self.string("MetaDataMode")?.as_deref() {
            Some("MultiLabeled_Tiles") => LabelMode::MultiLabel,
            _ => LabelMode::SingleLabel,
        };
        self.check_class_names(&classes, label_mode)?;
        let image_space = match self.string("ImageSpaceUsed")?.as_deref() {
            None | Some("MAP_SPACE") => ImageSpace::MapSpace,
            Some("PIXEL_SPACE") => ImageSpace::PixelSpace,
            Some(other) => bail_input!(
                "model definition {origin} has \"ImageSpaceUsed\": \"{other}\"; use \"MAP_SPACE\" or \"PIXEL_SPACE\""
            ),
        };
        let channels_last = match self.string("ModelFormat")?.as_deref() {
            None | Some("NCHW") => false,
            Some("NHWC") => true,
            Some(other) => {
                bail_input!("model definition {origin} has \"ModelFormat\": \"{other}\"; use \"NCHW\" or \"NHWC\"")
            }
        };
        let batch_size = match self.integer("BatchSize")? {
            None => None,
            Some(n) if (1..=MAX_BATCH_SIZE as i64).contains(&n) => Some(n as usize),
            Some(n) => bail_input!(
                "model definition {origin} has \"BatchSize\": {n}; it must be between 1 and {MAX_BATCH_SIZE} (or remove the key)"
            ),
        };
        Ok(ModelDefinition {
            model_type,
            framework: self.string("Framework")?,
            model_configuration: self.model_configuration()?,
            model_name: self.string("ModelName")?,
            model_file: self.string("ModelFile")?.map(|p| normalize_package_path(&p)),
            inference_function: self.string("InferenceFunction")?,
            image_width,
            image_height,
            extract_bands: self.extract_bands()?,
            classes,
            crop_size_fixed: self.flag("CropSizeFixed")?.unwrap_or(true),
            blacken_around_feature: self.flag("BlackenAroundFeature")?.unwrap_or(false),
            image_space,
            label_mode,
            batch_size,
            data_range: self.data_range()?,
            cell_size_range: (self.cell_size("MinCellSize"), self.cell_size("MaxCellSize")),
            normalization: self.normalization()?,
            test_time_augmentation: self.flag("test_time_augmentation")?.unwrap_or(false),
            channels_last,
            backbone: self.backbone()?,
            multispectral: self.flag("IsMultispectral")?.unwrap_or(false),
            explainability_map: self.flag("ExpMap")?.unwrap_or(false),
        })
    }

    fn backbone(&self) -> Result<Option<String>> {
        match self.get("ModelParameters") {
            Some(Value::Object(params)) => match params.get("backbone") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => bail_input!(
                    "model definition {} has \"ModelParameters\": {{\"backbone\": {other}}}, expected a backbone name such as \"resnet34\"",
                    self.origin
                ),
            },
            _ => Ok(None),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => bail_input!(
                "model definition {} has \"{key}\": {other}, expected a string",
                self.origin
            ),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| {
                integer_of(v).ok_or_else(|| {
                    error::input_error(format!(
                        "model definition {} has \"{key}\": {v}, expected an integer",
                        self.origin
                    ))
                })
            })
            .transpose()
    }

    fn required_size(&self, key: &str) -> Result<usize> {
        match self.integer(key)? {
            Some(n) if (1..=MAX_CHIP_SIDE as i64).contains(&n) => Ok(n as usize),
            Some(n) => bail_input!(
                "model definition {} has \"{key}\": {n}; the chip size must be between 1 and {MAX_CHIP_SIDE} pixels",
                self.origin
            ),
            None => bail_input!(
                "model definition {} has no \"{key}\"; add the model's input chip size in pixels (e.g. \"{key}\": 224)",
                self.origin
            ),
        }
    }

    /// An Esri 0/1 flag: accepts numbers, booleans and strings such as "1", "true", "yes".
    fn flag(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match truthy(v) {
                Some(b) => Ok(Some(b)),
                None => bail_input!(
                    "model definition {} has \"{key}\": {v}, expected 0/1 or true/false",
                    self.origin
                ),
            },
        }
    }

    fn model_configuration(&self) -> Result<Option<String>> {
        match self.get("ModelConfiguration") {
            Some(Value::Object(obj)) => Ok(obj.get("Name").and_then(Value::as_str).map(String::from)),
            _ => self.string("ModelConfiguration"),
        }
    }

    fn extract_bands(&self) -> Result<Vec<BandSelector>> {
        let Some(value) = self.get("ExtractBands") else {
            return Ok(vec![
                BandSelector::Index(0),
                BandSelector::Index(1),
                BandSelector::Index(2),
            ]);
        };
        let Value::Array(items) = value else {
            bail_input!(
                "model definition {} has \"ExtractBands\": {value}, expected a list such as [0, 1, 2]",
                self.origin
            );
        };
        if items.is_empty() || items.len() > MAX_BANDS {
            bail_input!(
                "model definition {} has {} \"ExtractBands\"; list 1 to {MAX_BANDS} 0-based bands the model reads, e.g. [0, 1, 2]",
                self.origin,
                items.len()
            );
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) if s.trim().parse::<usize>().is_ok() => {
                    Ok(BandSelector::Index(s.trim().parse().unwrap_or_default()))
                }
                Value::String(s) => Ok(BandSelector::Name(s.clone())),
                other => match integer_of(other) {
                    Some(i) if i >= 0 => Ok(BandSelector::Index(i as usize)),
                    _ => bail_input!(
                        "model definition {} has {other} in \"ExtractBands\"; use 0-based band indices or band names",
                        self.origin
                    ),
                },
            })
            .collect()
    }

    fn classes(&self) -> Result<Vec<ClassInfo>> {
        let origin = self.origin;
        let items = match self.get("Classes") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => bail_input!(
                "model definition {origin} has no \"Classes\"; list one {{\"Value\": .., \"Name\": ..}} per model output"
            ),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let Value::Object(class) = item else {
                    bail_input!("model definition {origin}: Classes[{i}] is not an object");
                };
                let field = |a: &str, b: &str| class.get(a).or_else(|| class.get(b)).filter(|v| !v.is_null());
                let name = match field("Name", "ClassName") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => bail_input!(
                        "model definition {origin}: Classes[{i}] has no \"Name\"; every class needs the label to write"
                    ),
                };
                let value = field("Value", "ClassValue").and_then(integer_of);
                let color = match field("Color", "Colour") {
                    Some(Value::Array(rgb)) if rgb.len() >= 3 => {
                        let c = |k: usize| integer_of(&rgb[k]).map(|v| v.clamp(0, 255) as u8);
                        match (c(0), c(1), c(2)) {
                            (Some(r), Some(g), Some(b)) => Some([r, g, b]),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                Ok(ClassInfo { value, name, color })
            })
            .collect()
    }

    /// Class names are labels: each one written, and told apart from the others (and, in a
    /// multi-label model, from the `;` that joins them).
    fn check_class_names(&self, classes: &[ClassInfo], label_mode: LabelMode) -> Result<()> {
        let origin = self.origin;
        for (i, class) in classes.iter().enumerate() {
            if class.name.trim().is_empty() {
                bail_input!(
                    "model definition {origin}: Classes[{i}] has an empty \"Name\"; every class needs a label to write"
                );
            }
            if let Some(first) = classes[..i].iter().position(|c| c.name == class.name) {
                bail_input!(
                    "model definition {origin}: Classes[{first}] and Classes[{i}] are both named {}; give each class its own name",
                    messages::quoted(&class.name)
                );
            }
            if label_mode == LabelMode::MultiLabel && class.name.contains(';') {
                bail_input!(
                    "model definition {origin}: Classes[{i}] is named {} but a multi-label model joins its labels with ';'; rename the class without ';'",
                    messages::quoted(&class.name)
                );
            }
        }
        Ok(())
    }

    /// A cell size given as a number or as Esri's `{"x": .., "y": .., "spatialReference": ..}`
    /// (its `x`, and the spatial reference's `latestWkid` or `wkid`); anything else is ignored,
    /// as Esri's tools do.
    fn cell_size(&self, key: &str) -> Option<TrainedCellSize> {
        let value = self.get(key)?;
        let size = number_of(value)
            .or_else(|| value.get("x").and_then(number_of))
            .filter(|v| v.is_finite() && *v > 0.0)?;
        let reference = value.get("spatialReference");
        let wkid = ["latestWkid", "wkid"]
            .iter()
            .find_map(|k| reference.and_then(|r| r.get(*k)).and_then(number_of))
            .filter(|w| *w > 0.0 && w.fract() == 0.0 && *w < f64::from(u32::MAX))
            .map(|w| w as u32);
        Some(TrainedCellSize { size, wkid })
    }

    fn data_range(&self) -> Result<Option<[f64; 2]>> {
        let Some(value) = self.get("DataRange") else {
            return Ok(None);
        };
        let numbers: Option<Vec<f64>> = value
            .as_array()
            .map(|items| items.iter().map(number_of).collect::<Option<Vec<f64>>>())
            .unwrap_or(None);
        match numbers.as_deref() {
            Some([lo, hi]) if lo < hi => Ok(Some([*lo, *hi])),
            _ => bail_input!(
                "model definition {} has \"DataRange\": {value}; expected [min, max] with min < max",
                self.origin
            ),
        }
    }

    fn normalization(&self) -> Result<Option<NormalizationStats>> {
        let Some(value) = self.get("NormalizationStats") else {
            return Ok(None);
        };
        let Value::Object(stats) = value else {
            bail_input!(
                "model definition {} has \"NormalizationStats\" that is not an object",
                self.origin
            );
        };
        let list = |key: &str| -> Result<Vec<Option<f64>>> {
            match stats.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.iter().map(number_of).collect()),
                Some(other) => bail_input!(
                    "model definition {}: NormalizationStats.{key} is {other}, expected a list of numbers",
                    self.origin
                ),
            }
        };
        Ok(Some(NormalizationStats {
            band_min: list("band_min_values")?,
            band_max: list("band_max_values")?,
            scaled_mean: list("scaled_mean_values")?,
            scaled_std: list("scaled_std_values")?,
        }))
    }
}

/// A number given as a JSON number or a numeric string.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An integer given as a JSON integer, an integral float or a numeric string.
fn integer_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        }
        _ => None,
    }
}

/// Esri's truthiness: `true`, non-zero numbers, and the strings "true", "1", "t", "y", "yes".
pub fn truthy(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => parse_truthy(s),
        _ => None,
    }
}

/// Parses a boolean the way Esri's Python raster functions do; `None` if it is neither.
pub fn parse_truthy(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "y" | "yes" => Some(true),
        "false" | "0" | "f" | "n" | "no" | "" => Some(false),
        _ => None,
    }
}

/// Normalises a path written in an `.emd` (often Windows style, `.\model.onnx`) to a forward-slash
/// path without a leading `./`.
pub fn normalize_package_path(path: &str) -> String {
    let mut p = path.trim().replace('\\', "/");
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.to_string();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModelDefinition> {
        ModelDefinition::parse(json, "test.emd")
    }

    const MINIMAL: &str = r#"{"ModelType":"ObjectClassification","ImageWidth":64,"ImageHeight":32,
        "Classes":[{"Value":1,"Name":"a"},{"ClassValue":"2","ClassName":"b","Color":[1,2,3]}]}"#;

    #[test]
    fn minimal_definition_gets_esri_defaults() {
        let d = parse(MINIMAL).unwrap();
        assert_eq!((d.image_width, d.image_height), (64, 32));
        assert_eq!(
            d.extract_bands,
            vec![BandSelector::Index(0), BandSelector::Index(1), BandSelector::Index(2)]
        );
        assert!(d.crop_size_fixed);
        assert!(!d.blacken_around_feature);
        assert_eq!(d.image_space, ImageSpace::MapSpace);
        assert_eq!(d.label_mode, LabelMode::SingleLabel);
        assert_eq!(d.class_names(), vec!["a", "b"]);
        assert_eq!(d.classes[1].value, Some(2));
        assert_eq!(d.classes[1].color, Some([1, 2, 3]));
    }

    #[test]
    fn tolerates_strings_for_numbers_and_flags() {
        let d = parse(
            r#"{"ModelType":"ObjectClassification","ImageWidth":"224","ImageHeight":224.0,
            "CropSizeFixed":"0","BlackenAroundFeature":true,"ExtractBands":["2","1",0,"NIR"],
            "ModelConfiguration":{"Name":"KerasClassifier"},"ModelFile":".\\sub\\m.onnx",
            "BatchSize":"8","Classes":[{"Value":0,"Name":"x"}],"resize_to":null}"#,
        )
        .unwrap();
        assert_eq!(d.image_width, 224);
        assert!(!d.crop_size_fixed);
        assert!(d.blacken_around_feature);
        assert_eq!(
            d.extract_bands,
            vec![
                BandSelector::Index(2),
                BandSelector::Index(1),
                BandSelector::Index(0),
                BandSelector::Name("NIR".into())
            ]
        );
        assert_eq!(d.model_configuration.as_deref(), Some("KerasClassifier"));
        assert_eq!(d.model_file.as_deref(), Some("sub/m.onnx"));
        assert_eq!(d.batch_size, Some(8));
    }

    #[test]
    fn rejects_what_would_give_wrong_answers() {
        let cases = [
            (
                r#"{"ModelType":"ObjectDetection","ImageWidth":1,"ImageHeight":1,"Classes":[{"Name":"a"}]}"#,
                "ObjectDetection",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageHeight":1,"Classes":[{"Name":"a"}]}"#,
                "ImageWidth",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":1,"ImageHeight":1,"Classes":[]}"#,
                "Classes",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":1,"ImageHeight":1,"Classes":[{"Value":1}]}"#,
                "Name",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":0,"ImageHeight":1,"Classes":[{"Name":"a"}]}"#,
                "between 1 and 16384",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":1e30,"ImageHeight":1,"Classes":[{"Name":"a"}]}"#,
                "between 1 and 16384",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":100000,"ImageHeight":1,"Classes":[{"Name":"a"}]}"#,
                "ImageWidth",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":1,"ImageHeight":1,"Classes":[{"Name":"a"}],"BatchSize":1000000000000}"#,
                "BatchSize",
            ),
            (
                r#"{"ModelType":"ObjectClassification","ImageWidth":1,"ImageHeight":1,"Classes":[{"Name":"a"}],"DataRange":[1,0]}"#,
                "DataRange",
            ),
            (
                r#"{"ModelType": "ObjectClassification" "ImageWidth": 1}"#,
                "not valid JSON",
            ),
            ("[1,2]", "not a JSON object"),
        ];
        for (json, needle) in cases {
            let err = parse(json).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "{json}");
            let message = err.to_string();
            assert!(message.contains(needle), "{message} should mention {needle}");
            assert!(message.contains("test.emd"), "{message} should name the file");
        }
    }

    #[test]
    fn normalizes_windows_paths() {
        assert_eq!(normalize_package_path(".\\Damage_Model.h5"), "Damage_Model.h5");
        assert_eq!(normalize_package_path("./a/./b.onnx"), "a/./b.onnx");
        assert_eq!(normalize_package_path("models\\x.onnx"), "models/x.onnx");
    }
}
