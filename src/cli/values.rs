//! Values of flags that are more than a string or a number, parsed by clap through [`FromStr`]:
//! a mistake is a usage error (exit 2) naming the flag, before anything is opened.

use std::fmt;
use std::str::FromStr;

use crate::input::raster::NoData;
use crate::messages::shown;
use crate::model::definition::{MAX_BANDS, MAX_BATCH_SIZE};

/// Most threads accepted by `--threads` and `--intra-op-threads`.
pub const MAX_THREADS: usize = 1024;

/// Largest `--block-cache`, in MB (1 TB).
pub const MAX_BLOCK_CACHE_MB: u64 = 1 << 20;

/// The message of a flag value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadValue {}

fn bad<T>(message: String) -> Result<T, BadValue> {
    Err(BadValue(message))
}

/// `--shard I/N`: the shard `index` of `count` (0 <= index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<Shard, BadValue> {
        match text
            .split_once('/')
            .map(|(i, n)| (i.trim().parse::<usize>(), n.trim().parse::<usize>()))
        {
            Some((Ok(index), Ok(count))) if count >= 1 && index < count => Ok(Shard { index, count }),
            _ => bad(format!(
                "--shard \"{}\" is not I/N with 0 <= I < N (e.g. --shard 0/4 ... --shard 3/4)",
                shown(text)
            )),
        }
    }
}

/// `--threads N` or `--threads P%` (Esri's Parallel Processing Factor), as typed: resolved
/// against the machine's CPUs by [`Threads::resolve`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threads {
    /// A number of threads.
    Count(usize),
    /// A percentage of the CPUs.
    Percent(f64),
}

impl Threads {
    /// The threads this asks for on a machine with `cpus` CPUs: a percentage is rounded to the
    /// nearest integer (as Esri does), at least 1.
    pub fn resolve(self, cpus: usize) -> usize {
        match self {
            Threads::Count(n) => n,
            Threads::Percent(p) => ((p / 100.0 * cpus as f64).round() as usize).max(1),
        }
    }
}

impl FromStr for Threads {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<Threads, BadValue> {
        let text = text.trim();
        let threads = match text.strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p.is_finite() => Threads::Percent(p),
                _ => {
                    return bad(format!(
                        "--threads {} is not a percentage above 0 (e.g. --threads 50%)",
                        shown(text)
                    ))
                }
            },
            None => match text.parse::<usize>() {
                Ok(n) => Threads::Count(n),
                Err(_) => {
                    return bad(format!(
                        "--threads {} is neither a number nor a percentage of the CPUs (e.g. 4 or 50%)",
                        shown(text)
                    ))
                }
            },
        };
        let resolved = threads.resolve(cpus());
        if !(1..=MAX_THREADS).contains(&resolved) {
            return bad(format!(
                "--threads {} gives {resolved} threads, not between 1 and {MAX_THREADS}",
                shown(text)
            ));
        }
        Ok(threads)
    }
}

/// The CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// `--intra-op-threads N`: between 1 and [`MAX_THREADS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntraOpThreads(pub usize);

impl FromStr for IntraOpThreads {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<IntraOpThreads, BadValue> {
        match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(IntraOpThreads(n)),
            _ => bad(format!(
                "--intra-op-threads {} is not between 1 and {MAX_THREADS}",
                shown(text)
            )),
        }
    }
}

/// `--bands 3,2,1`: 1-based band numbers, as GDAL's `-b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandList(pub Vec<usize>);

impl FromStr for BandList {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<BandList, BadValue> {
        let bands: Vec<Option<usize>> = text
            .split(',')
            .map(|b| b.trim().parse::<usize>().ok().filter(|&b| b >= 1))
            .collect();
        if bands.len() > MAX_BANDS {
            return bad(format!(
                "--bands {} lists {} bands, more than the {MAX_BANDS} a chip takes",
                shown(text),
                bands.len()
            ));
        }
        if bands.is_empty() || bands.iter().any(Option::is_none) {
            return bad(format!(
                "--bands {} is not a list of band numbers from 1 (e.g. --bands 3,2,1, as GDAL's -b)",
                shown(text)
            ));
        }
        Ok(BandList(bands.into_iter().flatten().collect()))
    }
}

