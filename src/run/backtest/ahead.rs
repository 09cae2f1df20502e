//! The baseline lane on a second thread, one batch ahead of the strategy (issue 10: a replay uses
//! both cores).
//!
//! The two lanes of a backtest never read each other's state: each has its own processor, tool
//! offsets and portfolio, and takes the same records in the same order. So the baseline can run
//! anywhere as long as what the replay needs from it per record — its answer and its equity
//! after the record — comes back in order. A source lends its records only for the length of a
//! pull, so the replay copies them into a [`Batch`] (keys and raw bytes in one buffer each);
//! full batches go to the helper thread, which runs the baseline over them and sends each back
//! with the baseline's [`BaseOut`] per record. The replay meanwhile runs the strategy, the
//! periods and the charts over the batch before (whose baseline answers are already back), so
//! the two lanes' chains overlap. The results are those of running both lanes record by record
//! on one thread — `tests/backtest.rs` compares the two runs' outputs.

use std::ops::Range;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::flow::{Discard, FlowError, Item, Raw, Undecodable};
use crate::pipeline::Accepted;
use crate::record::{Payload, Record, Ts};

use super::lane::Lane;

/// Records per batch handed between the threads: large enough that the hand-off (two channel
/// messages) is noise per record, small enough that both buffers stay in cache.
pub(super) const BATCH: usize = 4096;

/// What the baseline did with one record.
#[derive(Debug, Clone, Copy)]
pub(super) struct BaseOut {
    pub(super) acc: Option<Accepted>,
    /// The baseline portfolio's equity after the record.
    pub(super) equity: f64,
}

/// Owned copies of records lent by a source, each with its key slot (see `Replay::slot`).
#[derive(Default)]
pub(super) struct Batch {
    keys: String,
    raw: Vec<u8>,
    rows: Vec<Row>,
}

struct Row {
    pos: u64,
    slot: Option<usize>,
    record: Result<Owned, Undecodable>,
    raw_key: Option<Range<usize>>,
    raw_payload: Option<Range<usize>>,
}

struct Owned {
    key: Range<usize>,
    ts: Ts,
    payload: Payload,
}

impl Batch {
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.raw.clear();
        self.rows.clear();
    }

    /// Appends a copy of `item` with its key slot.
    pub(super) fn push(&mut self, item: &Item<'_>, slot: Option<usize>) {
        let record = match &item.record {
            Ok(r) => {
                let start = self.keys.len();
                self.keys.push_str(r.key);
                Ok(Owned {
                    key: start..self.keys.len(),
                    ts: r.ts,
                    payload: r.payload,
                })
            }
            Err(u) => Err(u.clone()),
        };
        let mut copy = |bytes: Option<&[u8]>| {
            bytes.map(|b| {
                let start = self.raw.len();
                self.raw.extend_from_slice(b);
                start..self.raw.len()
            })
        };
        let raw_key = copy(item.raw.key);
        let raw_payload = copy(item.raw.payload);
        self.rows.push(Row {
            pos: item.pos,
            slot,
            record,
            raw_key,
            raw_payload,
        });
    }

    /// The records as items again, in order, each with its key slot.
    pub(super) fn items(&self) -> impl Iterator<Item = (Item<'_>, Option<usize>)> {
        self.rows.iter().map(|row| {
            let record = match &row.record {
                Ok(o) => Ok(Record {
                    key: &self.keys[o.key.clone()],
                    ts: o.ts,
                    payload: o.payload,
                }),
                Err(u) => Err(u.clone()),
            };
            let raw = Raw {
                key: row.raw_key.clone().map(|r| &self.raw[r]),
                payload: row.raw_payload.clone().map(|r| &self.raw[r]),
            };
            let item = Item {
                pos: row.pos,
                record,
                raw,
            };
            (item, row.slot)
        })
    }
}

/// A batch and the baseline's answers to its records (empty on the way to the helper).
pub(super) type Done = (Batch, Vec<BaseOut>);

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
fn run(lane: &mut Lane<Discard>, batch: Batch, mut outs: Vec<BaseOut>) -> Result<Done, FlowError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Bar, Invalid, Measurement};

    fn bar(close: f64) -> Payload {
        Payload::Bar(Bar {
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: None,
            true_trend: None,
        })
    }

    /// A batch gives back exactly the items it was given — keys, raw bytes, undecodable
    /// records and slots — across a clear and a refill.
    #[test]
    fn a_batch_round_trips_its_items() {
        let undecodable = Undecodable {
            reason: Invalid::EmptyKey,
            detail: "row 3: null key".into(),
        };
        let items = [
            (
                Item {
                    pos: 7,
                    record: Ok(Record {
                        key: "AAPL",
                        ts: 1,
                        payload: bar(10.0),
                    }),
                    raw: Raw::default(),
                },
                Some(0),
            ),
            (
                Item {
                    pos: 8,
                    record: Err(undecodable),
                    raw: Raw {
                        key: Some(b"k"),
                        payload: Some(b"{not json"),
                    },
                },
                None,
            ),
            (
                Item {
                    pos: 9,
                    record: Ok(Record {
                        key: "bore/diameter",
                        ts: 2,
                        payload: Payload::Measurement(Measurement {
                            value: 1.5,
                            nominal: Some(1.5),
                            lsl: Some(1.4),
                            usl: Some(1.6),
                            tool: Some(2),
                            true_value: None,
                        }),
                    }),
                    raw: Raw {
                        key: Some(b"bore/diameter"),
                        payload: Some(b"{}"),
                    },
                },
                Some(1),
            ),
        ];
        let mut batch = Batch::default();
        for round in 0..2 {
            for (item, slot) in &items {
                batch.push(item, *slot);
            }
            assert_eq!(batch.len(), items.len(), "round {round}");
            let back: Vec<_> = batch.items().collect();
            for ((got, got_slot), (want, want_slot)) in back.iter().zip(&items) {
                assert_eq!(got, want, "round {round}");
                assert_eq!(got_slot, want_slot, "round {round}");
            }
            drop(back);
            batch.clear();
            assert!(batch.is_empty());
        }
    }
}
