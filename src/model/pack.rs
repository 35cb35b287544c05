//! The package `pack` writes for a plain ONNX classifier, so that users with an ONNX model need
//! not hand-write an `.emd`: the `.emd` made from what the user declares and the model's input
//! shape, and the zip holding it with the model.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bail_input;
use crate::messages;
use crate::model::colors::default_color;
use crate::model::definition::MAX_CHIP_SIDE;

/// What `pack` writes: the ONNX model, its classes and chip rules, and where.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The ONNX classifier.
    pub onnx: PathBuf,
    /// Class names in model output order, comma-separated.
    pub classes: String,
    /// Chip width and height (default: the model's fixed input size).
    pub chip_size: Option<usize>,
    /// Chip width, if not square.
    pub chip_width: Option<usize>,
    /// Chip height, if not square.
    pub chip_height: Option<usize>,
    /// 0-based raster bands, comma-separated (`ExtractBands`).
    pub bands: String,
    /// `CropSizeFixed` 0.
    pub variable_crop: bool,
    /// `BlackenAroundFeature` 1.
    pub blacken_around_feature: bool,
    /// `MIN,MAX,MEAN,STD` once or per band (`NormalizationStats`); empty for ImageNet.
    pub scale: Vec<String>,
    /// `MetaDataMode` `MultiLabeled_Tiles`.
    pub multi_label: bool,
    /// `ImageSpaceUsed` `PIXEL_SPACE`.
    pub pixel_space: bool,
    /// `ModelName`.
    pub model_name: Option<String>,
    /// The package to write (its name gives the `.emd`'s).
    pub output: PathBuf,
}

/// The lists `pack` was given, checked: class names and 0-based bands.
#[derive(Debug, Clone)]
pub struct Declared {
    /// Class names in model output order.
    pub classes: Vec<String>,
    /// 0-based raster bands (`ExtractBands`).
    pub bands: Vec<usize>,
}

impl Declared {
    /// Checks `--classes` and `--bands`, before anything is loaded.
    pub fn from_options(options: &PackOptions) -> Result<Declared> {
        let classes: Vec<String> = options
            .classes
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if classes.is_empty() {
            bail_input!("--classes lists no class; give the names in model output order, e.g. --classes cat,dog");
        }
        let bands: Vec<usize> = match options.bands.split(',').map(|b| b.trim().parse::<usize>()).collect() {
            Ok(bands) => bands,
            Err(_) => bail_input!(
                "--bands \"{}\" is not a list of 0-based band indices such as 0,1,2",
                messages::shown(&options.bands)
            ),
        };
        Ok(Declared { classes, bands })
    }
}

/// The `.emd` of the package: its file name and text, for a model whose input has `shape`
/// (`[batch, channels, height, width]`, negative where free).
pub fn definition_text(options: &PackOptions, declared: &Declared, shape: &[i64]) -> Result<(String, String)> {
    let (width, height) = chip_size(options, shape)?;
    let normalization = normalization_stats(&options.scale, &declared.bands)?;
    let model_file = options
        .onnx
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.to_ascii_lowercase().ends_with(".onnx"))
        .unwrap_or_else(|| "model.onnx".into());
    let stem = options
        .output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let mut emd = json!({
        "Framework": "ONNX",
        "ModelConfiguration": "ONNXClassifier",
        "ModelType": "ObjectClassification",
        "ModelName": options.model_name.clone().unwrap_or_else(|| stem.clone()),
        "ModelFile": model_file,
        "ModelFormat": "NCHW",
        "ImageWidth": width,
        "ImageHeight": height,
        "ExtractBands": declared.bands,
        "CropSizeFixed": if options.variable_crop { 0 } else { 1 },
        "BlackenAroundFeature": if options.blacken_around_feature { 1 } else { 0 },
        "ImageSpaceUsed": if options.pixel_space { "PIXEL_SPACE" } else { "MAP_SPACE" },
        "MetaDataMode": if options.multi_label { "MultiLabeled_Tiles" } else { "Labeled_Tiles" },
        "Classes": declared.classes.iter().enumerate().map(|(i, name)| json!({
            "Value": i,
            "Name": name,
            "Color": default_color(i),
        })).collect::<Vec<_>>(),
    });
    if let Some(stats) = normalization {
        emd["NormalizationStats"] = stats;
    }
    Ok((format!("{stem}.emd"), serde_json::to_string_pretty(&emd)? + "\n"))
}

/// The chip size: given, or the model's fixed input size.
fn chip_size(options: &PackOptions, shape: &[i64]) -> Result<(usize, usize)> {
    let model_dim = |k: usize| shape.get(k).copied().filter(|&d| d > 0).map(|d| d as usize);
    let width = options.chip_width.or(options.chip_size).or(model_dim(3));
    let height = options.chip_height.or(options.chip_size).or(model_dim(2));
    let (Some(width), Some(height)) = (width, height) else {
        bail_input!(
            "the model {} takes any chip size; give one with --chip-size (or --chip-width and --chip-height)",
            options.onnx.display()
        );
    };
    let limit = MAX_CHIP_SIDE;
    if !(1..=limit).contains(&width) || !(1..=limit).contains(&height) {
        bail_input!(
            "chip size {width} x {height} is not between 1 and {limit} pixels a side; give --chip-size within it"
        );
    }
    Ok((width, height))
}

/// Writes the package to `path`: the `.emd` and the model, deflated, at the zip's root.
pub fn write(path: &Path, emd_name: &str, emd_text: &str, model_file: &str, onnx: &[u8]) -> Result<()> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(emd_name, options)?;
    zip.write_all(emd_text.as_bytes())?;
    zip.start_file(model_file, options)?;
    zip.write_all(onnx)?;
    zip.finish()?.sync_all()?;
    Ok(())
}

/// `--scale` values as `NormalizationStats` indexed by band index.
fn normalization_stats(scales: &[String], bands: &[usize]) -> Result<Option<Value>> {
    if scales.is_empty() {
        if bands.len() != 3 {
            bail_input!(
                "the model reads {} band(s); ImageNet statistics only fit three bands, so give --scale MIN,MAX,MEAN,STD",
                bands.len()
            );
        }
        return Ok(None);
    }
    if scales.len() != 1 && scales.len() != bands.len() {
        bail_input!(
            "give --scale once for every band or once per band ({} bands), not {} times",
            bands.len(),
            scales.len()
        );
    }
    let parsed: Vec<[f64; 4]> = scales
        .iter()
        .map(|s| {
            let values: Vec<f64> = s.split(',').filter_map(|v| v.trim().parse().ok()).collect();
            match values.as_slice() {
                [min, max, mean, std] if max > min && *std > 0.0 => Ok([*min, *max, *mean, *std]),
                _ => bail_input!("--scale \"{s}\" is not MIN,MAX,MEAN,STD with MAX > MIN and STD > 0"),
            }
        })
        .collect::<Result<_>>()?;
    let size = bands.iter().max().map_or(0, |m| m + 1);
    let mut lists = vec![vec![Value::Null; size]; 4];
    for (k, &band) in bands.iter().enumerate() {
        let values = parsed[if parsed.len() == 1 { 0 } else { k }];
        for (list, v) in lists.iter_mut().zip(values) {
            list[band] = json!(v);
        }
    }
    Ok(Some(json!({
        "band_min_values": lists[0],
        "band_max_values": lists[1],
        "scaled_mean_values": lists[2],
        "scaled_std_values": lists[3],
    })))
}
