//! Issue 10, target 3: the daemon's ceiling — how fast `deadband run` drains a backlog of JSON
//! bars against a bare rdkafka consumer draining the same topic, and its per-record latency at a
//! steady 20k records/s. No external broker: librdkafka's in-process mock cluster
//! (`rdkafka::mocking::MockCluster`) listens on loopback, and the release binary runs as a child
//! process against it.
//!
//! - Setup: a one-broker mock cluster; `gen market` bars (8 keys, 100k records under `cargo
//!   bench`) produced once as JSON (`io::codec::encode_record`, what `deadband produce` sends)
//!   into a 4-partition topic (2 keys per partition), message key = record key, then one end
//!   marker per partition. A mock partition keeps at most 5 MiB (~30k of these records) and
//!   drops older ones, so the sizes stay below that (and the bench checks that nothing was
//!   dropped).
//! - `daemon_ceiling/bare_consumer`: a fresh, connected `BaseConsumer` assigns the 4 partitions
//!   from the beginning, polls until it holds every record, then commits the offsets
//!   synchronously — the most the client takes from this broker on this machine.
//! - `daemon_ceiling/daemon`: a fresh `deadband run` (a new consumer group with offset 0
//!   committed for it beforehand — a group resuming, as after any checkpoint; new changelog and
//!   events topics; the settings of `config/daemon.toml`) is started and, once `/readyz` = 200, timed
//!   from its first partition's assignment (the timestamp of its `assigned` log line: fetching
//!   starts there, while the partitions restore) until its events topic holds every event a
//!   replay of the same bars through `Processor` emits and its dead-letter topic the end marker
//!   of each partition (an undecodable record sent after the bars, so the end is exact even
//!   when the last bars emit no event): fetch, restore, decode, process, produce.
//!   The bench then waits (untimed) until the group has committed every record — the last
//!   commit comes at the next checkpoint, up to `checkpoint_interval_ms` (1000, as shipped)
//!   later — and checks that `/metrics` counts every record `ok` and that no other event was
//!   produced. Also printed: the rate from `/readyz` instead (no restore, but librdkafka has
//!   prefetched meanwhile), the rate to the last commit, the CPU per record of each side, and
//!   the rate of one untimed drain by a brand-new group (nothing committed: librdkafka then
//!   waits a fixed 100 ms before it resets the partitions' offsets, which until 2026-12-04 was
//!   half of what this bench timed). Each iteration is a whole run (flat sampling).
//! - The steady probe (not a criterion timing): another fresh daemon on an empty topic while the
//!   bench produces bars at 20k records/s for 5 s; once all are committed the daemon's own
//!   latency quantiles (`deadband_record_latency_seconds`: its HDR histogram of the time each
//!   record spends in the flow's `submit` — process, events handed to the producer, metrics;
//!   decoding is outside it) are read from `/metrics`.
//!
//! It prints the lines that `scripts/bench.sh` reads: `daemon_ceiling: ... ratio=R` (medians of
//! the per-run rates) and `daemon_latency: ... p99_ns=N`.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use deadband::config::parse;
use deadband::io::codec::encode_record;
use deadband::pipeline::Processor;
use deadband::record::{Bar, Payload, Record};
use deadband::run::gen::{GenOptions, MarketGen, MarketRow};
use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

#[path = "../tests/common/http.rs"]
mod http;
use http::{http_get, metric, parse_prometheus};

/// A parsed `/metrics`: `(name, labels) -> value`.
type Exposition = HashMap<(String, BTreeMap<String, String>), f64>;

