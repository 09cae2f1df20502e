//! `deadband run`: the Kafka daemon — a consumer-group member that runs one [`Flow`] per
//! assigned partition, composed of the Kafka flow parts in `io::kafka`.
//!
//! Threads:
//! - one OS thread polls the group consumer (librdkafka runs rebalance callbacks on it) and
//!   hands each partition's messages to its worker in rounds (one send per partition per poll
//!   round, see [`poll_loop`]) through a bounded channel; a full channel
//!   blocks the poller, so consumption pauses instead of buffering without limit;
//! - one OS thread per assigned partition: restore keyed state from the changelog, then
//!   [`drive`] the partition source into its flow — decode -> process -> produce, with a
//!   checkpoint every `checkpoint_interval_ms` (checked after every batch, so a backlog never
//!   starves it) and a final one when the partition is revoked or the daemon stops;
//! - the tokio runtime serves `/metrics` and waits for SIGTERM/SIGINT or a fatal error.
//!
//! The checkpoint order and why it makes the daemon at-least-once with identical duplicates is
//! written once, in `flow::stage`. Choices made here: a failed delivery (events, dead letters,
//! changelog) or restore is never committed past — the partition goes back to its last durable
//! point (state from the changelog, consumer sought to the committed offset) and tries again,
//! waiting 0.5 s doubling to 30 s, so a broker outage is waited out; five minutes of consecutive
//! failure stop the daemon (exit 1). A failed commit is retried at the next checkpoint; a worker
//! panic stops the daemon. The changelog topic needs at least as many partitions as the input
//! topic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::{default_changelog_topic, default_dlq_topic, Config};
use crate::flow::{drive, DriveOptions, Flow, FlowError, Item, Stage};
use crate::io::kafka::{
    self, ChangelogCheckpoint, Fence, KafkaIoError, KafkaSink, PartitionSource, Work,
};
use crate::io::state::{self, Fingerprints, StateError};
use crate::metrics::{Metrics, Tally};
use crate::pipeline::{KeyParamError, Processor, ProcessorConfig};
use crate::record::{RecordKind, Reject};

mod poll;
mod supervise;
use poll::poll_loop;
use supervise::{supervised, Retry, Shutdown, RETRY_RESET};

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Kafka(#[from] KafkaIoError),
    #[error(transparent)]
    Params(#[from] KeyParamError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        topics: Vec<String>,
        source: rdkafka::error::KafkaError,
    },
    #[error("{topic}/{partition}: {source}")]
    Flow {
        topic: String,
        partition: i32,
        source: FlowError,
    },
    #[error("restoring {topic}/{partition}: snapshot of key `{key}`: {source}")]
    Snapshot {
        topic: String,
        partition: i32,
        key: String,
        source: crate::io::state::StateError,
    },
    #[error("shutdown did not finish within {0:?}; offsets since the last checkpoint were not committed and will be reprocessed")]
    ShutdownTimeout(Duration),
    #[error("{what} panicked: {message}; the daemon stops so that its supervisor restarts it (offsets after the last checkpoint are read again)")]
    Panicked { what: String, message: String },
    #[error("the daemon is not configured: {0}")]
    NotConfigured(String),
}

impl DaemonError {
    /// True for problems the user fixes in the configuration (exit code 2).
    pub fn is_config(&self) -> bool {
        match self {
            DaemonError::Kafka(k) => k.is_config(),
            DaemonError::Params(_) | DaemonError::NotConfigured(_) => true,
            DaemonError::Metrics { .. } => true,
            // Another snapshot version or changed parameters: the user chooses (see the message).
            DaemonError::Snapshot { source, .. } => !matches!(source, StateError::Decode(_)),
            _ => false,
        }
    }
}

type Tp = (String, i32);

/// What every partition worker and the rebalance callbacks share.
struct Shared {
    processor: Arc<ProcessorConfig>,
    record: RecordKind,
    producer: FutureProducer,
    base: ClientConfig,
    out_topic: String,
    dlq_topic: String,
    changelog_topic: String,
    checkpoint_every: Duration,
    stop_timeout: Duration,
    workers: Mutex<HashMap<Tp, (SyncSender<Work>, Fence)>>,
    keys: Mutex<HashMap<Tp, usize>>,
    consumer: OnceLock<Weak<BaseConsumer<Ctx>>>,
    /// Bumped whenever workers are started or stopped: the poller looks senders up again.
    generation: AtomicU64,
    /// Reads changelog partitions at restore, one partition at a time (see
    /// [`kafka::changelog_reader`]).
    changelog_reader: Mutex<BaseConsumer>,
    metrics: Arc<Metrics>,
    restoring: AtomicUsize,
    assigned_once: AtomicBool,
    fatal: Mutex<Option<DaemonError>>,
    fatal_notify: tokio::sync::Notify,
}

