//! The Processor: validation and counting, ordering rules, deterministic ids, snapshot/restore
//! continuity, no look-ahead, and the closed compensation loop on a drifting feature.

use std::path::Path;
use std::sync::Arc;

use deadband::config::parse;
use deadband::io::state;
use deadband::pipeline::{KeyHint, Processor};
use deadband::record::{
    Bar, Event, EventBody, EventKind, Invalid, Measurement, Payload, Record, Reject,
};

const MARKET: &str = r#"
[input]
path = "x"
[zone.scale]
kind = "atr"
period = 5
[fit]
method = "sm_rls"
forgetting = 0.98
[signal]
horizon = 5
warmup = 5
band = 0.1
"#;

fn processor(src: &str) -> Processor {
    let c = parse(src, Path::new("t.toml")).unwrap();
    Processor::new(Arc::new(c.processor)).unwrap()
}

/// Deterministic bars for `keys` keys: a trend that turns, plus noise (xorshift).
fn bars(keys: usize, n: usize) -> Vec<(String, i64, Bar)> {
    let mut s: u64 = 42;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut out = Vec::new();
    let mut px = vec![100.0; keys];
    for i in 0..n {
        for (k, p) in px.iter_mut().enumerate() {
            let drift = if (i / 150) % 2 == 0 { 0.15 } else { -0.15 };
            let open = *p;
            *p = (*p + drift + u()).max(1.0);
            let high = open.max(*p) + u().abs() * 0.3;
            let low = open.min(*p) - u().abs() * 0.3;
            out.push((
                format!("K{k}"),
                i as i64 * 60_000_000_000,
                Bar {
                    open,
                    high,
                    low,
                    close: *p,
                    volume: None,
                    true_trend: None,
                },
            ));
        }
    }
    out
}

fn run(p: &mut Processor, recs: &[(String, i64, Bar)]) -> Vec<Event> {
    let mut out = Vec::new();
    for (k, ts, b) in recs {
        let _ = p.process(
            &Record {
                key: k,
                ts: *ts,
                payload: Payload::Bar(*b),
            },
            &mut out,
        );
    }
    out
}

#[test]
fn trend_and_rebalance_events_with_deterministic_ids() {
    let recs = bars(2, 600);
    let a = run(&mut processor(MARKET), &recs);
    let b = run(&mut processor(MARKET), &recs);
    assert_eq!(a, b, "same input, same events");
    assert!(a
        .iter()
        .any(|e| matches!(e.body, EventBody::Trend { direction: 1, .. })));
    assert!(a
        .iter()
        .any(|e| matches!(e.body, EventBody::Trend { direction: -1, .. })));
    assert!(a
        .iter()
        .any(|e| matches!(e.body, EventBody::Rebalance { .. })));
    let mut ids: Vec<String> = a.iter().map(Event::id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "ids are unique");
    assert!(a[0]
        .id()
        .starts_with(&format!("{}:{}:", a[0].key, a[0].seq)));
}

#[test]
fn invalid_records_are_rejected_by_reason_and_good_ones_kept() {
    let mut p = processor(MARKET);
    let mut out = Vec::new();
    let good = Bar {
        open: 10.0,
        high: 11.0,
        low: 9.0,
        close: 10.5,
        volume: Some(5.0),
        true_trend: None,
    };
    let cases = [
        (
            Bar {
                close: f64::NAN,
                ..good
            },
            Invalid::NotFinite,
        ),
        (Bar { high: 8.0, ..good }, Invalid::HighBelowLow),
        (
            Bar {
                close: 12.0,
                ..good
            },
            Invalid::OutsideRange,
        ),
        (
            Bar {
                open: 0.0,
                low: 0.0,
                ..good
            },
            Invalid::NonPositivePrice,
        ),
        (
            Bar {
                volume: Some(f64::INFINITY),
                ..good
            },
            Invalid::NotFinite,
        ),
    ];
    let mut ts = 0;
    for (bad, why) in cases {
        ts += 1;
        let r = p.process(
            &Record {
                key: "A",
                ts,
                payload: Payload::Bar(bad),
            },
            &mut out,
        );
        assert_eq!(r, Err(Reject::Invalid(why)));
        ts += 1;
        let r = p.process(
            &Record {
                key: "A",
                ts,
                payload: Payload::Bar(good),
            },
            &mut out,
        );
        assert!(r.is_ok(), "good record after a bad one is processed");
    }
    let m = Payload::Measurement(Measurement {
        value: 1.0,
        nominal: None,
        lsl: None,
        usl: None,
        tool: None,
        true_value: None,
    });
    assert_eq!(
        p.process(
            &Record {
                key: "A",
                ts: 100,
                payload: m
            },
            &mut out
        ),
        Err(Reject::Invalid(Invalid::WrongKind))
    );
    assert_eq!(
        p.process(
            &Record {
                key: "",
                ts: 101,
                payload: Payload::Bar(good)
            },
            &mut out
        ),
        Err(Reject::Invalid(Invalid::EmptyKey))
    );
    let c = p.counters();
    assert_eq!(c.ok, 5);
    assert_eq!(c.invalid[Invalid::NotFinite.index()], 2);
    assert_eq!(c.invalid_total(), 7);
    // Each key's seq counts its accepted records only.
    assert_eq!(p.key_state("A").unwrap().seq, 5);
}

