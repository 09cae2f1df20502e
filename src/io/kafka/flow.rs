//! Kafka as flow parts: one input partition as a [`Source`], events and dead letters as a
//! [`Sink`], the compacted changelog plus offset commits as a [`Checkpoint`].

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::deliveries::{Deliveries, DeliveryError};
use super::dlq_headers;
use crate::flow::{Checkpoint, FlowError, Item, Pulled, Raw, Sink, Source, Undecodable};
use crate::io::codec::{decode, encode_event};
use crate::metrics::Metrics;
use crate::pipeline::KeyCore;
use crate::record::{Event, Invalid, RecordKind};

/// Deliveries awaited once this many are outstanding (per partition): bounds producer memory.
const MAX_PENDING: usize = 4096;

/// What the poller hands a partition's worker.
pub enum Work {
    Msg(OwnedMessage),
    /// Checkpoint and stop; the sender is told when done.
    Stop(Sender<()>),
}

/// One assigned partition's messages, decoded as they are pulled. Positions are offsets.
pub struct PartitionSource {
    rx: Receiver<Work>,
    record: RecordKind,
    idle: Duration,
    stop_ack: Option<Sender<()>>,
    ended: bool,
}

impl PartitionSource {
    /// Reads from `rx`; a pull that waits `idle` without a message returns [`Pulled::Idle`].
    pub fn new(rx: Receiver<Work>, record: RecordKind, idle: Duration) -> Self {
        Self {
            rx,
            record,
            idle,
            stop_ack: None,
            ended: false,
        }
    }

    /// The acknowledgement to send once the final checkpoint is done (after a `Stop`).
    pub fn take_stop_ack(&mut self) -> Option<Sender<()>> {
        self.stop_ack.take()
    }
}

impl Source for PartitionSource {
    fn pull(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
    ) -> Result<Pulled, FlowError> {
        if self.ended {
            return Ok(Pulled::End);
        }
        let mut work = match self.rx.recv_timeout(self.idle) {
            Ok(w) => w,
            Err(RecvTimeoutError::Timeout) => return Ok(Pulled::Idle),
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                return Ok(Pulled::End);
            }
        };
        let mut n = 0;
        loop {
            match work {
                Work::Stop(ack) => {
                    self.stop_ack = Some(ack);
                    self.ended = true;
                    return Ok(if n == 0 {
                        Pulled::End
                    } else {
                        Pulled::Records(n)
                    });
                }
                Work::Msg(m) => {
                    let raw = Raw {
                        key: m.key(),
                        payload: m.payload(),
                    };
                    let pos = u64::try_from(m.offset()).unwrap_or(0);
                    match decode(m.payload().unwrap_or(b""), self.record) {
                        Ok(d) => f(Item {
                            pos,
                            record: Ok(d.record()),
                            raw,
                        })?,
                        Err(e) => f(Item {
                            pos,
                            record: Err(Undecodable {
                                reason: e.reason(),
                                detail: e.to_string(),
                            }),
                            raw,
                        })?,
                    }
                    n += 1;
                }
            }
            if n >= max {
                break;
            }
            match self.rx.try_recv() {
                Ok(w) => work = w,
                Err(_) => break,
            }
        }
        Ok(Pulled::Records(n))
    }
}

/// Events to the output topic (message key = record key), bad records unchanged to the
/// dead-letter topic with `deadband-error` and `deadband-source` headers.
pub struct KafkaSink {
    producer: FutureProducer,
    out_topic: String,
    dlq_topic: String,
    /// The input partition, for the dead letters' `deadband-source` header.
    input_topic: String,
    partition: i32,
    deliveries: Deliveries,
    buf: Vec<u8>,
    metrics: Arc<Metrics>,
}

