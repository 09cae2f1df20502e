//! Stages: [`Flow`] runs one processor between a source and a sink, and owns the checkpoint
//! order that makes a resumed run lose nothing.
//!
//! # The checkpoint order, and why
//!
//! 1. **flush the sink** — every event (and dead letter) of the records taken so far is durable;
//! 2. **store the changed keys' state** — each key touched since the last checkpoint — and the
//!    position they reflect (a restart skips the records before it that it reads again);
//! 3. **flush the state store**;
//! 4. **commit the position** after the last record taken.
//!
//! A crash before 1 completes loses nothing: the records since the last commit are read again
//! and their events are emitted again, identical (ids are deterministic). A crash between 1 and
//! 4 replays records whose events are already out: with the state of step 3 restored, the
//! flow skips them (they are before the stored position), and without it (crash before 3) the
//! processor re-emits the identical events. State is never ahead of the
//! events it implies and the position never ahead of the state, so the result after any crash
//! is the uninterrupted result plus identical duplicates (at-least-once).

use std::fmt;

use crate::error::Failure;
use crate::pipeline::{Accepted, KeyHint, Processor};
use crate::record::{Event, Reject};

use super::batch::Batch;
use super::checkpoint::Checkpoint;
use super::sink::Sink;
use super::source::Item;

/// Where in the loop a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the source.
    Pull,
    /// Handing an event, fit row or reject to the sink.
    Emit,
    /// Checkpoint step 1.
    FlushSink,
    /// Checkpoint step 2.
    Store,
    /// Checkpoint step 3.
    FlushState,
    /// Checkpoint step 4.
    Commit,
}

/// A failure of the loop: the step and the implementation's own error.
#[derive(Debug)]
pub struct FlowError {
    pub step: Step,
    pub error: Box<dyn Failure>,
}

impl FlowError {
    pub fn new(step: Step, error: impl Failure) -> Self {
        Self {
            step,
            error: Box::new(error),
        }
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for FlowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl Failure for FlowError {
    fn is_user_error(&self) -> bool {
        self.error.is_user_error()
    }
}

/// Takes records one by one and makes them durable on demand (the loop's view of a pipeline).
pub trait Stage {
    fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError>;
    fn checkpoint(&mut self) -> Result<(), FlowError>;

    /// Whether the stage would rather own its records ([`Stage::submit_batch`]) when the source
    /// can hand them over whole ([`Source::pull_batch`](super::Source::pull_batch)).
    fn takes_batches(&self) -> bool {
        false
    }

    /// The records of `batch`, in order, as if each were submitted; the default does just that.
    fn submit_batch(&mut self, batch: Batch) -> Result<(), FlowError> {
        batch.items().try_for_each(|item| self.submit(item))
    }
}

/// What one submitted record did: the processor's answer and the events it emitted.
#[derive(Debug)]
pub struct Submitted<'a> {
    pub result: Result<Accepted, Reject>,
    pub events: &'a [Event],
}

/// One processor between a source and a sink, with its checkpoint store.
pub struct Flow<K: Sink, C: Checkpoint> {
    processor: Processor,
    sink: K,
    checkpoint: C,
    events: Vec<Event>,
    /// Position after the last record taken, and after the last one committed.
    next: Option<u64>,
    committed: Option<u64>,
    /// Position stored with the state at the last checkpoint.
    stored: Option<u64>,
    /// Records before this position are already in the restored state: skipped.
    resume: u64,
}

impl<K: Sink, C: Checkpoint> Flow<K, C> {
    pub fn new(processor: Processor, sink: K, checkpoint: C) -> Self {
        Self {
            processor,
            sink,
            checkpoint,
            events: Vec::with_capacity(16),
            next: None,
            committed: None,
            stored: None,
            resume: 0,
        }
    }

    /// Skips the records before `position`: the restored state already reflects them (the
    /// position the checkpoint stored with it, see [`Checkpoint::store_position`]).
    pub fn resume_at(&mut self, position: u64) {
        self.resume = position;
        self.stored = Some(position);
    }

    pub fn processor(&self) -> &Processor {
        &self.processor
    }

    pub fn processor_mut(&mut self) -> &mut Processor {
        &mut self.processor
    }

