//! The daemon's poll thread: it polls the group consumer (librdkafka runs rebalance callbacks
//! on it, which start and stop the partition workers) and hands each partition's messages to
//! its worker in rounds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};

use super::{Ctx, Shared};
use crate::io::kafka::{Messages, Work};

/// Messages the poller takes per round, over all partitions.
pub(super) const POLL_BATCH: usize = 256;

/// Polls the group consumer and routes messages to partition workers until `stop`.
///
/// Messages are handed on in rounds: after one poll that waited, the messages librdkafka already
/// holds are taken without waiting (up to [`POLL_BATCH`]) and each partition's share goes to its
/// worker in one channel send — one wake-up per partition per round instead of one per message
/// (issue 10: the per-message hop was most of the daemon's cost per record). A round ends early
/// when a rebalance starts or stops workers during one of its polls: what it gathered before goes
/// to the workers it was gathered for (a stopped worker drops it; the partition's next owner reads
/// it again from the committed offset), and later messages look up their worker afresh.
pub(super) fn poll_loop(consumer: &BaseConsumer<Ctx>, shared: &Shared, stop: &AtomicBool) {
    let mut round = Round::default();
    while !stop.load(Ordering::SeqCst) {
        let mut wait = Duration::from_millis(100);
        let generation = shared.generation.load(Ordering::SeqCst);
        while round.len < POLL_BATCH {
            let polled = consumer.poll(wait);
            wait = Duration::ZERO;
            if shared.generation.load(Ordering::SeqCst) != generation {
                round.send();
                round.add(shared, polled);
                break;
            }
            if !round.add(shared, polled) {
                break;
            }
        }
        round.send();
    }
}

/// Messages gathered by one round of [`poll_loop`], per partition, with the worker each goes to.
#[derive(Default)]
struct Round {
    batches: Vec<(SyncSender<Work>, i32, Messages)>,
    len: usize,
}

impl Round {
    /// Adds what one poll returned; false when it returned no message.
    fn add(&mut self, shared: &Shared, polled: Option<KafkaResult<BorrowedMessage<'_>>>) -> bool {
        let m = match polled {
            None => return false,
            Some(Err(e)) => {
                tracing::warn!("consumer: {e}");
                return false;
            }
            Some(Ok(m)) => m,
        };
        // One input topic per daemon (a config rule), so the partition names the worker.
        let at = self.batches.iter().position(|b| b.1 == m.partition());
        let at = match at {
            Some(at) => at,
            None => {
                let Some(tx) = shared.sender(m.topic(), m.partition()) else {
                    tracing::warn!(
                        topic = m.topic(),
                        partition = m.partition(),
                        offset = m.offset(),
                        "message for a partition without a worker; it will be re-read after the next assignment"
                    );
                    return true;
                };
                self.batches.push((tx, m.partition(), Messages::default()));
                self.batches.len() - 1
            }
        };
        self.batches[at].2.push(&m);
        self.len += 1;
        true
    }

    /// Hands each partition's messages to its worker and starts an empty round.
    fn send(&mut self) {
        for (tx, _, msgs) in self.batches.drain(..) {
            // A send fails only when the worker stopped (revoked, or a fatal error); the
            // partition's next owner reads these messages again.
            let _ = tx.send(Work::Msgs(msgs));
        }
        self.len = 0;
    }
}
