//! The inputs part of the plan: the rasters (folders expanded, bands and NoData overridden,
//! GDAL's block cache) and the features (layer or SQL, filters, open options, CRS, extent).

use anyhow::Result;

use crate::bail_input;
use crate::cli::values::check_pairs;
use crate::cli::ClassifyArgs;
use crate::input::extent::Extent;
use crate::input::features::{FeatureQuery, SqlDialect};
use crate::input::items::{self, ProcessingMode};
use crate::input::raster::RasterOverrides;
use crate::input::sql;

/// GDAL's block cache when neither `--block-cache` nor GDAL_CACHEMAX sets it, in MB.
pub const DEFAULT_BLOCK_CACHE_MB: u64 = 256;

/// Where the features come from.
#[derive(Debug, Clone)]
pub struct FeaturesPlan {
    /// OGR source.
    pub source: String,
    /// Its layer (or SQL statement), filter, open options and CRS override.
    pub query: FeatureQuery,
}

/// Rasters and features.
#[derive(Debug)]
pub struct InputsPlan {
    /// Input rasters (GDAL sources), folders expanded.
    pub rasters: Vec<String>,
    /// Bands and NoData read instead of the rasters' own (`--bands`, `--nodata`).
    pub raster_overrides: RasterOverrides,
    /// How several rasters are processed.
    pub processing_mode: ProcessingMode,
    /// Features, or one object per image.
    pub features: Option<FeaturesPlan>,
    /// The processing extent (`--extent`).
    pub extent: Option<Extent>,
    /// GDAL's block cache in MB, when this run sets it (`--block-cache`, or the default when
    /// GDAL_CACHEMAX is not set, in the environment or by `--config`).
    pub block_cache_mb: Option<u64>,
}

/// The SQL dialect of the features, once the flags that need `--features` are checked.
#[derive(Debug, Clone, Copy)]
pub struct FeatureFlagsChecked {
    dialect: SqlDialect,
}

/// Checks the flags that read features: they need `--features`, and agree with each other.
pub fn check_features_flags(args: &ClassifyArgs) -> Result<FeatureFlagsChecked> {
    check_pairs("oo", &args.oo, "X_POSSIBLE_NAMES=lon")?;
    if args.features.is_none() {
        for (flag, given) in [
            ("--where", args.where_clause.is_some()),
            ("--sql", args.sql.is_some()),
            ("--oo", !args.oo.is_empty()),
            ("--layer", args.layer.is_some()),
        ] {
            if given {
                bail_input!("{flag} applies to --features; give --features (or leave {flag} out)");
            }
        }
    }
    if args.sql.is_some() && args.layer.is_some() {
        bail_input!("--sql and --layer exclude each other: the statement names the table it reads");
    }
    let dialect = match &args.dialect {
        Some(_) if args.sql.is_none() => bail_input!("--dialect is the dialect of --sql; give --sql"),
        Some(name) => SqlDialect::named(name)?,
        None => SqlDialect::Default,
    };
    for (flag, text) in [("--where", &args.where_clause), ("--sql", &args.sql)] {
        if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            bail_input!("{flag} is empty; give an expression or leave {flag} out");
        }
    }
    let refusals = [
        ("--sql", args.sql.as_deref().and_then(sql::refusal_of_statement)),
        ("--where", args.where_clause.as_deref().and_then(sql::refusal_of_filter)),
    ];
    if let Some((flag, why)) = refusals.into_iter().find_map(|(flag, why)| Some((flag, why?))) {
        bail_input!(
            "{flag} {why}; only statements that read are run (SELECT or WITH, one statement): quote a column named like an SQL keyword (\"update\"), and make copies with ogr2ogr"
        );
    }
    Ok(FeatureFlagsChecked { dialect })
}

impl InputsPlan {
    /// Checks the extent, expands raster folders, and takes the features' flags.
    pub fn from_args(args: ClassifyArgs, checked: FeatureFlagsChecked) -> Result<InputsPlan> {
        let extent = args
            .extent
            .as_deref()
            .map(|values| Extent::from_args(values, args.extent_crs.as_deref()))
            .transpose()?;
        let rasters = items::expand(&args.raster, args.recursive, &args.extensions)?;
        Ok(InputsPlan {
            rasters,
            raster_overrides: RasterOverrides {
                bands: args.bands.map(|b| b.0),
                nodata: args.nodata,
            },
            processing_mode: args.processing_mode,
            extent,
            block_cache_mb: block_cache_mb(args.block_cache.map(|b| b.0)),
            features: args.features.map(|source| FeaturesPlan {
                source,
                query: FeatureQuery {
                    layer: args.layer,
                    srs_override: args.features_crs,
                    where_clause: args.where_clause,
                    sql: args.sql,
                    dialect: checked.dialect,
                    open_options: args.oo,
                },
            }),
        })
    }

    /// The first raster, whose CRS is the default of `--extent` and whose grid the report shows.
    pub fn first_raster(&self) -> &str {
        &self.rasters[0]
    }
}

/// The block cache this run sets: `--block-cache`, else the default unless GDAL_CACHEMAX is set
/// (in the environment or with `--config`, applied before this).
fn block_cache_mb(given: Option<u64>) -> Option<u64> {
    match given {
        Some(mb) => Some(mb),
        None if !gdal::config::get_config_option("GDAL_CACHEMAX", "")
            .unwrap_or_default()
            .is_empty() =>
        {
            None
        }
        None => Some(DEFAULT_BLOCK_CACHE_MB),
    }
}
