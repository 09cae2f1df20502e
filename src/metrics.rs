//! The daemon's observability: counters, gauges and latency quantiles in the Prometheus text
//! format, served with `/healthz` and `/readyz` on a small HTTP server.
//!
//! One [`Metrics`] value (shared as `Arc<Metrics>`) holds its own recorder, so several of them can
//! live in one process (tests, or two pipelines) without sharing counts; nothing is installed as
//! the process-global `metrics` recorder. `io::http::serve` exposes it over HTTP.
//!
//! # Endpoints
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | 200, `text/plain; version=0.0.4; charset=utf-8`, the exposition below |
//! | `GET /healthz` | 200 `ok` while the process works; 503 `failing: REASON` after a fatal error or a dead worker |
//! | `GET /readyz` | 200 `ready` after [`Metrics::set_ready`]`(true)`, else 503 `not ready` |
//! | anything else | 404 |
//!
//! # Metrics
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `deadband_records_in_total` | counter | `result` (`ok`, `invalid`, `out_of_order`, `duplicate`), `reason` (for `invalid`: `not_finite`, `malformed_json`, ...) | input records by outcome |
//! | `deadband_events_out_total` | counter | `kind` (`trend`, `rebalance`, ...; all kinds exist from start) | output events produced |
//! | `deadband_dlq_total` | counter | `reason` | records sent to the dead-letter topic |
//! | `deadband_consumer_lag` | gauge | `topic`, `partition` | messages behind the high watermark, per assigned partition; the series disappears when the partition is revoked |
//! | `deadband_keys_in_state` | gauge | | keys held in keyed state |
//! | `deadband_checkpoints_total` | counter | | completed checkpoints |
//! | `deadband_checkpoint_duration_seconds` | histogram | `le` | checkpoint duration; buckets 1 ms .. 60 s, plus `_sum` and `_count` |
//! | `deadband_record_latency_seconds` | gauge | `quantile` (`0.5`, `0.9`, `0.99`, `0.999`) | per-record processing latency quantiles over a sliding window (below); `NaN` when the window saw no record |
//! | `deadband_record_latency_seconds_count` | counter | | records timed since start |
//! | `deadband_record_latency_seconds_sum` | gauge (never decreases) | | total processing time since start, seconds |
//! | `deadband_ready` | gauge | | 1 when `/readyz` answers 200, else 0 |
//! | `deadband_zone_records_total` | counter | `group`, `zone` (`inside`, `outside`) | accepted records by key group and whether the zone absorbed them; dead-zone ratio = inside / all |
//! | `deadband_zone_updates_total` | counter | `group` | records that moved the fit (update rate) |
//! | `deadband_zone_regime` | gauge | `group` | regime index of the group's latest record (0 = base multiplier) |
//! | `deadband_zone_compensations_total` | counter | `group` | tool compensations |
//! | `deadband_zone_spc_alarms_total` | counter | `group` | SPC alarms |
//!
//! A key's **group** is its prefix before the first `.` (`press3.bore_dia` → `press3`), or the
//! whole key; at most `[metrics] max_groups` groups (default 100) get series, later ones count
//! under `group="other"` (see [`zone`]).
//!
//! The four `deadband_records_in_total{result=...}` series without `reason`, the checkpoint
//! counter, `deadband_keys_in_state` and `deadband_ready` exist from start (at 0), so alerts
//! and `rate()` see them before the first record.
//!
//! **Latency quantiles** come from an HDR histogram (nanoseconds, 3 significant digits, so a
//! quantile is within 0.1 % of the exact one; values above 60 s are recorded as 60 s). They cover
//! a sliding window: at each render, when the current window is older than the window length
//! (60 s by default, see [`Metrics::with_latency_window`]), it becomes the previous window and a
//! new one starts; quantiles are taken over the previous and the current window together, so
//! with a scrape at least once per window length they cover the last one to two window lengths.
//! The family is typed `gauge` (the quantiles are computed by deadband, not by the recorder); it
//! is queried exactly like a Prometheus summary, e.g.
//! `deadband_record_latency_seconds{quantile="0.99"}` and
//! `rate(deadband_record_latency_seconds_sum[5m]) / rate(deadband_record_latency_seconds_count[5m])`.
//!
//! Label values (`reason`, `kind`, `topic`) should come from small fixed sets: every distinct
//! value is a new series kept for the life of the process (except lag, dropped on revoke).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Key, KeyName, Label, Level, Metadata, Recorder, SharedString};

