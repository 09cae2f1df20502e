//! What the broker tests share: the broker's address, per-test topics, the daemon as a child
//! process, reading topics back, the expected events from a replay through the library, and the
//! daemon's HTTP endpoints.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadband::io::parquet::{ParquetSource, SourceOptions};
use deadband::pipeline::Processor;
use deadband::record::{Event, RecordKind};
use deadband::run::gen::{self, GenKind, GenOptions};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_deadband");
pub const TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Broker, topics, child processes
// ---------------------------------------------------------------------------------------------

/// The broker under test. The tests that call this are `#[ignore]`d, so reaching here means the
/// caller asked for them: without a broker that is an error, not a skip.
pub fn brokers() -> String {
    match std::env::var("DEADBAND_TEST_BROKERS") {
        Ok(b) if !b.is_empty() => b,
        _ => panic!(
            "DEADBAND_TEST_BROKERS is not set: run scripts/test.sh (it installs and starts a \
             broker), or `eval \"$(scripts/kafka-up.sh)\"` first"
        ),
    }
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// The topics of one test run.
pub struct Topics {
    pub input: String,
    pub events: String,
    pub dlq: String,
    pub changelog: String,
    pub group: String,
    pub partitions: i32,
}

impl Topics {
    pub fn create(brokers: &str, name: &str, partitions: i32) -> Topics {
        Topics::create_with(brokers, name, partitions, true)
    }

    /// Creates the input, events and DLQ topics, and the changelog only when `changelog`.
    pub fn create_with(brokers: &str, name: &str, partitions: i32, changelog: bool) -> Topics {
        let base = unique(name);
        let t = Topics {
            input: format!("{base}-in"),
            events: format!("{base}-events"),
            dlq: format!("{base}-dlq"),
            changelog: format!("{base}-state"),
            group: format!("{base}-group"),
            partitions,
        };
        let admin: AdminClient<DefaultClientContext> = client(brokers).create().unwrap();
        let plain = [&t.input, &t.events, &t.dlq]
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)));
        let compact = NewTopic::new(&t.changelog, partitions, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact");
        let all: Vec<&NewTopic> = plain.iter().chain(changelog.then_some(&compact)).collect();
        let res = futures::executor::block_on(admin.create_topics(all, &AdminOptions::new()))
            .expect("create topics");
        for r in res {
            r.expect("topic created");
        }
        t
    }
}

pub fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

/// A daemon config for these topics (bars, the market settings of the shipped example).
pub fn write_config(dir: &Path, brokers: &str, t: &Topics, metrics_port: u16) -> PathBuf {
    write_config_with(dir, brokers, t, metrics_port, "")
}