const BIN: &str = env!("CARGO_BIN_EXE_deadband");
/// Partitions of every topic: the daemon runs one worker thread per input partition.
const PARTITIONS: i32 = 4;
/// Keys, spread evenly: key i goes to partition i mod [`PARTITIONS`].
const KEYS: usize = 8;
const INPUT: &str = "bars";
const STEADY_INPUT: &str = "bars-steady";
/// The steady probe's events and dead letters (each drain has its own, to count them).
const EVENTS: &str = "events";
const DLQ: &str = "bars-dlq";
/// Sent to every input partition after the bars: undecodable, so the daemon sends it to its
/// dead-letter topic once the partition's last bar is through.
const END_MARKER: &[u8] = b"end of the backlog";
/// The daemon's `[kafka] checkpoint_interval_ms`, as shipped in `config/daemon.toml`.
const CHECKPOINT_MS: u64 = 1000;
/// Records per second of the steady latency probe.
const STEADY_RATE: u64 = 20_000;
/// Longest wait for any one thing (a daemon ready, a drain, a delivery).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Records of one drain and seconds of the steady probe: full size under `cargo bench`, small
/// under `cargo test --all-targets`, which runs each bench once as a check (without `--bench`).
fn sizes() -> (u64, f64) {
    if std::env::args().any(|a| a == "--bench") {
        (100_000, 5.0)
    } else {
        (2_000, 0.25)
    }
}

/// The mock cluster, owned by a client created with `test.mock.num.brokers` (librdkafka then
/// runs the cluster inside this process and destroys it with the client).
struct Cluster {
    owner: BaseProducer,
    bootstrap: String,
    /// A client kept connected for watermark queries.
    meta: BaseConsumer,
}

impl Cluster {
    fn start() -> Cluster {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .expect("a client with a mock cluster");
        let bootstrap = owner
            .client()
            .mock_cluster()
            .expect("the client holds a mock cluster")
            .bootstrap_servers();
        // The mock coordinator waits 3 s for more members before a new group's first
        // assignment (Kafka's group.initial.rebalance.delay.ms); every daemon run is a new
        // group of one, so that wait would only lengthen the bench (it is never timed).
        // SAFETY: the handle is the live client's own mock cluster (checked non-null), which
        // stays alive as long as `owner`; the call only stores an integer setting in it.
        unsafe {
            let mcluster = rdsys::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            assert!(!mcluster.is_null(), "no mock cluster handle");
            rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(mcluster, 0);
        }
        let meta = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("a metadata client");
        let cluster = Cluster {
            owner,
            bootstrap,
            meta,
        };
        for topic in [INPUT, STEADY_INPUT, EVENTS, DLQ] {
            cluster.create_topic(topic);
        }
        cluster
    }

    fn create_topic(&self, topic: &str) {
        self.owner
            .client()
            .mock_cluster()
            .expect("the client holds a mock cluster")
            .create_topic(topic, PARTITIONS, 1)
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }

    /// A client that only reads the committed offsets of consumer group `group`.
    fn offsets_client(&self, group: &str) -> BaseConsumer {
        self.client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("an offsets client")
    }

    /// The records in each partition of `topic` (its high watermarks). A mock partition keeps
    /// at most 5 MiB of batches (librdkafka's `rd_kafka_mock_partition`, not configurable) and
    /// drops the oldest beyond that, so every partition must still start at offset 0: a drain
    /// must find every record it was given.
    fn records_in(&self, topic: &str) -> Vec<i64> {
        (0..PARTITIONS)
            .map(|p| {
                let (low, high) = self
                    .meta
                    .fetch_watermarks(topic, p, TIMEOUT)
                    .unwrap_or_else(|e| panic!("watermarks of {topic}/{p}: {e}"));
                assert_eq!(
                    low, 0,
                    "{topic}/{p} lost its oldest records (the mock's 5 MiB)"
                );
                high
            })
            .collect()
    }

