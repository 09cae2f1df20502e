//! What a backtest reports: one method's statistics, the rejected records, `summary.json`, and
//! the bounded sampler the report's series use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::RecordKind;
use crate::run::shard::Shard;
use crate::run::summary;
use crate::signal::active::ActiveReport;
use crate::signal::truth::TruthReport;

/// One method's results (`strategy` or `baseline` in `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RunStats {
    pub turnover: f64,
    pub rebalances: u64,
    pub gross_return: f64,
    pub costs: f64,
    pub net_return: f64,
    pub sharpe: f64,
    pub max_drawdown: f64,
    pub hit_rate: f64,
    pub dead_zone_ratio: f64,
    pub update_rate: f64,
    pub trend_events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_tolerance: Option<u64>,
    /// Parts whose true value (ground truth of generated data, after the offsets) is outside
    /// the tolerance; only when the input has a `true_value` column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truly_out_of_tolerance: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spc_alarms: Option<u64>,
    /// Measurements set aside by the outlier gate (strategy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gated: Option<u64>,
    /// Tool changes seen in the `tool` column (strategy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_changes: Option<u64>,
    /// Steps detected without a tool column (strategy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Bars with a `true_trend` column (generated data): the trend signal scored against the
    /// truth — direction accuracy, delay to detect a regime change, false flips
    /// (definitions in `signal::truth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend_truth: Option<TruthReport>,
}

/// Records that were not processed, by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Rejected {
    pub invalid: BTreeMap<String, u64>,
    pub out_of_order: u64,
    pub duplicate: u64,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub rows: u64,
    pub keys: usize,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    pub record: RecordKind,
    pub input: String,
    /// `--shard I/N`: this run kept only the keys of shard I of N (absent when not sharded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub accepted: u64,
    pub rejected: Rejected,
    pub strategy: RunStats,
    pub baseline: RunStats,
    /// 1 - strategy turnover / baseline turnover (bars; null when the baseline did not trade).
    pub turnover_reduction: Option<f64>,
    /// Bars: active return, tracking error and information ratio of the strategy against the
    /// L2 baseline and against buy-and-hold (see `signal::active`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveReport>,
    /// Events per kind, counted by polars from `events.parquet` (a second count, independent of
    /// the processor's counters).
    pub events_by_kind: BTreeMap<String, u64>,
    /// Per-key fit statistics from `fit.parquet` (polars), when fit rows were written.
    pub per_key: Vec<summary::KeyFitStats>,
    pub periods_per_year: Option<f64>,
}

/// Keeps at most `cap` evenly spaced samples of an unbounded stream: when full, every other
/// sample is dropped and the stride doubles. Memory stays O(cap) for any run length.
#[derive(Debug, Clone)]
pub(crate) struct Thin<T> {
    cap: usize,
    stride: u64,
    seen: u64,
    pub items: Vec<T>,
}

impl<T> Thin<T> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(2),
            stride: 1,
            seen: 0,
            items: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.seen.is_multiple_of(self.stride) {
            self.items.push(item);
            if self.items.len() >= self.cap {
                let mut i = 0;
                self.items.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }
}
