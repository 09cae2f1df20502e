//! The loop every driver runs: pull a batch, submit each record, checkpoint on an interval and
//! at the end.

use std::time::{Duration, Instant};

use super::source::{Pulled, PulledBatch, Source};
use super::stage::{FlowError, Stage};

/// How [`drive`] runs.
#[derive(Debug, Clone, Copy)]
pub struct DriveOptions {
    /// Records per pull.
    pub batch: usize,
    /// Checkpoint when this much time passed since the last one (checked after every batch, so
    /// a backlog never starves checkpoints); `None`: only at the end.
    pub checkpoint_every: Option<Duration>,
}

impl Default for DriveOptions {
    fn default() -> Self {
        Self {
            batch: 1024,
            checkpoint_every: None,
        }
    }
}

/// Runs `source` into `stage` until the source ends, then checkpoints once more. Returns the
/// number of records submitted. On an error the stage is left as it was at the failure (no
/// final checkpoint): what was not committed is read again on the next run. A stage that
/// [takes batches](Stage::takes_batches) gets them whole from a source that can hand them over
/// (then a batch is the source's, not `opts.batch`), else records one by one.
pub fn drive<S: Source + ?Sized, T: Stage + ?Sized>(
    source: &mut S,
    stage: &mut T,
    opts: DriveOptions,
) -> Result<u64, FlowError> {
    let mut records = 0u64;
    let mut last = Instant::now();
    let mut whole = stage.takes_batches();
    loop {
        let ended = if whole {
            match source.pull_batch()? {
                PulledBatch::Batch(b) => {
                    records += b.len() as u64;
                    stage.submit_batch(b)?;
                    false
                }
                PulledBatch::End => true,
                PulledBatch::Lends => {
                    whole = false;
                    continue;
                }
            }
        } else {
            let pulled = source.pull(opts.batch.max(1), &mut |item| {
                records += 1;
                stage.submit(item)
            })?;
            pulled == Pulled::End
        };
        if ended {
            stage.checkpoint()?;
            return Ok(records);
        }
        if let Some(every) = opts.checkpoint_every {
            if last.elapsed() >= every {
                stage.checkpoint()?;
                last = Instant::now();
            }
        }
    }
}
