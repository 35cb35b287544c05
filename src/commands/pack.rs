//! `classify-objects pack`: a `.dlpk` from a plain ONNX classifier and its class names. The
//! model is loaded and checked against what is declared before anything is written, and the
//! written package is opened again as a final check.

use std::fs;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::bail_input;
use crate::cli::PackArgs;
use crate::infer::{self, Classifier};
use crate::messages;
use crate::model::pack::{self, Declared, PackOptions};
use crate::model::{ModelDefinition, ModelPackage};
use crate::output::target::refuse_input_as_output;
use crate::output::OutputTarget;

/// Writes the package and says where.
pub fn run(args: PackArgs) -> Result<ExitCode> {
    let (overwrite, ort_library) = (args.overwrite, args.ort_library.clone());
    let options = options(args);
    refuse_input_as_output(&options.output, &[("--onnx model", options.onnx.as_path())])?;
    let onnx = match fs::read(&options.onnx) {
        Ok(bytes) => bytes,
        Err(err) => bail_input!("cannot read --onnx {}: {err}", options.onnx.display()),
    };
    let declared = Declared::from_options(&options)?;
    let environment = infer::start_runtime(ort_library.as_deref())?;
    let (inputs, _) = infer::describe_model(&environment, &onnx)?;
    let shape = inputs.first().map(|i| i.shape.clone()).unwrap_or_default();
    let (emd_name, text) = pack::definition_text(&options, &declared, &shape)?;
    // The same checks a run makes: the definition parses and the model agrees with it.
    let definition = ModelDefinition::parse(&text, &emd_name)?;
    Classifier::check(&environment, &onnx, &options.onnx.display().to_string(), &definition)?;

    let mut target = OutputTarget::for_file(&options.output, overwrite)?;
    let model_file = definition.model_file.clone().unwrap_or_default();
    pack::write(target.temp_path(), &emd_name, &text, &model_file, &onnx)?;
    ModelPackage::open(target.temp_path()).context("re-reading the written package")?;
    let path = target.path.display().to_string();
    target.commit()?;
    messages::info(format_args!("wrote {path}"));
    Ok(ExitCode::SUCCESS)
}

fn options(args: PackArgs) -> PackOptions {
    PackOptions {
        onnx: args.onnx,
        classes: args.classes,
        chip_size: args.chip_size,
        chip_width: args.chip_width,
        chip_height: args.chip_height,
        bands: args.bands,
        variable_crop: args.variable_crop,
        blacken_around_feature: args.blacken_around_feature,
        scale: args.scale,
        multi_label: args.multi_label,
        pixel_space: args.pixel_space,
        model_name: args.model_name,
        output: args.output,
    }
}
