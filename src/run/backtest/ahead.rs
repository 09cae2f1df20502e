//! The baseline lane on a second thread, one batch ahead of the strategy (issue 10: a replay uses
//! both cores).
//!
//! The two lanes of a backtest never read each other's state: each has its own processor, tool
//! offsets and portfolio, and takes the same records in the same order. So the baseline can run
//! anywhere as long as what the replay needs from it per record — its answer and its equity
//! after the record — comes back in order. The replay takes the input in owned [`Batch`]es (the
//! read-ahead thread's own, or its copies of what a lending source lent), notes where each
//! record goes ([`Route`]) and sends both to the helper thread, which runs the baseline over the
//! batch and sends it back with the baseline's [`BaseOut`] per record kept. The replay meanwhile
//! runs the strategy, the periods and the charts over the batch before (whose baseline answers
//! are already back), so the two lanes' chains overlap. The results are those of running both
//! lanes record by record on one thread — `tests/backtest.rs` compares the two runs' outputs.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::flow::{Batch, Discard, FlowError, Item};
use crate::pipeline::Accepted;

use super::lane::Lane;

/// Records per batch handed between the threads (and read ahead): large enough that the
/// hand-off (two channel messages) is noise per record, small enough that what is in flight
/// stays a few hundred kB.
pub(super) const BATCH: usize = 4096;

/// What the baseline did with one record.
#[derive(Debug, Clone, Copy)]
pub(super) struct BaseOut {
    pub(super) acc: Option<Accepted>,
    /// The baseline portfolio's equity after the record.
    pub(super) equity: f64,
}

/// Where one record of a batch goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Route {
    /// To both lanes, with its key's slot (see `Replay::slot`; `None`: undecodable, no key).
    Keep(Option<usize>),
    /// Nowhere: its key belongs to another shard.
    Skip,
}

/// A batch of the input on its way to the helper and back.
#[derive(Default)]
pub(super) struct Load {
    pub(super) batch: Batch,
    /// One per record of `batch`.
    pub(super) routes: Vec<Route>,
    /// The baseline's answers, one per record kept (empty on the way to the helper).
    pub(super) outs: Vec<BaseOut>,
}

impl Load {
    /// Calls `f` with every record kept, in order: the record, its key slot and its index
    /// among the kept ones. Stops at the first error.
    pub(super) fn each_kept<E>(
        &self,
        mut f: impl FnMut(&Item<'_>, Option<usize>, usize) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut kept = 0;
        for (i, route) in self.routes.iter().enumerate() {
            if let Route::Keep(slot) = *route {
                f(&self.batch.item(i), slot, kept)?;
                kept += 1;
            }
        }
        Ok(())
    }
}

/// The helper thread that owns the baseline lane while batches are in flight.
pub(super) struct Ahead {
    to: SyncSender<Load>,
    from: Receiver<Result<Load, FlowError>>,
    /// `None` only after [`Ahead::died`] joined it.
    thread: Option<JoinHandle<Lane<Discard>>>,
    /// Batches sent and not yet received back.
    in_flight: usize,
}

impl Ahead {
    /// Moves `lane` to a new thread that waits for batches.
    pub(super) fn start(mut lane: Lane<Discard>) -> Self {
        // Two batches may wait: the one being run and the next, so the replay never blocks on
        // a send while the helper is busy.
        let (to, inbox) = mpsc::sync_channel::<Load>(2);
        let (outbox, from) = mpsc::sync_channel(2);
        let thread = std::thread::Builder::new()
            .name("baseline".into())
            .spawn(move || {
                for load in inbox {
                    let reply = run(&mut lane, load);
                    let failed = reply.is_err();
                    // A closed channel means the replay is gone (it failed): stop quietly.
                    if outbox.send(reply).is_err() || failed {
                        break;
                    }
                }
                lane
            })
            .expect("cannot start the baseline thread");
        Self {
            to,
            from,
            thread: Some(thread),
            in_flight: 0,
        }
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands a batch (and a buffer for its answers) to the helper.
    pub(super) fn send(&mut self, load: Load) {
        self.in_flight += 1;
        // A failed send means the helper is gone: the next `recv` says why.
        let _ = self.to.send(load);
    }

    /// The oldest batch sent, with the baseline's answers; waits for it.
    pub(super) fn recv(&mut self) -> Result<Load, FlowError> {
        match self.from.recv() {
            Ok(reply) => {
                self.in_flight -= 1;
                reply
            }
            Err(_) => self.died(),
        }
    }

    /// Ends the thread (call it with every batch received) and gives the lane back.
    pub(super) fn finish(mut self) -> Lane<Discard> {
        drop(self.to);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(lane)) => lane,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("a dead helper's panic was re-raised"),
        }
    }

    /// The helper stopped without answering, which only a panic does: re-raises it here.
    fn died(&mut self) -> ! {
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => panic!("the baseline thread ended without an answer"),
        }
    }
}

/// The baseline over one batch: its answer and equity per record kept, or the first error.
fn run(lane: &mut Lane<Discard>, mut load: Load) -> Result<Load, FlowError> {
    let mut outs = std::mem::take(&mut load.outs);
    outs.clear();
    load.each_kept(|item, slot, _| {
        let acc = lane.step(item, slot)?;
        outs.push(BaseOut {
            acc,
            equity: lane.portfolio.perf.equity(),
        });
        Ok(())
    })?;
    load.outs = outs;
    Ok(load)
}
