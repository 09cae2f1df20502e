//! Collects, in bounded memory, what the backtest report draws: per-key series, event markers,
//! equity curves, and turns them plus the summary into `ReportData`.

use std::collections::HashMap;

use crate::config::Config;
use crate::pipeline::{Accepted, Processor};
use crate::record::{Event, EventBody, Payload, Record, RecordKind};
use crate::run::backtest::{Summary, Thin};
use crate::run::report::{EquityCurves, KeySeries, Marker, MarkerKind, ReportData};

/// Samples kept per chart before thinning (the renderer decimates further for drawing).
const POINTS: usize = 20_000;
/// Event markers kept per key.
const MARKERS: usize = 2_000;

/// Tool changes kept per key.
const TOOL_CHANGES: usize = 4_000;

#[derive(Debug, Clone, Copy)]
struct Point {
    ts: i64,
    y: f64,
    level: f64,
    zone: f64,
    base_level: f64,
    residual: f64,
    /// The strategy's SPC limit half-width on the residual (measurements), NaN when unknown.
    spc_limit: f64,
    position: f64,
    base_position: f64,
}

struct KeyBuf {
    key: String,
    points: Thin<Point>,
    /// Markers of one kind each, thinned apart so a busy kind does not crowd out a rare one.
    markers: HashMap<MarkerKind, Thin<Marker>>,
    tool_changes: Thin<i64>,
    lsl: Option<f64>,
    usl: Option<f64>,
}

/// One sample of the portfolio curves: time, equity, drawdown and cumulative turnover of the
/// strategy and the baseline.
#[derive(Debug, Clone, Copy)]
struct PortfolioPoint {
    ts: i64,
    equity: (f64, f64),
    drawdown: (f64, f64),
    turnover: (f64, f64),
}

/// The chart data of a run: the first `max_keys` keys seen, and the equity curves.
pub struct Charts {
    max_keys: usize,
    keys: Vec<KeyBuf>,
    /// By the caller's key slot: the key's chart in `keys`, once it has one.
    chart_of: Vec<Option<usize>>,
    equity: Thin<PortfolioPoint>,
    /// Running maxima of both equities (drawdowns use every period, not only the samples).
    peak: (f64, f64),
    /// Turnover of both methods so far.
    turnover: (f64, f64),
    last_ts: Option<i64>,
}

