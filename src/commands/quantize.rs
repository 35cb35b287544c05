//! `classify-objects quantize`: the int8 package of an fp32 package, calibrated and checked on
//! the user's imagery (`run::quantize`), written only when the gate passes; it is read back
//! (ONNX Runtime included) before it replaces anything.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::bail_input;
use crate::cli::QuantizeArgs;
use crate::infer::{self, Classifier};
use crate::messages;
use crate::model::quantize::record::write_package;
use crate::model::quantize::QuantRecord;
use crate::model::ModelPackage;
use crate::output::target::refuse_input_as_output;
use crate::output::OutputTarget;
use crate::run::quantize::quantize;

/// Quantizes the package, writes it if the gate passes, and says what was written.
pub fn run(args: QuantizeArgs) -> Result<ExitCode> {
    let output = &args.output;
    if !output.extension().is_some_and(|e| e.eq_ignore_ascii_case("dlpk")) {
        bail_input!(
            "output {} is not a .dlpk; quantize writes a package: give -o NAME_int8.dlpk",
            output.display()
        );
    }
    refuse_input_as_output(
        output,
        &[
            ("model", args.model.as_path()),
            ("raster", std::path::Path::new(&args.raster)),
            ("features", std::path::Path::new(&args.features)),
        ],
    )?;
    let mut target = OutputTarget::for_file(output, args.overwrite)?;
    let package = ModelPackage::open(&args.model)?;
    if let Ok(Some(record)) = QuantRecord::from_emd_text(&package.emd_text) {
        bail_input!(
            "model {} is already int8 (quantized from {}); quantize its fp32 source instead",
            args.model.display(),
            record.source.package
        );
    }
    let environment = infer::start_runtime(args.ort_library.as_deref())?;
    let quantized = quantize(&args, &package, &environment)?;
    let emd_text = write_package(
        target.temp_path(),
        &package,
        &args.model,
        &quantized.onnx,
        &quantized.record,
    )?;
    let written = ModelPackage::open(target.temp_path()).context("re-reading the int8 package")?;
    // The text, not the record: JSON decimals read back may differ from the figures in their
    // last bit.
    if written.onnx != quantized.onnx
        || written.emd_text != emd_text
        || !matches!(QuantRecord::from_emd_text(&written.emd_text), Ok(Some(_)))
    {
        anyhow::bail!("the int8 package does not read back as written");
    }
    Classifier::check(&environment, &written.onnx, &written.model_name, &written.definition)?;
    drop(written);
    target.commit()?;
    let figures = &quantized.record.figures;
    messages::info(format_args!(
        "wrote {} (int8; {:.2}x end to end, {}/{} decisions kept)",
        output.display(),
        figures.speed_up,
        figures.agreeing,
        figures.compared
    ));
    Ok(ExitCode::SUCCESS)
}
