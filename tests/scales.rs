//! The two-scale trend (`[fit.macro]`): the filter never trades against the macro trend, a
//! macro scale identical to the tactical one reproduces the single-scale run (a second method),
//! trend events name the scale that moved them, state survives a snapshot, and the
//! configuration is checked.

use std::path::Path;
use std::sync::Arc;

use deadband::config::parse;
use deadband::io::state;
use deadband::pipeline::Processor;
use deadband::record::{Bar, Event, EventBody, Payload, Record};
use deadband::signal::scales::TrendScale;

const MARKET: &str = r#"
[input]
path = "x"
[zone.scale]
kind = "atr"
period = 5
[fit]
method = "robust_rls"
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

/// Bars for `keys` keys: a slow trend that turns every 400 bars, a fast swing of period 60,
/// and noise (xorshift), so the two scales disagree often.
fn bars(keys: usize, n: usize) -> Vec<(String, i64, Bar)> {
    let mut s: u64 = 7;
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
            let slow = if (i / 400) % 2 == 0 { 0.05 } else { -0.05 };
            let fast = 0.4 * (i as f64 * std::f64::consts::TAU / 60.0).cos();
            let open = *p;
            *p = (*p + slow + fast + 0.6 * u()).max(1.0);
            out.push((
                format!("K{k}"),
                i as i64 * 60_000_000_000,
                Bar {
                    open,
                    high: open.max(*p) + u().abs() * 0.3,
                    low: open.min(*p) - u().abs() * 0.3,
                    close: *p,
                    volume: None,
                    true_trend: None,
                },
            ));
        }
    }
    out
}

/// Runs the bars; after each accepted one calls `check` with the key's processor state.
fn run_checked(
    p: &mut Processor,
    recs: &[(String, i64, Bar)],
    mut check: impl FnMut(&deadband::pipeline::KeyCore),
) -> Vec<Event> {
    let mut out = Vec::new();
    for (k, ts, b) in recs {
        let rec = Record {
            key: k,
            ts: *ts,
            payload: Payload::Bar(*b),
        };
        if p.process(&rec, &mut out).is_ok() {
            check(p.key_state(k).unwrap());
        }
    }
    out
}

fn run(p: &mut Processor, recs: &[(String, i64, Bar)]) -> Vec<Event> {
    run_checked(p, recs, |_| {})
}

fn with_macro(table: &str) -> String {
    format!("{MARKET}[fit.macro]\n{table}")
}

#[test]
fn the_filter_never_trades_against_the_macro_trend() {
    let recs = bars(3, 2000);
    let mut p = processor(&with_macro(
        "multiplier = 2\nforgetting = 0.995\nhorizon = 40\n",
    ));
    let (mut held, mut vetoed) = (0, 0);
    let events = run_checked(&mut p, &recs, |core| {
        let m = core.macro_scale.as_ref().expect("macro state");
        let traded = m.combined.direction;
        if traded != 0 {
            held += 1;
            assert_eq!(traded, m.trend.direction, "traded against the macro trend");
            assert_eq!(
                traded, core.trend.direction,
                "traded without a tactical trend"
            );
        } else if core.trend.direction != 0 {
            vetoed += 1;
            assert_ne!(core.trend.direction, m.trend.direction);
        }
    });
    assert!(
        held > 100 && vetoed > 100,
        "both cases seen: {held} held, {vetoed} vetoed"
    );
    let trends: Vec<_> = events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Trend { scale, .. } => Some(scale),
            _ => None,
        })
        .collect();
    assert!(trends.contains(&Some(TrendScale::Tactical)));
    assert!(trends.contains(&Some(TrendScale::Macro)));
    assert!(
        trends.iter().all(Option::is_some),
        "every trend event names its scale"
    );
}

