//! The merged per-period series: the shards' `periods.parquet` files joined by timestamp (sums
//! added, key counts as of each timestamp), written out, turned into portfolio statistics and
//! into the report's equity, drawdown and turnover curves.

use std::path::{Path, PathBuf};

use crate::io::parquet::{PeriodReader, PeriodWriter};
use crate::run::backtest::Thin;
use crate::run::report::EquityCurves;
use crate::signal::periods::{AsOfMerge, PeriodSums, SeriesStats};

use super::MergeError;

/// Samples of the curves kept for the report.
const POINTS: usize = 20_000;

/// One sample of the curves: time, equities, drawdowns, cumulative turnovers.
#[derive(Debug, Clone, Copy)]
struct Point {
    ts: i64,
    equity: (f64, f64),
    drawdown: (f64, f64),
    turnover: (f64, f64),
}

/// What the merged series gives: its statistics and the report's curves.
pub(super) struct Merged {
    pub(super) stats: SeriesStats,
    pub(super) curves: EquityCurves,
}

/// Joins the shards' period files (in shard order) into `out`.
pub(super) fn merge(files: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let mut readers = files
        .iter()
        .map(|f| PeriodReader::open(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut heads = Vec::with_capacity(readers.len());
    for r in &mut readers {
        heads.push(r.next_period()?);
    }
    let mut writer = PeriodWriter::create(out)?;
    let mut join = AsOfMerge::new(files.len());
    let mut stats = SeriesStats::default();
    let mut points = Thin::new(POINTS);
    let (mut peak, mut turnover) = ((1.0f64, 1.0f64), (0.0, 0.0));
    let mut rows: Vec<(usize, PeriodSums)> = Vec::new();
    while let Some(ts) = heads.iter().flatten().map(|p| p.ts).min() {
        rows.clear();
        for (i, head) in heads.iter_mut().enumerate() {
            if let Some(p) = head.filter(|p| p.ts == ts) {
                rows.push((i, p));
                *head = readers[i].next_period()?;
                if head.is_some_and(|next| next.ts <= ts) {
                    return Err(MergeError::Refused {
                        message: format!(
                            "{}: periods are not in increasing time order after ts {ts}; this file was edited or not written by deadband",
                            files[i].display()
                        ),
                    });
                }
            }
        }
        let period = join.combine(ts, &rows);
        writer.write(&period)?;
        stats.push(&period);
        let e = (stats.strategy.equity(), stats.baseline.equity());
        peak = (peak.0.max(e.0), peak.1.max(e.1));
        turnover.0 += period.strategy_turnover;
        turnover.1 += period.baseline_turnover;
        let dd = |e: f64, p: f64| if p > 0.0 { e / p - 1.0 } else { 0.0 };
        points.push(Point {
            ts,
            equity: e,
            drawdown: (dd(e.0, peak.0), dd(e.1, peak.1)),
            turnover,
        });
    }
    writer.finish()?;
    let p = &points.items;
    let curves = EquityCurves {
        ts: p.iter().map(|x| x.ts).collect(),
        strategy: p.iter().map(|x| x.equity.0).collect(),
        baseline: p.iter().map(|x| x.equity.1).collect(),
        strategy_drawdown: p.iter().map(|x| x.drawdown.0).collect(),
        baseline_drawdown: p.iter().map(|x| x.drawdown.1).collect(),
        strategy_turnover: p.iter().map(|x| x.turnover.0).collect(),
        baseline_turnover: p.iter().map(|x| x.turnover.1).collect(),
    };
    Ok(Merged { stats, curves })
}
