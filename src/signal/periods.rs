//! Per-period sums before division (a row of `periods.parquet`): what a backtest writes so that
//! the portfolio statistics of shards over disjoint keys can be recomputed exactly when they are
//! merged.
//!
//! A period is a distinct timestamp, as in [`Portfolio`](super::perf::Portfolio). Its return is
//! `sum / keys`, with `keys` the number of keys in the book at the end of the period. Shards
//! split the keys, so the merged period at `t` sums the shards' sums at `t` and their key
//! counts *as of* `t` (the count of a shard's last period at or before `t`: a shard without a
//! record at `t` still holds its keys) — [`AsOfMerge`]. [`SeriesStats`] then turns a series of
//! rows into the same [`Perf`] statistics the backtest's portfolios compute while streaming.

use super::active::{ActiveReport, ActiveStats};
use super::perf::Perf;

/// Sums of the active PnL of bars over one period (strategy − benchmark, per record).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ActiveSums {
    pub vs_baseline: f64,
    pub vs_hold: f64,
    pub baseline_vs_hold: f64,
}

/// One period: its timestamp, the keys in the book at its end, and the sums of its records.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeriodSums {
    pub ts: i64,
    pub keys: u64,
    /// Σ net PnL (gross − cost) of the strategy's accepted records.
    pub strategy: f64,
    pub baseline: f64,
    /// Σ one-way turnover traded in the period.
    pub strategy_turnover: f64,
    pub baseline_turnover: f64,
    /// Bars only.
    pub active: Option<ActiveSums>,
}

impl PeriodSums {
    /// Adds `other`'s sums to these (the timestamp and key count are left to the caller).
    fn add_sums(&mut self, other: &PeriodSums) {
        self.strategy += other.strategy;
        self.baseline += other.baseline;
        self.strategy_turnover += other.strategy_turnover;
        self.baseline_turnover += other.baseline_turnover;
        if let Some(b) = other.active {
            let a = self.active.get_or_insert_with(ActiveSums::default);
            a.vs_baseline += b.vs_baseline;
            a.vs_hold += b.vs_hold;
            a.baseline_vs_hold += b.baseline_vs_hold;
        }
    }
}

/// Groups per-record sums into periods; feed records in timestamp order.
#[derive(Debug, Clone, Default)]
pub struct PeriodLog {
    current: Option<PeriodSums>,
}

impl PeriodLog {
    /// Adds one record (its `ts`, the keys in the book after it, its PnL and turnover); returns
    /// the previous period when this record starts a new one.
    pub fn add(&mut self, rec: PeriodSums) -> Option<PeriodSums> {
        match &mut self.current {
            Some(cur) if cur.ts == rec.ts => {
                cur.add_sums(&rec);
                cur.keys = rec.keys;
                None
            }
            _ => self.current.replace(rec),
        }
    }

    /// The last period, if any record came.
    pub fn finish(self) -> Option<PeriodSums> {
        self.current
    }
}

/// Joins the period series of shards over disjoint keys into the series of the whole run.
#[derive(Debug, Clone)]
pub struct AsOfMerge {
    /// Each shard's key count as of the last period combined.
    keys: Vec<u64>,
}

impl AsOfMerge {
    pub fn new(shards: usize) -> Self {
        Self {
            keys: vec![0; shards],
        }
    }

    /// The merged period at `ts` from the rows of the shards that have one there (shard
    /// number, row; in shard order, each row's `ts` equal to `ts`). Call in increasing `ts`.
    pub fn combine(&mut self, ts: i64, rows: &[(usize, PeriodSums)]) -> PeriodSums {
        let mut out = PeriodSums {
            ts,
            ..PeriodSums::default()
        };
        for (shard, row) in rows {
            out.add_sums(row);
            self.keys[*shard] = row.keys;
        }
        out.keys = self.keys.iter().sum();
        out
    }
}

/// The portfolio statistics of a period series: each method's returns and, for bars, the
/// three active-return series, each period's sum divided by its key count.
#[derive(Debug, Clone, Default)]
pub struct SeriesStats {
    pub strategy: Perf,
    pub baseline: Perf,
    vs_baseline: Perf,
    vs_hold: Perf,
    baseline_vs_hold: Perf,
}

impl SeriesStats {
    /// Adds one period, divided as [`Portfolio`](super::perf::Portfolio) divides.
    pub fn push(&mut self, p: &PeriodSums) {
        let k = p.keys.max(1) as f64;
        self.strategy.push(p.strategy / k);
        self.baseline.push(p.baseline / k);
        if let Some(a) = p.active {
            self.vs_baseline.push(a.vs_baseline / k);
            self.vs_hold.push(a.vs_hold / k);
            self.baseline_vs_hold.push(a.baseline_vs_hold / k);
        }
    }

    /// The active report (meaningful for bars; the caller decides whether to show it).
    pub fn active(&self, periods_per_year: Option<f64>) -> ActiveReport {
        let stats = |p: &Perf| ActiveStats::from_active(p, periods_per_year);
        ActiveReport {
            vs_baseline: stats(&self.vs_baseline),
            vs_buy_and_hold: stats(&self.vs_hold),
            baseline_vs_buy_and_hold: stats(&self.baseline_vs_hold),
        }
    }
}
