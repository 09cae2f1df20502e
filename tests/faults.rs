//! Fault tests of the daemon against a real broker (tansu): SIGKILL at twenty moments, the
//! broker stopped for 20 s and started again, two instances joining and leaving one group, and
//! poison among good records. Each compares what reached the events topic with an uninterrupted
//! replay through the library (`Processor`): the distinct events by id equal it field for field,
//! and every duplicate is an identical copy (at-least-once, see ARCHITECTURE.md).
//!
//! Plain `cargo test` lists them as ignored; `scripts/test.sh` starts tansu and runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::broker::*;
use deadband::pipeline::Processor;
use deadband::record::RecordKind;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Lets a restarted instance take its partitions back at once: static membership (KIP-345) — a
/// member that rejoins under the same `group.instance.id` replaces its dead self without waiting
/// for the session to time out. The session stays at librdkafka's 45 s default: tansu, busy,
/// misses shorter ones.
fn static_member(id: &str) -> String {
    format!("\n[kafka.properties]\n\"group.instance.id\" = \"{id}\"\n")
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Messages in `topic` (duplicates included), the sum of its partitions' high watermarks.
fn messages_in(b: &str, topic: &str, partitions: i32) -> i64 {
    high_watermarks(&reader(b), topic, partitions).iter().sum()
}

fn gen_market_rows(dir: &Path, keys: usize, rows: usize, seed: u64) -> PathBuf {
    use deadband::run::gen::{self, GenKind, GenOptions};
    let path = dir.join(format!("market-{keys}x{rows}-{seed}.parquet"));
    gen::write(GenKind::Market, &GenOptions::new(keys, rows, seed), &path).unwrap();
    path
}

const KILLS: usize = 20;

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one and runs it"]
fn sigkill_at_twenty_moments_loses_nothing() {
    let b = brokers();
    let dir = tempfile::tempdir().unwrap();
    let t = Topics::create(&b, "crash", 4);
    let file = gen_market_rows(dir.path(), 8, 25_000, 11);
    let config = write_config_with(dir.path(), &b, &t, free_port(), &static_member(&t.group));
    let want = replay_events(&config, &file);
    let status = produce_cmd(&file, &t.input, &b)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "produce the 200k records");

    // Each run is killed after a random number of new events (up to 1/30 of the whole),
    // i.e. at a random point between checkpoints, mid-batch or mid-checkpoint.
    let started = Instant::now();
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut kills = 0;
    for i in 0..KILLS {
        let mut d = Daemon::start(&config, dir.path().join(format!("run{i}.log")));
        let from = messages_in(&b, &t.events, t.partitions);
        let step = 1 + (xorshift(&mut rng) % (want.len() as u64 / 30).max(1)) as i64;
        let mut finished = false;
        wait_for("new events before the kill", &mut d, || {
            finished = caught_up(&b, &t);
            finished || messages_in(&b, &t.events, t.partitions) >= from + step
        });
        if finished {
            d.terminate();
            break;
        }
        d.kill9();
        kills += 1;
        eprintln!("kill {kills} at {:.1?}", started.elapsed());
    }
    let last = Instant::now();
    let mut d = Daemon::start(&config, dir.path().join("final.log"));
    wait_for("the group to commit all input", &mut d, || {
        caught_up(&b, &t)
    });
    let catch_up = last.elapsed();
    d.terminate();

    let msgs = read_topic(&b, &t.events, t.partitions);
    let (got, dups) = daemon_events(&msgs);
    assert_same_events(&got, &want);
    eprintln!(
        "crash: {kills} SIGKILLs over 200k records, {} events, {dups} identical duplicates \
         ({:.1} %), last catch-up {catch_up:.1?}, whole test {:.1?}",
        want.len(),
        100.0 * dups as f64 / want.len() as f64,
        started.elapsed()
    );
    assert!(
        kills >= KILLS / 2,
        "only {kills} kills landed before the stream ended: the test interrupted too little"
    );
}

