//! The backtest's stage: keeps the records of its shard, runs each through the strategy and the
//! baseline lane, groups their PnL into periods for `periods.parquet`, and lets the report
//! collect what both did. By default the baseline runs on a second thread a batch ahead
//! (`ahead.rs`); the results are the same either way.

use std::path::Path;

use crate::flow::{Batch, Discard, FlowError, Item, Stage, Step};
use crate::io::parquet::{PeriodWriter, SinkError};
use crate::io::replay::ParquetSink;
use crate::pipeline::Accepted;
use crate::record::{Payload, Record};
use crate::run::collect::Charts;
use crate::run::shard::Shard;
use crate::signal::active::ActiveBook;
use crate::signal::periods::{ActiveSums, PeriodLog, PeriodSums};

use super::ahead::{Ahead, BaseOut, Done, BATCH};
use super::lane::Lane;

pub(super) struct Replay {
    pub(super) strategy: Lane<ParquetSink>,
    /// The baseline lane while it runs on this thread, and after the final checkpoint;
    /// `None` while it is on the helper thread (`ahead`).
    pub(super) baseline: Option<Lane<Discard>>,
    ahead: Option<Ahead>,
    /// Run the baseline on a second thread (else record by record on this one).
    parallel: bool,
    /// Records copied for the helper, not yet sent; and emptied buffers to reuse.
    pending: Batch<Option<usize>>,
    spare: Vec<Done>,
    /// What the report draws (`None`: no report, nothing collected).
    pub(super) charts: Option<Charts>,
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
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        strategy: Lane<ParquetSink>,
        baseline: Lane<Discard>,
        parallel: bool,
        charts: Option<Charts>,
        bar: indicatif::ProgressBar,
        shard: Option<Shard>,
        out: &Path,
    ) -> Result<Self, SinkError> {
        Ok(Self {
            strategy,
            baseline: Some(baseline),
            ahead: None,
            parallel,
            pending: Batch::default(),
            spare: Vec::new(),
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

    /// The strategy, the period and the charts for one record, given the baseline's answer.
    fn take(
        &mut self,
        item: &Item<'_>,
        slot: Option<usize>,
        base: BaseOut,
    ) -> Result<(), FlowError> {
        let acc = self.strategy.step(item, slot)?;
        let (Ok(rec), Some(slot)) = (&item.record, slot) else {
            return Ok(());
        };
        let base_acc = base.acc;
        if acc.is_some() || base_acc.is_some() {
            self.period(rec, slot, acc.as_ref(), base_acc.as_ref())
                .map_err(|e| FlowError::new(Step::Emit, e))?;
        }
        if let Some(charts) = &mut self.charts {
            charts.record(
                rec,
                slot,
                acc.as_ref(),
                base_acc.as_ref(),
                self.strategy.flow.last_events(),
                self.strategy.portfolio.perf.equity(),
                base.equity,
                self.strategy.flow.processor(),
            );
        }
        Ok(())
    }

    /// Every record of a batch the helper answered, then the batch's buffers kept for reuse.
    fn take_batch(&mut self, (mut batch, outs): Done) -> Result<(), FlowError> {
        for ((item, slot), base) in batch.items().zip(&outs) {
            self.take(&item, slot, *base)?;
        }
        batch.clear();
        self.spare.push((batch, outs));
        Ok(())
    }

    /// Sends the pending records to the helper (starting it with the baseline lane on first
    /// use); once two batches are out, takes the older one back and runs the rest on it.
    fn send_pending(&mut self) -> Result<(), FlowError> {
        let (batch, outs) = self.spare.pop().unwrap_or_default();
        let full = std::mem::replace(&mut self.pending, batch);
        let baseline = &mut self.baseline;
        let ahead = self.ahead.get_or_insert_with(|| {
            Ahead::start(
                baseline
                    .take()
                    .expect("the baseline is here when no helper runs"),
            )
        });
        ahead.send((full, outs));
        if ahead.in_flight() >= 2 {
            let done = ahead.recv()?;
            self.take_batch(done)?;
        }
        Ok(())
    }

    /// Sends what is pending, takes every batch back and brings the baseline lane home.
    fn drain(&mut self) -> Result<(), FlowError> {
        if !self.pending.is_empty() {
            self.send_pending()?;
        }
        // On an error the helper is dropped with it (it stops when its channel closes): the
        // run is failing anyway.
        let Some(mut ahead) = self.ahead.take() else {
            return Ok(());
        };
        while ahead.in_flight() > 0 {
            let done = ahead.recv()?;
            self.take_batch(done)?;
        }
        self.baseline = Some(ahead.finish());
        Ok(())
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
        if self.parallel {
            self.pending.push(&item, slot);
            if self.pending.len() >= BATCH {
                self.send_pending()?;
            }
            return Ok(());
        }
        let baseline = self
            .baseline
            .as_mut()
            .expect("without a helper the baseline stays here");
        let base = BaseOut {
            acc: baseline.step(&item, slot)?,
            equity: baseline.portfolio.perf.equity(),
        };
        self.take(&item, slot, base)
    }

    fn checkpoint(&mut self) -> Result<(), FlowError> {
        self.drain()?;
        self.strategy.flow.checkpoint()?;
        self.baseline
            .as_mut()
            .expect("drained: the baseline is home")
            .flow
            .checkpoint()
    }
}
