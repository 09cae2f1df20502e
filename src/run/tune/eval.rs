//! Replays one candidate configuration through its strategy and L2 baseline processors and keeps
//! per-period net PnL and turnover of both, so any time window can be scored afterwards.
//!
//! One replay per candidate covers the whole input: a window's score is a slice of the series,
//! and the processors reach every window warmed up on the data before it (past data only).

use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::flow::{Discard, Flow, FlowError, Item, NoCheckpoint, Source};
use crate::io::parquet::SourceOptions;
use crate::io::replay::{FileFormat, FileSource};
use crate::pipeline::{Accepted, Processor};

use super::folds::Window;
use super::TuneError;

/// One period (records sharing a timestamp): sums over keys.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Period {
    pub ts: i64,
    /// Keys seen so far (the per-period return divides by it, as the backtest's portfolio).
    pub keys: usize,
    pub strategy: Side,
    pub baseline: Side,
}

/// One method's sums over the keys of a period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Side {
    pub net: f64,
    pub turnover: f64,
    pub trades: u64,
}

/// Totals of one method over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Score {
    /// The objective's value (chosen parameters only; 0 elsewhere).
    pub objective: f64,
    /// Sum over keys of gross PnL − costs, as the backtest's `net_return`.
    pub net_return: f64,
    pub turnover: f64,
    pub rebalances: u64,
    /// mean / sample std of per-period returns, × sqrt(periods_per_year) when configured.
    pub sharpe: f64,
    pub periods: usize,
}

/// Mean over sample std (ddof = 1) of `xs`; 0 when undefined.
pub fn ratio(xs: impl Iterator<Item = f64>, periods_per_year: Option<f64>) -> f64 {
    let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
    for x in xs {
        n += 1;
        let d = x - mean;
        mean += d / n as f64;
        m2 += d * (x - mean);
    }
    if n < 2 || m2 <= 0.0 {
        return 0.0;
    }
    mean / (m2 / (n - 1) as f64).sqrt() * periods_per_year.map_or(1.0, f64::sqrt)
}

/// Per-period return of a side.
pub fn ret(p: &Period, s: &Side) -> f64 {
    s.net / p.keys.max(1) as f64
}

/// Totals of one side over the periods in `w`.
pub fn score(series: &[Period], w: Window, side: fn(&Period) -> &Side, ppy: Option<f64>) -> Score {
    let mut s = Score::default();
    for p in series.iter().filter(|p| w.contains(p.ts)) {
        let x = side(p);
        s.net_return += x.net;
        s.turnover += x.turnover;
        s.rebalances += x.trades;
        s.periods += 1;
    }
    s.sharpe = ratio(
        series
            .iter()
            .filter(|p| w.contains(p.ts))
            .map(|p| ret(p, side(p))),
        ppy,
    );
    s
}

/// Where the records come from.
#[derive(Debug, Clone)]
pub struct Input {
    pub format: FileFormat,
    pub pattern: String,
    pub opts: SourceOptions,
}

/// Replays `cfg` (strategy) and its baseline over the input; one entry per period.
pub fn replay(cfg: &Config, input: &Input) -> Result<Vec<Period>, TuneError> {
    let new = |pc| Processor::new(Arc::new(pc)).map_err(|e| TuneError::Config(format!("{e}")));
    let mut strategy = Flow::new(new(cfg.processor.clone())?, Discard, NoCheckpoint);
    let mut baseline = Flow::new(new(cfg.baseline())?, Discard, NoCheckpoint);
    let mut source = FileSource::open(
        input.format,
        &input.pattern,
        cfg.processor.record,
        input.opts,
    )
    .map_err(|e| TuneError::Input(e.to_string()))?;
    let mut series: Vec<Period> = Vec::new();
    let mut f = |item: Item<'_>| -> Result<(), FlowError> {
        let Ok(rec) = &item.record else {
            return Ok(());
        };
        let ts = rec.ts;
        let a = strategy.submit(&item)?.result.ok();
        let b = baseline.submit(&item)?.result.ok();
        if a.is_none() && b.is_none() {
            return Ok(());
        }
        if series.last().map(|p| p.ts) != Some(ts) {
            series.push(Period {
                ts,
                ..Period::default()
            });
        }
        let p = series.last_mut().expect("pushed above");
        p.keys = strategy.processor().key_count();
        add(&mut p.strategy, a.as_ref());
        add(&mut p.baseline, b.as_ref());
        Ok(())
    };
    loop {
        match source
            .pull(4096, &mut f)
            .map_err(|e| TuneError::Input(e.to_string()))?
        {
            crate::flow::Pulled::End => break,
            _ => continue,
        }
    }
    Ok(series)
}

fn add(side: &mut Side, acc: Option<&Accepted>) {
    if let Some(a) = acc {
        side.net += a.book.gross - a.book.cost;
        if let Some(t) = &a.book.trade {
            side.turnover += t.turnover;
            side.trades += 1;
        }
    }
}