/// `--nodata V` or `--nodata none`.
impl FromStr for NoData {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<NoData, BadValue> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(NoData::None);
        }
        match text.trim().parse::<f64>() {
            Ok(v) => Ok(NoData::Value(v)),
            Err(_) => bad(format!(
                "--nodata {} is not a number; give the NoData value (e.g. --nodata 0) or none",
                shown(text)
            )),
        }
    }
}

/// `--resampling METHOD`: how chips cut at another cell size are resampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resampling(pub gdal::raster::ResampleAlg);

impl FromStr for Resampling {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<Resampling, BadValue> {
        use gdal::raster::ResampleAlg;
        let method = match text.to_ascii_lowercase().as_str() {
            "nearest" | "near" => ResampleAlg::NearestNeighbour,
            "bilinear" => ResampleAlg::Bilinear,
            "cubic" => ResampleAlg::Cubic,
            "cubicspline" => ResampleAlg::CubicSpline,
            "lanczos" => ResampleAlg::Lanczos,
            "average" => ResampleAlg::Average,
            "mode" => ResampleAlg::Mode,
            other => {
                return bad(format!(
                    "--resampling {other} is not a resampling method; use nearest, bilinear, cubic, cubicspline, lanczos, average or mode"
                ))
            }
        };
        Ok(Resampling(method))
    }
}

/// `--block-cache MB`: between 1 and [`MAX_BLOCK_CACHE_MB`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCacheMb(pub u64);

impl FromStr for BlockCacheMb {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<BlockCacheMb, BadValue> {
        match text.trim().parse::<u64>() {
            Ok(mb) if (1..=MAX_BLOCK_CACHE_MB).contains(&mb) => Ok(BlockCacheMb(mb)),
            _ => bad(format!(
                "--block-cache {} is not between 1 and {MAX_BLOCK_CACHE_MB} MB",
                shown(text)
            )),
        }
    }
}

/// `--cell-size SIZE`: a positive, finite size in the raster's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellSize(pub f64);

impl FromStr for CellSize {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<CellSize, BadValue> {
        match text.trim().parse::<f64>() {
            Ok(c) if c.is_finite() && c > 0.0 => Ok(CellSize(c)),
            _ => bad(format!(
                "--cell-size {} is not a positive size in the raster's units",
                shown(text)
            )),
        }
    }
}

/// `--model-arg NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArg {
    /// The argument's name, trimmed.
    pub name: String,
    /// Its value, trimmed.
    pub value: String,
}

impl FromStr for ModelArg {
    type Err = BadValue;
    fn from_str(item: &str) -> Result<ModelArg, BadValue> {
        match item.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => Ok(ModelArg {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
            }),
            _ => bad(format!(
                "--model-arg \"{item}\" is not NAME=VALUE (e.g. --model-arg batch_size=8)"
            )),
        }
    }
}

/// `--min-accuracy X`: between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

impl FromStr for Fraction {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<Fraction, BadValue> {
        match text.trim().parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(Fraction(x)),
            Ok(x) => bad(format!("--min-accuracy {x} is not between 0 and 1")),
            Err(_) => bad(format!(
                "--min-accuracy {} is not a number between 0 and 1",
                shown(text)
            )),
        }
    }
}

/// Most chips `--calibration` and `--held-out` ask for.
pub const MAX_SAMPLE: usize = 100_000;

/// `--calibration N`, `--held-out N`: a number of chips, 16 to [`MAX_SAMPLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSize(pub usize);

impl FromStr for SampleSize {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<SampleSize, BadValue> {
        match text.trim().parse::<usize>() {
            Ok(n) if (16..=MAX_SAMPLE).contains(&n) => Ok(SampleSize(n)),
            _ => bad(format!(
                "a sample of {} chips is not a whole number from 16 to {MAX_SAMPLE} (--calibration, --held-out)",
                shown(text)
            )),
        }
    }
}

/// `--min-agreement X`: a share between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinAgreement(pub f64);

impl FromStr for MinAgreement {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<MinAgreement, BadValue> {
        match text.trim().parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(MinAgreement(x)),
            _ => bad(format!(
                "--min-agreement {} is not a share between 0 and 1 (e.g. 0.99)",
                shown(text)
            )),
        }
    }
}

/// `--max-accuracy-loss POINTS`: percentage points of accuracy against truth, from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyLoss(pub f64);

