//! `shard.json`: the raw sums and counts behind every figure of `summary.json` that is not a
//! portfolio statistic. The backtest computes its summary from them, and `deadband merge` adds
//! them up over shards and computes the merged summary with the same code — so ratios come
//! from summed counts, never from averaged ratios.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pipeline::Processor;
use crate::record::{EventKind, RecordKind};
use crate::run::shard::Shard;
use crate::run::summary::KeyFitStats;
use crate::signal::active::ActiveReport;
use crate::signal::compensate::Trigger;
use crate::signal::perf::Perf;
use crate::signal::truth::TruthScore;

use super::{Rejected, RunStats, Summary};

/// The version of the `shard.json` layout; `merge` refuses another.
pub const PARTS_VERSION: u32 = 1;

/// One method's (strategy or baseline) sums and counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MethodCounts {
    pub turnover: f64,
    pub rebalances: u64,
    pub gross_return: f64,
    pub costs: f64,
    /// Records the fits saw, those inside the zone and those that changed the fit
    /// (dead-zone ratio = inside / records, update rate = updates / records).
    pub records: u64,
    pub inside: u64,
    pub updates: u64,
    pub trend_events: u64,
    /// Measurement runs only (`None` for bars).
    pub compensations: Option<u64>,
    pub spc_alarms: Option<u64>,
    pub out_of_tolerance: Option<u64>,
    /// Parts out of tolerance by their true value, and whether any record carried one (the
    /// summary shows the count only then).
    pub truly_out_of_tolerance: u64,
    pub has_true_value: bool,
    /// Predictive compensation only.
    pub gated: Option<u64>,
    pub steps: Option<u64>,
    pub tool_changes: Option<u64>,
    /// The trend signal against `true_trend`, every key finished (no bars: all zero).
    pub trend_truth: TruthScore,
}

/// Adds two optional counts: present when either is.
fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

impl MethodCounts {
    /// One method's counts from its processor's state (keys summed in name order, so float
    /// sums do not depend on the hash map's order).
    pub fn of(
        processor: &Processor,
        has_true_value: bool,
        trend_truth: TruthScore,
    ) -> MethodCounts {
        let c = *processor.counters();
        let mut m = MethodCounts {
            has_true_value,
            trend_truth,
            trend_events: c.events_of(EventKind::Trend),
            ..MethodCounts::default()
        };
        let (mut oot, mut gated, mut steps, mut tools) = (0, 0, 0, 0);
        let mut cores: Vec<_> = processor.keys().collect();
        cores.sort_unstable_by_key(|&(name, _)| name);
        for (_, core) in cores {
            m.turnover += core.book.turnover;
            m.gross_return += core.book.gross;
            m.costs += core.book.costs;
            m.rebalances += core.book.trades;
            let fc = core.fit_counts();
            m.records += fc.records;
            m.updates += fc.updates;
            m.inside += fc.inside;
            oot += core.out_of_tolerance;
            m.truly_out_of_tolerance += core.truly_out_of_tolerance;
            gated += core.control.gate.gated;
            steps += core.control.gate.steps;
            tools += core.control.tool.changes;
        }
        if processor.config().record == RecordKind::Measurement {
            m.compensations = Some(c.events_of(EventKind::ToolCompensation));
            m.spc_alarms = Some(c.events_of(EventKind::SpcAlarm));
            m.out_of_tolerance = Some(oot);
            if processor.config().defaults.comp.trigger == Trigger::Predictive {
                m.gated = Some(gated);
                m.steps = Some(steps);
                m.tool_changes = Some(tools);
            }
        }
        m
    }

    /// Adds another key set's counts (a shard's).
    pub fn merge(&mut self, o: &MethodCounts) {
        self.turnover += o.turnover;
        self.rebalances += o.rebalances;
        self.gross_return += o.gross_return;
        self.costs += o.costs;
        self.records += o.records;
        self.inside += o.inside;
        self.updates += o.updates;
        self.trend_events += o.trend_events;
        self.compensations = add_opt(self.compensations, o.compensations);
        self.spc_alarms = add_opt(self.spc_alarms, o.spc_alarms);
        self.out_of_tolerance = add_opt(self.out_of_tolerance, o.out_of_tolerance);
        self.truly_out_of_tolerance += o.truly_out_of_tolerance;
        self.has_true_value |= o.has_true_value;
        self.gated = add_opt(self.gated, o.gated);
        self.steps = add_opt(self.steps, o.steps);
        self.tool_changes = add_opt(self.tool_changes, o.tool_changes);
        self.trend_truth.merge(&o.trend_truth);
    }

