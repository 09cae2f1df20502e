//! Shewhart individuals / moving-range (I-MR) chart: the phase-I estimate of centre and sigma from
//! moving ranges, and the frozen 3-sigma limits.

use serde::{Deserialize, Serialize};

/// `d2` for moving ranges of span 2: `E[range of 2 normal values] / sigma` (Montgomery,
/// *Introduction to Statistical Quality Control*, Appendix table of control-chart factors).
pub const D2: f64 = 1.128;
/// `D4` for span 2: the moving-range chart's upper limit is `D4 · MRbar` (same table).
pub const D4: f64 = 3.267;

/// Phase-I estimator for an individuals chart: running mean and average moving range (span 2)
/// of the values pushed so far. Constant memory; non-finite values are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MovingRange {
    n: u64,
    mean: f64,
    prev: f64,
    mr_n: u64,
    mr_mean: f64,
}

/// Incremental mean that stays finite for any finite inputs (no overflowing sum).
fn mean_step(mean: f64, x: f64, n: u64) -> f64 {
    let n = n as f64;
    let delta = x - mean;
    let next = if delta.is_finite() {
        mean + delta / n
    } else {
        mean + (x / n - mean / n)
    };
    next.clamp(-f64::MAX, f64::MAX)
}

impl MovingRange {
    /// An empty estimator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one value (ignored if not finite).
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.n > 0 {
            let mr = (x - self.prev).abs().min(f64::MAX);
            self.mr_n += 1;
            self.mr_mean = mean_step(self.mr_mean, mr, self.mr_n);
        }
        self.n += 1;
        self.mean = mean_step(self.mean, x, self.n);
        self.prev = x;
    }

    /// Number of values pushed.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean of the values (None before the first).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Average moving range `MRbar` (None before the second value).
    pub fn mr_bar(&self) -> Option<f64> {
        (self.mr_n > 0).then_some(self.mr_mean)
    }

    /// Sigma estimate `MRbar / d2` (None before the second value).
    pub fn sigma(&self) -> Option<f64> {
        self.mr_bar().map(|r| r / D2)
    }

    /// The individuals / moving-range chart these values define (None before the second value).
    pub fn chart(&self) -> Option<IndividualsChart> {
        Some(IndividualsChart {
            centre: self.mean()?,
            mr_bar: self.mr_bar()?,
        })
    }
}

/// Frozen limits of a Shewhart individuals (I) chart and its moving-range (MR) chart, 3-sigma.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndividualsChart {
    /// Centre line of the I chart.
    pub centre: f64,
    /// Average moving range, the centre line of the MR chart.
    pub mr_bar: f64,
}

impl IndividualsChart {
    /// Phase-I chart of a finished baseline (None with fewer than two finite values).
    pub fn from_values(values: &[f64]) -> Option<Self> {
        let mut mr = MovingRange::new();
        values.iter().for_each(|&x| mr.push(x));
        mr.chart()
    }

    /// Phase-II chart from a known centre and sigma (`MRbar = d2 · sigma`).
    pub fn from_sigma(centre: f64, sigma: f64) -> Self {
        Self {
            centre,
            mr_bar: D2 * sigma,
        }
    }

    /// Process sigma, `MRbar / d2`.
    pub fn sigma(&self) -> f64 {
        self.mr_bar / D2
    }

    /// Upper control limit of the I chart, `centre + 3·MRbar/d2`.
    pub fn ucl(&self) -> f64 {
        self.centre + 3.0 * self.sigma()
    }

    /// Lower control limit of the I chart, `centre - 3·MRbar/d2`.
    pub fn lcl(&self) -> f64 {
        self.centre - 3.0 * self.sigma()
    }

    /// Upper control limit of the MR chart, `D4·MRbar`.
    pub fn mr_ucl(&self) -> f64 {
        D4 * self.mr_bar
    }

    /// Lower control limit of the MR chart (`D3 = 0` for span 2).
    pub fn mr_lcl(&self) -> f64 {
        0.0
    }
}
