//! Outstanding Kafka deliveries: enqueue a send (blocking while librdkafka's queue is full) and
//! wait for the broker's acknowledgements — the one place that turns delivery reports into
//! errors, for the daemon's sink and checkpoint and for `deadband produce`.

use std::collections::VecDeque;

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::send_with_backpressure;
use crate::error::Failure;

/// A send that was refused or not acknowledged.
#[derive(Debug, thiserror::Error)]
#[error(
    "producing to {topic} failed: {problem} (offsets were not committed past it; restart to retry)"
)]
pub struct DeliveryError {
    pub topic: String,
    pub problem: String,
}

impl Failure for DeliveryError {
    fn is_user_error(&self) -> bool {
        false
    }
}

/// Sends whose delivery reports have not been awaited yet, oldest first.
#[derive(Default)]
pub struct Deliveries {
    pending: VecDeque<(DeliveryFuture, &'static str)>,
    delivered: u64,
}

impl Deliveries {
    /// Enqueues `record`, blocking while the producer's queue is full. `what` names the output
    /// in errors ("events", "dlq", "changelog").
    pub fn send(
        &mut self,
        producer: &FutureProducer,
        record: FutureRecord<'_, [u8], [u8]>,
        what: &'static str,
    ) -> Result<(), DeliveryError> {
        let topic = record.topic.to_string();
        let f = send_with_backpressure(producer, record).map_err(|e| DeliveryError {
            topic,
            problem: e.to_string(),
        })?;
        self.pending.push_back((f, what));
        Ok(())
    }

    /// Sends not yet acknowledged.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sends acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Waits for the oldest sends until at most `keep` are outstanding.
    pub fn wait_until(&mut self, keep: usize) -> Result<(), DeliveryError> {
        while self.pending.len() > keep {
            let (f, what) = self.pending.pop_front().expect("non-empty");
            match futures::executor::block_on(f) {
                Ok(Ok(_)) => self.delivered += 1,
                Ok(Err((e, m))) => {
                    use rdkafka::message::Message;
                    return Err(DeliveryError {
                        topic: m.topic().to_string(),
                        problem: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(DeliveryError {
                        topic: what.to_string(),
                        problem: "the producer was closed before delivery".into(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Waits for every outstanding send.
    pub fn wait_all(&mut self) -> Result<(), DeliveryError> {
        self.wait_until(0)
    }
}