/// Rounds of messages (see [`poll_loop`]) queued per partition between the poller and the
/// worker: at most `CHANNEL_DEPTH × POLL_BATCH` messages.
const CHANNEL_DEPTH: usize = 8;
/// Records per pull of a partition worker.
const BATCH: usize = 256;
/// How long a worker waits for a message before checking whether a checkpoint is due.
const IDLE: Duration = Duration::from_millis(100);
/// How long a partition's changelog restore may take.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

impl Shared {
    fn update_ready(&self) {
        let ready =
            self.assigned_once.load(Ordering::SeqCst) && self.restoring.load(Ordering::SeqCst) == 0;
        self.metrics.set_ready(ready);
    }

    /// Records the first fatal error and wakes the main task, which stops the daemon (exit 1
    /// or 2): `/healthz` answers 503 from here on, so a supervisor sees the truth even before
    /// the process is gone.
    fn set_fatal(&self, e: DaemonError) {
        tracing::error!("{e}");
        self.metrics.set_unhealthy(&e.to_string());
        let mut f = self.fatal.lock().expect("fatal lock");
        if f.is_none() {
            *f = Some(e);
        }
        self.fatal_notify.notify_one();
    }

    fn report_keys(&self, tp: &Tp, n: usize) {
        let mut keys = self.keys.lock().expect("keys lock");
        keys.insert(tp.clone(), n);
        self.metrics.set_keys(keys.values().sum());
    }

    /// Starts a worker thread for each partition not already running.
    fn start_workers(self: &Arc<Self>, tpl: &TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut workers = self.workers.lock().expect("workers lock");
        for el in tpl.elements() {
            let tp = (el.topic().to_string(), el.partition());
            if workers.contains_key(&tp) {
                continue;
            }
            tracing::info!(topic = %tp.0, partition = tp.1, "assigned");
            let (tx, rx) = sync_channel(CHANNEL_DEPTH);
            let fence = Fence::default();
            workers.insert(tp.clone(), (tx, fence.clone()));
            self.restoring.fetch_add(1, Ordering::SeqCst);
            let shared = self.clone();
            let name = format!("deadband-{}-{}", tp.0, tp.1);
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                let source = PartitionSource::new(rx, shared.record, IDLE);
                let what = format!("partition worker {}/{}", tp.0, tp.1);
                let run = || run_partition(&shared, tp, source, fence);
                if let Err(e) = supervised(&what, run) {
                    shared.set_fatal(e);
                }
            });
            if let Err(e) = spawned {
                self.set_fatal(DaemonError::NotConfigured(format!(
                    "cannot start a partition worker thread: {e}"
                )));
            }
        }
        self.assigned_once.store(true, Ordering::SeqCst);
        self.update_ready();
    }

    /// Tells the workers of `tps` to checkpoint and stop, and waits (blocking) for them. When
    /// the assignment was `lost` (the group moved on without us: session timeout), the
    /// partitions may already have a new owner, so the workers are fenced first and stop without
    /// writing state or committing; so is a worker that misses the shutdown timeout.
    fn stop_workers(&self, tps: &[Tp], lost: bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut acks = Vec::new();
        for tp in tps {
            let Some((tx, fence)) = self.workers.lock().expect("workers lock").remove(tp) else {
                continue;
            };
            if lost {
                fence.raise();
            }
            let (ack_tx, ack_rx) = std::sync::mpsc::channel();
            if tx.send(Work::Stop(ack_tx)).is_ok() {
                acks.push((tp.clone(), ack_rx, fence));
            }
        }
        let deadline = Instant::now() + self.stop_timeout;
        for (tp, ack, fence) in acks {
            let left = deadline.saturating_duration_since(Instant::now());
            // A worker acknowledges after its final checkpoint, or ends and so drops the
            // sender (its failure, if any, it has logged itself): only a timeout means it may
            // still write.
            if let Err(RecvTimeoutError::Timeout) = ack.recv_timeout(left) {
                fence.raise();
                tracing::warn!(
                    topic = %tp.0,
                    partition = tp.1,
                    "worker did not checkpoint in time: fenced, it writes no more state or offsets"
                );
            }
            self.metrics.remove_partition(&tp.0, tp.1);
            self.keys.lock().expect("keys lock").remove(&tp);
            tracing::info!(topic = %tp.0, partition = tp.1, "revoked");
        }
    }

    fn sender(&self, topic: &str, partition: i32) -> Option<SyncSender<Work>> {
        self.workers
            .lock()
            .expect("workers lock")
            .get(&(topic.to_string(), partition))
            .map(|(tx, _)| tx.clone())
    }
}