impl KafkaSink {
    pub fn new(
        producer: FutureProducer,
        out_topic: String,
        dlq_topic: String,
        (input_topic, partition): (String, i32),
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            producer,
            out_topic,
            dlq_topic,
            input_topic,
            partition,
            deliveries: Deliveries::default(),
            buf: Vec::with_capacity(512),
            metrics,
        }
    }

    fn bound(&mut self) -> Result<(), DeliveryError> {
        if self.deliveries.len() >= MAX_PENDING {
            self.deliveries.wait_until(MAX_PENDING / 2)?;
        }
        Ok(())
    }
}

impl Sink for KafkaSink {
    type Error = DeliveryError;

    fn event(&mut self, e: &Event) -> Result<(), DeliveryError> {
        encode_event(e, &mut self.buf);
        let r = FutureRecord::to(&self.out_topic)
            .key(e.key.as_bytes())
            .payload(self.buf.as_slice());
        self.deliveries.send(&self.producer, r, "events")?;
        self.metrics.event_out(e.body.kind());
        self.bound()
    }

    fn reject(
        &mut self,
        pos: u64,
        raw: &Raw<'_>,
        reason: Invalid,
        detail: &str,
    ) -> Result<(), DeliveryError> {
        let offset = i64::try_from(pos).unwrap_or(i64::MAX);
        let headers = dlq_headers(detail, &self.input_topic, self.partition, offset);
        let mut r: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.dlq_topic).headers(headers);
        if let Some(k) = raw.key {
            r = r.key(k);
        }
        if let Some(p) = raw.payload {
            r = r.payload(p);
        }
        self.deliveries.send(&self.producer, r, "dlq")?;
        self.metrics.dlq(reason.as_str());
        self.bound()
    }

    fn flush(&mut self) -> Result<(), DeliveryError> {
        self.deliveries.wait_all()
    }
}

/// Changed keys' state to the compacted changelog (same partition number as the input), then
/// the input offset committed synchronously.
pub struct ChangelogCheckpoint<C: ConsumerContext + 'static> {
    producer: FutureProducer,
    changelog: String,
    input_topic: String,
    partition: i32,
    consumer: Weak<BaseConsumer<C>>,
    deliveries: Deliveries,
    metrics: Arc<Metrics>,
}

impl<C: ConsumerContext + 'static> ChangelogCheckpoint<C> {
    pub fn new(
        producer: FutureProducer,
        changelog: String,
        (input_topic, partition): (String, i32),
        consumer: Weak<BaseConsumer<C>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            producer,
            changelog,
            input_topic,
            partition,
            consumer,
            deliveries: Deliveries::default(),
            metrics,
        }
    }
}

impl<C: ConsumerContext + 'static> Checkpoint for ChangelogCheckpoint<C> {
    type Error = DeliveryError;

    fn store(&mut self, key: &str, state: &KeyCore) -> Result<(), DeliveryError> {
        let bytes = crate::io::state::encode(state);
        let r = FutureRecord::to(&self.changelog)
            .partition(self.partition)
            .key(key.as_bytes())
            .payload(bytes.as_slice());
        self.deliveries.send(&self.producer, r, "changelog")?;
        if self.deliveries.len() >= MAX_PENDING {
            self.deliveries.wait_until(MAX_PENDING / 2)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeliveryError> {
        self.deliveries.wait_all()
    }

    /// A failed commit is logged and retried at the next checkpoint, not fatal: the records
    /// after the last successful commit are simply read again after a crash.
    fn commit(&mut self, next: u64) -> Result<bool, DeliveryError> {
        let Some(consumer) = self.consumer.upgrade() else {
            return Ok(false);
        };
        let next = i64::try_from(next).unwrap_or(i64::MAX);
        let (topic, partition) = (self.input_topic.as_str(), self.partition);
        let mut tpl = TopicPartitionList::new();
        let ok = tpl
            .add_partition_offset(topic, partition, Offset::Offset(next))
            .and_then(|_| consumer.commit(&tpl, CommitMode::Sync));
        if let Err(e) = &ok {
            tracing::warn!(%topic, partition, "commit failed (retried at the next checkpoint): {e}");
        }
        if let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(1)) {
            self.metrics.set_lag(topic, partition, (high - next).max(0));
        }
        Ok(ok.is_ok())
    }
}
