//! The backtest's stage: keeps the records of its shard, runs each through the strategy and the
//! baseline lane, groups their PnL into periods for `periods.parquet`, and lets the report
//! collect what both did.

use std::path::Path;

use crate::flow::{Discard, FlowError, Item, Stage, Step};
use crate::io::parquet::{PeriodWriter, SinkError};
use crate::io::replay::ParquetSink;
use crate::pipeline::Accepted;
use crate::record::{Payload, Record};
use crate::run::collect::Charts;
use crate::run::shard::Shard;
use crate::signal::active::ActiveBook;
use crate::signal::periods::{ActiveSums, PeriodLog, PeriodSums};

use super::lane::Lane;

pub(super) struct Replay {
    pub(super) strategy: Lane<ParquetSink>,
    pub(super) baseline: Lane<Discard>,
    pub(super) charts: Charts,
    pub(super) bar: indicatif::ProgressBar,
    /// Records read from the input, and those of this shard given to the lanes.
    seen: u64,
    pub(super) rows: u64,
    pub(super) active: ActiveBook,
    /// Keep only this shard's keys (`None`: every key).
    shard: Option<Shard>,
    /// The open period, and the file the closed ones go to (the caller writes the last one).
    pub(super) periods: PeriodLog,
    pub(super) period_file: PeriodWriter,
    /// Key name -> slot (see [`Replay::slot`]), or [`OTHER_SHARD`].
    slots: foldhash::HashMap<Box<str>, usize>,
    /// Slots given so far (keys of this shard).
    kept: usize,
}

/// The slot of a key that belongs to another shard: its records are skipped.
const OTHER_SHARD: usize = usize::MAX;

impl Replay {
    pub(super) fn new(
        strategy: Lane<ParquetSink>,
        baseline: Lane<Discard>,
        charts: Charts,
        bar: indicatif::ProgressBar,
        shard: Option<Shard>,
        out: &Path,
    ) -> Result<Self, SinkError> {
        Ok(Self {
            strategy,
            baseline,
            charts,
            bar,
            seen: 0,
            rows: 0,
            active: ActiveBook::default(),
            shard,
            periods: PeriodLog::default(),
            period_file: PeriodWriter::create(&out.join("periods.parquet"))?,
            slots: Default::default(),
            kept: 0,
        })
    }

    /// The key's slot: 0, 1, 2, … in first-seen order among this shard's keys, or
    /// [`OTHER_SHARD`]. One lookup per record serves the shard filter (the key is hashed once,
    /// when first seen), both lanes' side tables, the active book and the charts.
    fn slot(&mut self, key: &str) -> usize {
        if let Some(&s) = self.slots.get(key) {
            return s;
        }
        let s = match self.shard {
            Some(shard) if !shard.keeps(Some(key)) => OTHER_SHARD,
            _ => {
                self.kept += 1;
                self.kept - 1
            }
        };
        self.slots.insert(key.into(), s);
        s
    }

    /// Adds one record's PnL and turnover (of whichever lane accepted it) to its period.
    fn period(
        &mut self,
        rec: &Record<'_>,
        slot: usize,
        acc: Option<&Accepted>,
        base: Option<&Accepted>,
    ) -> Result<(), SinkError> {
        let net = |a: Option<&Accepted>| a.map_or(0.0, |a| a.book.gross - a.book.cost);
        let traded =
            |a: Option<&Accepted>| a.and_then(|a| a.book.trade).map_or(0.0, |t| t.turnover);
        let (s, b) = (net(acc), net(base));
        let keys = self.strategy.flow.processor().key_count();
        let active = match (rec.payload, acc) {
            (Payload::Bar(bar), Some(_)) => {
                let hold = self.active.add_slot(slot, rec.ts, bar.close, s, b, keys);
                Some(ActiveSums {
                    vs_baseline: s - b,
                    vs_hold: s - hold,
                    baseline_vs_hold: b - hold,
                })
            }
            _ => None,
        };
        let row = PeriodSums {
            ts: rec.ts,
            keys: keys as u64,
            strategy: s,
            baseline: b,
            strategy_turnover: traded(acc),
            baseline_turnover: traded(base),
            active,
        };
        match self.periods.add(row) {
            Some(done) => self.period_file.write(&done),
            None => Ok(()),
        }
    }
}

impl Stage for Replay {
    fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError> {
        self.seen += 1;
        if self.seen.is_multiple_of(65_536) {
            self.bar.set_position(self.seen);
        }
        let slot = match &item.record {
            Ok(rec) => match self.slot(rec.key) {
                OTHER_SHARD => return Ok(()),
                s => Some(s),
            },
            // An undecodable record has no key: shard 0 counts it.
            Err(_) if self.shard.is_some_and(|s| !s.keeps(None)) => return Ok(()),
            Err(_) => None,
        };
        self.rows += 1;
        let acc = self.strategy.step(&item, slot)?;
        let base = self.baseline.step(&item, slot)?;
        let (Ok(rec), Some(slot)) = (&item.record, slot) else {
            return Ok(());
        };
        if acc.is_some() || base.is_some() {
            self.period(rec, slot, acc.as_ref(), base.as_ref())
                .map_err(|e| FlowError::new(Step::Emit, e))?;
        }
        self.charts.record(
            rec,
            slot,
            acc.as_ref(),
            base.as_ref(),
            self.strategy.flow.last_events(),
            self.strategy.portfolio.perf.equity(),
            self.baseline.portfolio.perf.equity(),
            self.strategy.flow.processor(),
        );
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), FlowError> {
        self.strategy.flow.checkpoint()?;
        self.baseline.flow.checkpoint()
    }
}
