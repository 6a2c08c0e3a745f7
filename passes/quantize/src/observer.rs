//! Range observers: turn the activations seen during calibration into a clipping range.
//!
//! `minmax` keeps the running minimum and maximum. `percentile` and `mse` need the value
//! distribution: a second calibration run fills a signed histogram of `x` over the
//! `[min, max]` the first run found ([`HIST_BINS`] bins). `percentile` clips symmetrically
//! at the given percentile of `|x|` (then intersects with `[min, max]`); `mse` tries 100
//! symmetric clipping thresholds `a` (1% .. 100% of `max |x|`, range `[min, max]`
//! intersected with `[-a, a]`) and keeps the one with the smallest quantization error
//! (clipping plus rounding) over the histogram. Every range is extended
//! to include 0 afterwards (by [`crate::params::act_params`]).

use crate::params::{act_params, ActType};

/// Histogram bins per value for `percentile` and `mse`.
pub const HIST_BINS: usize = 2048;

/// Which observer chooses activation ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ObserverKind {
    /// Running min/max.
    MinMax,
    /// Clip at this percentile (in `(0, 100]`) of `|x|`.
    Percentile(f64),
    /// Clip where the quantization MSE over the histogram is smallest.
    Mse,
}

impl ObserverKind {
    /// Whether the observer needs a histogram (a second calibration run).
    pub fn needs_histogram(self) -> bool {
        !matches!(self, ObserverKind::MinMax)
    }

    /// The option name of the observer.
    pub fn name(self) -> &'static str {
        match self {
            ObserverKind::MinMax => "minmax",
            ObserverKind::Percentile(_) => "percentile",
            ObserverKind::Mse => "mse",
        }
    }
}

/// Statistics of one value over all calibration samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueStats {
    /// Smallest finite value seen.
    pub min: f32,
    /// Largest finite value seen.
    pub max: f32,
    /// Signed histogram over `[min, max]` (empty until the second run).
    pub hist: Vec<u64>,
}

impl Default for ValueStats {
    fn default() -> Self {
        ValueStats { min: f32::INFINITY, max: f32::NEG_INFINITY, hist: Vec::new() }
    }
}

impl ValueStats {
    /// Folds values into the running min/max (non-finite values are ignored).
    pub fn add_minmax(&mut self, xs: &[f32]) {
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }

    /// Whether any finite value was seen.
    pub fn seen(&self) -> bool {
        self.min <= self.max
    }

    /// Folds values into the histogram over the already known `[min, max]`.
    pub fn add_hist(&mut self, xs: &[f32]) {
        if !self.seen() {
            return;
        }
        if self.hist.is_empty() {
            self.hist = vec![0; HIST_BINS];
        }
        let (lo, width) = (self.min as f64, (self.max as f64 - self.min as f64).max(f64::MIN_POSITIVE));
        for &x in xs.iter().filter(|x| x.is_finite()) {
            let b = (((x as f64 - lo) / width) * HIST_BINS as f64).floor();
            self.hist[(b.max(0.0) as usize).min(HIST_BINS - 1)] += 1;
        }
    }

    /// Center of histogram bin `i`.
    fn center(&self, i: usize) -> f64 {
        let w = (self.max as f64 - self.min as f64) / HIST_BINS as f64;
        self.min as f64 + (i as f64 + 0.5) * w
    }

    /// The clipping range the observer picks (before extension to 0).
    pub fn range(&self, kind: ObserverKind, act: ActType) -> (f32, f32) {
        if !self.seen() {
            return (0.0, 0.0);
        }
        if self.hist.is_empty() || self.min == self.max {
            return (self.min, self.max);
        }
        match kind {
            ObserverKind::MinMax => (self.min, self.max),
            ObserverKind::Percentile(p) => self.percentile_range(p),
            ObserverKind::Mse => self.mse_range(act),
        }
    }

