//! `deadband run`: the Kafka daemon — a consumer-group member that processes each assigned
//! partition in offset order with its own Processor, produces events, and checkpoints.
//!
//! Threads and tasks:
//! - one OS thread polls the group consumer (librdkafka runs rebalance callbacks on it) and
//!   hands each message to its partition's worker through a bounded channel; a full channel
//!   blocks the poller, so consumption pauses instead of buffering without limit;
//! - one tokio task per assigned partition: restore keyed state from the changelog, then
//!   decode -> process -> produce, and checkpoint every `checkpoint_interval_ms`;
//! - the tokio main task serves `/metrics` and waits for SIGTERM/SIGINT or a fatal error.
//!
//! Checkpoint order (design §4): await the delivery of produced events and DLQ records ->
//! write changed keys' snapshots to the changelog (same partition number as the input) ->
//! await those deliveries -> commit offset + 1 synchronously. A crash anywhere in between
//! re-delivers records; events carry deterministic ids, so the guarantee is at-least-once with
//! duplicates that are identical. Records already covered by a restored snapshot are rejected
//! as duplicates/out-of-order by the Processor, so they never emit twice from replayed state.
//!
//! Choices where the spec is silent: a failed event delivery is fatal (exit 1, offsets not
//! committed past it) because committing would lose events; a failed commit is retried at the
//! next checkpoint; the changelog topic needs at least as many partitions as the input topic.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::config::{default_changelog_topic, default_dlq_topic, Config};
use crate::io::codec::{decode, encode_event};
use crate::io::kafka::{self, KafkaIoError};
use crate::pipeline::{KeyParamError, Processor, ProcessorConfig, Reject};
use crate::record::{Event, RecordKind};

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
    #[error("producing to {topic} failed: {problem} (offsets were not committed past it; restart to retry)")]
    Produce { topic: String, problem: String },
    #[error("restoring {topic}/{partition}: snapshot of key `{key}`: {source}")]
    Snapshot {
        topic: String,
        partition: i32,
        key: String,
        source: crate::state::StateError,
    },
    #[error("shutdown did not finish within {0:?}; offsets since the last checkpoint were not committed and will be reprocessed")]
    ShutdownTimeout(Duration),
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
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics adapter: the only place that names `crate::metrics`, so its API can move freely.
// ---------------------------------------------------------------------------------------------

/// What the daemon reports; a thin wrapper over [`crate::metrics::Metrics`].
#[derive(Clone)]
struct Telemetry(Arc<crate::metrics::Metrics>);

/// The outcome of one input record, for the counters.
enum Outcome<'a> {
    Ok,
    Invalid(&'a str),
    OutOfOrder,
    Duplicate,
}

impl Telemetry {
    fn new() -> Self {
        Telemetry(crate::metrics::Metrics::new())
    }
    fn record(&self, o: Outcome<'_>) {
        use crate::metrics::RecordResult as R;
        match o {
            Outcome::Ok => self.0.record_in(R::Ok, None),
            Outcome::Invalid(reason) => self.0.record_in(R::Invalid, Some(reason)),
            Outcome::OutOfOrder => self.0.record_in(R::OutOfOrder, None),
            Outcome::Duplicate => self.0.record_in(R::Duplicate, None),
        }
    }
    fn event(&self, kind: &str) {
        self.0.event_out(kind);
    }
    fn dlq(&self, reason: &str) {
        self.0.dlq(reason);
    }
    fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.0.set_lag(topic, partition, lag);
    }
    fn forget(&self, topic: &str, partition: i32) {
        self.0.remove_partition(topic, partition);
    }
    fn keys(&self, n: usize) {
        self.0.set_keys(n);
    }
    fn checkpoint(&self, took: Duration) {
        self.0.checkpoint(took);
    }
    fn latency(&self, took: Duration) {
        self.0.latency(took);
    }
    fn ready(&self, ready: bool) {
        self.0.set_ready(ready);
    }
    async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<SocketAddr> {
        crate::metrics::serve(listen, self.0.clone(), shutdown).await
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state, consumer context
// ---------------------------------------------------------------------------------------------

/// A message for a partition worker.
enum Work {
    Msg(OwnedMessage),
    /// Checkpoint and stop; the sender is told when done.
    Stop(std::sync::mpsc::Sender<()>),
}

type Tp = (String, i32);

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
    rt: tokio::runtime::Handle,
    workers: Mutex<HashMap<Tp, mpsc::Sender<Work>>>,
    keys: Mutex<HashMap<Tp, usize>>,
    consumer: OnceLock<Weak<BaseConsumer<Ctx>>>,
    telemetry: Telemetry,
    restoring: AtomicUsize,
    assigned_once: AtomicBool,
    fatal: Mutex<Option<DaemonError>>,
    fatal_notify: tokio::sync::Notify,
}