/// The group consumer's context: rebalances start and stop partition workers.
struct Ctx(Arc<Shared>);

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Checkpoint before the partitions go: they are still ours, so the commit counts.
            Rebalance::Revoke(tpl) => {
                let tps: Vec<Tp> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let lost = c.assignment_lost();
                if lost {
                    tracing::warn!(
                        "assignment lost (session timed out): stopping without a checkpoint"
                    );
                }
                self.0.stop_workers(&tps, lost);
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
            Rebalance::Assign(_) => {}
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.0.start_workers(tpl);
        }
    }
}

/// A partition's flow with the daemon's per-record metrics around it, counted in the worker's
/// own [`Tally`] and published every [`Tally::FULL`] records and before each checkpoint (so
/// `/metrics` counts every record whose offset is committed).
struct Metered<'s> {
    flow: Flow<KafkaSink, ChangelogCheckpoint<Ctx>>,
    shared: &'s Shared,
    tp: Tp,
    tally: Tally,
}

impl Stage for Metered<'_> {
    fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError> {
        let t0 = Instant::now();
        let key = item.record.as_ref().map(|r| r.key).ok();
        let submitted = self.flow.submit(&item)?;
        let metrics = &self.shared.metrics;
        if let (Some(key), Ok(acc)) = (key, &submitted.result) {
            let fit = &acc.fit;
            self.tally.zone(key, fit.inside, fit.updated, fit.regime);
            for e in submitted.events {
                metrics.zone_event(crate::metrics::key_group(key), e.body.kind());
            }
        }
        match submitted.result.map(|_| ()) {
            invalid @ Err(Reject::Invalid(_)) => metrics.record_in(invalid),
            outcome => self.tally.outcome(outcome),
        }
        self.tally.latency(t0.elapsed());
        if self.tally.is_full() {
            metrics.publish(&mut self.tally);
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), FlowError> {
        self.shared.metrics.publish(&mut self.tally);
        let t0 = Instant::now();
        let changed = self.flow.processor().changed_count();
        self.flow.checkpoint()?;
        if changed > 0 {
            self.shared.metrics.checkpoint(t0.elapsed());
        }
        self.shared
            .report_keys(&self.tp, self.flow.processor().key_count());
        Ok(())
    }
}

/// Whatever way the stage ends (a failure included), its last counts are not lost.
impl Drop for Metered<'_> {
    fn drop(&mut self) {
        self.shared.metrics.publish(&mut self.tally);
    }
}