    fn percentile_range(&self, p: f64) -> (f32, f32) {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return (self.min, self.max);
        }
        let mut bins: Vec<(f64, u64)> = (0..HIST_BINS).map(|i| (self.center(i).abs(), self.hist[i])).collect();
        bins.sort_by(|a, b| a.0.total_cmp(&b.0));
        let need = (p / 100.0 * total as f64).ceil() as u64;
        let mut acc = 0u64;
        let half_bin = (self.max as f64 - self.min as f64) / HIST_BINS as f64 / 2.0;
        let mut a = self.min.abs().max(self.max.abs()) as f64;
        for (m, n) in bins {
            acc += n;
            if acc >= need {
                a = m + half_bin;
                break;
            }
        }
        ((-a as f32).max(self.min), (a as f32).min(self.max))
    }

    /// Quantization error (sum of squares) of the histogram clipped to `[lo, hi]`.
    pub fn quant_error(&self, lo: f32, hi: f32, act: ActType) -> f64 {
        let p = act_params(lo, hi, act);
        let (qlo, qhi) = act.range();
        let (s, zp) = (p.scale as f64, p.zero_point);
        let mut err = 0.0;
        for (i, &n) in self.hist.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let x = self.center(i);
            let q = ((x / s).round() as i64 + zp).clamp(qlo, qhi);
            let d = x - (q - zp) as f64 * s;
            err += d * d * n as f64;
        }
        err
    }

    fn mse_range(&self, act: ActType) -> (f32, f32) {
        let (mut best, mut best_err) = ((self.min, self.max), f64::INFINITY);
        let absmax = self.min.abs().max(self.max.abs());
        for k in (1..=100).rev() {
            let a = absmax * k as f32 / 100.0;
            let (lo, hi) = (self.min.max(-a), self.max.min(a));
            let e = self.quant_error(lo, hi, act);
            if e < best_err {
                best_err = e;
                best = (lo, hi);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(xs: &[f32]) -> ValueStats {
        let mut s = ValueStats::default();
        s.add_minmax(xs);
        s.add_hist(xs);
        s
    }

    #[test]
    fn minmax_is_the_extreme_values() {
        let s = stats(&[-0.5, 2.0, 1.0, f32::NAN]);
        assert_eq!(s.range(ObserverKind::MinMax, ActType::Int8), (-0.5, 2.0));
    }

    #[test]
    fn percentile_clips_the_tail_of_a_uniform_distribution() {
        // |x| uniform on [0, 10) in 0.001 steps, signs alternating: the 90th percentile of
        // |x| is 9.0.
        let xs: Vec<f32> = (0..10000).map(|i| i as f32 * 0.001 * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let (lo, hi) = stats(&xs).range(ObserverKind::Percentile(90.0), ActType::Int8);
        assert!((hi - 9.0).abs() < 0.02, "{hi}");
        assert!((lo + 9.0).abs() < 0.02, "{lo}");
        let (lo, hi) = stats(&xs).range(ObserverKind::Percentile(100.0), ActType::Int8);
        assert!(hi >= 9.99 && lo <= -9.99, "{lo} {hi}");
    }

    #[test]
    fn mse_picks_a_smaller_range_than_minmax_with_an_outlier() {
        // A million values in [-1, 1] and one at 10: clipping the outlier costs 81, while
        // the minmax range's coarser steps cost about 1e6 * (11/255)^2 / 12 = 155.
        let mut xs: Vec<f32> = (0..1_000_000).map(|i| ((i % 2001) as f32 - 1000.0) / 1000.0).collect();
        xs.push(10.0);
        let s = stats(&xs);
        let (mlo, mhi) = s.range(ObserverKind::MinMax, ActType::Int8);
        let (lo, hi) = s.range(ObserverKind::Mse, ActType::Int8);
        assert!(hi < mhi && hi - lo < mhi - mlo, "mse {lo}..{hi} vs minmax {mlo}..{mhi}");
        assert!(s.quant_error(lo, hi, ActType::Int8) < s.quant_error(mlo, mhi, ActType::Int8));
    }

    #[test]
    fn unseen_values_have_an_empty_range() {
        assert_eq!(ValueStats::default().range(ObserverKind::Mse, ActType::Int8), (0.0, 0.0));
    }
}
