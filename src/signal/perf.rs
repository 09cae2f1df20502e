//! Streaming performance statistics of a return series: totals, Sharpe, max drawdown, hit rate.
//!
//! Definitions (also in the README):
//! * per-period portfolio return `r_t` = sum over keys of (PnL − cost) on period t, divided by the
//!   number of keys in the book at the end of period t (each key holds one notional of a
//!   K-notional book; a key enters the book with its first record). Dividing by the count at
//!   the period's end — not at the next period's start, which may already hold a new key — makes
//!   `r_t` depend only on records up to t, so shards over disjoint keys merge exactly:
//!   `r_t = Σ shard sums / Σ shard key counts as of t`;
//! * Sharpe = mean(r) / std(r) with the sample standard deviation (ddof = 1), times
//!   sqrt(periods_per_year) only when that is configured — not annualised otherwise;
//! * max drawdown as empyrical: on the compounded equity `E_t = Π(1 + r_s)`, the most negative
//!   `E_t / max_{s<=t} E_s − 1` (a negative fraction, 0 without drawdown);
//! * hit rate = periods with r > 0 / periods with r ≠ 0 (periods with any exposure or cost).
//!
//! Memory is constant: Welford's running mean and variance, running peak.

use serde::{Deserialize, Serialize};

/// Running statistics of a return series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Perf {
    n: u64,
    mean: f64,
    m2: f64,
    equity: f64,
    peak: f64,
    max_drawdown: f64,
    hits: u64,
    active: u64,
}

impl Default for Perf {
    fn default() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            equity: 1.0,
            peak: 1.0,
            max_drawdown: 0.0,
            hits: 0,
            active: 0,
        }
    }
}

impl Perf {
    /// Adds one period's return; a non-finite one counts as 0 (the books never form one, see
    /// `signal::book`), and the equity saturates at the largest finite value.
    pub fn push(&mut self, r: f64) {
        let r = if r.is_finite() { r } else { 0.0 };
        self.n += 1;
        let d = r - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (r - self.mean);
        self.equity = (self.equity * (1.0 + r)).min(f64::MAX);
        self.peak = self.peak.max(self.equity);
        if self.peak > 0.0 {
            self.max_drawdown = self.max_drawdown.min(self.equity / self.peak - 1.0);
        }
        if r != 0.0 {
            self.active += 1;
            if r > 0.0 {
                self.hits += 1;
            }
        }
    }

    pub fn periods(&self) -> u64 {
        self.n
    }

    /// Mean return per period (0 before the first period).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation (ddof = 1); `None` below two periods.
    pub fn std(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).sqrt())
    }

    /// mean/std, optionally times sqrt(periods per year); 0 when undefined (flat series).
    pub fn sharpe(&self, periods_per_year: Option<f64>) -> f64 {
        match self.std() {
            Some(s) if s > 0.0 => self.mean / s * periods_per_year.map_or(1.0, f64::sqrt),
            _ => 0.0,
        }
    }

    pub fn max_drawdown(&self) -> f64 {
        self.max_drawdown
    }

    pub fn hit_rate(&self) -> f64 {
        if self.active == 0 {
            0.0
        } else {
            self.hits as f64 / self.active as f64
        }
    }

    /// Compounded equity after the last period (starts at 1).
    pub fn equity(&self) -> f64 {
        self.equity
    }
}

/// Groups per-record PnL into per-period portfolio returns: records sharing a timestamp form one
/// period. Feed records in timestamp order.
#[derive(Debug, Clone, Default)]
pub struct Portfolio {
    current_ts: Option<i64>,
    sum: f64,
    /// The key count given with the period's latest record: the book's size at its end.
    keys: usize,
    pub perf: Perf,
}

impl Portfolio {
    /// Adds one record's net PnL at `ts`; `keys` is the number of keys in the book after this
    /// record (the last one given in a period divides its sum).
    pub fn add(&mut self, ts: i64, net_pnl: f64, keys: usize) {
        if self.current_ts != Some(ts) {
            self.flush_period();
            self.current_ts = Some(ts);
        }
        self.sum += net_pnl;
        self.keys = keys;
    }

    fn flush_period(&mut self) {
        if self.current_ts.is_some() {
            self.perf.push(self.sum / self.keys.max(1) as f64);
        }
        self.sum = 0.0;
    }

    /// Closes the last period; returns the statistics.
    pub fn finish(mut self) -> Perf {
        self.flush_period();
        self.current_ts = None;
        self.perf
    }
}
