//! Sinks: where a stage's outputs go — events, fit rows and rejected records.

use crate::error::Failure;
use crate::record::{Event, FitRow, Invalid};

use super::source::Raw;

/// Takes a processor's outputs. Calls may buffer; [`Sink::flush`] returns once everything handed
/// over is durable (written and synced, or acknowledged by the broker).
pub trait Sink {
    type Error: Failure;

    /// One event, in emission order.
    fn event(&mut self, e: &Event) -> Result<(), Self::Error>;

    /// Whether [`Sink::fit`] wants rows (the stage skips building them otherwise).
    fn wants_fit(&self) -> bool {
        false
    }

    /// The fit row of one accepted record; `regime` is the zone regime's name ("" without
    /// regimes).
    fn fit(&mut self, _key: &str, _row: &FitRow, _regime: &str) -> Result<(), Self::Error> {
        Ok(())
    }

    /// A record that is bad data (undecodable or invalid), with its position, its raw form
    /// (for a dead-letter copy), the reason and a detail. Late and duplicate records are only
    /// counted and never reach a sink.
    fn reject(
        &mut self,
        _pos: u64,
        _raw: &Raw<'_>,
        _reason: Invalid,
        _detail: &str,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Makes everything handed over so far durable.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// A sink that keeps nothing (the backtest's baseline lane: only its statistics matter).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

/// [`Discard`] never fails.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum Never {}

impl Failure for Never {
    fn is_user_error(&self) -> bool {
        match *self {}
    }
}

impl Sink for Discard {
    type Error = Never;

    fn event(&mut self, _e: &Event) -> Result<(), Never> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }
}
