//! The baseline lane on a second thread, one batch ahead of the strategy (issue 10: a replay uses
//! both cores).
//!
//! The two lanes of a backtest never read each other's state: each has its own processor, tool
//! offsets and portfolio, and takes the same records in the same order. So the baseline can run
//! anywhere as long as what the replay needs from it per record — its answer and its equity
//! after the record — comes back in order. A source lends its records only for the length of a
//! pull, so the replay copies them into a [`Batch`]; full batches go to the helper thread, which
//! runs the baseline over them and sends each back with the baseline's [`BaseOut`] per record. The replay meanwhile runs the strategy, the
//! periods and the charts over the batch before (whose baseline answers are already back), so
//! the two lanes' chains overlap. The results are those of running both lanes record by record
//! on one thread — `tests/backtest.rs` compares the two runs' outputs.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::flow::{Batch, Discard, FlowError};
use crate::pipeline::Accepted;

use super::lane::Lane;

/// Records per batch handed between the threads: large enough that the hand-off (two channel
/// messages) is noise per record, small enough that what is in flight stays a few hundred kB.
pub(super) const BATCH: usize = 4096;

/// What the baseline did with one record.
#[derive(Debug, Clone, Copy)]
pub(super) struct BaseOut {
    pub(super) acc: Option<Accepted>,
    /// The baseline portfolio's equity after the record.
    pub(super) equity: f64,
}

/// A batch (each record with its key slot, see `Replay::slot`) and the baseline's answers to
/// its records (empty on the way to the helper).
pub(super) type Done = (Batch<Option<usize>>, Vec<BaseOut>);

/// The helper thread that owns the baseline lane while batches are in flight.
pub(super) struct Ahead {
    to: SyncSender<Done>,
    from: Receiver<Result<Done, FlowError>>,
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
        let (to, inbox) = mpsc::sync_channel::<Done>(2);
        let (outbox, from) = mpsc::sync_channel(2);
        let thread = std::thread::Builder::new()
            .name("baseline".into())
            .spawn(move || {
                for (batch, outs) in inbox {
                    let reply = run(&mut lane, batch, outs);
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
    pub(super) fn send(&mut self, done: Done) {
        self.in_flight += 1;
        // A failed send means the helper is gone: the next `recv` says why.
        let _ = self.to.send(done);
    }

    /// The oldest batch sent, with the baseline's answers; waits for it.
    pub(super) fn recv(&mut self) -> Result<Done, FlowError> {
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

/// The baseline over one batch: its answer and equity per record, or the first error.
fn run(
    lane: &mut Lane<Discard>,
    batch: Batch<Option<usize>>,
    mut outs: Vec<BaseOut>,
) -> Result<Done, FlowError> {
    outs.clear();
    for (item, slot) in batch.items() {
        let acc = lane.step(&item, slot)?;
        outs.push(BaseOut {
            acc,
            equity: lane.portfolio.perf.equity(),
        });
    }
    Ok((batch, outs))
}