    /// Sends `rows` to `topic` as JSON bars keyed by symbol (the `i`-th key to partition i mod
    /// [`PARTITIONS`]), `rate` per second when given (in bursts of at most 1 ms), and waits for
    /// every delivery. Returns the records sent and the time the sending took.
    fn produce(&self, topic: &str, rows: MarketGen, rate: Option<u64>) -> (u64, Duration) {
        let producer: BaseProducer = self
            .client()
            .set("linger.ms", "5")
            .create()
            .expect("a producer");
        let before: i64 = self.records_in(topic).iter().sum();
        let mut buf = Vec::with_capacity(256);
        let mut sent = 0u64;
        let start = Instant::now();
        for (i, row) in rows.enumerate() {
            if let Some(rate) = rate {
                let due = Duration::from_nanos(sent * 1_000_000_000 / rate);
                let now = start.elapsed();
                if due > now + Duration::from_millis(1) {
                    std::thread::sleep(due - now);
                }
            }
            encode_record(&bar(&row), &mut buf);
            // Rows come ordered by ts then key, so `i mod KEYS` is the key's index.
            let mut record = BaseRecord::to(topic)
                .partition(((i % KEYS) as i32) % PARTITIONS)
                .key(row.key.as_bytes())
                .payload(buf.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => panic!("produce to {topic}: {e}"),
                }
            }
            sent += 1;
            producer.poll(Duration::ZERO);
        }
        let sending = start.elapsed();
        producer.flush(TIMEOUT).expect("every record delivered");
        let after: i64 = self.records_in(topic).iter().sum();
        assert_eq!(after - before, sent as i64, "records in {topic}");
        (sent, sending)
    }

    /// Sends [`END_MARKER`] to every partition of `topic`.
    fn end_markers(&self, topic: &str) {
        let producer: BaseProducer = self.client().create().expect("a producer");
        let before = self.records_in(topic);
        for p in 0..PARTITIONS {
            let marker = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(p)
                .key(b"end".as_slice())
                .payload(END_MARKER);
            producer
                .send(marker)
                .map_err(|(e, _)| e)
                .expect("send a marker");
        }
        producer.flush(TIMEOUT).expect("every marker delivered");
        let after = self.records_in(topic);
        assert!(
            after.iter().zip(&before).all(|(a, b)| a - b == 1),
            "one marker each"
        );
    }

    /// One bare drain of `records` from the input: assign, poll everything, commit. The time
    /// from the assignment to the committed offsets, and the CPU seconds this process (the
    /// consumer and the mock broker) spent meanwhile.
    fn bare_drain(&self, records: u64, run: usize) -> (Duration, f64) {
        let c: BaseConsumer = self
            .client()
            .set("group.id", format!("bare-{run}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("a consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(INPUT, p, Offset::Beginning)
                .expect("a partition");
        }
        // Connected before the clock starts, as the daemon is by its assignment: the
        // partitions' leader and the group's coordinator are known.
        for p in 0..PARTITIONS {
            c.fetch_watermarks(INPUT, p, TIMEOUT).expect("watermarks");
        }
        self.committed(&c, INPUT);
        let mut next = [0i64; PARTITIONS as usize];
        let (mut got, mut bytes) = (0u64, 0usize);
        let cpu0 = cpu_seconds("self");
        let t0 = Instant::now();
        c.assign(&tpl).expect("assign");
        while got < records {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    got += 1;
                    bytes += m.payload().map_or(0, <[u8]>::len);
                    next[m.partition() as usize] = m.offset() + 1;
                }
                Some(Err(e)) => panic!("bare consumer: {e}"),
                None => assert!(
                    t0.elapsed() < TIMEOUT,
                    "bare consumer: {got} of {records}, next offsets {next:?}"
                ),
            }
        }
        let mut done = TopicPartitionList::new();
        for (p, &offset) in next.iter().enumerate() {
            done.add_partition_offset(INPUT, p as i32, Offset::Offset(offset))
                .expect("a partition");
        }
        c.commit(&done, CommitMode::Sync).expect("commit");
        let took = t0.elapsed();
        black_box(bytes);
        (took, cpu_seconds("self") - cpu0)
    }

    /// Commits offset 0 of every partition of `topic` for consumer group `group`, before any
    /// member joins it: the group then resumes from committed offsets, as a daemon does after
    /// its first checkpoint. A group with nothing committed resets each partition's offset
    /// (`auto.offset.reset`), and librdkafka schedules that reset's offset query 100 ms later
    /// (`rd_kafka_offset_reset` in librdkafka 2.12's `rdkafka_offset.c`: a fixed back-off when
    /// the reset follows "no committed offset") — once in a group's life, not a rate.
    fn commit_start(&self, group: &str, topic: &str) {
        let c = self.offsets_client(group);
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(topic, p, Offset::Offset(0))
                .expect("a partition");
        }
        c.commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("commit the start of {topic} for {group}: {e}"));
    }

    /// The records committed on `topic` by the group of `c` (a client that never joins it).
    fn committed(&self, c: &BaseConsumer, topic: &str) -> i64 {
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(topic, p);
        }
        let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
            return 0;
        };
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum()
    }
}

