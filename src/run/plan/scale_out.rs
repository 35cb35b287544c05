//! The scale-out part of the plan: which shard this run classifies, and whether it continues a
//! killed run.

use anyhow::Result;

use super::output::OutputChoice;
use crate::bail_input;
use crate::cli::values::Shard;
use crate::cli::ClassifyArgs;

/// Sharding and resuming.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScaleOutPlan {
    /// The shard to classify (`--shard I/N`).
    pub shard: Option<Shard>,
    /// Continue a killed run (`--resume`).
    pub resume: bool,
}

impl ScaleOutPlan {
    /// Checks `--shard` and `--resume` against the features and the output format.
    pub fn from_args(args: &ClassifyArgs, output: &OutputChoice) -> Result<ScaleOutPlan> {
        let plan = ScaleOutPlan {
            shard: args.shard,
            resume: args.resume,
        };
        if (plan.shard.is_some() || plan.resume) && args.features.is_none() {
            bail_input!("--shard and --resume work on features; give --features");
        }
        let shown = output.path().display();
        if plan.shard.is_some() && !output.records_runs() {
            bail_input!(
                "--shard writes GeoPackage (.gpkg) or CSV outputs, which record the shard for merge ({shown} is {}); write a .gpkg",
                output.format.name()
            );
        }
        if plan.resume && !output.records_runs() {
            bail_input!(
                "--resume continues GeoPackage (.gpkg) and CSV outputs only ({shown} is {}); write a .gpkg",
                output.format.name()
            );
        }
        Ok(plan)
    }
}