/// Records per partition queued between the poller and the worker.
const CHANNEL_DEPTH: usize = 1024;
/// Deliveries awaited once this many are outstanding (per partition): bounds producer memory.
const MAX_PENDING: usize = 4096;
/// How long a partition's changelog restore may take.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

impl Shared {
    fn update_ready(&self) {
        let ready =
            self.assigned_once.load(Ordering::SeqCst) && self.restoring.load(Ordering::SeqCst) == 0;
        self.telemetry.ready(ready);
    }

    fn set_fatal(&self, e: DaemonError) {
        tracing::error!("{e}");
        let mut f = self.fatal.lock().expect("fatal lock");
        if f.is_none() {
            *f = Some(e);
        }
        self.fatal_notify.notify_one();
    }

    /// Starts a worker for each partition not already running.
    fn start_workers(self: &Arc<Self>, tpl: &TopicPartitionList) {
        let mut workers = self.workers.lock().expect("workers lock");
        for el in tpl.elements() {
            let tp = (el.topic().to_string(), el.partition());
            if workers.contains_key(&tp) {
                continue;
            }
            tracing::info!(topic = %tp.0, partition = tp.1, "assigned");
            let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
            workers.insert(tp.clone(), tx);
            self.restoring.fetch_add(1, Ordering::SeqCst);
            let shared = self.clone();
            self.rt.spawn(async move {
                if let Err(e) = Worker::run(shared.clone(), tp, rx).await {
                    shared.set_fatal(e);
                }
            });
        }
        self.assigned_once.store(true, Ordering::SeqCst);
        self.update_ready();
    }

    /// Tells the workers of `tps` to checkpoint and stop, and waits (blocking) for them.
    fn stop_workers(&self, tps: &[Tp]) {
        let mut acks = Vec::new();
        for tp in tps {
            let Some(tx) = self.workers.lock().expect("workers lock").remove(tp) else {
                continue;
            };
            let (ack_tx, ack_rx) = std::sync::mpsc::channel();
            if tx.blocking_send(Work::Stop(ack_tx)).is_ok() {
                acks.push((tp.clone(), ack_rx));
            }
        }
        let deadline = Instant::now() + self.stop_timeout;
        for (tp, ack) in acks {
            let left = deadline.saturating_duration_since(Instant::now());
            if ack.recv_timeout(left).is_err() {
                tracing::warn!(topic = %tp.0, partition = tp.1, "worker did not checkpoint in time");
            }
            self.telemetry.forget(&tp.0, tp.1);
            self.keys.lock().expect("keys lock").remove(&tp);
            tracing::info!(topic = %tp.0, partition = tp.1, "revoked");
        }
    }

    fn sender(&self, topic: &str, partition: i32) -> Option<mpsc::Sender<Work>> {
        self.workers
            .lock()
            .expect("workers lock")
            .get(&(topic.to_string(), partition))
            .cloned()
    }
}

