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

use super::ahead::{Ahead, BaseOut, Load, Route, BATCH};
use super::lane::Lane;

pub(super) struct Replay {
    pub(super) strategy: Lane<ParquetSink>,
    /// The baseline lane while it runs on this thread, and after the final checkpoint;
    /// `None` while it is on the helper thread (`ahead`).
    pub(super) baseline: Option<Lane<Discard>>,
    ahead: Option<Ahead>,
    /// Run the baseline on a second thread (else record by record on this one).
    parallel: bool,
    /// Records lent by the source and copied for the helper, not yet sent (a source that hands
    /// over whole batches skips this); and emptied buffers to reuse.
    pending: Load,
    spare: Vec<Load>,
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
            pending: Load::default(),
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

    /// Every record kept of a batch the helper answered, then the buffers kept for reuse.
    fn take_load(&mut self, mut load: Load) -> Result<(), FlowError> {
        load.each_kept(|item, slot, k| self.take(item, slot, load.outs[k]))?;
        load.batch.clear();
        load.routes.clear();
        load.outs.clear();
        // Batches handed over by the source arrive with their own buffers: keep a few.
        if self.spare.len() < 2 {
            self.spare.push(load);
        }
        Ok(())
    }

    /// Sends a batch to the helper (starting it with the baseline lane on first use); once two
    /// batches are out, takes the older one back and runs the rest on it.
    fn send(&mut self, load: Load) -> Result<(), FlowError> {
        let baseline = &mut self.baseline;
        let ahead = self.ahead.get_or_insert_with(|| {
            Ahead::start(
                baseline
                    .take()
                    .expect("the baseline is here when no helper runs"),
            )
        });
        ahead.send(load);
        if ahead.in_flight() >= 2 {
            let done = ahead.recv()?;
            self.take_load(done)?;
        }
        Ok(())
    }

    /// Sends the records copied so far.
    fn send_pending(&mut self) -> Result<(), FlowError> {
        let fresh = self.spare.pop().unwrap_or_default();
        let full = std::mem::replace(&mut self.pending, fresh);
        self.send(full)
    }

    /// Where a record with this key goes (`None`: undecodable), counting it: to both lanes with
    /// its key's slot, or nowhere.
    fn route(&mut self, key: Option<&str>) -> Route {
        self.seen += 1;
        if self.seen.is_multiple_of(65_536) {
            self.bar.set_position(self.seen);
        }
        let slot = match key {
            Some(key) => match self.slot(key) {
                OTHER_SHARD => return Route::Skip,
                s => Some(s),
            },
            // An undecodable record has no key: shard 0 counts it.
            None if self.shard.is_some_and(|s| !s.keeps(None)) => return Route::Skip,
            None => None,
        };
        self.rows += 1;
        Route::Keep(slot)
    }

    /// Sends what is pending, takes every batch back and brings the baseline lane home.
    fn drain(&mut self) -> Result<(), FlowError> {
        if !self.pending.batch.is_empty() {
            self.send_pending()?;
        }
        // On an error the helper is dropped with it (it stops when its channel closes): the
        // run is failing anyway.
        let Some(mut ahead) = self.ahead.take() else {
            return Ok(());
        };
        while ahead.in_flight() > 0 {
            let done = ahead.recv()?;
            self.take_load(done)?;
        }
        self.baseline = Some(ahead.finish());
        Ok(())
    }
}

impl Stage for Replay {
    fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError> {
        let key = item.record.as_ref().ok().map(|r| r.key);
        let Route::Keep(slot) = self.route(key) else {
            return Ok(());
        };
        if self.parallel {
            self.pending.batch.push(&item);
            self.pending.routes.push(Route::Keep(slot));
            if self.pending.batch.len() >= BATCH {
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

    /// With the baseline on its own thread the replay owns its records anyway: a source's own
    /// batches save copying each record again.
    fn takes_batches(&self) -> bool {
        self.parallel
    }

    fn submit_batch(&mut self, batch: Batch) -> Result<(), FlowError> {
        if !self.parallel {
            return batch.items().try_for_each(|item| self.submit(item));
        }
        // Records lent before go first.
        if !self.pending.batch.is_empty() {
            self.send_pending()?;
        }
        let mut load = self.spare.pop().unwrap_or_default();
        for i in 0..batch.len() {
            let route = self.route(batch.key(i));
            load.routes.push(route);
        }
        load.batch = batch;
        self.send(load)
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