#[test]
fn late_records_dropped_or_accepted_and_duplicates_dropped() {
    let good = Payload::Bar(Bar {
        open: 10.0,
        high: 11.0,
        low: 9.0,
        close: 10.5,
        volume: None,
        true_trend: None,
    });
    let mut out = Vec::new();
    let mut send = |p: &mut Processor, key: &str, ts: i64| {
        p.process(
            &Record {
                key,
                ts,
                payload: good,
            },
            &mut out,
        )
    };
    let mut p = processor(MARKET);
    assert!(send(&mut p, "A", 10).is_ok());
    assert_eq!(send(&mut p, "A", 10), Err(Reject::Duplicate));
    assert_eq!(send(&mut p, "A", 5), Err(Reject::OutOfOrder));
    assert!(send(&mut p, "B", 5).is_ok(), "order is per key");
    assert_eq!((p.counters().duplicate, p.counters().out_of_order), (1, 1));

    let mut q = processor(&MARKET.replace(
        "[input]\npath = \"x\"",
        "[input]\npath = \"x\"\nout_of_order = \"accept\"",
    ));
    assert!(send(&mut q, "A", 10).is_ok());
    assert!(send(&mut q, "A", 5).is_ok());
    assert_eq!(send(&mut q, "A", 10), Err(Reject::Duplicate));
}

/// A processor restored from snapshots taken halfway emits exactly the events an uninterrupted
/// one emits for the second half.
#[test]
fn snapshot_restore_continues_exactly() {
    let recs = bars(3, 500);
    let whole = run(&mut processor(MARKET), &recs);
    let half = recs.len() / 2;
    let mut first = processor(MARKET);
    let mut events = run(&mut first, &recs[..half]);
    let snaps: Vec<(String, Vec<u8>)> = (0..3)
        .map(|k| format!("K{k}"))
        .map(|k| {
            let fp = state::fingerprint(first.config().params_for(&k));
            let s = state::encode(first.key_state(&k).unwrap(), &fp);
            (k, s)
        })
        .collect();
    drop(first);
    let mut second = processor(MARKET);
    let mut fingerprints = state::Fingerprints::new(Arc::new(second.config().clone()));
    for (k, s) in &snaps {
        second.restore(k, state::decode(s, fingerprints.of(k)).unwrap());
    }
    events.extend(run(&mut second, &recs[half..]));
    assert_eq!(events, whole);
}