use crate::record::{EventKind, Reject};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

mod tally;
pub mod zone;
pub use tally::Tally;
pub use zone::key_group;

const RECORDS_IN: &str = "deadband_records_in_total";
const EVENTS_OUT: &str = "deadband_events_out_total";
const DLQ: &str = "deadband_dlq_total";
const CONSUMER_LAG: &str = "deadband_consumer_lag";
const KEYS_IN_STATE: &str = "deadband_keys_in_state";
const CHECKPOINT_DURATION: &str = "deadband_checkpoint_duration_seconds";
const CHECKPOINTS: &str = "deadband_checkpoints_total";
const LATENCY: &str = "deadband_record_latency_seconds";
const LATENCY_COUNT: &str = "deadband_record_latency_seconds_count";
const LATENCY_SUM: &str = "deadband_record_latency_seconds_sum";
const READY: &str = "deadband_ready";

/// Upper bounds (seconds) of the checkpoint-duration histogram buckets.
const CHECKPOINT_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Quantiles exposed for the record latency, with their label values.
const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// Largest latency the histogram tells apart; longer ones are recorded as this.
const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// Default length of one latency window.
const DEFAULT_LATENCY_WINDOW: Duration = Duration::from_secs(60);

/// Content type of the Prometheus text exposition format.
pub(crate) const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The `result` label values of `deadband_records_in_total`, in counter-array order.
const RESULTS: [&str; 4] = ["ok", "invalid", "out_of_order", "duplicate"];

fn result_index(outcome: Result<(), Reject>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(Reject::Invalid(_)) => 1,
        Err(Reject::OutOfOrder) => 2,
        Err(Reject::Duplicate) => 3,
    }
}

/// Per-record latency: HDR histograms for the current and previous window, plus totals since
/// start.
struct Latency {
    current: hdrhistogram::Histogram<u64>,
    previous: hdrhistogram::Histogram<u64>,
    window_start: Instant,
    count: u64,
    sum_ns: u64,
}

impl Latency {
    fn new() -> Latency {
        let histogram = hdrhistogram::Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
            .expect("constant bounds 1..60e9 ns with 3 significant digits are valid");
        Latency {
            previous: histogram.clone(),
            current: histogram,
            window_start: Instant::now(),
            count: 0,
            sum_ns: 0,
        }
    }

    /// Starts a new window if the current one is older than `window`, forgetting the previous.
    fn rotate_if_due(&mut self, window: Duration) {
        if self.window_start.elapsed() >= window {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.reset();
            self.window_start = Instant::now();
        }
    }
}