/// One partition from assignment to revoke: restore, then drive until stopped.
fn run_partition(
    shared: &Arc<Shared>,
    tp: Tp,
    mut source: PartitionSource,
    fence: Fence,
) -> Result<(), DaemonError> {
    let mut first_restore = true;
    let mut retry = Retry::default();
    loop {
        let restored = restore(shared, &tp);
        if std::mem::take(&mut first_restore) {
            shared.restoring.fetch_sub(1, Ordering::SeqCst);
            shared.update_ready();
        }
        let (processor, position) = match restored {
            Ok(r) => r,
            Err(e) if !e.is_config() && retry.again(&e) => continue,
            Err(e) => return Err(e),
        };
        shared.report_keys(&tp, processor.key_count());
        let mut stage = Metered {
            flow: partition_flow(shared, &tp, processor, fence.clone()),
            shared,
            tp: tp.clone(),
            tally: Tally::default(),
        };
        stage.flow.resume_at(position);
        let opts = DriveOptions {
            batch: BATCH,
            checkpoint_every: Some(shared.checkpoint_every),
        };
        let started = Instant::now();
        let result = drive(&mut source, &mut stage, opts);
        let err = match result {
            Ok(_) => {
                // The final checkpoint is done.
                if let Some(ack) = source.take_stop_ack() {
                    let _ = ack.send(());
                }
                return Ok(());
            }
            Err(source) => DaemonError::Flow {
                topic: tp.0.clone(),
                partition: tp.1,
                source,
            },
        };
        if fence.is_raised() {
            tracing::info!(topic = %tp.0, partition = tp.1, "fenced worker stopped: {err}");
            if let Some(ack) = source.take_stop_ack() {
                let _ = ack.send(());
            }
            return Ok(());
        }
        if let Some(ack) = source.take_stop_ack() {
            // Revoked or stopping: the next owner (or run) resumes from the last commit.
            tracing::warn!("{err}; the final checkpoint failed, records since the last commit will be read again");
            let _ = ack.send(());
            return Ok(());
        }
        if err.is_config() {
            return Err(err);
        }
        if started.elapsed() >= RETRY_RESET {
            retry = Retry::default();
        }
        if !retry.again(&err) {
            return Err(err);
        }
        // Back to the last durable point: the committed offset (or where this worker began)
        // and the changelog's state; the events after it are produced again, identical.
        let Some(to) = stage.flow.committed_position().or(source.first_position()) else {
            continue;
        };
        let consumer = shared.consumer.get().and_then(Weak::upgrade);
        let offset = rdkafka::Offset::Offset(i64::try_from(to).unwrap_or(i64::MAX));
        let sought = consumer.map(|c| c.seek(&tp.0, tp.1, offset, Duration::from_secs(10)));
        match sought {
            Some(Ok(())) => source.rewind(to),
            Some(Err(e)) => {
                return Err(DaemonError::NotConfigured(format!(
                    "{}/{}: cannot seek back to offset {to} after a failure: {e}",
                    tp.0, tp.1
                )))
            }
            None => return Ok(()),
        }
    }
}

/// A partition's flow: events and dead letters to Kafka, state to the changelog.
fn partition_flow(
    shared: &Shared,
    tp: &Tp,
    processor: Processor,
    fence: Fence,
) -> Flow<KafkaSink, ChangelogCheckpoint<Ctx>> {
    let sink = KafkaSink::new(
        shared.producer.clone(),
        shared.out_topic.clone(),
        shared.dlq_topic.clone(),
        tp.clone(),
        shared.metrics.clone(),
        kafka::message_max_bytes(&shared.base),
    );
    let checkpoint = ChangelogCheckpoint::new(
        shared.producer.clone(),
        shared.changelog_topic.clone(),
        tp.clone(),
        shared.consumer.get().cloned().unwrap_or_default(),
        shared.metrics.clone(),
        Fingerprints::new(shared.processor.clone()),
        fence,
    );
    Flow::new(processor, sink, checkpoint)
}

/// A processor holding the partition's keys as the changelog has them, and the position the
/// states reflect (records before it that are read again are skipped).
fn restore(shared: &Shared, (topic, partition): &Tp) -> Result<(Processor, u64), DaemonError> {
    let mut processor = Processor::new(shared.processor.clone())?;
    let t0 = Instant::now();
    let reader = shared
        .changelog_reader
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let snapshot = kafka::read_changelog(
        &reader,
        &shared.changelog_topic,
        *partition,
        RESTORE_TIMEOUT,
    )?;
    drop(reader);
    let mut fingerprints = Fingerprints::new(shared.processor.clone());
    let mut position = 0;
    for (key, bytes) in snapshot {
        let bad = |source| DaemonError::Snapshot {
            topic: shared.changelog_topic.clone(),
            partition: *partition,
            key: key.clone(),
            source,
        };
        if key == state::POSITION_KEY {
            position = state::decode_position(&bytes).map_err(bad)?;
            continue;
        }
        let core = state::decode(&bytes, fingerprints.of(&key)).map_err(bad)?;
        processor.restore(&key, core);
    }
    let keys = processor.key_count();
    tracing::info!(%topic, partition, keys, position, took = ?t0.elapsed(), "restored");
    Ok((processor, position))
}

