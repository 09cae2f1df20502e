//! A source read on its own thread, a few batches ahead of the stage (issue 10: decoding and
//! processing overlap on two cores).
//!
//! [`Prefetch`] moves a [`Source`] to a helper thread that pulls from it and copies what it lends
//! into [`Batch`]es; the stage's thread then lends the copies, in the same order, with the same
//! positions — or hands each batch over whole ([`Source::pull_batch`]) to a stage that takes
//! batches. An error of the inner source arrives after every record it lent before failing, so
//! nothing read is lost. Only for sources that end by themselves (files): a live source's
//! `Idle` would be passed on as an empty pull, and its position commits stay where the stage
//! runs them anyway.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::batch::Batch;
use super::source::{Item, Pulled, PulledBatch, Source};
use super::stage::FlowError;

/// Batches that may wait between the helper and the stage.
const AHEAD: usize = 2;

/// A [`Source`] whose reading runs on a helper thread.
pub struct Prefetch {
    from: Receiver<Result<Batch, FlowError>>,
    /// Emptied batches going back to the helper for reuse.
    back: SyncSender<Batch>,
    current: Batch,
    /// Records of `current` already handed out.
    at: usize,
    total: u64,
    /// `None` once joined (the inner source ended, failed or panicked).
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts reading `source` on a new thread, `batch` records per pull.
    pub fn start<S: Source + Send + 'static>(mut source: S, batch: usize) -> Self {
        let total = source.total_hint();
        let (to, from) = mpsc::sync_channel(AHEAD);
        let (back, spare) = mpsc::sync_channel::<Batch>(AHEAD + 2);
        let max = batch.max(1);
        let thread = std::thread::Builder::new()
            .name("source".into())
            .spawn(move || {
                // Sized like the last batch when none comes back (a stage that takes batches
                // whole keeps them), so a new one fills without growing.
                let mut next = Batch::default();
                loop {
                    let mut b = spare
                        .try_recv()
                        .unwrap_or_else(|_| std::mem::take(&mut next));
                    b.clear();
                    let pulled = source.pull(max, &mut |item| {
                        b.push(&item);
                        Ok(())
                    });
                    // What was lent before an error or the end goes first.
                    let last = !matches!(pulled, Ok(Pulled::Records(_)) | Ok(Pulled::Idle));
                    next = b.sized_like();
                    if !b.is_empty() && to.send(Ok(b)).is_err() {
                        return; // the stage is gone (it failed)
                    }
                    if let Err(e) = pulled {
                        let _ = to.send(Err(e));
                    }
                    if last {
                        return;
                    }
                }
            })
            .expect("cannot start the source thread");
        Self {
            from,
            back,
            current: Batch::default(),
            at: 0,
            total,
            thread: Some(thread),
        }
    }

    /// The helper stopped: joins it, re-raising its panic if it had one.
    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Prefetch {
    /// Makes sure `current` has records not yet handed out, waiting for the helper's next
    /// batch if need be; false once the inner source has ended.
    fn fill(&mut self) -> Result<bool, FlowError> {
        while self.at == self.current.len() {
            if self.thread.is_none() {
                return Ok(false);
            }
            match self.from.recv() {
                Ok(Ok(next)) => {
                    let done = std::mem::replace(&mut self.current, next);
                    self.at = 0;
                    // Lent in full, it goes back for reuse (handed over whole, nothing is left);
                    // a full return channel only means the helper allocates a new batch.
                    if !done.is_empty() {
                        let _ = self.back.try_send(done);
                    }
                }
                Ok(Err(e)) => {
                    self.join();
                    return Err(e);
                }
                // The helper returned after its last batch (or panicked: re-raised here).
                Err(_) => self.join(),
            }
        }
        Ok(true)
    }
}

impl Source for Prefetch {
    fn pull(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
    ) -> Result<Pulled, FlowError> {
        if !self.fill()? {
            return Ok(Pulled::End);
        }
        let n = max.max(1).min(self.current.len() - self.at);
        for item in self.current.items_from(self.at).take(n) {
            self.at += 1;
            f(item)?;
        }
        Ok(Pulled::Records(n))
    }

