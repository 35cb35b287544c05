//! `classify-objects convert`: the ONNX package of an arcgis.learn FeatureClassifier package,
//! written once. It is checked by loading it back (ONNX Runtime included) before it replaces
//! anything.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::bail_input;
use crate::cli::ConvertArgs;
use crate::infer::{self, Classifier};
use crate::messages;
use crate::model::{convert, ModelPackage};
use crate::output::target::refuse_input_as_output;
use crate::output::OutputTarget;

/// Converts the package, writes it, and says what was converted.
pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let output = &args.output;
    if !output.extension().is_some_and(|e| e.eq_ignore_ascii_case("dlpk")) {
        bail_input!(
            "output {} is not a .dlpk; convert writes a package: give -o NAME.dlpk",
            output.display()
        );
    }
    refuse_input_as_output(output, &[("model", args.input.as_path())])?;
    let mut target = OutputTarget::for_file(output, args.overwrite)?;
    let package = ModelPackage::open(&args.input)?;
    let Some(conversion) = package.conversion.clone() else {
        bail_input!(
            "model {} already holds an ONNX model ({}); there is nothing to convert, use it as it is",
            args.input.display(),
            package.model_name
        );
    };
    // The converted model must load in ONNX Runtime and agree with its .emd, as a run checks.
    let environment = infer::start_runtime(args.ort_library.as_deref())?;
    Classifier::check(&environment, &package.onnx, &conversion.source, &package.definition)?;
    convert::write(target.temp_path(), &package, &args.input)?;
    let written = ModelPackage::open(target.temp_path()).context("re-reading the converted package")?;
    if written.onnx != package.onnx || written.conversion.is_some() {
        anyhow::bail!("the converted package does not read back as written");
    }
    drop(written);
    target.commit()?;
    messages::info(format_args!(
        "converted {} ({}, {} parameters, {} classes) -> {}",
        conversion.source,
        conversion.architecture,
        conversion.parameters,
        conversion.classes,
        output.display()
    ));
    Ok(ExitCode::SUCCESS)
}
