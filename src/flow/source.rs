//! Sources: what lends records to a stage, in batches, with their positions.

use crate::record::{Invalid, Record};

use super::batch::Batch;
use super::stage::FlowError;

/// A record that could not be read from its source: the reason and a detail for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Undecodable {
    pub reason: Invalid,
    pub detail: String,
}

/// The input as it arrived, for its dead-letter copy; both parts are empty for sources without
/// a byte form of a record (Parquet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Raw<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// One input record lent by a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    /// Where the record is in its source (a Kafka offset, a row number of a replay); a resumed
    /// source starts at the position after the last committed one.
    pub pos: u64,
    pub record: Result<Record<'a>, Undecodable>,
    pub raw: Raw<'a>,
}

/// What one [`Source::pull`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// This many records were handed out (at least one).
    Records(usize),
    /// Nothing arrived in time; the source is still open (live sources).
    Idle,
    /// The source is exhausted or was told to stop; nothing more will come.
    End,
}

/// What one [`Source::pull_batch`] did.
pub enum PulledBatch {
    /// The next records, owned (at least one).
    Batch(Batch),
    /// The source is exhausted; nothing more will come.
    End,
    /// This source only lends its records: use [`Source::pull`].
    Lends,
}

/// A source of records. Records borrow from the source's buffers, so they are handed to a
/// callback rather than returned: the source decides how long a batch lives.
pub trait Source {
    /// Hands up to `max` records to `f`, in order, and stops at the first error of `f`.
    fn pull(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
    ) -> Result<Pulled, FlowError>;

    /// Hands over the next records whole, for a source that already holds owned copies (a
    /// [`Prefetch`](super::Prefetch)): a stage that moves records to another thread then takes
    /// them without copying them again. The default says the source only lends.
    fn pull_batch(&mut self) -> Result<PulledBatch, FlowError> {
        Ok(PulledBatch::Lends)
    }

    /// Records in the whole input when known up front (a progress bar's length), else 0.
    fn total_hint(&self) -> u64 {
        0
    }
}