    /// The helper's batch itself (what a `pull` left of it copied into a new one).
    fn pull_batch(&mut self) -> Result<PulledBatch, FlowError> {
        if !self.fill()? {
            return Ok(PulledBatch::End);
        }
        let whole = if self.at == 0 {
            std::mem::take(&mut self.current)
        } else {
            let mut rest = Batch::default();
            self.current
                .items_from(self.at)
                .for_each(|item| rest.push(&item));
            rest
        };
        self.at = self.current.len();
        Ok(PulledBatch::Batch(whole))
    }

    fn total_hint(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Raw, Step, Undecodable};
    use crate::record::{Bar, Invalid, Payload, Record};

    /// Lends `n` records (keys `k0`, `k1`, …; every fifth undecodable) at most `per_pull` at a
    /// time, then fails with a pull error if `fail`, else ends — in the pull that lent the last
    /// records if `eager`, else in the next one.
    struct Counting {
        n: u64,
        next: u64,
        per_pull: usize,
        fail: bool,
        eager: bool,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk on fire")]
    struct Fire;

    impl crate::error::Failure for Fire {
        fn is_user_error(&self) -> bool {
            false
        }
    }

    impl Source for Counting {
        fn pull(
            &mut self,
            max: usize,
            f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
        ) -> Result<Pulled, FlowError> {
            let mut lent = 0;
            while lent < max.min(self.per_pull) && self.next < self.n {
                let key = format!("k{}", self.next);
                let raw = self.next.to_le_bytes();
                let record = if self.next % 5 == 4 {
                    Err(Undecodable {
                        reason: Invalid::NotFinite,
                        detail: format!("row {}", self.next),
                    })
                } else {
                    Ok(Record {
                        key: &key,
                        ts: self.next as i64,
                        payload: Payload::Bar(Bar {
                            open: 1.0,
                            high: 2.0,
                            low: 0.5,
                            close: 1.5,
                            volume: None,
                            true_trend: None,
                        }),
                    })
                };
                f(Item {
                    pos: self.next,
                    record,
                    raw: Raw {
                        key: Some(key.as_bytes()),
                        payload: Some(&raw),
                    },
                })?;
                self.next += 1;
                lent += 1;
            }
            let done = self.next == self.n && (lent == 0 || self.eager);
            match (done, self.fail) {
                (true, true) => Err(FlowError::new(Step::Pull, Fire)),
                (true, false) if lent == 0 => Ok(Pulled::End),
                _ => Ok(Pulled::Records(lent)),
            }
        }

        fn total_hint(&self) -> u64 {
            self.n
        }
    }

    /// An item as the test compares it: position, key (or the undecodable's detail), raw payload.
    type Seen = (u64, String, Vec<u8>);

    /// Every item, and the error the pulls ended with (`None`: they ended cleanly).
    fn drain(s: &mut dyn Source, max: usize) -> (Vec<Seen>, Option<String>) {
        let mut seen = Vec::new();
        loop {
            let pulled = s.pull(max, &mut |item| {
                let what = match &item.record {
                    Ok(r) => r.key.to_string(),
                    Err(u) => u.detail.clone(),
                };
                seen.push((item.pos, what, item.raw.payload.unwrap().to_vec()));
                Ok(())
            });
            match pulled {
                Ok(Pulled::End) => return (seen, None),
                Ok(_) => {}
                Err(e) => return (seen, Some(e.to_string())),
            }
        }
    }

    /// [`drain`] by whole batches (after `lend_first` records lent by `pull`).
    fn drain_batches(s: &mut dyn Source, lend_first: usize) -> (Vec<Seen>, Option<String>) {
        let (mut seen, mut error) = (Vec::new(), None);
        let mut see = |item: Item<'_>| {
            let what = match &item.record {
                Ok(r) => r.key.to_string(),
                Err(u) => u.detail.clone(),
            };
            seen.push((item.pos, what, item.raw.payload.unwrap().to_vec()));
        };
        if lend_first > 0 {
            if let Err(e) = s.pull(lend_first, &mut |item| {
                see(item);
                Ok(())
            }) {
                error = Some(e.to_string());
            }
        }
        while error.is_none() {
            match s.pull_batch() {
                Ok(PulledBatch::Batch(b)) => {
                    assert!(!b.is_empty(), "a handed batch holds records");
                    b.items().for_each(&mut see);
                }
                Ok(PulledBatch::End) => break,
                Ok(PulledBatch::Lends) => panic!("a prefetch hands its batches over"),
                Err(e) => error = Some(e.to_string()),
            }
        }
        (seen, error)
    }