/// The group consumer's context: rebalances start and stop partition workers.
struct Ctx(Arc<Shared>);

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Checkpoint before the partitions go: they are still ours, so the commit counts.
            Rebalance::Revoke(tpl) => {
                let tps: Vec<Tp> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                self.0.stop_workers(&tps);
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

// ---------------------------------------------------------------------------------------------
// Partition worker
// ---------------------------------------------------------------------------------------------

struct Worker {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    processor: Processor,
    /// Keys whose state changed since the last checkpoint.
    dirty: HashSet<String>,
    pending: Vec<DeliveryFuture>,
    /// Offset + 1 of the last record handled, and of the last committed.
    next_offset: Option<i64>,
    committed: Option<i64>,
    events: Vec<Event>,
    buf: Vec<u8>,
}

impl Worker {
    async fn run(
        shared: Arc<Shared>,
        (topic, partition): Tp,
        mut rx: mpsc::Receiver<Work>,
    ) -> Result<(), DaemonError> {
        let mut processor = Processor::new(shared.processor.clone())?;
        let t0 = Instant::now();
        let (base, changelog) = (shared.base.clone(), shared.changelog_topic.clone());
        let snapshot = tokio::task::spawn_blocking(move || {
            kafka::read_changelog(&base, &changelog, partition, RESTORE_TIMEOUT)
        })
        .await
        .expect("restore task panicked");
        let restored = match snapshot {
            Ok(s) => s,
            Err(e) => {
                shared.restoring.fetch_sub(1, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        let n = restored.len();
        for (key, bytes) in restored {
            if let Err(source) = processor.restore(&key, &bytes) {
                shared.restoring.fetch_sub(1, Ordering::SeqCst);
                return Err(DaemonError::Snapshot {
                    topic: shared.changelog_topic.clone(),
                    partition,
                    key,
                    source,
                });
            }
        }
        tracing::info!(%topic, partition, keys = n, took = ?t0.elapsed(), "restored");
        shared.restoring.fetch_sub(1, Ordering::SeqCst);
        shared.update_ready();
        let mut w = Worker {
            shared: shared.clone(),
            topic,
            partition,
            processor,
            dirty: HashSet::new(),
            pending: Vec::new(),
            next_offset: None,
            committed: None,
            events: Vec::new(),
            buf: Vec::with_capacity(512),
        };
        w.report_keys();
        let mut tick = tokio::time::interval(shared.checkpoint_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                work = rx.recv() => match work {
                    Some(Work::Msg(m)) => w.handle(&m).await?,
                    Some(Work::Stop(ack)) => {
                        let r = w.checkpoint().await;
                        let _ = ack.send(());
                        return r;
                    }
                    None => return w.checkpoint().await,
                },
                _ = tick.tick() => w.checkpoint().await?,
            }
        }
    }

    fn produce_err(&self, topic: &str, e: impl ToString) -> DaemonError {
        DaemonError::Produce {
            topic: topic.to_string(),
            problem: e.to_string(),
        }
    }

    async fn handle(&mut self, m: &OwnedMessage) -> Result<(), DaemonError> {
        let t0 = Instant::now();
        let payload = m.payload().unwrap_or(b"");
        match decode(payload, self.shared.record) {
            Err(e) => {
                self.shared.telemetry.record(Outcome::Invalid(e.code()));
                self.dead_letter(m, &e.to_string(), e.code()).await?;
            }
            Ok(d) => {
                let rec = d.record();
                match self.processor.process(&rec, &mut self.events) {
                    Ok(_) => {
                        self.shared.telemetry.record(Outcome::Ok);
                        if !self.dirty.contains(rec.key) {
                            self.dirty.insert(rec.key.to_string());
                        }
                        let events = std::mem::take(&mut self.events);
                        for e in &events {
                            encode_event(e, &mut self.buf);
                            let r = FutureRecord::to(&self.shared.out_topic)
                                .key(e.key.as_bytes())
                                .payload(self.buf.as_slice());
                            let f = kafka::send_with_backpressure(&self.shared.producer, r)
                                .await
                                .map_err(|err| self.produce_err(&self.shared.out_topic, err))?;
                            self.pending.push(f);
                            self.shared.telemetry.event(e.body.kind());
                        }
                        self.events = events;
                        self.events.clear();
                    }
                    Err(Reject::Invalid(i)) => {
                        self.shared.telemetry.record(Outcome::Invalid(i.as_str()));
                        self.dead_letter(m, i.as_str(), i.as_str()).await?;
                    }
                    Err(Reject::OutOfOrder) => self.shared.telemetry.record(Outcome::OutOfOrder),
                    Err(Reject::Duplicate) => self.shared.telemetry.record(Outcome::Duplicate),
                }
            }
        }
        self.next_offset = Some(m.offset() + 1);
        if self.pending.len() >= MAX_PENDING {
            self.flush().await?;
        }
        self.shared.telemetry.latency(t0.elapsed());
        Ok(())
    }

    async fn dead_letter(
        &mut self,
        m: &OwnedMessage,
        reason: &str,
        code: &str,
    ) -> Result<(), DaemonError> {
        let headers = kafka::dlq_headers(reason, m.topic(), m.partition(), m.offset());
        let f = kafka::send_dlq(
            &self.shared.producer,
            &self.shared.dlq_topic,
            m.key(),
            m.payload(),
            headers,
        )
        .await
        .map_err(|e| self.produce_err(&self.shared.dlq_topic, e))?;
        self.pending.push(f);
        self.shared.telemetry.dlq(code);
        Ok(())
    }

    /// Waits for every outstanding delivery; any failure is fatal.
    async fn flush(&mut self) -> Result<(), DaemonError> {
        for f in self.pending.drain(..) {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, m))) => {
                    return Err(DaemonError::Produce {
                        topic: m.topic().to_string(),
                        problem: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(DaemonError::Produce {
                        topic: self.shared.out_topic.clone(),
                        problem: "the producer was closed before delivery".into(),
                    })
                }
            }
        }
        Ok(())
    }

    fn report_keys(&self) {
        let mut keys = self.shared.keys.lock().expect("keys lock");
        keys.insert(
            (self.topic.clone(), self.partition),
            self.processor.key_count(),
        );
        self.shared.telemetry.keys(keys.values().sum());
    }

    /// Events flushed -> changed state to the changelog -> flushed -> offsets committed.
    async fn checkpoint(&mut self) -> Result<(), DaemonError> {
        if self.next_offset == self.committed && self.dirty.is_empty() && self.pending.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        self.flush().await?;
        let dirty: Vec<String> = self.dirty.drain().collect();
        for key in &dirty {
            let Some(bytes) = self.processor.snapshot(key) else {
                continue;
            };
            let r = FutureRecord::to(&self.shared.changelog_topic)
                .partition(self.partition)
                .key(key.as_bytes())
                .payload(bytes.as_slice());
            let f = kafka::send_with_backpressure(&self.shared.producer, r)
                .await
                .map_err(|e| self.produce_err(&self.shared.changelog_topic, e))?;
            self.pending.push(f);
        }
        self.flush().await?;
        self.report_keys();
        let Some(next) = self.next_offset else {
            return Ok(());
        };
        let Some(consumer) = self.shared.consumer.get().and_then(Weak::upgrade) else {
            return Ok(());
        };
        let (topic, partition) = (self.topic.clone(), self.partition);
        let (committed, lag) = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            let ok = tpl
                .add_partition_offset(&topic, partition, Offset::Offset(next))
                .and_then(|_| consumer.commit(&tpl, CommitMode::Sync));
            if let Err(e) = &ok {
                tracing::warn!(%topic, partition, "commit failed (retried at the next checkpoint): {e}");
            }
            let lag = consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(1))
                .ok()
                .map(|(_, high)| (high - next).max(0));
            (ok.is_ok(), lag)
        })
        .await
        .expect("commit task panicked");
        if committed {
            self.committed = Some(next);
        }
        if let Some(lag) = lag {
            self.shared.telemetry.lag(&self.topic, self.partition, lag);
        }
        self.shared.telemetry.checkpoint(t0.elapsed());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/// Runs the daemon until SIGTERM/SIGINT (exit 0 after a final checkpoint) or a fatal error.
