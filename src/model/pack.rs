//! `classify-objects pack`: a `.dlpk` from a plain ONNX classifier, so that users with an ONNX
//! model need not hand-write an `.emd`. The model is loaded and checked against what is declared
//! before anything is written, and the written package is opened again as a final check.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bail_input;
use crate::infer::{self, Classifier, Device, SessionOptions};
use crate::model::definition::ModelDefinition;
use crate::model::package::ModelPackage;
use crate::output::OutputTarget;

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
    /// The package to write.
    pub output: PathBuf,
    /// Replace the output if it exists.
    pub overwrite: bool,
    /// ONNX Runtime library to load.
    pub ort_library: Option<PathBuf>,
}

/// Writes the package described by `args`; returns its path.
pub fn pack(args: &PackOptions) -> Result<String> {
    let onnx = match fs::read(&args.onnx) {
        Ok(bytes) => bytes,
        Err(err) => bail_input!("cannot read --onnx {}: {err}", args.onnx.display()),
    };
    let classes: Vec<&str> = args
        .classes
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if classes.is_empty() {
        bail_input!("--classes lists no class; give the names in model output order, e.g. --classes cat,dog");
    }
    let bands: Vec<usize> = match args.bands.split(',').map(|b| b.trim().parse::<usize>()).collect() {
        Ok(bands) => bands,
        Err(_) => bail_input!(
            "--bands \"{}\" is not a list of 0-based band indices such as 0,1,2",
            args.bands
        ),
    };
    let library = infer::locate_runtime(args.ort_library.as_deref())?;
    let environment = infer::init_runtime(&library)?;
    let (inputs, _) = infer::describe_model(&environment, &onnx)?;
    let shape = inputs.first().map(|i| i.shape.clone()).unwrap_or_default();
    let model_dim = |k: usize| shape.get(k).copied().filter(|&d| d > 0).map(|d| d as usize);
    let width = args.chip_width.or(args.chip_size).or(model_dim(3));
    let height = args.chip_height.or(args.chip_size).or(model_dim(2));
    let (Some(width), Some(height)) = (width, height) else {
        bail_input!(
            "the model {} takes any chip size; give one with --chip-size (or --chip-width and --chip-height)",
            args.onnx.display()
        );
    };
    let limit = crate::model::definition::MAX_CHIP_SIDE;
    if !(1..=limit).contains(&width) || !(1..=limit).contains(&height) {
        bail_input!(
            "chip size {width} x {height} is not between 1 and {limit} pixels a side; give --chip-size within it"
        );
    }
    let normalization = normalization_stats(&args.scale, &bands)?;
    let model_file = args
        .onnx
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.to_ascii_lowercase().ends_with(".onnx"))
        .unwrap_or_else(|| "model.onnx".into());
    let stem = args
        .output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let mut emd = json!({
        "Framework": "ONNX",
        "ModelConfiguration": "ONNXClassifier",
        "ModelType": "ObjectClassification",
        "ModelName": args.model_name.clone().unwrap_or_else(|| stem.clone()),
        "ModelFile": model_file,
        "ModelFormat": "NCHW",
        "ImageWidth": width,
        "ImageHeight": height,
        "ExtractBands": bands,
        "CropSizeFixed": if args.variable_crop { 0 } else { 1 },
        "BlackenAroundFeature": if args.blacken_around_feature { 1 } else { 0 },
        "ImageSpaceUsed": if args.pixel_space { "PIXEL_SPACE" } else { "MAP_SPACE" },
        "MetaDataMode": if args.multi_label { "MultiLabeled_Tiles" } else { "Labeled_Tiles" },
        "Classes": classes.iter().enumerate().map(|(i, name)| json!({
            "Value": i,
            "Name": name,
            "Color": crate::output::style::default_color(i),
        })).collect::<Vec<_>>(),
    });
    if let Some(stats) = normalization {
        emd["NormalizationStats"] = stats;
    }
    let text = serde_json::to_string_pretty(&emd)? + "\n";
    let emd_name = format!("{stem}.emd");
    // The same checks a run makes: the definition parses and the model agrees with it.
    let definition = ModelDefinition::parse(&text, &emd_name)?;
    Classifier::new(
        &environment,
        &onnx,
        &args.onnx.display().to_string(),
        &definition.expected_io(),
        &SessionOptions {
            device: Device::Cpu,
            intra_op_threads: 1,
        },
    )?;

    let target = OutputTarget::for_file(&args.output, args.overwrite)?;
    {
        let file = fs::File::create(target.temp_path())
            .with_context(|| format!("creating {}", target.temp_path().display()))?;
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(emd_name.as_str(), options)?;
        zip.write_all(text.as_bytes())?;
        let model_name = definition.model_file.clone().unwrap_or_default();
        zip.start_file(model_name.as_str(), options)?;
        zip.write_all(&onnx)?;
        zip.finish()?.sync_all()?;
    }
    ModelPackage::open(target.temp_path()).context("re-reading the written package")?;
    let path = target.path.display().to_string();
    target.commit()?;
    Ok(path)
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
