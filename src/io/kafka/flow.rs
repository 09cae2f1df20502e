//! Kafka as flow parts: one input partition as a [`Source`], events and dead letters as a
//! [`Sink`], the compacted changelog plus offset commits as a [`Checkpoint`].

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::deliveries::{Deliveries, DeliveryError};
use super::dlq::{dead_letter, Origin};
use crate::flow::{Checkpoint, FlowError, Item, Pulled, Raw, Sink, Source, Undecodable};
use crate::io::codec::{decode, encode_event};
use crate::io::state::Fingerprints;
use crate::metrics::Metrics;
use crate::pipeline::KeyCore;
use crate::record::{Event, Invalid, RecordKind};

/// Deliveries awaited once this many are outstanding (per partition): bounds producer memory.
const MAX_PENDING: usize = 4096;

/// What the poller hands a partition's worker.
pub enum Work {
    /// The partition's next messages, in offset order.
    Msgs(Messages),
    /// Checkpoint and stop; the sender is told when done.
    Stop(Sender<()>),
}

/// Messages of one partition as the poller copied them for its worker: offsets, and keys and
/// payloads packed into one buffer — one allocation per batch, where `OwnedMessage` makes three
/// per message (topic, key, payload; issue 10). Headers are not kept: nothing downstream reads
/// them.
#[derive(Debug, Default)]
pub struct Messages {
    bytes: Vec<u8>,
    index: Vec<Packed>,
}

/// Where one message's parts are in [`Messages::bytes`].
#[derive(Debug)]
struct Packed {
    offset: i64,
    key: Option<Range<usize>>,
    payload: Option<Range<usize>>,
}

/// One message lent by [`Messages`]: its offset, key and payload.
type Lent<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

impl Messages {
    /// Copies one message in.
    pub fn push<M: Message>(&mut self, m: &M) {
        let mut part = |b: Option<&[u8]>| {
            b.map(|b| {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                start..self.bytes.len()
            })
        };
        let (key, payload) = (part(m.key()), part(m.payload()));
        self.index.push(Packed {
            offset: m.offset(),
            key,
            payload,
        });
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The `i`-th message.
    fn get(&self, i: usize) -> Lent<'_> {
        let p = &self.index[i];
        let bytes = |r: &Option<Range<usize>>| r.clone().map(|r| &self.bytes[r]);
        (p.offset, bytes(&p.key), bytes(&p.payload))
    }
}

/// One assigned partition's messages, decoded as they are pulled. Positions are offsets.
pub struct PartitionSource {
    rx: Receiver<Work>,
    /// The batch being handed out, and the index of its next message.
    current: Messages,
    next: usize,
    record: RecordKind,
    idle: Duration,
    stop_ack: Option<Sender<()>>,
    ended: bool,
    /// After a rewind: messages are dropped until the one at this offset (see [`Self::rewind`]).
    skip_until: Option<i64>,
    /// Offset of the first message this source handed out.
    first: Option<u64>,
}

impl PartitionSource {
    /// Reads from `rx`; a pull that waits `idle` without a message returns [`Pulled::Idle`].
    pub fn new(rx: Receiver<Work>, record: RecordKind, idle: Duration) -> Self {
        Self {
            rx,
            current: Messages::default(),
            next: 0,
            record,
            idle,
            stop_ack: None,
            ended: false,
            skip_until: None,
            first: None,
        }
    }

    /// Offset of the first message handed out, if any.
    pub fn first_position(&self) -> Option<u64> {
        self.first
    }

    /// After the consumer was sought back to `offset`: the messages still queued from before
    /// (all past `offset`) are dropped until the one at `offset` arrives again.
    pub fn rewind(&mut self, offset: u64) {
        self.skip_until = i64::try_from(offset).ok();
    }

    /// The acknowledgement to send once the final checkpoint is done (after a `Stop`).
    pub fn take_stop_ack(&mut self) -> Option<Sender<()>> {
        self.stop_ack.take()
    }
}

impl PartitionSource {
    /// Takes the next work item: a batch becomes the current one (the current one is spent); a
    /// stop ends the source. Returns false when nothing (more) can come.
    fn take(&mut self, work: Work, current: &mut Messages) -> bool {
        match work {
            Work::Msgs(msgs) => {
                *current = msgs;
                self.next = 0;
                true
            }
            Work::Stop(ack) => {
                self.stop_ack = Some(ack);
                self.ended = true;
                false
            }
        }
    }