    pub fn sink(&self) -> &K {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut K {
        &mut self.sink
    }

    pub fn checkpointer(&self) -> &C {
        &self.checkpoint
    }

    /// The events of the last submitted record.
    pub fn last_events(&self) -> &[Event] {
        &self.events
    }

    /// Position after the last record taken.
    pub fn next_position(&self) -> Option<u64> {
        self.next
    }

    /// Position after the last record committed by this flow.
    pub fn committed_position(&self) -> Option<u64> {
        self.committed
    }

    /// The parts, for a driver that finishes the sink itself (closing files).
    pub fn into_parts(self) -> (Processor, K, C) {
        (self.processor, self.sink, self.checkpoint)
    }

    /// Takes one record: processes it and hands its events, fit row or reject to the sink.
    /// Borrows the record: a caller that feeds one record to several flows (a backtest's
    /// strategy and baseline) copies nothing.
    pub fn submit(&mut self, item: &Item<'_>) -> Result<Submitted<'_>, FlowError> {
        self.submit_with(item, None)
    }

    /// [`Flow::submit`] with the record key's [`KeyHint`] (see [`Processor::process_hinted`]):
    /// a driver that numbers its keys keeps one hint per key and skips the processor's lookup.
    pub fn submit_hinted(
        &mut self,
        item: &Item<'_>,
        hint: &mut KeyHint,
    ) -> Result<Submitted<'_>, FlowError> {
        self.submit_with(item, Some(hint))
    }

    fn submit_with(
        &mut self,
        item: &Item<'_>,
        hint: Option<&mut KeyHint>,
    ) -> Result<Submitted<'_>, FlowError> {
        self.events.clear();
        if item.pos < self.resume {
            // Read again after a restart; its effects are in the restored state.
            self.next = Some(item.pos + 1);
            return Ok(Submitted {
                result: Err(Reject::Duplicate),
                events: &self.events,
            });
        }
        let emit = |e| FlowError::new(Step::Emit, e);
        let result = match &item.record {
            Err(bad) => {
                self.processor.count_undecodable(bad.reason);
                self.sink
                    .reject(item.pos, &item.raw, bad.reason, &bad.detail)
                    .map_err(emit)?;
                Err(Reject::Invalid(bad.reason))
            }
            Ok(rec) => {
                let result = match hint {
                    Some(h) => self.processor.process_hinted(rec, h, &mut self.events),
                    None => self.processor.process(rec, &mut self.events),
                };
                match &result {
                    Ok(acc) => {
                        for e in &self.events {
                            self.sink.event(e).map_err(emit)?;
                        }
                        if self.sink.wants_fit() {
                            let regime = self
                                .processor
                                .key_state(rec.key)
                                .and_then(|k| k.scale.regime_name(acc.fit.regime))
                                .unwrap_or("");
                            self.sink.fit(rec.key, &acc.fit, regime).map_err(emit)?;
                        }
                    }
                    Err(Reject::Invalid(why)) => {
                        self.sink
                            .reject(item.pos, &item.raw, *why, why.as_str())
                            .map_err(emit)?;
                    }
                    Err(_) => {}
                }
                result
            }
        };
        self.next = Some(item.pos + 1);
        Ok(Submitted {
            result,
            events: &self.events,
        })
    }

    /// Makes everything taken so far durable, in the order of the module docs. Does nothing
    /// when nothing happened since the last checkpoint.
    pub fn checkpoint(&mut self) -> Result<(), FlowError> {
        if self.next == self.committed && self.processor.changed_count() == 0 {
            return Ok(());
        }
        self.sink
            .flush()
            .map_err(|e| FlowError::new(Step::FlushSink, e))?;
        let store = &mut self.checkpoint;
        self.processor
            .drain_changed(|key, state| store.store(key, state))
            .map_err(|e| FlowError::new(Step::Store, e))?;
        if let Some(next) = self.next.filter(|&n| Some(n) != self.stored) {
            self.checkpoint
                .store_position(next)
                .map_err(|e| FlowError::new(Step::Store, e))?;
            self.stored = Some(next);
        }
        self.checkpoint
            .flush()
            .map_err(|e| FlowError::new(Step::FlushState, e))?;
        if let Some(next) = self.next.filter(|&n| Some(n) != self.committed) {
            let done = self
                .checkpoint
                .commit(next)
                .map_err(|e| FlowError::new(Step::Commit, e))?;
            if done {
                self.committed = Some(next);
            }
        }
        Ok(())
    }
}

impl<K: Sink, C: Checkpoint> Stage for Flow<K, C> {
    fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError> {
        Flow::submit(self, &item).map(|_| ())
    }

    fn checkpoint(&mut self) -> Result<(), FlowError> {
        Flow::checkpoint(self)
    }
}
