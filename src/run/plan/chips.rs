//! The chips part of the plan: the cell size chips are cut at, its resampling, how many workers
//! cut them, and where they are dumped for debugging.

use std::path::PathBuf;

use anyhow::Result;

use crate::bail_input;
use crate::cli::values::cpus;
use crate::cli::ClassifyArgs;

/// Memory the pipeline may hold in chip batches at once, in bytes: fewer batches are in flight
/// when batches are large.
pub const PIPELINE_CHIP_BUDGET: usize = 1536 << 20;

/// How chips are cut.
#[derive(Debug, Clone)]
pub struct ChipsPlan {
    /// Chip worker threads.
    pub threads: usize,
    /// Cell size chips are cut at, in the raster's units (`--cell-size`).
    pub cell_size: Option<f64>,
    /// Resampling of chips at another cell size.
    pub resampling: gdal::raster::ResampleAlg,
    /// Folder to write every chip into, for debugging (created by [`ChipsPlan::create_folders`]).
    pub dump_chips: Option<PathBuf>,
}

impl ChipsPlan {
    /// Checks the chip flags of `args`.
    pub fn from_args(args: &ClassifyArgs) -> Result<ChipsPlan> {
        if args.cell_size.is_some() && args.features.is_none() {
            bail_input!("--cell-size sets the cell size of the chips cut around features; give --features (a whole image is resampled to the chip size anyway)");
        }
        Ok(ChipsPlan {
            threads: args.threads.map_or(cpus().min(8), |t| t.resolve(cpus())),
            cell_size: args.cell_size.map(|c| c.0),
            resampling: args.resampling.0,
            dump_chips: args.dump_chips.clone(),
        })
    }

    /// Creates the `--dump-chips` folder, once the whole plan is known to be right.
    pub fn create_folders(&self) -> Result<()> {
        if let Some(dir) = &self.dump_chips {
            if let Err(err) = std::fs::create_dir_all(dir) {
                bail_input!("--dump-chips folder {} cannot be created: {err}", dir.display());
            }
        }
        Ok(())
    }
}
