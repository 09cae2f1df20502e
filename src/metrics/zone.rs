//! The zone's health per key group, for the daemon's `/metrics`: how often the zone absorbed a
//! record, how often the fit moved, the latest regime, compensations and SPC alarms.
//!
//! A key's group is its prefix before the first `.` (`press3.bore_dia` → `press3`), or the whole
//! key when it has none. Per-key series would grow without bound on a market with thousands of
//! symbols; groups keep the label set small. The first `max_groups` groups seen get their own
//! series; later ones are counted under [`OTHER`].

use ::metrics::{Counter, Gauge, Key, Label, Recorder};
use metrics_exporter_prometheus::PrometheusRecorder;

use super::tally::ZoneCounts;
use super::{describe_counter, label, METADATA};
use crate::record::EventKind;

pub(super) const RECORDS: &str = "deadband_zone_records_total";
pub(super) const UPDATES: &str = "deadband_zone_updates_total";
pub(super) const REGIME: &str = "deadband_zone_regime";
pub(super) const COMPENSATIONS: &str = "deadband_zone_compensations_total";
pub(super) const ALARMS: &str = "deadband_zone_spc_alarms_total";

/// The group that collects keys past the cap.
pub const OTHER: &str = "other";

/// Default cap on distinct groups (`[metrics] max_groups`).
pub const DEFAULT_MAX_GROUPS: usize = 100;

/// The group of `key`: the part before its first `.`, or the whole key.
pub fn key_group(key: &str) -> &str {
    key.split_once('.').map_or(key, |(group, _)| group)
}

/// The series of one group, registered once.
struct Series {
    inside: Counter,
    outside: Counter,
    updates: Counter,
    regime: Gauge,
    compensations: Counter,
    alarms: Counter,
}

impl Series {
    fn register(recorder: &PrometheusRecorder, group: &str) -> Series {
        let counter = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![label("group", group)];
            if let Some((k, v)) = extra {
                labels.push(Label::new(k, v));
            }
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        Series {
            inside: counter(RECORDS, Some(("zone", "inside"))),
            outside: counter(RECORDS, Some(("zone", "outside"))),
            updates: counter(UPDATES, None),
            regime: recorder.register_gauge(
                &Key::from_parts(REGIME, vec![label("group", group)]),
                &METADATA,
            ),
            compensations: counter(COMPENSATIONS, None),
            alarms: counter(ALARMS, None),
        }
    }
}

/// Every group's series, with the cap on how many there are.
pub(super) struct ZoneGroups {
    max: usize,
    /// Looked up twice per accepted record: foldhash (keyed per process, like the processor's
    /// key map), not SipHash.
    groups: foldhash::HashMap<String, Series>,
}

impl ZoneGroups {
    pub(super) fn new(recorder: &PrometheusRecorder) -> ZoneGroups {
        describe_counter(
            recorder,
            RECORDS,
            "Accepted records by key group and whether the residual fell inside the zone.",
        );
        describe_counter(
            recorder,
            UPDATES,
            "Records that moved the fit, by key group.",
        );
        recorder.describe_gauge(
            ::metrics::KeyName::from_const_str(REGIME),
            None,
            ::metrics::SharedString::const_str(
                "Regime index of the group's latest record (0 = the base multiplier).",
            ),
        );
        describe_counter(recorder, COMPENSATIONS, "Tool compensations, by key group.");
        describe_counter(recorder, ALARMS, "SPC alarms, by key group.");
        ZoneGroups {
            max: DEFAULT_MAX_GROUPS,
            groups: Default::default(),
        }
    }

    pub(super) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    fn series(&mut self, recorder: &PrometheusRecorder, group: &str) -> &Series {
        // Two lookups on the rare insert path keep the common path free of a String allocation.
        if !self.groups.contains_key(group) {
            let name = if self.groups.len() < self.max {
                group
            } else {
                OTHER
            };
            if !self.groups.contains_key(name) {
                let series = Series::register(recorder, name);
                self.groups.insert(name.to_owned(), series);
            }
            if name == OTHER {
                return &self.groups[OTHER];
            }
        }
        &self.groups[group]
    }

    /// Adds the counts of `group` (one record's, or a [`Tally`](super::Tally)'s).
    pub(super) fn add(&mut self, recorder: &PrometheusRecorder, group: &str, c: ZoneCounts) {
        let s = self.series(recorder, group);
        for (counter, n) in [
            (&s.inside, c.inside),
            (&s.outside, c.outside),
            (&s.updates, c.updates),
        ] {
            if n > 0 {
                counter.increment(n);
            }
        }
        s.regime.set(f64::from(c.regime));
    }

    pub(super) fn event(&mut self, recorder: &PrometheusRecorder, group: &str, kind: EventKind) {
        match kind {
            EventKind::ToolCompensation => self.series(recorder, group).compensations.increment(1),
            EventKind::SpcAlarm => self.series(recorder, group).alarms.increment(1),
            EventKind::Trend | EventKind::Rebalance | EventKind::ToolChange => {}
        }
    }
}