/// A `deadband run` child process with its metrics port; killed if dropped while running.
struct Daemon {
    child: Child,
    port: u16,
    group: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts a daemon in a new group reading `input` and writing to `outputs` (events, dead
    /// letters), with a new changelog topic, and waits until `/readyz` answers 200.
    fn start(
        cluster: &Cluster,
        dir: &Path,
        input: &str,
        (events, dlq): (&str, &str),
        run: &str,
    ) -> Daemon {
        let group = group_of(run);
        let changelog = format!("state-{run}");
        cluster.create_topic(&changelog);
        let port = free_port();
        let config = dir.join(format!("{run}.toml"));
        std::fs::write(
            &config,
            config_text(
                &cluster.bootstrap,
                input,
                events,
                dlq,
                &group,
                &changelog,
                port,
            ),
        )
        .expect("write the daemon config");
        let log = dir.join(format!("{run}.log"));
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the daemon's log file"))
            .spawn()
            .expect("start deadband run");
        let mut daemon = Daemon {
            child,
            port,
            group,
            log,
        };
        daemon.wait("/readyz = 200", Duration::from_millis(2), |d| {
            matches!(http_get(d.port, "/readyz"), Some((200, _)))
        });
        daemon
    }

    /// Polls `done` every `every` until it holds; panics with the daemon's log if the daemon
    /// exits or [`TIMEOUT`] passes first.
    fn wait(&mut self, what: &str, every: Duration, mut done: impl FnMut(&Self) -> bool) {
        let t0 = Instant::now();
        while !done(self) {
            if let Some(status) = self.child.try_wait().expect("the daemon's status") {
                panic!(
                    "the daemon exited ({status}) before {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                t0.elapsed() < TIMEOUT,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(every);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How long ago the daemon's first partition was assigned, from the timestamp of its
    /// `assigned` log line (UTC, microseconds; the same system clock as this process's).
    fn assigned_ago(&self) -> Duration {
        let log = self.log();
        let stamp = log
            .lines()
            .find(|l| l.contains(" assigned "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or_else(|| panic!("no `assigned` line in the daemon's log:\n{log}"));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970");
        let now = i64::try_from(now.as_nanos()).expect("nanoseconds fit i64");
        Duration::from_nanos(u64::try_from(now - stamp).unwrap_or(0))
    }

    /// CPU seconds the daemon process has used so far.
    fn cpu(&self) -> f64 {
        cpu_seconds(&self.child.id().to_string())
    }

    fn metrics(&self) -> String {
        match http_get(self.port, "/metrics") {
            Some((200, body)) => body,
            other => panic!("/metrics answered {other:?}; log:\n{}", self.log()),
        }
    }

    /// SIGTERM, and a clean exit: the daemon checkpoints and leaves the group.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("the daemon's status");
        assert!(
            status.success(),
            "daemon exited with {status}; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The consumer group of the daemon started as `run`.
fn group_of(run: &str) -> String {
    format!("deadband-{run}")
}

/// A daemon config: the settings of `config/daemon.toml`, topics on the mock cluster.
fn config_text(
    bootstrap: &str,
    input: &str,
    events: &str,
    dlq: &str,
    group: &str,
    changelog: &str,
    port: u16,
) -> String {
    format!(
        r#"[input]
kind = "kafka"
brokers = "{bootstrap}"
topic = "{input}"
group = "{group}"
format = "json"
record = "bar"
out_of_order = "drop"

[zone]
well = "dead_zone"

[zone.scale]
kind = "atr"
period = 14

[fit]
method = "robust_rls"
forgetting = 0.98

[signal]
horizon = 10
enter = 1.0
exit = 0.5
cost_bps = 2.0
band = 0.25
warmup = 20

[output]
kind = "kafka"
topic = "{events}"
dlq_topic = "{dlq}"
changelog_topic = "{changelog}"

[kafka]
checkpoint_interval_ms = {CHECKPOINT_MS}
shutdown_timeout_s = 30

[metrics]
listen = "127.0.0.1:{port}"
"#
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

const RECORDS_IN: &str = "deadband_records_in_total";
const LATENCY: &str = "deadband_record_latency_seconds";

/// A latency quantile of the daemon's histogram from a parsed `/metrics`, in nanoseconds (NaN
/// when the daemon serves none yet).
fn quantile_ns(m: &Exposition, q: &str) -> f64 {
    let served = m.keys().any(|(name, _)| name == LATENCY);
    if served {
        metric(m, LATENCY, &[("quantile", q)]) * 1e9
    } else {
        f64::NAN
    }
}

fn market(rows_per_key: usize, seed: u64) -> MarketGen {
    MarketGen::new(&GenOptions::new(KEYS, rows_per_key, seed)).expect("market options")
}

/// A generated row as the record the daemon decodes from its JSON (no ground truth).
fn bar(row: &MarketRow) -> Record<'_> {
    Record {
        key: &row.key,
        ts: row.ts,
        payload: Payload::Bar(Bar {
            open: row.open,
            high: row.high,
            low: row.low,
            close: row.close,
            volume: Some(row.volume),
            true_trend: None,
        }),
    }
}

/// The events a replay of `rows` emits with the daemon's settings: one processor for all keys
/// gives the same events as one per partition, since a key's state is its own.
fn replay_events(rows: MarketGen) -> u64 {
    let text = config_text(
        "unused:9092",
        INPUT,
        EVENTS,
        DLQ,
        "replay",
        "replay-state",
        0,
    );
    let cfg = parse(&text, Path::new("daemon-bench.toml")).expect("the bench's daemon config");
    let mut processor = Processor::new(Arc::new(cfg.processor)).expect("a processor");
    let mut out = Vec::new();
    let mut events = 0;
    for row in rows {
        out.clear();
        processor
            .process(&bar(&row), &mut out)
            .expect("generated bars are accepted");
        events += out.len() as u64;
    }
    events
}

/// CPU seconds (user + system) process `pid` (or `self`) has used, from `/proc/PID/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s: Linux's USER_HZ).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it follow its `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What one daemon drain measured.
struct Drain {
    /// From the assignment to the last expected event and end marker (the criterion timing).
    to_events: Duration,
    /// From `/readyz` (every partition restored) to the same: leaves out the restore, but also
    /// the records librdkafka fetched during it.
    ready_to_events: Duration,
    /// From the assignment to every record committed.
    to_committed: Duration,
    /// CPU seconds of the daemon process, and of this process (the mock broker, the bench's
    /// polling), from the daemon's start to the last event.
    daemon_cpu: f64,
    /// CPU seconds of the daemon process from `/readyz` to the last event: the drain without
    /// the process's start (config, clients, group join).
    drain_cpu: f64,
    broker_cpu: f64,
    /// `/metrics` once every record was committed.
    metrics: Exposition,
}

/// One daemon drain of the input: `records` bars, which emit `events` events, and the end
/// markers. A `resuming` daemon's group has offset 0 committed before it joins (see
/// [`Cluster::commit_start`]); otherwise it is a brand-new group.
fn daemon_drain(
    cluster: &Cluster,
    dir: &Path,
    (records, events): (u64, u64),
    run: usize,
    resuming: bool,
) -> Drain {
    let (events_topic, dlq) = (format!("events-{run}"), format!("dlq-{run}"));
    cluster.create_topic(&events_topic);
    cluster.create_topic(&dlq);
    let broker_cpu0 = cpu_seconds("self");
    let outputs = (events_topic.as_str(), dlq.as_str());
    let name = format!("drain-{run}");
    if resuming {
        cluster.commit_start(&group_of(&name), INPUT);
    }
    let mut d = Daemon::start(cluster, dir, INPUT, outputs, &name);
    let since_ready = Instant::now();
    let ready_cpu = d.cpu();
    // The clock starts at the assignment, not at /readyz: the partitions' restore (1–12 ms
    // here from an empty changelog, more with state) lies between them, and librdkafka fetches meanwhile, so
    // starting at /readyz would leave much of the transport out of the daemon's time.
    let assigned_ago = d.assigned_ago();
    let offsets = cluster.offsets_client(&d.group);
    let produced = || -> i64 { cluster.records_in(&events_topic).iter().sum() };
    let markers = || -> i64 { cluster.records_in(&dlq).iter().sum() };
    d.wait(
        "every event and end marker",
        Duration::from_millis(2),
        |_| markers() >= PARTITIONS as i64 && produced() >= events as i64,
    );
    let ready_to_events = since_ready.elapsed();
    let to_events = assigned_ago + ready_to_events;
    let (daemon_cpu, broker_cpu) = (d.cpu(), cpu_seconds("self") - broker_cpu0);
    let drain_cpu = daemon_cpu - ready_cpu;
    d.wait("every record committed", Duration::from_millis(10), |_| {
        cluster.committed(&offsets, INPUT) >= (records + PARTITIONS as u64) as i64
    });
    let to_committed = assigned_ago + since_ready.elapsed();
    let metrics = parse_prometheus(&d.metrics());
    let ok = metric(&metrics, RECORDS_IN, &[("result", "ok")]);
    assert_eq!(
        ok,
        records as f64,
        "records processed ok; log:\n{}",
        d.log()
    );
    assert_eq!(
        produced(),
        events as i64,
        "events of a replay; log:\n{}",
        d.log()
    );
    assert_eq!(
        markers(),
        PARTITIONS as i64,
        "dead letters; log:\n{}",
        d.log()
    );
    d.stop();
    Drain {
        to_events,
        ready_to_events,
        to_committed,
        daemon_cpu,
        drain_cpu,
        broker_cpu,
        metrics,
    }
}

/// The steady probe: a fresh daemon, `seconds` of bars at [`STEADY_RATE`], then its latency
/// quantiles once every record is committed.
fn steady_latency(cluster: &Cluster, dir: &Path, seconds: f64) {
    let mut d = Daemon::start(cluster, dir, STEADY_INPUT, (EVENTS, DLQ), "steady");
    let offsets = cluster.offsets_client(&d.group);
    let rows_per_key = (STEADY_RATE as f64 * seconds) as usize / KEYS;
    let rows = market(rows_per_key, 2);
    let (sent, sending) = cluster.produce(STEADY_INPUT, rows, Some(STEADY_RATE));
    d.wait(
        "every steady record committed",
        Duration::from_millis(10),
        |_| cluster.committed(&offsets, STEADY_INPUT) >= sent as i64,
    );
    let text = parse_prometheus(&d.metrics());
    d.stop();
    let timed = metric(&text, "deadband_record_latency_seconds_count", &[]);
    println!(
        "daemon_latency: rate_per_s={:.0} records={sent} timed={timed:.0} p50_ns={:.0} \
         p90_ns={:.0} p99_ns={:.0} p999_ns={:.0} (the daemon's deadband_record_latency_seconds)",
        sent as f64 / sending.as_secs_f64(),
        quantile_ns(&text, "0.5"),
        quantile_ns(&text, "0.9"),
        quantile_ns(&text, "0.99"),
        quantile_ns(&text, "0.999"),
    );
}

fn daemon_ceiling(c: &mut Criterion) {
    let (records, steady_s) = sizes();
    let rows_per_key = records as usize / KEYS;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cluster = Cluster::start();
    let (records, _) = cluster.produce(INPUT, market(rows_per_key, 1), None);
    cluster.end_markers(INPUT);
    let input = records + PARTITIONS as u64;
    let events = replay_events(market(rows_per_key, 1));
    println!(
        "daemon_ceiling: {records} bars of {KEYS} keys and an end marker in each of {PARTITIONS} \
         partitions {:?}, {events} events per replay, mock cluster on {}",
        cluster.records_in(INPUT),
        cluster.bootstrap
    );

    let mut g = c.benchmark_group("daemon_ceiling");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(input));
    let mut run = 0;
    let (mut bare_rates, mut bare_cpu) = (Vec::new(), Vec::new());
    g.bench_function("bare_consumer", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run += 1;
                    let (took, cpu) = cluster.bare_drain(input, run);
                    bare_rates.push(input as f64 / took.as_secs_f64());
                    bare_cpu.push(cpu);
                    took
                })
                .sum()
        })
    });
    let mut drains = Vec::new();
    g.bench_function("daemon", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run += 1;
                    let drain = daemon_drain(&cluster, dir.path(), (records, events), run, true);
                    let took = drain.to_events;
                    drains.push(drain);
                    took
                })
                .sum()
        })
    });
    g.finish();

    let n = input as f64;
    let per_s = |f: fn(&Drain) -> Duration| -> Vec<f64> {
        drains.iter().map(|d| n / f(d).as_secs_f64()).collect()
    };
    let bare = median(&mut bare_rates);
    let daemon = median(&mut per_s(|d| d.to_events));
    let ready = median(&mut per_s(|d| d.ready_to_events));
    let committed = median(&mut per_s(|d| d.to_committed));
    println!(
        "daemon_ceiling: runs={}+{} bare_per_s={bare:.0} daemon_per_s={daemon:.0} ratio={:.3} \
         (medians; daemon from its assignment to its last event and end marker)",
        bare_rates.len(),
        drains.len(),
        daemon / bare,
    );
    println!(
        "daemon_ceiling: from_ready_per_s={ready:.0} from_ready_ratio={:.3} (from /readyz: \
         without the restore, nor what was fetched during it) committed_per_s={committed:.0} \
         committed_ratio={:.3} (to every offset committed, checkpoint every {CHECKPOINT_MS} ms)",
        ready / bare,
        committed / bare,
    );
    let us = |cpu: f64| cpu / n * 1e6;
    let mut daemon_cpu: Vec<f64> = drains.iter().map(|d| us(d.daemon_cpu)).collect();
    let mut drain_cpu: Vec<f64> = drains.iter().map(|d| us(d.drain_cpu)).collect();
    let mut broker_cpu: Vec<f64> = drains.iter().map(|d| us(d.broker_cpu)).collect();
    let mut bare_cpu: Vec<f64> = bare_cpu.into_iter().map(us).collect();
    println!(
        "daemon_ceiling: cpu_us_per_record bare={:.2} (consumer + mock broker) daemon={:.2} \
         (daemon process, start included; {:.2} from /readyz on) + {:.2} (mock broker and the \
         bench's polling) (medians)",
        median(&mut bare_cpu),
        median(&mut daemon_cpu),
        median(&mut drain_cpu),
        median(&mut broker_cpu),
    );
    if let Some(last) = drains.last() {
        println!(
            "daemon_ceiling: last drain's latency p50_ns={:.0} p99_ns={:.0} p999_ns={:.0} \
             (a backlog; the steady probe follows)",
            quantile_ns(&last.metrics, "0.5"),
            quantile_ns(&last.metrics, "0.99"),
            quantile_ns(&last.metrics, "0.999"),
        );
    }
    // One untimed drain by a brand-new group, for the record: the same work plus librdkafka's
    // fixed 100 ms before a partition without committed offsets is reset (see
    // `Cluster::commit_start`).
    run += 1;
    let fresh = daemon_drain(&cluster, dir.path(), (records, events), run, false);
    println!(
        "daemon_ceiling: new_group_per_s={:.0} new_group_ratio={:.3} (one drain by a group with \
         no committed offsets: librdkafka waits 100 ms before resetting them)",
        n / fresh.to_events.as_secs_f64(),
        n / fresh.to_events.as_secs_f64() / bare,
    );
    steady_latency(&cluster, dir.path(), steady_s);
}

criterion_group!(benches, daemon_ceiling);
criterion_main!(benches);