#[test]
fn a_snapshot_of_another_version_is_refused_by_its_number_before_its_body_is_read() {
    // A body this build could not parse: the version must be what the error names.
    for bytes in [
        &b"{\"v\":99,\"state\":{}}"[..],
        b"{\"v\":2,\"state\":[1,2,3]}",
        b"{\"state\":\"?\",\"v\":3}",
    ] {
        match state::decode(bytes, "whatever") {
            Err(state::StateError::Version { found }) => assert_ne!(found, state::STATE_VERSION),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }
    assert!(matches!(
        state::decode(b"not json", "x"),
        Err(state::StateError::Decode(_))
    ));
}

#[test]
fn a_snapshot_saved_under_other_parameters_is_refused_with_both_fingerprints() {
    let recs = bars(1, 50);
    let mut first = processor(MARKET);
    run(&mut first, &recs);
    let fp = state::fingerprint(first.config().params_for("K0"));
    let snap = state::encode(first.key_state("K0").unwrap(), &fp);
    // The same configuration restores; one changed setting does not.
    let same = processor(MARKET);
    assert_eq!(state::fingerprint(same.config().params_for("K0")), fp);
    let changed = processor(&MARKET.replace("forgetting = 0.98", "forgetting = 0.97"));
    let fp2 = state::fingerprint(changed.config().params_for("K0"));
    assert_ne!(
        fp2, fp,
        "a changed forgetting factor changes the fingerprint"
    );
    assert!(state::decode(&snap, &fp).is_ok());
    match state::decode(&snap, &fp2) {
        Err(e @ state::StateError::ParamsChanged { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&fp) && msg.contains(&fp2), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

/// Changing records after t changes no event at or before t.
#[test]
fn no_look_ahead() {
    let recs = bars(2, 400);
    let base = run(&mut processor(MARKET), &recs);
    let cut_ts = recs[recs.len() / 2].1;
    let mut changed = recs.clone();
    for (_, ts, b) in changed.iter_mut() {
        if *ts > cut_ts {
            b.close = b.low; // a crash after the cut
            b.open = b.high;
        }
    }
    let other = run(&mut processor(MARKET), &changed);
    let upto = |v: &[Event]| {
        v.iter()
            .filter(|e| e.ts <= cut_ts)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(upto(&base), upto(&other));
    assert_ne!(base, other, "the change does matter after the cut");
}

const SENSOR: &str = r#"
[input]
path = "x"
record = "measurement"
[zone.scale]
kind = "grr"
sigma = 0.001
multiplier = 3.0
[signal]
warmup = 10
[compensation]
horizon = 5
cooldown = 5
[spc]
baseline = 20
"#;

/// Tool wear drifts the part by +0.0005/part against a ±0.02 tolerance with gauge noise 0.001.
/// Uncompensated it leaves the tolerance after ~40 parts; closed loop (offsets applied to later
/// parts, as the backtest does) it must stay inside, with compensations re-centring the level.
#[test]
fn predictive_compensation_keeps_a_drifting_feature_in_tolerance() {
    let mut p = processor(SENSOR);
    let mut out = Vec::new();
    let mut offset = 0.0;
    let mut s: u64 = 7;
    let mut noise = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.002 * 3f64.sqrt() // uniform, sd 0.001
    };
    let mut oot = 0;
    for i in 0..600 {
        let true_value = 10.0 + 0.0005 * i as f64 + offset;
        let value = true_value + noise();
        let m = Measurement {
            value,
            nominal: Some(10.0),
            lsl: Some(9.98),
            usl: Some(10.02),
            tool: None,
            true_value: None,
        };
        let before = out.len();
        let acc = p
            .process(
                &Record {
                    key: "M1/d",
                    ts: i,
                    payload: Payload::Measurement(m),
                },
                &mut out,
            )
            .unwrap();
        oot += usize::from(acc.out_of_tolerance == Some(true));
        for e in &out[before..] {
            if let EventBody::ToolCompensation { offset: o, .. } = e.body {
                offset += o;
            }
        }
    }
    let comps = out
        .iter()
        .filter(|e| matches!(e.body, EventBody::ToolCompensation { .. }))
        .count();
    // 0.3 of drift over 600 parts against a 0.02 half tolerance: at least 0.3/0.04 compensations.
    assert!(comps >= 7, "compensations: {comps}");
    assert_eq!(oot, 0, "closed loop stays in tolerance");
    assert!(p.counters().events_of(EventKind::ToolCompensation) as usize == comps);
}

#[test]
fn hinted_processing_equals_plain_processing_and_survives_removals() {
    // Three keys, each with its own hint, the way the backtest drives its lanes; halfway through
    // one key is removed (its slot is reused by a swap), which must make every hint stale.
    let recs = bars(3, 400);
    let key_index = |k: &str| k[1..].parse::<usize>().unwrap();
    let mut plain = processor(MARKET);
    let mut hinted = processor(MARKET);
    let mut hints = [KeyHint::default(); 3];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    for (i, (k, ts, bar)) in recs.iter().enumerate() {
        if i == recs.len() / 2 {
            assert!(plain.remove("K0"));
            assert!(hinted.remove("K0"));
        }
        let rec = Record {
            key: k,
            ts: *ts,
            payload: Payload::Bar(*bar),
        };
        out.clear();
        let ra = plain.process(&rec, &mut out);
        a.append(&mut out);
        let rb = hinted.process_hinted(&rec, &mut hints[key_index(k)], &mut out);
        b.append(&mut out);
        assert_eq!(ra, rb, "record {i}");
    }
    assert!(a.len() > 10, "the data makes events");
    assert_eq!(a, b);
    assert_eq!(plain.counters(), hinted.counters());
    for k in ["K0", "K1", "K2"] {
        assert_eq!(plain.key_state(k), hinted.key_state(k), "{k}");
    }
}