    /// Hands one message to `f`, decoded; false when it was skipped (see [`Self::rewind`]).
    fn hand(
        &mut self,
        (offset, key, payload): Lent<'_>,
        f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
    ) -> Result<bool, FlowError> {
        if self.skip_until.is_some_and(|s| offset != s) {
            return Ok(false);
        }
        self.skip_until = None;
        if self.first.is_none() {
            self.first = u64::try_from(offset).ok();
        }
        let raw = Raw { key, payload };
        let pos = u64::try_from(offset).unwrap_or(0);
        match decode(payload.unwrap_or(b""), self.record) {
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
        Ok(true)
    }
}

impl Source for PartitionSource {
    fn pull(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
    ) -> Result<Pulled, FlowError> {
        // The batch is moved out while its messages are lent, and put back after.
        let mut batch = std::mem::take(&mut self.current);
        if self.next >= batch.len() {
            if self.ended {
                return Ok(Pulled::End);
            }
            let work = match self.rx.recv_timeout(self.idle) {
                Ok(w) => w,
                Err(RecvTimeoutError::Timeout) => return Ok(Pulled::Idle),
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return Ok(Pulled::End);
                }
            };
            if !self.take(work, &mut batch) {
                return Ok(Pulled::End);
            }
        }
        let mut n = 0;
        let handed = loop {
            if n >= max {
                break Ok(());
            }
            if self.next >= batch.len() {
                // Take what else has arrived, without waiting; a stop ends the pull.
                let more = self.rx.try_recv();
                if more.is_ok_and(|work| self.take(work, &mut batch)) {
                    continue;
                }
                break Ok(());
            }
            let i = self.next;
            self.next += 1;
            match self.hand(batch.get(i), f) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        };
        self.current = batch;
        handed?;
        Ok(match n {
            0 if self.ended => Pulled::End,
            // Everything received was skipped after a rewind.
            0 => Pulled::Idle,
            n => Pulled::Records(n),
        })
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
    /// The producer's `message.max.bytes`: larger dead letters are cut (see `dlq.rs`).
    max_message_bytes: usize,
}

impl KafkaSink {
    pub fn new(
        producer: FutureProducer,
        out_topic: String,
        dlq_topic: String,
        (input_topic, partition): (String, i32),
        metrics: Arc<Metrics>,
        max_message_bytes: usize,
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
            max_message_bytes,
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
        let origin = Origin {
            topic: &self.input_topic,
            partition: self.partition,
            offset: i64::try_from(pos).unwrap_or(i64::MAX),
        };
        let letter = dead_letter(
            raw.key,
            raw.payload,
            detail,
            &origin,
            self.max_message_bytes,
        );
        if letter.truncated {
            tracing::warn!(
                topic = %self.input_topic,
                partition = self.partition,
                offset = origin.offset,
                "dead letter larger than message.max.bytes: its copy is cut (size and hash in headers)"
            );
        }
        let mut r: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.dlq_topic).headers(letter.headers);
        if let Some(k) = letter.key {
            r = r.key(k);
        }
        if let Some(p) = letter.payload {
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

/// Raised when a partition worker must no longer write its changelog or commit: the partition
/// was lost to another owner, or the worker missed the shutdown timeout on revoke.
#[derive(Debug, Clone, Default)]
pub struct Fence(Arc<AtomicBool>);

impl Fence {
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Changed keys' state to the compacted changelog (same partition number as the input), then
/// the input offset committed synchronously.
pub struct ChangelogCheckpoint<C: ConsumerContext + 'static> {
    producer: FutureProducer,
    /// Each snapshot carries its key's parameter fingerprint, checked at restore.
    fingerprints: Fingerprints,
    /// Once raised, nothing more is written or committed.
    fence: Fence,
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
        fingerprints: Fingerprints,
        fence: Fence,
    ) -> Self {
        Self {
            producer,
            fingerprints,
            fence,
            changelog,
            input_topic,
            partition,
            consumer,
            deliveries: Deliveries::default(),
            metrics,
        }
    }
}

impl<C: ConsumerContext + 'static> ChangelogCheckpoint<C> {
    fn check_fence(&self) -> Result<(), DeliveryError> {
        if self.fence.is_raised() {
            return Err(DeliveryError {
                topic: self.changelog.clone(),
                problem: format!(
                    "{}/{} is no longer ours (revoked or lost): no state written, no offset committed",
                    self.input_topic, self.partition
                ),
            });
        }
        Ok(())
    }
}

impl<C: ConsumerContext + 'static> Checkpoint for ChangelogCheckpoint<C> {
    type Error = DeliveryError;