/// Runs the daemon until SIGTERM/SIGINT (exit 0 after a final checkpoint) or a fatal error.
pub async fn run(cfg: &Config) -> Result<(), DaemonError> {
    // First of all: a SIGTERM that arrives while starting (restoring, creating the changelog)
    // must still mean "stop cleanly", not the default action that kills the process.
    let mut shutdown = Shutdown::install();
    let missing = |what: &str| DaemonError::NotConfigured(format!("{what} is required"));
    let brokers = cfg
        .input
        .brokers
        .clone()
        .ok_or_else(|| missing("[input] brokers"))?;
    let group = cfg
        .input
        .group
        .clone()
        .ok_or_else(|| missing("[input] group"))?;
    let mut topics: Vec<String> = cfg.input.topic.iter().cloned().collect();
    topics.extend(cfg.input.topics.iter().flatten().cloned());
    if topics.is_empty() {
        return Err(missing("[input] topic"));
    }
    let out_topic = cfg
        .output
        .topic
        .clone()
        .ok_or_else(|| missing("[output] topic"))?;
    let listen: SocketAddr = cfg.metrics.listen.parse().map_err(|_| {
        DaemonError::NotConfigured(format!("[metrics] listen `{}`", cfg.metrics.listen))
    })?;
    let base = kafka::client_config(&brokers, &cfg.kafka)?;
    let producer = kafka::producer(&base)?;
    let stop_timeout = Duration::from_secs(cfg.kafka.shutdown_timeout_s);
    let metrics = Metrics::new();
    metrics.set_max_groups(cfg.metrics.max_groups);
    let shared = Arc::new(Shared {
        processor: Arc::new(cfg.processor.clone()),
        record: cfg.processor.record,
        producer,
        base: base.clone(),
        out_topic,
        dlq_topic: cfg
            .output
            .dlq_topic
            .clone()
            .unwrap_or_else(|| default_dlq_topic(&group)),
        changelog_topic: cfg
            .output
            .changelog_topic
            .clone()
            .unwrap_or_else(|| default_changelog_topic(&group)),
        checkpoint_every: Duration::from_millis(cfg.kafka.checkpoint_interval_ms),
        stop_timeout,
        workers: Mutex::new(HashMap::new()),
        keys: Mutex::new(HashMap::new()),
        consumer: OnceLock::new(),
        generation: AtomicU64::new(0),
        changelog_reader: Mutex::new(kafka::changelog_reader(&base)?),
        metrics: metrics.clone(),
        restoring: AtomicUsize::new(0),
        assigned_once: AtomicBool::new(false),
        fatal: Mutex::new(None),
        fatal_notify: tokio::sync::Notify::new(),
    });
    metrics.set_ready(false);
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = crate::io::http::serve(listen, metrics.clone(), async move {
        let _ = http_stop_rx.await;
    })
    .await
    .map_err(|source| DaemonError::Metrics {
        addr: listen.to_string(),
        source,
    })?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");

    kafka::ensure_changelog(
        &base,
        &shared.changelog_topic,
        &topics,
        Duration::from_secs(30),
    )?;
    let consumer = Arc::new(kafka::group_consumer(&base, &group, Ctx(shared.clone()))?);
    let _ = shared.consumer.set(Arc::downgrade(&consumer));
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|source| DaemonError::Subscribe {
            topics: topics.clone(),
            source,
        })?;
    tracing::info!(?topics, %group, "subscribed");

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (consumer, shared, stop) = (consumer.clone(), shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("deadband-poll".into())
            .spawn(move || poll_loop(&consumer, &shared, &stop))
            .expect("spawn the poll thread")
    };

    tokio::select! {
        _ = shutdown.requested() => tracing::info!("shutdown requested: checkpointing"),
        _ = shared.fatal_notify.notified() => tracing::info!("stopping after a fatal error"),
    }

    // Stop fetching, let workers finish what they hold, checkpoint, leave the group.
    let finish = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            stop.store(true, Ordering::SeqCst);
            let _ = poller.join();
            let tps: Vec<Tp> = shared
                .workers
                .lock()
                .expect("workers lock")
                .keys()
                .cloned()
                .collect();
            shared.stop_workers(&tps, false);
            // Dropping the last handle closes the consumer (leaves the group).
            drop(consumer);
        })
    };
    let timed_out = tokio::time::timeout(stop_timeout, finish).await.is_err();
    let _ = http_stop_tx.send(());
    if let Some(e) = shared.fatal.lock().expect("fatal lock").take() {
        return Err(e);
    }
    if timed_out {
        return Err(DaemonError::ShutdownTimeout(stop_timeout));
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