pub async fn run(cfg: &Config) -> Result<(), DaemonError> {
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
    let telemetry = Telemetry::new();
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
        rt: tokio::runtime::Handle::current(),
        workers: Mutex::new(HashMap::new()),
        keys: Mutex::new(HashMap::new()),
        consumer: OnceLock::new(),
        telemetry: telemetry.clone(),
        restoring: AtomicUsize::new(0),
        assigned_once: AtomicBool::new(false),
        fatal: Mutex::new(None),
        fatal_notify: tokio::sync::Notify::new(),
    });
    telemetry.ready(false);
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = telemetry
        .serve(listen, async move {
            let _ = http_stop_rx.await;
        })
        .await
        .map_err(|source| DaemonError::Metrics {
            addr: listen.to_string(),
            source,
        })?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");

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

    let signal = shutdown_signal();
    tokio::select! {
        _ = signal => tracing::info!("shutdown requested: checkpointing"),
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
            shared.stop_workers(&tps);
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

/// Polls the group consumer and routes messages to partition workers until `stop`.
fn poll_loop(consumer: &BaseConsumer<Ctx>, shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => tracing::warn!("consumer: {e}"),
            Some(Ok(m)) => {
                let Some(tx) = shared.sender(m.topic(), m.partition()) else {
                    tracing::warn!(
                        topic = m.topic(),
                        partition = m.partition(),
                        offset = m.offset(),
                        "message for a partition without a worker; it will be re-read after the next assignment"
                    );
                    continue;
                };
                if tx.blocking_send(Work::Msg(m.detach())).is_err() {
                    // The worker stopped (fatal error): the main task is shutting down.
                    continue;
                }
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