impl Charts {
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys,
            keys: Vec::new(),
            chart_of: Vec::new(),
            equity: Thin::new(POINTS),
            peak: (f64::NEG_INFINITY, f64::NEG_INFINITY),
            turnover: (0.0, 0.0),
            last_ts: None,
        }
    }

    /// Takes one record's outcome; `slot` numbers the record's key densely (the same number for
    /// the same key on every call, 0, 1, 2, … in any order); `equity_*` are the compounded
    /// equities so far; `strategy` is the strategy's processor (for the limits of a key's
    /// residual chart).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        rec: &Record<'_>,
        slot: usize,
        acc: Option<&Accepted>,
        base: Option<&Accepted>,
        events: &[Event],
        equity_strategy: f64,
        equity_baseline: f64,
        strategy: &Processor,
    ) {
        let traded =
            |a: Option<&Accepted>| a.and_then(|a| a.book.trade).map_or(0.0, |t| t.turnover);
        self.turnover.0 += traded(acc);
        self.turnover.1 += traded(base);
        if self.last_ts != Some(rec.ts) {
            self.last_ts = Some(rec.ts);
            self.peak.0 = self.peak.0.max(equity_strategy);
            self.peak.1 = self.peak.1.max(equity_baseline);
            let dd = |e: f64, p: f64| if p > 0.0 { e / p - 1.0 } else { 0.0 };
            self.equity.push(PortfolioPoint {
                ts: rec.ts,
                equity: (equity_strategy, equity_baseline),
                drawdown: (
                    dd(equity_strategy, self.peak.0),
                    dd(equity_baseline, self.peak.1),
                ),
                turnover: self.turnover,
            });
        }
        let Some(acc) = acc else { return };
        if slot >= self.chart_of.len() {
            self.chart_of.resize(slot + 1, None);
        }
        let i = match self.chart_of[slot] {
            Some(i) => i,
            None if self.keys.len() < self.max_keys => {
                self.chart_of[slot] = Some(self.keys.len());
                self.keys.push(KeyBuf {
                    key: rec.key.to_string(),
                    points: Thin::new(POINTS),
                    markers: HashMap::new(),
                    tool_changes: Thin::new(TOOL_CHANGES),
                    lsl: None,
                    usl: None,
                });
                self.keys.len() - 1
            }
            None => return,
        };
        let k = &mut self.keys[i];
        if let Payload::Measurement(m) = rec.payload {
            k.lsl = m.lsl.or(k.lsl);
            k.usl = m.usl.or(k.usl);
        }
        let f = acc.fit;
        let spc_limit = match rec.payload {
            Payload::Measurement(_) => strategy
                .key_state(rec.key)
                .and_then(|c| c.control.chart.as_ref())
                .and_then(|c| c.spc().sigma())
                .map_or(f64::NAN, |s| 3.0 * s),
            Payload::Bar(_) => f64::NAN,
        };
        let is_bar = matches!(rec.payload, Payload::Bar(_));
        k.points.push(Point {
            ts: rec.ts,
            y: f.y,
            level: f.level,
            zone: f.zone,
            base_level: base.map_or(f64::NAN, |b| b.fit.level),
            residual: acc.residual,
            spc_limit,
            position: if is_bar { acc.book.exposure } else { f64::NAN },
            base_position: match (is_bar, base) {
                (true, Some(b)) => b.book.exposure,
                _ => f64::NAN,
            },
        });
        for e in events {
            let (kind, label) = match e.body {
                EventBody::Trend {
                    direction: 1,
                    strength,
                    ..
                } => (MarkerKind::TrendUp, format!("trend up ({strength:.2})")),
                EventBody::Trend {
                    direction: -1,
                    strength,
                    ..
                } => (MarkerKind::TrendDown, format!("trend down ({strength:.2})")),
                EventBody::Trend { .. } => (MarkerKind::TrendFlat, "trend flat".to_string()),
                EventBody::Rebalance {
                    position_from,
                    position_to,
                    ..
                } => (
                    MarkerKind::Rebalance,
                    format!("rebalance {position_from:.2} -> {position_to:.2}"),
                ),
                EventBody::ToolCompensation { offset, .. } => {
                    (MarkerKind::Compensation, format!("offset {offset:+.5}"))
                }
                EventBody::SpcAlarm { rule, .. } => {
                    (MarkerKind::SpcAlarm, format!("SPC {}", rule.name()))
                }
                EventBody::ToolChange { .. } => {
                    k.tool_changes.push(e.ts);
                    continue;
                }
            };
            k.markers
                .entry(kind)
                .or_insert_with(|| Thin::new(MARKERS))
                .push(Marker {
                    ts: e.ts,
                    y: f.y,
                    kind,
                    label,
                });
        }
    }

    /// Dead-zone ratio and update rate of the charted keys, from the strategy's fitters.
    pub fn key_stats(&self, p: &Processor) -> HashMap<String, (f64, f64)> {
        self.keys
            .iter()
            .filter_map(|k| {
                let c = p.key_state(&k.key)?.fitter.counts();
                Some((k.key.clone(), (c.dead_zone_ratio(), c.update_rate())))
            })
            .collect()
    }

    /// The report: summary table, equity curves (bars), per-key charts, definitions.
    pub fn into_report(
        self,
        cfg: &Config,
        s: &Summary,
        key_stats: HashMap<String, (f64, f64)>,
    ) -> ReportData {
        let summary = crate::run::table::summary_rows(s);
        let eq = &self.equity.items;
        let equity = (s.record == RecordKind::Bar && !eq.is_empty()).then(|| EquityCurves {
            ts: eq.iter().map(|e| e.ts).collect(),
            strategy: eq.iter().map(|e| e.equity.0).collect(),
            baseline: eq.iter().map(|e| e.equity.1).collect(),
            strategy_drawdown: eq.iter().map(|e| e.drawdown.0).collect(),
            baseline_drawdown: eq.iter().map(|e| e.drawdown.1).collect(),
            strategy_turnover: eq.iter().map(|e| e.turnover.0).collect(),
            baseline_turnover: eq.iter().map(|e| e.turnover.1).collect(),
        });
        let keys = self
            .keys
            .into_iter()
            .map(|k| {
                let (dz, ur) = key_stats
                    .get(&k.key)
                    .copied()
                    .unwrap_or((f64::NAN, f64::NAN));
                let pts = &k.points.items;
                let bars = s.record == RecordKind::Bar;
                let mut markers: Vec<Marker> =
                    k.markers.into_values().flat_map(|m| m.items).collect();
                // By time, then kind: the kinds come out of a hash map, whose order differs
                // between runs, and the report must not (events of one kind keep their order).
                markers.sort_by_key(|m| (m.ts, m.kind));
                let has_limits = pts.iter().any(|p| p.spc_limit.is_finite());
                KeySeries {
                    key: k.key,
                    ts: pts.iter().map(|p| p.ts).collect(),
                    y: pts.iter().map(|p| p.y).collect(),
                    level: pts.iter().map(|p| p.level).collect(),
                    zone: pts.iter().map(|p| p.zone).collect(),
                    baseline_level: Some(pts.iter().map(|p| p.base_level).collect()),
                    markers,
                    dead_zone_ratio: dz,
                    update_rate: ur,
                    lsl: k.lsl,
                    usl: k.usl,
                    residual: Some(pts.iter().map(|p| p.residual).collect()),
                    spc_limit: has_limits.then(|| pts.iter().map(|p| p.spc_limit).collect()),
                    position: bars.then(|| pts.iter().map(|p| p.position).collect()),
                    baseline_position: bars.then(|| pts.iter().map(|p| p.base_position).collect()),
                    tool_changes: k.tool_changes.items,
                }
            })
            .collect();
        ReportData {
            title: format!("deadband backtest — {}", cfg.file.display()),
            subtitle: crate::run::table::subtitle(s),
            summary,
            equity,
            keys,
            notes: crate::run::table::notes(),
        }
    }
}
