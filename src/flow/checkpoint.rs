//! Checkpoints: where changed keys' state is stored and the input position committed.

use crate::error::Failure;
use crate::pipeline::KeyCore;

use super::sink::Never;

/// Stores keyed state and commits positions. [`crate::flow::Flow::checkpoint`] calls these in a
/// fixed order — `store` for each changed key, `store_position`, `flush`, then `commit` — after
/// the sink flushed.
pub trait Checkpoint {
    type Error: Failure;

    /// Stores one key's state (may buffer until `flush`).
    fn store(&mut self, key: &str, state: &KeyCore) -> Result<(), Self::Error>;

    /// Stores, with the keys' states, that they reflect every record before position `next`
    /// (may buffer until `flush`). On a restart the driver skips the records before it that are
    /// read again (those between this position and an older commit): their effects are in the
    /// restored state and their events are out already. Without it, such records would reach
    /// the processor a second time — harmless when it drops late records as duplicates, applied
    /// twice under `out_of_order = "accept"`. The default stores nothing (replays start over).
    fn store_position(&mut self, next: u64) -> Result<(), Self::Error> {
        let _ = next;
        Ok(())
    }

    /// Makes the stored states durable.
    fn flush(&mut self) -> Result<(), Self::Error>;

    /// Records that every record before position `next` is fully handled: a restart resumes
    /// at `next`. `Ok(false)`: not committed this time, but not fatal either (a transient
    /// broker error); the next checkpoint tries again.
    fn commit(&mut self, next: u64) -> Result<bool, Self::Error>;
}

/// No checkpoints (a replay starts from the beginning every time).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCheckpoint;

impl Checkpoint for NoCheckpoint {
    type Error = Never;

    fn store(&mut self, _key: &str, _state: &KeyCore) -> Result<(), Never> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }

    fn commit(&mut self, _next: u64) -> Result<bool, Never> {
        Ok(true)
    }
}
