//! `classify-objects merge SHARD_0 ... SHARD_N-1 -o OUT`: the outputs of `--shard I/N` runs
//! joined into exactly what one run would have written.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::MergeArgs;
use crate::messages;
use crate::output::merge;

/// Merges the shards and says how many rows the output has.
pub fn run(args: MergeArgs) -> Result<ExitCode> {
    let rows = merge::merge(&args.shards, &args.output, args.overwrite)?;
    messages::info(format_args!(
        "merged {} shard(s), {rows} row(s) -> {}",
        args.shards.len(),
        args.output.display()
    ));
    Ok(ExitCode::SUCCESS)
}