/// With the macro scale a copy of the tactical one (multiplier 1, same forgetting and trend
/// rule), both trends are the same, so either combination trades exactly the single scale.
#[test]
fn a_macro_scale_equal_to_the_tactical_one_changes_nothing() {
    let recs = bars(2, 1500);
    let strip = |events: Vec<Event>| -> Vec<Event> {
        events
            .into_iter()
            .map(|mut e| {
                if let EventBody::Trend { scale, .. } = &mut e.body {
                    assert!(scale.is_some());
                    *scale = None;
                }
                e
            })
            .collect()
    };
    let single = run(&mut processor(MARKET), &recs);
    assert!(single
        .iter()
        .all(|e| !matches!(e.body, EventBody::Trend { scale: Some(_), .. })));
    for combine in ["filter", "macro"] {
        let cfg = with_macro(&format!(
            "multiplier = 1\nforgetting = 0.98\ncombine = \"{combine}\"\n"
        ));
        let two = strip(run(&mut processor(&cfg), &recs));
        assert_eq!(two, single, "combine = {combine}");
    }
}

#[test]
fn a_wider_slower_macro_scale_trades_less() {
    let recs = bars(3, 2000);
    let turnover = |events: &[Event]| -> f64 {
        events
            .iter()
            .map(|e| match e.body {
                EventBody::Rebalance { turnover, .. } => turnover,
                _ => 0.0,
            })
            .sum()
    };
    let single = turnover(&run(&mut processor(MARKET), &recs));
    let two = turnover(&run(
        &mut processor(&with_macro("multiplier = 3\nforgetting = 0.995\n")),
        &recs,
    ));
    assert!(two < single, "two scales {two} vs one {single}");
}

#[test]
fn macro_state_survives_a_snapshot() {
    let cfg = with_macro("multiplier = 2.5\nforgetting = 0.995\n");
    let recs = bars(2, 1200);
    let whole = run(&mut processor(&cfg), &recs);
    let half = recs.len() / 2;
    let mut first = processor(&cfg);
    let mut events = run(&mut first, &recs[..half]);
    let snaps: Vec<(String, Vec<u8>)> = ["K0", "K1"]
        .iter()
        .map(|k| {
            let fp = state::fingerprint(first.config().params_for(k));
            (
                k.to_string(),
                state::encode(first.key_state(k).unwrap(), &fp),
            )
        })
        .collect();
    let mut second = processor(&cfg);
    let mut fingerprints = state::Fingerprints::new(Arc::new(second.config().clone()));
    for (k, s) in &snaps {
        second.restore(k, state::decode(s, fingerprints.of(k)).unwrap());
    }
    events.extend(run(&mut second, &recs[half..]));
    assert_eq!(events, whole);
    // A snapshot made under one scale is refused under two (the parameters differ).
    let single = processor(MARKET);
    let fp = state::fingerprint(single.config().params_for("K0"));
    let mut other = state::Fingerprints::new(Arc::new(processor(&cfg).config().clone()));
    let core = single.key_state("K0").cloned();
    assert!(core.is_none(), "fresh processor");
    let mut p = processor(MARKET);
    run(&mut p, &recs[..100]);
    let s = state::encode(p.key_state("K0").unwrap(), &fp);
    assert!(state::decode(&s, other.of("K0")).is_err());
}

#[test]
fn the_macro_table_is_checked_at_its_line() {
    let err = |src: &str| parse(src, Path::new("t.toml")).unwrap_err().to_string();
    let e = err(&with_macro("multiplier = 0\n"));
    assert!(e.contains("fit.macro") && e.contains("multiplier"), "{e}");
    let e = err(&with_macro("forgetting = 1.5\n"));
    assert!(e.contains("fit.macro") && e.contains("forgetting"), "{e}");
    let e = err(&with_macro("combine = \"vote\"\n"));
    assert!(e.contains("vote") && e.contains("filter"), "{e}");
    let e = err(&with_macro("speed = 2\n"));
    assert!(e.contains("speed"), "{e}");
    let sensor = "[input]\npath = \"x\"\nrecord = \"measurement\"\n[fit.macro]\nmultiplier = 3\n";
    let e = err(sensor);
    assert!(e.contains("macro") && e.contains("bars"), "{e}");
    // Defaults: the same trend rule as [signal]; accepted.
    parse(&with_macro(""), Path::new("t.toml")).unwrap();
}