    /// The method's results: sums and ratios from the counts, portfolio statistics from the
    /// per-period returns in `perf`.
    pub fn stats(&self, perf: &Perf, periods_per_year: Option<f64>) -> RunStats {
        let ratio = |a: u64| {
            if self.records == 0 {
                0.0
            } else {
                a as f64 / self.records as f64
            }
        };
        RunStats {
            turnover: self.turnover,
            rebalances: self.rebalances,
            gross_return: self.gross_return,
            costs: self.costs,
            net_return: self.gross_return - self.costs,
            sharpe: perf.sharpe(periods_per_year),
            max_drawdown: perf.max_drawdown(),
            hit_rate: perf.hit_rate(),
            dead_zone_ratio: ratio(self.inside),
            update_rate: ratio(self.updates),
            trend_events: self.trend_events,
            compensations: self.compensations,
            out_of_tolerance: self.out_of_tolerance,
            truly_out_of_tolerance: self
                .has_true_value
                .then_some(self.truly_out_of_tolerance)
                .filter(|_| self.out_of_tolerance.is_some()),
            spc_alarms: self.spc_alarms,
            gated: self.gated,
            tool_changes: self.tool_changes,
            steps: self.steps,
            trend_truth: self.trend_truth.clone().report(),
        }
    }
}

/// `shard.json`: everything of a run's summary except what is recomputed from its files
/// (portfolio statistics from `periods.parquet`, events by kind and per-key statistics from
/// `events.parquet` and `fit.parquet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parts {
    pub version: u32,
    /// `None`: the run was not sharded (merging treats it as shard 0 of 1).
    pub shard: Option<Shard>,
    /// Of the settings that decide the results (see [`crate::run::shard::fingerprint`]).
    pub fingerprint: String,
    pub record: RecordKind,
    pub input: String,
    pub emit_fit: bool,
    pub periods_per_year: Option<f64>,
    /// Input records given to this run's lanes (after the shard filter).
    pub rows: u64,
    pub keys: u64,
    pub accepted: u64,
    pub elapsed_s: f64,
    pub rejected: Rejected,
    pub strategy: MethodCounts,
    pub baseline: MethodCounts,
    /// Events per kind (polars over this run's `events.parquet`); `merge` checks the merged
    /// file against the sum.
    pub events_by_kind: BTreeMap<String, u64>,
}

impl Parts {
    /// Adds another shard's counts (`shard` is left to the caller; elapsed times add up).
    pub fn merge(&mut self, o: &Parts) {
        self.rows += o.rows;
        self.keys += o.keys;
        self.accepted += o.accepted;
        self.elapsed_s += o.elapsed_s;
        for (reason, n) in &o.rejected.invalid {
            *self.rejected.invalid.entry(reason.clone()).or_insert(0) += n;
        }
        self.rejected.out_of_order += o.rejected.out_of_order;
        self.rejected.duplicate += o.rejected.duplicate;
        self.strategy.merge(&o.strategy);
        self.baseline.merge(&o.baseline);
        for (kind, n) in &o.events_by_kind {
            *self.events_by_kind.entry(kind.clone()).or_insert(0) += n;
        }
    }

    /// `summary.json` from these counts, the methods' per-period statistics, the active report
    /// (shown for bars only) and the per-key statistics of the fit file.
    pub fn summary(
        &self,
        strategy: &Perf,
        baseline: &Perf,
        active: ActiveReport,
        per_key: Vec<KeyFitStats>,
    ) -> Summary {
        let ppy = self.periods_per_year;
        let (s, b) = (
            self.strategy.stats(strategy, ppy),
            self.baseline.stats(baseline, ppy),
        );
        let bars = self.record == RecordKind::Bar;
        let turnover_reduction = (bars && b.turnover > 0.0).then(|| 1.0 - s.turnover / b.turnover);
        Summary {
            rows: self.rows,
            keys: self.keys as usize,
            elapsed_s: self.elapsed_s,
            rows_per_s: if self.elapsed_s > 0.0 {
                self.rows as f64 / self.elapsed_s
            } else {
                0.0
            },
            record: self.record,
            input: self.input.clone(),
            shard: self.shard,
            accepted: self.accepted,
            rejected: self.rejected.clone(),
            strategy: s,
            baseline: b,
            turnover_reduction,
            active: bars.then_some(active),
            events_by_kind: self.events_by_kind.clone(),
            per_key,
            periods_per_year: ppy,
        }
    }
}
