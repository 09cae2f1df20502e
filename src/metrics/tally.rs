//! A partition worker's per-record metrics, counted where the worker runs and added to the
//! shared [`Metrics`] in one go every [`Tally::FULL`] records and at each checkpoint.
//!
//! Issue 10: counted straight into the shared metrics, each record took two mutexes (latency
//! histogram, zone groups) and wrote three atomic counters that every partition worker
//! writes. A tally is plain memory owned by one thread; publishing it takes each lock once per
//! [`Tally::FULL`] records. (On two cores the difference was within the daemon bench's noise;
//! the shared lock per record is what would not scale with more cores.)

use std::time::Duration;

use super::{key_group, result_index, Metrics};
use crate::record::Reject;

/// The zone-health counts of one key group since the last publish.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct ZoneCounts {
    pub(super) inside: u64,
    pub(super) outside: u64,
    pub(super) updates: u64,
    /// The group's regime at its latest record.
    pub(super) regime: u8,
}

impl ZoneCounts {
    /// Counts one accepted record.
    pub(super) fn count(&mut self, inside: bool, updated: bool, regime: u8) {
        if inside {
            self.inside += 1;
        } else {
            self.outside += 1;
        }
        self.updates += u64::from(updated);
        self.regime = regime;
    }
}

/// Counts not yet added to the shared [`Metrics`].
#[derive(Debug, Default)]
pub struct Tally {
    /// `deadband_records_in_total{result}` without a reason, indexed like `RESULTS`.
    results: [u64; 4],
    latencies_ns: Vec<u64>,
    zone: foldhash::HashMap<String, ZoneCounts>,
}

impl Tally {
    /// Records counted before [`Tally::is_full`] says to publish.
    pub const FULL: usize = 256;

    /// Counts one record's outcome. A record refused as invalid is counted by the caller with
    /// its reason ([`Metrics::record_in`]); it is rare, and its label set is open.
    pub fn outcome(&mut self, outcome: Result<(), Reject>) {
        self.results[result_index(outcome)] += 1;
    }

    /// Keeps the time one record took.
    pub fn latency(&mut self, took: Duration) {
        self.latencies_ns
            .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Counts one accepted record of `key` in its group's zone health (see
    /// [`Metrics::zone_record`]).
    pub fn zone(&mut self, key: &str, inside: bool, updated: bool, regime: u8) {
        let group = key_group(key);
        let counts = match self.zone.get_mut(group) {
            Some(c) => c,
            None => self.zone.entry(group.to_owned()).or_default(),
        };
        counts.count(inside, updated, regime);
    }

    /// Whether enough is counted to publish.
    pub fn is_full(&self) -> bool {
        self.latencies_ns.len() >= Self::FULL
    }

    fn is_empty(&self) -> bool {
        self.latencies_ns.is_empty() && self.results == [0; 4] && self.zone.is_empty()
    }
}

impl Metrics {
    /// Adds `tally` to the shared metrics and empties it (its buffers are kept).
    pub fn publish(&self, tally: &mut Tally) {
        if tally.is_empty() {
            return;
        }
        for (counter, n) in self.records_in.iter().zip(&mut tally.results) {
            if *n > 0 {
                counter.increment(std::mem::take(n));
            }
        }
        self.latencies(&tally.latencies_ns);
        tally.latencies_ns.clear();
        if !tally.zone.is_empty() {
            self.zone_counts(tally.zone.drain());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Invalid;

    /// A tally published gives the exposition that the same records counted one by one give.
    #[test]
    fn a_published_tally_reads_like_records_counted_one_by_one() {
        let (one_by_one, batched) = (Metrics::new(), Metrics::new());
        let mut tally = Tally::default();
        let records = [
            ("press3.bore", true, false, 0, Ok(())),
            ("press3.face", false, true, 1, Ok(())),
            ("AAPL", true, true, 2, Ok(())),
            ("press3.bore", false, false, 3, Ok(())),
            ("AAPL", true, false, 2, Err(Reject::Duplicate)),
            ("AAPL", true, false, 2, Err(Reject::OutOfOrder)),
        ];
        for (i, &(key, inside, updated, regime, outcome)) in records.iter().enumerate() {
            let took = Duration::from_nanos(100 * (i as u64 + 1));
            one_by_one.record_in(outcome);
            one_by_one.latency(took);
            tally.outcome(outcome);
            tally.latency(took);
            if outcome.is_ok() {
                one_by_one.zone_record(key_group(key), inside, updated, regime);
                tally.zone(key, inside, updated, regime);
            }
        }
        // An invalid record is counted directly by both.
        one_by_one.record_in(Err(Reject::Invalid(Invalid::Malformed)));
        batched.record_in(Err(Reject::Invalid(Invalid::Malformed)));
        assert!(!tally.is_full());
        batched.publish(&mut tally);
        assert!(tally.is_empty(), "publishing empties the tally");
        let render = |m: &Metrics| {
            let mut lines: Vec<String> = m.render().lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(render(&batched), render(&one_by_one));
        // Publishing nothing changes nothing.
        batched.publish(&mut tally);
        assert_eq!(render(&batched), render(&one_by_one));
    }
}
