//! Active statistics of a strategy against a benchmark (active return, tracking error,
//! information ratio), and the buy-and-hold benchmark they are measured against.
//!
//! Definitions (also in the README):
//! * per-period active return `a_t = r_t − b_t`, the strategy's and the benchmark's per-period
//!   portfolio returns of the same period (a period is a distinct timestamp, as in
//!   [`Portfolio`]). Since a portfolio return is a sum over keys divided by the key count, `a_t`
//!   is also the portfolio return of the per-record difference of net PnL, which is how
//!   [`ActiveBook`] computes it;
//! * active return = mean(a), times `periods_per_year` when that is configured;
//! * tracking error = sample standard deviation of `a` (ddof = 1), times `sqrt(periods_per_year)`
//!   when configured;
//! * information ratio = active return / tracking error (so mean/std times
//!   `sqrt(periods_per_year)`, annualised like Sharpe);
//! * undefined values are `None` (`null` in JSON): tracking error below two periods; the
//!   information ratio also when the tracking error is 0 (a constant active return, e.g. a
//!   strategy against itself) — no finite ratio describes that — or at most 1e-12 of the
//!   active return (the rounding noise a constant active return leaves).
//! * buy-and-hold: each key is held long one unit of notional from its first bar's close, with
//!   equal weights and no trading costs; the exposure drifts with the price like the book's
//!   (`e_t = e_{t−1}·(1 + r_t)`, PnL of bar t = `e_{t−1}·r_t`), so the first bar earns nothing.

use serde::Serialize;

use super::book::bar_return;
use super::perf::{Perf, Portfolio};

/// A tracking error at most this fraction of the active return is rounding noise of a constant
/// active return.
const NOISE: f64 = 1e-12;

/// Active statistics of one strategy against one benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActiveStats {
    /// Mean per-period active return (annualised: times periods per year).
    pub active_return: f64,
    /// Standard deviation of the active returns (annualised: times sqrt(periods per year)).
    pub tracking_error: Option<f64>,
    /// active_return / tracking_error; `None` when the tracking error is undefined or 0.
    pub information_ratio: Option<f64>,
    /// Periods (distinct timestamps) measured.
    pub periods: u64,
}

impl ActiveStats {
    /// From the statistics of the per-period active returns `a_t`.
    pub fn from_active(active: &Perf, periods_per_year: Option<f64>) -> Self {
        let ppy = periods_per_year.unwrap_or(1.0);
        let active_return = active.mean() * ppy;
        let tracking_error = active.std().map(|s| s * ppy.sqrt());
        // A constant active return leaves only rounding noise in the std: no ratio then.
        let information_ratio = tracking_error
            .filter(|te| *te > NOISE * active_return.abs() && *te > 0.0)
            .map(|te| active_return / te);
        Self {
            active_return,
            tracking_error,
            information_ratio,
            periods: active.periods(),
        }
    }

    /// From paired per-period returns of a strategy and a benchmark.
    pub fn from_returns(
        strategy: &[f64],
        benchmark: &[f64],
        periods_per_year: Option<f64>,
    ) -> Self {
        let mut active = Perf::default();
        for (r, b) in strategy.iter().zip(benchmark) {
            active.push(r - b);
        }
        Self::from_active(&active, periods_per_year)
    }
}

/// One key held long from its first bar (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HoldLong {
    exposure: f64,
    last_close: Option<f64>,
}

impl HoldLong {
    /// PnL of this bar for the exposure held into it.
    pub fn on_close(&mut self, close: f64) -> f64 {
        let pnl = match self.last_close {
            // An overflowing or absurd return counts 0 and leaves the exposure (see `book`).
            Some(prev) => match bar_return(prev, close) {
                Some(r) if (self.exposure * (1.0 + r)).is_finite() => {
                    let pnl = self.exposure * r;
                    self.exposure *= 1.0 + r;
                    pnl
                }
                _ => 0.0,
            },
            None => {
                self.exposure = 1.0;
                0.0
            }
        };
        self.last_close = Some(close);
        pnl
    }
}

/// Active statistics of a backtest: the strategy against the L2 baseline and against
/// buy-and-hold, and the baseline against buy-and-hold. Feed every accepted bar in timestamp
/// order.
#[derive(Debug, Clone, Default)]
pub struct ActiveBook {
    /// Key name -> slot in `hold`, for [`ActiveBook::add`].
    index: foldhash::HashMap<Box<str>, usize>,
    /// Buy-and-hold of each key, by slot.
    hold: Vec<HoldLong>,
    vs_baseline: Portfolio,
    vs_hold: Portfolio,
    baseline_vs_hold: Portfolio,
}

/// What [`ActiveBook::finish`] returns (`active` in `summary.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActiveReport {
    /// Strategy against the L2 baseline.
    pub vs_baseline: ActiveStats,
    /// Strategy against buy-and-hold.
    pub vs_buy_and_hold: ActiveStats,
    /// The L2 baseline against buy-and-hold (for comparison with the line above).
    pub baseline_vs_buy_and_hold: ActiveStats,
}

impl ActiveBook {
    /// One accepted bar of `key` at `ts`: the strategy's and the baseline's net PnL on it;
    /// `keys` is the number of keys in the book after it (as given to the portfolios). Returns
    /// the bar's buy-and-hold PnL.
    pub fn add(
        &mut self,
        key: &str,
        ts: i64,
        close: f64,
        strategy: f64,
        baseline: f64,
        keys: usize,
    ) -> f64 {
        let slot = match self.index.get(key) {
            Some(&s) => s,
            None => {
                let s = self.index.len();
                self.index.insert(key.into(), s);
                s
            }
        };
        self.add_slot(slot, ts, close, strategy, baseline, keys)
    }

    /// [`ActiveBook::add`] for a caller that already numbers its keys densely (0, 1, 2, … in any
    /// order of first sight): no key lookup. Use one of the two for a book, not both.
    pub fn add_slot(
        &mut self,
        slot: usize,
        ts: i64,
        close: f64,
        strategy: f64,
        baseline: f64,
        keys: usize,
    ) -> f64 {
        if slot >= self.hold.len() {
            self.hold.resize(slot + 1, HoldLong::default());
        }
        let hold = self.hold[slot].on_close(close);
        self.vs_baseline.add(ts, strategy - baseline, keys);
        self.vs_hold.add(ts, strategy - hold, keys);
        self.baseline_vs_hold.add(ts, baseline - hold, keys);
        hold
    }

    /// Closes the last period.
    pub fn finish(self, periods_per_year: Option<f64>) -> ActiveReport {
        let stats = |p: Portfolio| ActiveStats::from_active(&p.finish(), periods_per_year);
        ActiveReport {
            vs_baseline: stats(self.vs_baseline),
            vs_buy_and_hold: stats(self.vs_hold),
            baseline_vs_buy_and_hold: stats(self.baseline_vs_hold),
        }
    }
}