    fn store(&mut self, key: &str, state: &KeyCore) -> Result<(), DeliveryError> {
        self.check_fence()?;
        let bytes = crate::io::state::encode(state, self.fingerprints.of(key));
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

    fn store_position(&mut self, next: u64) -> Result<(), DeliveryError> {
        self.check_fence()?;
        let bytes = crate::io::state::encode_position(next);
        let r = FutureRecord::to(&self.changelog)
            .partition(self.partition)
            .key(crate::io::state::POSITION_KEY.as_bytes())
            .payload(bytes.as_slice());
        self.deliveries.send(&self.producer, r, "changelog")
    }

    fn flush(&mut self) -> Result<(), DeliveryError> {
        self.deliveries.wait_all()
    }

    /// A failed commit is logged and retried at the next checkpoint, not fatal: the records
    /// after the last successful commit are simply read again after a crash.
    fn commit(&mut self, next: u64) -> Result<bool, DeliveryError> {
        self.check_fence()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::DefaultConsumerContext;
    use rdkafka::message::OwnedMessage;

    /// A checkpoint whose producer points at a closed port: nothing is ever delivered, so any
    /// send shows up as outstanding.
    fn checkpoint(fence: Fence) -> ChangelogCheckpoint<DefaultConsumerContext> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create()
            .expect("a producer needs no broker to be created");
        let cfg = crate::config::parse(
            "[input]\npath = \"x\"\n[zone.scale]\nkind = \"atr\"\n",
            std::path::Path::new("t.toml"),
        )
        .expect("config");
        ChangelogCheckpoint::new(
            producer,
            "state".into(),
            ("in".into(), 0),
            Weak::new(),
            Metrics::new(),
            Fingerprints::new(Arc::new(cfg.processor)),
            fence,
        )
    }

    #[test]
    fn a_fenced_checkpoint_writes_and_commits_nothing() {
        let fence = Fence::default();
        let mut c = checkpoint(fence.clone());
        c.store_position(10).expect("not fenced yet");
        assert_eq!(c.deliveries.len(), 1, "the position was sent");
        fence.raise();
        let err = c.store_position(20).expect_err("fenced");
        assert!(err.to_string().contains("no longer ours"), "{err}");
        assert!(c.commit(20).is_err());
        assert_eq!(c.deliveries.len(), 1, "nothing more was sent");
    }

    fn message(offset: i64, key: Option<&str>, payload: &str) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload.as_bytes().to_vec()),
            key.map(|k| k.as_bytes().to_vec()),
            "in".into(),
            rdkafka::Timestamp::NotAvailable,
            0,
            offset,
            None,
        )
    }

    /// What a source handed out: (offset, key, payload, decoded key or the reason it was not).
    type Seen = Vec<(
        u64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Result<String, Invalid>,
    )>;

    fn pull(source: &mut PartitionSource, max: usize, seen: &mut Seen) -> Pulled {
        let mut f = |item: Item<'_>| {
            let key = item.record.as_ref().map(|r| r.key.to_string());
            seen.push((
                item.pos,
                item.raw.key.map(<[u8]>::to_vec),
                item.raw.payload.map(<[u8]>::to_vec),
                key.map_err(|e| e.reason),
            ));
            Ok(())
        };
        source.pull(max, &mut f).expect("no stage error")
    }

    const BAR: &str = r#"{"key":"A","ts":1,"open":1,"high":2,"low":0.5,"close":1.5}"#;

    #[test]
    fn batches_are_handed_out_in_order_across_pulls_and_a_stop_ends_the_source() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let mut first = Messages::default();
        first.push(&message(5, Some("A"), BAR));
        first.push(&message(6, None, "not json"));
        let mut second = Messages::default();
        second.push(&message(7, Some("A"), BAR));
        assert_eq!((first.len(), second.is_empty()), (2, false));
        let (ack_tx, _ack_rx) = std::sync::mpsc::channel();
        tx.send(Work::Msgs(first)).expect("queued");
        tx.send(Work::Msgs(second)).expect("queued");
        tx.send(Work::Stop(ack_tx)).expect("queued");
        let mut source = PartitionSource::new(rx, RecordKind::Bar, Duration::from_millis(10));
        let mut seen = Seen::new();
        // A pull stops at `max`, and the next one goes on inside the same batch and past it.
        assert_eq!(pull(&mut source, 1, &mut seen), Pulled::Records(1));
        assert_eq!(pull(&mut source, 10, &mut seen), Pulled::Records(2));
        assert_eq!(pull(&mut source, 10, &mut seen), Pulled::End);
        assert!(
            source.take_stop_ack().is_some(),
            "the stop is acknowledged by the caller"
        );
        assert_eq!(source.first_position(), Some(5));
        let bar = Some(BAR.as_bytes().to_vec());
        assert_eq!(
            seen,
            vec![
                (5, Some(b"A".to_vec()), bar.clone(), Ok("A".to_string())),
                (6, None, Some(b"not json".to_vec()), Err(Invalid::Malformed)),
                (7, Some(b"A".to_vec()), bar, Ok("A".to_string())),
            ]
        );
    }

    #[test]
    fn after_a_rewind_messages_are_skipped_until_the_rewound_offset() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let mut source = PartitionSource::new(rx, RecordKind::Bar, Duration::from_millis(10));
        let mut stale = Messages::default();
        stale.push(&message(8, Some("A"), BAR));
        stale.push(&message(9, Some("A"), BAR));
        tx.send(Work::Msgs(stale)).expect("queued");
        source.rewind(3);
        let mut seen = Seen::new();
        assert_eq!(pull(&mut source, 10, &mut seen), Pulled::Idle, "all stale");
        let mut again = Messages::default();
        again.push(&message(3, Some("A"), BAR));
        tx.send(Work::Msgs(again)).expect("queued");
        assert_eq!(pull(&mut source, 10, &mut seen), Pulled::Records(1));
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [3]);
        drop(tx);
        assert_eq!(
            pull(&mut source, 10, &mut seen),
            Pulled::End,
            "the poller is gone"
        );
    }
}