/// [`write_config`] with `extra` TOML appended (e.g. a `[kafka.properties]` table).
pub fn write_config_with(
    dir: &Path,
    brokers: &str,
    t: &Topics,
    metrics_port: u16,
    extra: &str,
) -> PathBuf {
    let text = format!(
        r#"
[input]
kind = "kafka"
brokers = "{brokers}"
topic = "{}"
group = "{}"
format = "json"
record = "bar"

[zone.scale]
kind = "atr"
period = 14

[fit]
method = "sm_rls"
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
topic = "{}"
dlq_topic = "{}"
changelog_topic = "{}"

[kafka]
checkpoint_interval_ms = 500
shutdown_timeout_s = 30

[metrics]
listen = "127.0.0.1:{metrics_port}"
"#,
        t.input, t.group, t.events, t.dlq, t.changelog
    ) + extra;
    let path = dir.join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The daemon as a child process; stderr goes to a log file shown when a test fails.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, log: PathBuf) -> Daemon {
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start deadband run");
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status must be 0 within the shutdown timeout, and no worker may
    /// have been reported late for its final checkpoint.
    pub fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let log = self.log();
                assert!(st.success(), "daemon exited with {st}; log:\n{log}");
                // Every worker checkpointed and acknowledged in time: none was fenced.
                assert!(
                    !log.contains("did not checkpoint in time"),
                    "a clean stop reported a worker as late; log:\n{log}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop within 40 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no checkpoint, no goodbye to the group.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory (VmHWM) of the running daemon, in kB.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn assert_running(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!("daemon exited early with {st}; log:\n{}", self.log());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds or the deadline passes (then panics with `what`).
pub fn wait_for(what: &str, daemon: &mut Daemon, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        daemon.assert_running();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn reader(brokers: &str) -> BaseConsumer {
    client(brokers)
        .set("group.id", unique("test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// The partitions' high watermarks. tansu can stall for seconds under a burst of large writes,
/// so a timed-out request is asked again until [`TIMEOUT`].
pub fn high_watermarks(c: &BaseConsumer, topic: &str, partitions: i32) -> Vec<i64> {
    let deadline = Instant::now() + TIMEOUT;
    (0..partitions)
        .map(|p| loop {
            match c.fetch_watermarks(topic, p, Duration::from_secs(10)) {
                Ok((_, high)) => break high,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("watermarks of {topic}/{p}: {e}; asking again");
                }
                Err(e) => panic!("watermarks of {topic}/{p}: {e}"),
            }
        })
        .collect()
}

/// True once the group has committed every input partition up to its high watermark.
pub fn caught_up(brokers: &str, t: &Topics) -> bool {
    let c: BaseConsumer = client(brokers)
        .set("group.id", &t.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let high = high_watermarks(&c, &t.input, t.partitions);
    let mut tpl = TopicPartitionList::new();
    for p in 0..t.partitions {
        tpl.add_partition(&t.input, p);
    }
    let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return false;
    };
    (0..t.partitions).all(|p| {
        let off = committed.find_partition(&t.input, p).map(|e| e.offset());
        match off {
            Some(Offset::Offset(o)) => o >= high[p as usize],
            _ => high[p as usize] == 0,
        }
    })
}

/// The group's committed offsets summed over the input's partitions (0 before any commit).
pub fn committed_total(brokers: &str, t: &Topics) -> i64 {
    let c: BaseConsumer = client(brokers)
        .set("group.id", &t.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..t.partitions {
        tpl.add_partition(&t.input, p);
    }
    let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return 0;
    };
    (0..t.partitions)
        .map(
            |p| match committed.find_partition(&t.input, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            },
        )
        .sum()
}

/// One consumed message.
pub struct Msg {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Every message of `topic` up to its current high watermarks.
pub fn read_topic(brokers: &str, topic: &str, partitions: i32) -> Vec<Msg> {
    let c = reader(brokers);
    let high = high_watermarks(&c, topic, partitions);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut done: Vec<bool> = high.iter().map(|&h| h == 0).collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !done.iter().all(|&d| d) {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let p = m.partition() as usize;
        if m.offset() >= high[p] {
            continue;
        }
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            for i in 0..h.count() {
                let h = h.get(i);
                let v = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
                headers.insert(h.key.to_string(), v);
            }
        }
        out.push(Msg {
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
        if m.offset() + 1 >= high[p] {
            done[p] = true;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Expected events, computed by replaying through the library's Processor
// ---------------------------------------------------------------------------------------------

/// The events a replay of `file` emits under `config` (what `deadband backtest` computes),
/// as JSON objects with their `id` added, by id.
pub fn replay_events(config: &Path, file: &Path) -> BTreeMap<String, Value> {
    replay_events_of(config, file, RecordKind::Bar)
}

/// [`replay_events`] for records of `kind`.
pub fn replay_events_of(config: &Path, file: &Path, kind: RecordKind) -> BTreeMap<String, Value> {
    let cfg = deadband::config::load(config).unwrap();
    let mut p = Processor::new(Arc::new(cfg.processor.clone())).unwrap();
    let mut src =
        ParquetSource::open(file.to_str().unwrap(), kind, SourceOptions::default()).unwrap();
    let mut events = Vec::new();
    while let Some(rec) = src.next_record().unwrap() {
        let _ = p.process(&rec, &mut events);
    }
    by_id(&events)
}

pub fn by_id(events: &[Event]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in events {
        // The record module's own serde form (not the daemon's encoder) plus the id.
        let mut v = serde_json::to_value(e).unwrap();
        v.as_object_mut()
            .unwrap()
            .insert("id".into(), Value::String(e.id()));
        assert!(out.insert(e.id(), v).is_none(), "replay ids are unique");
    }
    out
}

/// The daemon's events by id; every duplicate must be identical to the first copy.
pub fn daemon_events(msgs: &[Msg]) -> (BTreeMap<String, Value>, usize) {
    let mut out = BTreeMap::new();
    let mut dups = 0;
    for m in msgs {
        let v: Value = serde_json::from_slice(&m.payload).expect("events are JSON");
        let id = v["id"].as_str().expect("event has an id").to_string();
        let key = v["key"].as_str().expect("event has a key");
        assert_eq!(
            m.key.as_deref(),
            Some(key.as_bytes()),
            "message key = record key"
        );
        if let Some(prev) = out.get(&id) {
            assert_eq!(prev, &v, "duplicate {id} differs");
            dups += 1;
        } else {
            out.insert(id, v);
        }
    }
    (out, dups)
}

pub fn assert_same_events(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>) {
    let g: BTreeSet<&String> = got.keys().collect();
    let w: BTreeSet<&String> = want.keys().collect();
    let missing: Vec<_> = w.difference(&g).take(5).collect();
    let extra: Vec<_> = g.difference(&w).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?} (of {} expected)",
        want.len()
    );
    for (id, v) in want {
        assert_eq!(&got[id], v, "event {id}");
    }
}

pub fn gen_market(dir: &Path, keys: usize, rows: usize) -> PathBuf {
    let path = dir.join("market.parquet");
    gen::write(GenKind::Market, &GenOptions::new(keys, rows, 7), &path).unwrap();
    path
}

pub fn produce_cmd(file: &Path, topic: &str, brokers: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["produce", "--input"])
        .arg(file)
        .args(["--topic", topic, "--brokers", brokers]);
    c
}

// ---------------------------------------------------------------------------------------------
// HTTP and Prometheus text (in http.rs, shared with benches/daemon.rs)
// ---------------------------------------------------------------------------------------------

pub use super::http::{http_get, metric, parse_prometheus};

// Metric names of src/metrics.rs (the metrics branch) that these tests read.
pub const RECORDS: &str = "deadband_records_in_total";
pub const EVENTS: &str = "deadband_events_out_total";
pub const DLQ: &str = "deadband_dlq_total";

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------