    /// Read ahead or read in place, lent or handed over whole, the stage sees the same items,
    /// positions and raw bytes in the same order, and the inner source's failure after all it
    /// lent — whatever the batch sizes on either side.
    #[test]
    fn prefetch_lends_what_the_source_lends_then_its_error() {
        for (fail, eager) in [(false, false), (true, false), (true, true)] {
            for (per_pull, batch, max) in [(7, 3, 5), (1000, 64, 1), (3, 1, 1000)] {
                let source = |n| Counting {
                    n,
                    next: 0,
                    per_pull,
                    fail,
                    eager,
                };
                let direct = drain(&mut source(203), max);
                let mut ahead = Prefetch::start(source(203), batch);
                assert_eq!(ahead.total_hint(), 203);
                let read = drain(&mut ahead, max);
                assert_eq!(
                    read, direct,
                    "fail={fail} eager={eager} per_pull={per_pull} batch={batch}"
                );
                assert_eq!(read.0.len(), 203);
                assert_eq!(read.1.is_some(), fail);
                // After the end or the error, the source stays ended.
                assert_eq!(ahead.pull(max, &mut |_| Ok(())).unwrap(), Pulled::End);
                // Taken in whole batches — also after lending part of the first — it is the same.
                for lend_first in [0, 2] {
                    let mut ahead = Prefetch::start(source(203), batch);
                    assert_eq!(
                        drain_batches(&mut ahead, lend_first),
                        direct,
                        "whole batches after {lend_first}: fail={fail} eager={eager} \
                         per_pull={per_pull} batch={batch}"
                    );
                    assert!(matches!(ahead.pull_batch(), Ok(PulledBatch::End)));
                }
            }
        }
    }

    /// A stage that notes what it is given and how.
    #[derive(Default)]
    struct Noting {
        whole: bool,
        positions: Vec<u64>,
        batches: usize,
        checkpoints: usize,
    }

    impl crate::flow::Stage for Noting {
        fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError> {
            self.positions.push(item.pos);
            Ok(())
        }

        fn checkpoint(&mut self) -> Result<(), FlowError> {
            self.checkpoints += 1;
            Ok(())
        }

        fn takes_batches(&self) -> bool {
            self.whole
        }

        fn submit_batch(&mut self, batch: Batch) -> Result<(), FlowError> {
            self.batches += 1;
            batch.items().try_for_each(|item| self.submit(item))
        }
    }

    /// `drive` hands a stage that takes batches the prefetch's batches whole, lends a lending
    /// source's records to it one by one, and lends to a stage that does not take batches:
    /// every way, every record once, in order, then one final checkpoint.
    #[test]
    fn drive_hands_batches_whole_only_when_both_sides_can() {
        let source = || Counting {
            n: 203,
            next: 0,
            per_pull: 7,
            fail: false,
            eager: false,
        };
        let all: Vec<u64> = (0..203).collect();
        let opts = crate::flow::DriveOptions::default();
        // (takes batches, through a prefetch, batches handed whole): the prefetch copies one
        // pull of the inner source per batch, at most 7 records here.
        let cases: [(bool, bool, usize); 4] = [
            (true, true, 203_usize.div_ceil(7)),
            (true, false, 0),
            (false, true, 0),
            (false, false, 0),
        ];
        for (whole, prefetch, batches) in cases {
            let mut stage = Noting {
                whole,
                ..Noting::default()
            };
            let n = if prefetch {
                crate::flow::drive(&mut Prefetch::start(source(), 50), &mut stage, opts)
            } else {
                crate::flow::drive(&mut source(), &mut stage, opts)
            };
            let case = format!("whole={whole} prefetch={prefetch}");
            assert_eq!(n.unwrap(), 203, "{case}");
            assert_eq!(stage.positions, all, "{case}");
            assert_eq!(stage.batches, batches, "{case}");
            assert_eq!(stage.checkpoints, 1, "{case}");
        }
    }
}