/// A SIGTERM that reaches the daemon while it is still starting — here while the broker does
/// not answer (SIGSTOP), so the daemon waits on its changelog check — is kept and honoured once
/// it can stop: exit 0, never the signal's default action. The SIGKILL test found this: its last
/// restart, with nothing left to read, was terminated at once and died of the signal.
#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one and runs it"]
fn a_sigterm_while_starting_is_honoured() {
    let _ = brokers();
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start(dir.path(), free_port(), "tansu.log");
    let b = format!("127.0.0.1:{}", broker.port);
    let t = Topics::create(&b, "earlyterm", 2);
    let port = free_port();
    let config = write_config(dir.path(), &b, &t, port);
    let signal = |sig: &str, pid: u32| {
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    let tansu = broker.child.id();
    signal("-STOP", tansu);
    let mut d = Daemon::start(&config, dir.path().join("daemon.log"));
    wait_for("/healthz", &mut d, || http_get(port, "/healthz").is_some());
    signal("-TERM", d.pid());
    std::thread::sleep(Duration::from_millis(1500));
    signal("-CONT", tansu);
    d.terminate();
}

/// A tansu broker of this test's own (the shared one must not be stopped under other tests),
/// on durable SQLite storage in `dir`.
struct Tansu {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Tansu {
    fn start(dir: &Path, port: u16, log_name: &str) -> Tansu {
        let bin = std::env::var("TANSU").unwrap_or_else(|_| "tansu".into());
        let log = dir.join(log_name);
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .current_dir(dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join(format!("{log_name}.err"))).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (scripts/test.sh installs it): {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(&log).unwrap_or_default()
                + &std::fs::read_to_string(dir.join(format!("{log_name}.err"))).unwrap_or_default();
            if out.contains("ready in") {
                break;
            }
            assert!(Instant::now() < deadline, "tansu did not start: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Tansu {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one and runs it"]
fn a_broker_restart_is_waited_out() {
    // The shared broker's presence says tansu is installed; this test runs its own.
    let _ = brokers();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Tansu::start(dir.path(), port, "tansu1.log");
    let b = format!("127.0.0.1:{}", broker.port);
    let t = Topics::create(&b, "brokerrestart", 2);
    let file = gen_market_rows(dir.path(), 4, 15_000, 5);
    // tansu 0.6.0 panics (tansu-storage lite.rs:503, in its idempotent-producer check) when an
    // idempotent producer goes on writing after the broker restarted, and its storage stays dead;
    // so the daemon writes without idempotence here (retries may then duplicate an event —
    // identical copies, which the comparison below allows).
    let props = "\n[kafka.properties]\n\"enable.idempotence\" = \"false\"\n";
    let config = write_config_with(dir.path(), &b, &t, free_port(), props);
    let want = replay_events(&config, &file);
    let status = produce_cmd(&file, &t.input, &b)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let mut d = Daemon::start(&config, dir.path().join("daemon.log"));
    wait_for("a first commit", &mut d, || committed_total(&b, &t) > 0);
    let before = committed_total(&b, &t);
    broker.stop();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(20) {
        d.assert_running();
        std::thread::sleep(Duration::from_millis(200));
    }
    let dir_path = broker.dir.clone();
    drop(broker);
    let _broker = Tansu::start(&dir_path, port, "tansu2.log");
    wait_for(
        "the group to commit all input after the restart",
        &mut d,
        || caught_up(&b, &t),
    );
    d.assert_running();
    d.terminate();
    assert!(
        before < 60_000,
        "the daemon had committed everything ({before}) before the broker stopped"
    );
    let (got, dups) = daemon_events(&read_topic(&b, &t.events, t.partitions));
    assert_same_events(&got, &want);
    eprintln!(
        "broker restart: committed {before} of 60000 before the 20 s outage; {} events, {dups} duplicates",
        want.len()
    );
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one and runs it"]
fn two_instances_share_and_hand_over_partitions() {
    let b = brokers();
    let dir = tempfile::tempdir().unwrap();
    let t = Topics::create(&b, "twoinst", 4);
    let file = gen_market_rows(dir.path(), 8, 10_000, 3);
    let total = 80_000i64;
    let dir_a = dir.path().join("a");
    let dir_b = dir.path().join("b");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    // Dynamic members: with static ones, tansu 0.6.0 never gave the joining B a partition.
    let config_a = write_config(&dir_a, &b, &t, free_port());
    let config_b = write_config(&dir_b, &b, &t, free_port());
    let want = replay_events(&config_a, &file);

    // Records arrive over ~20 s, so every step below happens mid-stream.
    let mut producer = produce_cmd(&file, &t.input, &b)
        .args(["--rate", "4000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut a = Daemon::start(&config_a, dir.path().join("a1.log"));
    wait_for("A to commit 10 %", &mut a, || {
        committed_total(&b, &t) >= total / 10
    });
    let mut bee = Daemon::start(&config_b, dir.path().join("b.log"));
    wait_for("B to take partitions", &mut bee, || {
        metric_value(&config_b, "deadband_keys_in_state").unwrap_or(0.0) > 0.0
    });
    a.terminate();
    let mut a = Daemon::start(&config_a, dir.path().join("a2.log"));
    wait_for("A to take partitions again", &mut a, || {
        metric_value(&config_a, "deadband_keys_in_state").unwrap_or(0.0) > 0.0
    });
    let mid_stream = producer.try_wait().unwrap().is_none();
    bee.kill9();
    assert!(producer.wait().unwrap().success());
    wait_for("A to commit all input", &mut a, || caught_up(&b, &t));
    a.terminate();
    assert!(
        mid_stream,
        "the records were all produced before B was killed: the test interrupted nothing"
    );

    let (got, dups) = daemon_events(&read_topic(&b, &t.events, t.partitions));
    assert_same_events(&got, &want);
    eprintln!(
        "two instances: {} events, {dups} identical duplicates",
        want.len()
    );
}

/// A gauge or counter of the daemon configured by `config` (its `[metrics] listen` port).
fn metric_value(config: &Path, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(config).ok()?;
    let port: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))?
        .trim_end_matches('"')
        .parse()
        .ok()?;
    let (status, body) = http_get(port, "/metrics")?;
    if status != 200 {
        return None;
    }
    let m = parse_prometheus(&body);
    Some(metric(&m, name, &[]))
}

/// A good bar of `key` at second `i`, on a trend with alternating noise.
fn bar(key: &str, i: usize, close: f64) -> String {
    let ts = 1_704_067_200_000_000_000i64 + i as i64 * 1_000_000_000;
    format!(
        r#"{{"key":"{key}","ts":{ts},"open":{close},"high":{h},"low":{l},"close":{close}}}"#,
        h = close * 1.001,
        l = close * 0.999,
    )
}

/// What a bad record is, and the reasons it may be refused for.
struct Bad {
    payload: Vec<u8>,
    reasons: &'static [&'static str],
}

fn poison(n: usize, rng: &mut u64) -> Bad {
    let ts = 1_704_067_200_000_000_000i64;
    let long = |len: usize, c: u8| String::from_utf8(vec![c; len]).unwrap();
    let text = |s: String, reasons| Bad {
        payload: s.into_bytes(),
        reasons,
    };
    match n % 12 {
        0 => Bad {
            payload: (0..1 + xorshift(rng) % 200)
                .map(|_| xorshift(rng) as u8)
                .collect(),
            reasons: &["malformed_json", "wrong_type", "missing_field"],
        },
        1 => {
            let good = bar("P", n, 100.0);
            let cut = 1 + (xorshift(rng) as usize) % (good.len() - 1);
            text(good[..cut].to_string(), &["malformed_json"])
        }
        2 => text(
            format!(r#"{{"key":"P","ts":{ts},"open":1,"high":"2","low":0.5,"close":1}}"#),
            &["wrong_type"],
        ),
        3 => text(
            format!(r#"{{"key":"P","ts":{ts},"open":1,"high":"NaN","low":0.5,"close":1}}"#),
            &["not_finite"],
        ),
        4 => text(
            format!(r#"{{"key":"P","ts":{ts},"open":1,"high":NaN,"low":0.5,"close":1}}"#),
            &["malformed_json"],
        ),
        5 => text(
            format!(r#"{{"key":"P","ts":{ts},"open":1,"high":"inf","low":0.5,"close":1}}"#),
            &["not_finite", "wrong_type"],
        ),
        6 => text(
            format!(r#"{{"key":"P","ts":{ts},"open":1,"high":1e999,"low":0.5,"close":1}}"#),
            &["not_finite", "malformed_json"],
        ),
        7 => text(
            format!(
                r#"{{"key":"P","ts":"{}","open":1,"high":2,"low":0.5,"close":1}}"#,
                long(100_000, b'9')
            ),
            &["bad_timestamp"],
        ),
        8 => text(
            format!(
                r#"{{"key":"{}","ts":{ts},"open":1,"high":2,"low":0.5,"close":1}}"#,
                long(2_000, b'k')
            ),
            &["key_too_long"],
        ),
        9 => text(
            format!(r#"{{"key":"","ts":{ts},"open":1,"high":2,"low":0.5,"close":1}}"#),
            &["empty_key"],
        ),
        10 => text(
            format!(r#"{{"key":"P","ts":{ts},"open":1,"high":0.5,"low":2,"close":1}}"#),
            &["high_below_low"],
        ),
        _ => text(
            format!(r#"{{"key":"P","ts":{ts},"value":3}}"#),
            &["wrong_record_kind"],
        ),
    }
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test.sh starts one and runs it"]
fn poison_goes_to_the_dlq_and_every_good_record_is_processed() {
    // A broker of its own: after this test's 110k records and megabyte payloads the shared tansu
    // answered metadata requests so slowly that the tests after it timed out (seen twice in
    // full runs; each passed alone).
    let _ = brokers();
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start(dir.path(), free_port(), "tansu.log");
    let b = format!("127.0.0.1:{}", broker.port);
    let t = Topics::create(&b, "poison", 2);
    let config = write_config(dir.path(), &b, &t, free_port());

    // 100k good bars, 10k bad records spread among them, and five oversized ones of 1.1 to 1.9 MB.
    let mut rng = 0x1234_5678_9ABC_DEF1_u64;
    let mut sent: Vec<(String, Vec<u8>, Option<Bad>)> = Vec::new();
    // Good records: generated market bars on 9 keys (as JSON, the way `produce` sends them),
    // and a tenth key alternating between 1e-300 and 1e10 — valid yet extreme.
    let file = gen_market_rows(dir.path(), 9, 10_000, 9);
    let mut src = deadband::io::parquet::ParquetSource::open(
        file.to_str().unwrap(),
        RecordKind::Bar,
        deadband::io::parquet::SourceOptions::default(),
    )
    .unwrap();
    let mut goods = Vec::new();
    let mut buf = Vec::new();
    while let Some(rec) = src.next_record().unwrap() {
        buf.clear();
        deadband::io::codec::encode_record(&rec, &mut buf);
        goods.push((rec.key.to_string(), buf.clone()));
    }
    let mut extreme = 0;
    let mut goods = goods.into_iter();
    let mut bad_n = 0;
    for i in 0..110_000usize {
        if i % 11 == 10 {
            let bad = poison(bad_n, &mut rng);
            bad_n += 1;
            sent.push(("P".into(), bad.payload.clone(), Some(bad)));
        } else if i % 11 == 5 || goods.len() == 0 {
            let close = if extreme % 2 == 0 { 1e-300 } else { 1e10 };
            sent.push(("X".into(), bar("X", extreme, close).into_bytes(), None));
            extreme += 1;
        } else {
            let (key, payload) = goods.next().unwrap();
            sent.push((key, payload, None));
        }
    }
    // (tansu 0.6.0 stalled for over a minute serving a 5 MB record — heartbeats timed out — so
    // the oversized records here stay under 2 MB; `io::kafka::dlq`'s unit tests cut 5 MB.)
    for (n, size) in [1_100_000usize, 1_100_000, 1_300_000, 1_500_000, 1_900_000]
        .into_iter()
        .enumerate()
    {
        let mut p = r#"{"key":"P","ts":1,"open":""#.to_string().into_bytes();
        p.extend(std::iter::repeat_n(b'x', size));
        p.extend_from_slice(b"\"}");
        sent.insert(
            1_000 + n * 20_000,
            (
                "P".into(),
                p,
                Some(Bad {
                    payload: Vec::new(),
                    reasons: &["wrong_type", "missing_field"],
                }),
            ),
        );
    }

    // Expected: the good records alone, in order, through the library.
    let cfg = deadband::config::load(&config).unwrap();
    let mut p = Processor::new(Arc::new(cfg.processor.clone())).unwrap();
    let mut events = Vec::new();
    for (_, payload, bad) in &sent {
        if bad.is_none() {
            let d = deadband::io::codec::decode(payload, RecordKind::Bar).unwrap();
            p.process(&d.record(), &mut events).unwrap();
        }
    }
    let want = by_id(&events);
    assert!(
        want.len() > 100,
        "the good records make events: {}",
        want.len()
    );

    // Produce, keeping where each record landed.
    let t0 = Instant::now();
    let producer: FutureProducer = client(&b)
        .set("message.max.bytes", "8000000")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let mut at = std::collections::HashMap::new();
    for (chunk_i, chunk) in sent.chunks(5_000).enumerate() {
        let futures: Vec<_> = chunk
            .iter()
            .map(|(key, payload, _)| {
                let r = FutureRecord::to(&t.input)
                    .key(key.as_bytes())
                    .payload(payload.as_slice());
                producer
                    .send_result(r)
                    .map_err(|(e, _)| e)
                    .expect("enqueued")
            })
            .collect();
        for (j, f) in futures.into_iter().enumerate() {
            let delivered = futures::executor::block_on(f)
                .expect("delivery report")
                .unwrap_or_else(|(e, _)| {
                    panic!(
                        "record {} not accepted by the broker: {e}",
                        chunk_i * 5_000 + j
                    )
                });
            at.insert((delivered.partition, delivered.offset), chunk_i * 5_000 + j);
        }
    }

    eprintln!("poison: produced in {:.1?}", t0.elapsed());
    let produced = Instant::now();
    let mut d = Daemon::start(&config, dir.path().join("daemon.log"));
    wait_for("the group to commit all input", &mut d, || {
        caught_up(&b, &t)
    });
    d.assert_running();
    eprintln!("poison: processed in {:.1?}", produced.elapsed());
    let rss_kb = d.peak_rss_kb().unwrap_or(0);
    d.terminate();

    let (got, dups) = daemon_events(&read_topic(&b, &t.events, t.partitions));
    assert_same_events(&got, &want);

    let dlq = read_topic(&b, &t.dlq, t.partitions);
    let bad_total = sent.iter().filter(|s| s.2.is_some()).count();
    let mut seen = std::collections::HashSet::new();
    let mut truncated = 0;
    for m in &dlq {
        let source = &m.headers["deadband-source"];
        let mut parts = source.rsplitn(3, '/');
        let offset: i64 = parts.next().unwrap().parse().unwrap();
        let partition: i32 = parts.next().unwrap().parse().unwrap();
        let i = at[&(partition, offset)];
        assert!(seen.insert(i), "dead letter {source} twice");
        let (_, payload, bad) = &sent[i];
        let bad = bad
            .as_ref()
            .unwrap_or_else(|| panic!("good record {source} in the DLQ"));
        let reason = &m.headers["deadband-error"];
        assert!(
            bad.reasons.iter().any(|r| reason.starts_with(r)),
            "record {i} refused for {reason:?}, expected one of {:?}",
            bad.reasons
        );
        if payload.len() > 1_000_000 - 16 * 1024 {
            truncated += 1;
            assert_eq!(
                m.headers.get("deadband-truncated").map(String::as_str),
                Some("true")
            );
            assert_eq!(
                m.headers["deadband-original-payload-bytes"],
                payload.len().to_string()
            );
            assert_eq!(
                m.headers["deadband-payload-blake3"],
                blake3::hash(payload).to_hex().to_string()
            );
            assert_eq!(
                m.payload,
                payload[..m.payload.len()],
                "a prefix of the original"
            );
        } else {
            assert_eq!(&m.payload, payload, "payload unchanged");
        }
    }
    assert_eq!(dlq.len(), bad_total, "every bad record once in the DLQ");
    assert_eq!(truncated, 5, "the five oversized records were cut");
    eprintln!(
        "poison: {} good, {bad_total} bad ({truncated} oversized, cut) — {} events, {dups} \
         duplicates; peak RSS {} MB",
        sent.len() - bad_total,
        want.len(),
        rss_kb / 1024
    );
    assert!(
        rss_kb < 1024 * 1024,
        "peak RSS {rss_kb} kB: memory is not bounded"
    );
}
