//! The seam between the pure core and the IO, shared by every driver.
//!
//! ```text
//!   Source ──pull(batch)──▶ Stage::submit ──▶ Processor ──▶ Sink (events, fit rows, rejects)
//!                            Stage::checkpoint: Sink::flush ▶ Checkpoint::store(changed keys)
//!                                               ▶ Checkpoint::flush ▶ Checkpoint::commit(position)
//! ```
//!
//! - A [`Source`] lends records in batches ([`Item`]s borrowing from its own buffers: a Parquet
//!   batch, a CSV line, a Kafka message) and says where each one is (its position).
//! - A [`Stage`] takes items one by one and makes everything taken so far durable on
//!   [`Stage::checkpoint`]. [`Flow`] is the stage of a single processor: it writes the one
//!   checkpoint order that makes a restart lose nothing; the backtest composes two flows (the
//!   strategy and its baseline) into a stage of its own.
//! - A [`Sink`] takes events, fit rows and rejected records; a [`Checkpoint`] stores changed
//!   keys' state and commits the position. The Kafka, Parquet and in-memory implementations
//!   live in `io` (and in the tests); nothing here knows a format or a broker.
//! - [`drive`] is the loop: pull, submit, checkpoint on an interval and at the end.
//! - [`Prefetch`] reads a file source on a helper thread ahead of the stage, in owned
//!   [`Batch`]es; a stage that moves records to another thread (the backtest's baseline lane)
//!   takes those batches whole ([`Source::pull_batch`], [`Stage::submit_batch`]) instead of
//!   copying what is lent again.
//!
//! Backpressure is a blocking call: a sink whose buffer is full waits inside `event` (Kafka:
//! for deliveries), which stops the loop, which stops pulling.

mod batch;
mod checkpoint;
mod drive;
mod prefetch;
mod sink;
mod source;
mod stage;

pub use batch::Batch;
pub use checkpoint::{Checkpoint, NoCheckpoint};
pub use drive::{drive, DriveOptions};
pub use prefetch::Prefetch;
pub use sink::{Discard, Sink};
pub use source::{Item, Pulled, PulledBatch, Raw, Source, Undecodable};
pub use stage::{Flow, FlowError, Stage, Step, Submitted};