/// The daemon's metrics: counters and gauges kept in a private Prometheus recorder, consumer lag,
/// readiness, and an HDR histogram of per-record latency. `Send + Sync`; share it as
/// `Arc<Metrics>`.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `deadband_records_in_total{result}` without a reason, indexed like [`RESULTS`].
    records_in: [Counter; 4],
    /// `deadband_events_out_total{kind}`, indexed by [`EventKind::index`].
    events_out: [Counter; EventKind::ALL.len()],
    keys_in_state: Gauge,
    checkpoints: Counter,
    checkpoint_duration: ::metrics::Histogram,
    ready_gauge: Gauge,
    ready: AtomicBool,
    /// Why the daemon is failing (`/healthz` 503 with it), or `None` while healthy.
    unhealthy: Mutex<Option<String>>,
    /// Lag per topic and partition; rendered into a fresh recorder so revoked partitions vanish.
    lag: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
    latency: Mutex<Latency>,
    latency_window: Duration,
    zone: Mutex<zone::ZoneGroups>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .field("latency_window", &self.latency_window)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates metrics with their own recorder and a 60 s latency window.
    pub fn new() -> Arc<Metrics> {
        Metrics::with_latency_window(DEFAULT_LATENCY_WINDOW)
    }

    /// Like [`Metrics::new`], with latency quantiles over windows of `window` (see the module
    /// doc). A zero window starts a new one at every render, so quantiles cover the records
    /// since the render before the last.
    pub fn with_latency_window(window: Duration) -> Arc<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(CHECKPOINT_DURATION.to_owned()),
                &CHECKPOINT_BUCKETS,
            )
            .expect("the checkpoint bucket list is not empty")
            .build_recorder();

        describe_counter(
            &recorder,
            RECORDS_IN,
            "Input records by result (ok, invalid, out_of_order, duplicate) and reason.",
        );
        describe_counter(&recorder, EVENTS_OUT, "Output events produced, by kind.");
        describe_counter(
            &recorder,
            DLQ,
            "Records sent to the dead-letter topic, by reason.",
        );
        recorder.describe_gauge(
            KeyName::from_const_str(KEYS_IN_STATE),
            None,
            SharedString::const_str("Keys held in keyed state."),
        );
        describe_counter(&recorder, CHECKPOINTS, "Completed checkpoints.");
        recorder.describe_histogram(
            KeyName::from_const_str(CHECKPOINT_DURATION),
            None,
            SharedString::const_str("Duration of one checkpoint, seconds."),
        );
        recorder.describe_gauge(
            KeyName::from_const_str(READY),
            None,
            SharedString::const_str("1 when the daemon is ready (/readyz answers 200), else 0."),
        );

        let records_in = RESULTS.map(|result| {
            recorder.register_counter(
                &Key::from_parts(RECORDS_IN, vec![Label::new("result", result)]),
                &METADATA,
            )
        });
        let events_out = EventKind::ALL.map(|kind| {
            recorder.register_counter(
                &Key::from_parts(EVENTS_OUT, vec![Label::new("kind", kind.as_str())]),
                &METADATA,
            )
        });
        let keys_in_state = recorder.register_gauge(&Key::from_name(KEYS_IN_STATE), &METADATA);
        keys_in_state.set(0.0);
        let checkpoints = recorder.register_counter(&Key::from_name(CHECKPOINTS), &METADATA);
        let checkpoint_duration =
            recorder.register_histogram(&Key::from_name(CHECKPOINT_DURATION), &METADATA);
        let ready_gauge = recorder.register_gauge(&Key::from_name(READY), &METADATA);
        ready_gauge.set(0.0);

        let zone = Mutex::new(zone::ZoneGroups::new(&recorder));
        Arc::new(Metrics {
            zone,
            handle: recorder.handle(),
            recorder,
            records_in,
            events_out,
            keys_in_state,
            checkpoints,
            checkpoint_duration,
            ready_gauge,
            ready: AtomicBool::new(false),
            unhealthy: Mutex::new(None),
            lag: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(Latency::new()),
            latency_window: window,
        })
    }

    /// Counts one input record in `deadband_records_in_total{result, reason}`: accepted ones
    /// under `result="ok"`, bad ones under `result="invalid"` with the reason (e.g.
    /// `not_finite`), late and duplicate ones under their result. Costs one atomic add except
    /// for bad records (a lookup by label).
    pub fn record_in(&self, outcome: Result<(), Reject>) {
        match outcome {
            Err(Reject::Invalid(why)) => self
                .counter(
                    RECORDS_IN,
                    vec![
                        Label::new("result", RESULTS[1]),
                        label("reason", why.as_str()),
                    ],
                )
                .increment(1),
            other => self.records_in[result_index(other)].increment(1),
        }
    }

    /// Counts one output event in `deadband_events_out_total{kind}` (one atomic add).
    pub fn event_out(&self, kind: EventKind) {
        self.events_out[kind.index()].increment(1);
    }

    /// Counts one record sent to the dead-letter topic in `deadband_dlq_total{reason}`.
    pub fn dlq(&self, reason: &str) {
        self.counter(DLQ, vec![label("reason", reason)])
            .increment(1);
    }

    /// Sets `deadband_consumer_lag{topic, partition}`: messages between the consumer position
    /// and the high watermark.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut topics = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        match topics.get_mut(topic) {
            Some(partitions) => {
                partitions.insert(partition, lag);
            }
            None => {
                topics.insert(topic.to_owned(), BTreeMap::from([(partition, lag)]));
            }
        }
    }

    /// Drops the `deadband_consumer_lag` series of a revoked partition, so a partition now owned
    /// by another instance is not reported twice (nor as a stale value). Unknown partitions are
    /// ignored.
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        let mut topics = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(partitions) = topics.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Sets `deadband_keys_in_state`.
    pub fn set_keys(&self, n: usize) {
        self.keys_in_state.set(n as f64);
    }

    /// Records one completed checkpoint: its duration in the
    /// `deadband_checkpoint_duration_seconds` histogram and one more `deadband_checkpoints_total`.
    pub fn checkpoint(&self, took: Duration) {
        self.checkpoint_duration.record(took.as_secs_f64());
        self.checkpoints.increment(1);
    }

    /// Records the processing latency of one record (nanosecond resolution; anything above
    /// 60 s counts as 60 s in the quantiles, and exactly in `_sum`). Called per record: one
    /// uncontended lock and a histogram increment.
    pub fn latency(&self, took: Duration) {
        self.latencies(&[u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)]);
    }

    /// [`Metrics::latency`] for several records' times in nanoseconds, under one lock.
    fn latencies(&self, ns: &[u64]) {
        if ns.is_empty() {
            return;
        }
        let mut latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        for &ns in ns {
            latency.current.saturating_record(ns);
            latency.sum_ns = latency.sum_ns.saturating_add(ns);
        }
        latency.count += ns.len() as u64;
    }

    /// Counts one accepted record of a key in `group` (see [`key_group`]) in the zone-health
    /// series: inside or outside the zone, whether the fit moved, and the group's latest regime.
    /// One lock and a hash lookup; a partition worker counts in its [`Tally`] instead.
    pub fn zone_record(&self, group: &str, inside: bool, updated: bool, regime: u8) {
        let mut zone = self.zone.lock().unwrap_or_else(PoisonError::into_inner);
        let mut one = tally::ZoneCounts::default();
        one.count(inside, updated, regime);
        zone.add(&self.recorder, group, one);
    }

    /// Adds the zone counts of several groups (a [`Tally`]'s), under one lock.
    fn zone_counts(&self, counts: impl Iterator<Item = (String, tally::ZoneCounts)>) {
        let mut zone = self.zone.lock().unwrap_or_else(PoisonError::into_inner);
        for (group, c) in counts {
            zone.add(&self.recorder, &group, c);
        }
    }

    /// Counts a compensation or SPC alarm of a key in `group`; other kinds are ignored here
    /// (they are in `deadband_events_out_total`).
    pub fn zone_event(&self, group: &str, kind: EventKind) {
        let mut zone = self.zone.lock().unwrap_or_else(PoisonError::into_inner);
        zone.event(&self.recorder, group, kind);
    }

    /// Caps the number of groups with their own zone-health series (at least 1).
    pub fn set_max_groups(&self, max: usize) {
        let mut zone = self.zone.lock().unwrap_or_else(PoisonError::into_inner);
        zone.set_max(max);
    }

    /// Sets readiness: `/readyz` answers 200 and `deadband_ready` is 1 when `true`, else 503
    /// and 0.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        self.ready_gauge.set(if ready { 1.0 } else { 0.0 });
    }

    /// Whether [`Metrics::set_ready`] last set `true`.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the process as failing (a fatal error or a dead worker): `/healthz` answers 503
    /// with `reason` (the first one kept) and `/readyz` 503 from here on.
    pub fn set_unhealthy(&self, reason: &str) {
        let mut u = self
            .unhealthy
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if u.is_none() {
            *u = Some(reason.to_string());
        }
        drop(u);
        self.set_ready(false);
    }

    /// `None` while healthy, else why not.
    pub fn health(&self) -> Option<String> {
        self.unhealthy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Renders every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = self.handle.render();
        // Lag and latency quantiles are snapshots taken now: they go through a recorder built
        // for this render only, so series of revoked partitions are simply absent.
        let snapshot = PrometheusBuilder::new().build_recorder();
        self.render_lag(&snapshot);
        self.render_latency(&snapshot);
        out.push_str(&snapshot.handle().render());
        out
    }

    fn render_lag(&self, snapshot: &PrometheusRecorder) {
        let topics = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        if topics.is_empty() {
            return;
        }
        snapshot.describe_gauge(
            KeyName::from_const_str(CONSUMER_LAG),
            None,
            SharedString::const_str(
                "Messages between the consumer position and the high watermark, per assigned partition.",
            ),
        );
        for (topic, partitions) in topics.iter() {
            for (partition, lag) in partitions {
                let key = Key::from_parts(
                    CONSUMER_LAG,
                    vec![
                        label("topic", topic),
                        Label::new("partition", partition.to_string()),
                    ],
                );
                snapshot.register_gauge(&key, &METADATA).set(*lag as f64);
            }
        }
    }

    fn render_latency(&self, snapshot: &PrometheusRecorder) {
        let (window, count, sum_ns) = {
            let mut latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
            latency.rotate_if_due(self.latency_window);
            let mut window = latency.previous.clone();
            window
                .add(&latency.current)
                .expect("both windows have the same bounds");
            (window, latency.count, latency.sum_ns)
        };

        snapshot.describe_gauge(
            KeyName::from_const_str(LATENCY),
            None,
            SharedString::const_str(
                "Per-record processing latency quantiles over the last one to two windows, seconds.",
            ),
        );
        for (q, name) in QUANTILES {
            let seconds = if window.is_empty() {
                f64::NAN
            } else {
                window.value_at_quantile(q) as f64 / 1e9
            };
            let key = Key::from_parts(LATENCY, vec![Label::new("quantile", name)]);
            snapshot.register_gauge(&key, &METADATA).set(seconds);
        }

        describe_counter(snapshot, LATENCY_COUNT, "Records timed since start.");
        snapshot
            .register_counter(&Key::from_name(LATENCY_COUNT), &METADATA)
            .absolute(count);
        snapshot.describe_gauge(
            KeyName::from_const_str(LATENCY_SUM),
            None,
            SharedString::const_str("Total per-record processing time since start, seconds."),
        );
        snapshot
            .register_gauge(&Key::from_name(LATENCY_SUM), &METADATA)
            .set(sum_ns as f64 / 1e9);
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }
}

pub(crate) fn describe_counter(
    recorder: &PrometheusRecorder,
    name: &'static str,
    help: &'static str,
) {
    recorder.describe_counter(
        KeyName::from_const_str(name),
        None,
        SharedString::const_str(help),
    );
}

/// A label whose value survives the exporter's escaping unchanged.
///
/// The exporter treats a backslash that precedes `\` or `"` as an escape already written by the
/// caller, so `a\"b` would come out as `a\"b` (read back as `a"b`). Doubling every backslash
/// first makes each one come out as `\\`, which reads back as the original backslash.
pub(crate) fn label(key: &'static str, value: &str) -> Label {
    Label::new(key, value.replace('\\', "\\\\"))
}
