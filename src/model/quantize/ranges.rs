//! Activation ranges from calibration: each value's minimum and maximum over the calibration
//! chips (first pass), then a histogram of 2,048 bins between them (second pass, the same
//! chips), from which a percentile range is read. The two [`Method`]s are the candidates the
//! gate chooses between on the held-out chips.

/// Bins of each value's histogram.
pub const BINS: usize = 2048;

/// How an activation's range is chosen from its calibration values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// The smallest and largest value seen.
    MinMax,
    /// The values between the `100 - p`-th and the `p`-th percentile (`99.99`: 0.01 % of the
    /// values clipped at each end).
    Percentile(f64),
}

impl Method {
    /// The candidates tried, in order.
    pub const CANDIDATES: [Method; 3] = [Method::MinMax, Method::Percentile(99.999), Method::Percentile(99.99)];

    /// `minmax`, `percentile 99.99`.
    pub fn name(self) -> String {
        match self {
            Method::MinMax => "minmax".to_string(),
            Method::Percentile(p) => format!("percentile {p}"),
        }
    }
}

/// Statistics of the calibrated values, gathered batch by batch.
#[derive(Debug, Clone)]
pub struct RangeStats {
    /// The values' names, in order.
    pub names: Vec<String>,
    min: Vec<f32>,
    max: Vec<f32>,
    /// Non-finite numbers seen in each value.
    pub non_finite: Vec<u64>,
    histograms: Vec<Vec<u64>>,
}

impl RangeStats {
    /// Empty statistics for `names`.
    pub fn new(names: Vec<String>) -> RangeStats {
        let n = names.len();
        RangeStats {
            names,
            min: vec![f32::INFINITY; n],
            max: vec![f32::NEG_INFINITY; n],
            non_finite: vec![0; n],
            histograms: Vec::new(),
        }
    }

    /// First pass: widens value `k`'s range by `values`.
    pub fn observe_extent(&mut self, k: usize, values: &[f32]) {
        let (mut lo, mut hi) = (self.min[k], self.max[k]);
        let mut bad = 0;
        for &v in values {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            } else {
                bad += 1;
            }
        }
        (self.min[k], self.max[k]) = (lo, hi);
        self.non_finite[k] += bad;
    }

    /// Starts the second pass: histograms over the ranges the first pass found.
    pub fn start_histograms(&mut self) {
        self.histograms = vec![vec![0; BINS]; self.names.len()];
    }

    /// Second pass: counts `values` of value `k` into its histogram.
    pub fn observe_histogram(&mut self, k: usize, values: &[f32]) {
        let (lo, hi) = (self.min[k], self.max[k]);
        let hist = &mut self.histograms[k];
        if lo.is_nan() || hi.is_nan() || hi <= lo {
            hist[0] += values.len() as u64;
            return;
        }
        let per = BINS as f32 / (hi - lo);
        for &v in values {
            if v.is_finite() {
                hist[(((v - lo) * per) as usize).min(BINS - 1)] += 1;
            }
        }
    }

    /// Value `k`'s range by `method` (a percentile needs the second pass).
    pub fn range(&self, k: usize, method: Method) -> (f32, f32) {
        let (lo, hi) = (self.min[k], self.max[k]);
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return (0.0, 0.0);
        }
        let Method::Percentile(p) = method else {
            return (lo, hi);
        };
        let Some(hist) = self.histograms.get(k) else {
            return (lo, hi);
        };
        let total: u64 = hist.iter().sum();
        let tail = ((1.0 - p / 100.0) * total as f64).floor() as u64;
        let width = (hi - lo) / BINS as f32;
        // Lowest bin whose cumulative count passes the tail, and the same from the top.
        let (mut below, mut first) = (0u64, 0usize);
        for (b, &count) in hist.iter().enumerate() {
            if below + count > tail {
                first = b;
                break;
            }
            below += count;
        }
        let (mut above, mut last) = (0u64, BINS - 1);
        for (b, &count) in hist.iter().enumerate().rev() {
            if above + count > tail {
                last = b;
                break;
            }
            above += count;
        }
        let (plo, phi) = (lo + first as f32 * width, lo + (last + 1) as f32 * width);
        (plo.max(lo), phi.min(hi).max(plo.max(lo)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_and_percentile() {
        let mut stats = RangeStats::new(vec!["x".into()]);
        // 100,000 values spread over [0, 1), and one outlier at 100.
        let values: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0).chain([100.0]).collect();
        stats.observe_extent(0, &values);
        stats.observe_extent(0, &[f32::NAN]);
        assert_eq!(stats.non_finite[0], 1);
        assert_eq!(stats.range(0, Method::MinMax), (0.0, 100.0));
        stats.start_histograms();
        stats.observe_histogram(0, &values);
        // 99.99 %: 10 values clipped at each end; the outlier goes, the bulk stays. The bins
        // are 100/2048 wide: the upper end is the edge of the bin holding 1.0.
        let (lo, hi) = stats.range(0, Method::Percentile(99.99));
        assert_eq!(lo, 0.0);
        assert!((1.0..1.0 + 100.0 / 2048.0 + 1e-4).contains(&hi), "{hi}");
        // A value that never changes.
        let mut flat = RangeStats::new(vec!["y".into()]);
        flat.observe_extent(0, &[3.0; 10]);
        flat.start_histograms();
        flat.observe_histogram(0, &[3.0; 10]);
        assert_eq!(flat.range(0, Method::Percentile(99.99)), (3.0, 3.0));
    }
}
