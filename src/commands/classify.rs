//! `classify-objects` without a subcommand: the flags made into one validated plan, which is
//! then run.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ClassifyArgs;
use crate::run::{self, plan::ClassifyPlan};

/// Plans the run from its flags (every mistake found before any work starts), then runs it.
pub fn run(args: ClassifyArgs) -> Result<ExitCode> {
    run::classify(ClassifyPlan::from_args(args)?)?;
    Ok(ExitCode::SUCCESS)
}