impl FromStr for AccuracyLoss {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<AccuracyLoss, BadValue> {
        match text.trim().parse::<f64>() {
            Ok(x) if (0.0..=100.0).contains(&x) => Ok(AccuracyLoss(x)),
            _ => bad(format!(
                "--max-accuracy-loss {} is not a number of percentage points from 0 to 100 (e.g. 1)",
                shown(text)
            )),
        }
    }
}

/// `--min-speedup X`: a factor from 0 (no speed asked for) to 1000.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinSpeedup(pub f64);

impl FromStr for MinSpeedup {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<MinSpeedup, BadValue> {
        match text.trim().parse::<f64>() {
            Ok(x) if (0.0..=1000.0).contains(&x) => Ok(MinSpeedup(x)),
            _ => bad(format!(
                "--min-speedup {} is not a factor from 0 to 1000 (e.g. 1.2)",
                shown(text)
            )),
        }
    }
}

/// `--batch-size N`: chips per inference batch, 1 to the largest a run accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize(pub usize);

impl FromStr for BatchSize {
    type Err = BadValue;
    fn from_str(text: &str) -> Result<BatchSize, BadValue> {
        match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_BATCH_SIZE).contains(&n) => Ok(BatchSize(n)),
            _ => bad(format!(
                "--batch-size {} is not a whole number from 1 to {MAX_BATCH_SIZE}",
                shown(text)
            )),
        }
    }
}

/// Checks that every value of `--FLAG` (`--lco`, `--dsco`, `--oo`) is `KEY=VALUE`.
pub fn check_pairs(flag: &str, values: &[String], example: &str) -> anyhow::Result<()> {
    if let Some(bad) = values.iter().find(|o| !o.contains('=') || o.starts_with('=')) {
        crate::bail_input!("--{flag} \"{bad}\" is not KEY=VALUE (e.g. --{flag} {example})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_percentages_round_to_the_nearest_integer_as_esri_says() {
        // Esri's examples on a 4-core machine: 50% -> 2, 66% -> 3 (2.64), 100% -> 4.
        let on = |text: &str, cpus: usize| text.parse::<Threads>().map(|t| t.resolve(cpus));
        assert_eq!(on("50%", 4).unwrap(), 2);
        assert_eq!(on("66%", 4).unwrap(), 3);
        assert_eq!(on("100%", 4).unwrap(), 4);
        assert_eq!(on(" 1% ", 4).unwrap(), 1, "at least one");
        assert_eq!(on("250%", 2).unwrap(), 5);
        assert_eq!(on("7", 4).unwrap(), 7);
        for bad in ["0%", "0", "x%", "-1", "2000", "%"] {
            assert!(bad.parse::<Threads>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bands_and_nodata_parse_as_gdal_takes_them() {
        assert_eq!("3,2,1".parse::<BandList>().unwrap().0, vec![3, 2, 1]);
        assert_eq!(" 4 ".parse::<BandList>().unwrap().0, vec![4]);
        assert!("0,1".parse::<BandList>().is_err());
        assert!("".parse::<BandList>().is_err() && "1,,2".parse::<BandList>().is_err());
        assert_eq!("-9999".parse::<NoData>().unwrap(), NoData::Value(-9999.0));
        assert_eq!("None".parse::<NoData>().unwrap(), NoData::None);
        assert!("zero".parse::<NoData>().is_err());
    }

    #[test]
    fn quantize_values_are_bounded() {
        assert_eq!("256".parse::<SampleSize>().unwrap(), SampleSize(256));
        for bad in ["0", "15", "100001", "x", "-5"] {
            assert!(bad.parse::<SampleSize>().is_err(), "{bad}");
        }
        assert_eq!("0.99".parse::<MinAgreement>().unwrap(), MinAgreement(0.99));
        assert!("1.01".parse::<MinAgreement>().is_err() && "NaN".parse::<MinAgreement>().is_err());
        assert_eq!("0".parse::<MinSpeedup>().unwrap(), MinSpeedup(0.0));
        assert!("-1".parse::<MinSpeedup>().is_err() && "inf".parse::<MinSpeedup>().is_err());
        assert_eq!("0.5".parse::<AccuracyLoss>().unwrap(), AccuracyLoss(0.5));
        assert!("101".parse::<AccuracyLoss>().is_err() && "-0.1".parse::<AccuracyLoss>().is_err());
        assert!("0".parse::<BatchSize>().is_err() && "16".parse::<BatchSize>().is_ok());
    }

    #[test]
    fn shards_are_i_of_n() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "0/0", "1", "a/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
