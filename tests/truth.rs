//! The trend signal scored against ground truth (`signal::truth`): hand-built series with
//! answers worked out by hand, a batch re-statement of the definitions as a second method, and
//! the backtest's `trend_truth` on `gen market` data checked against that second method.

use std::collections::HashMap;
use std::path::Path;

use deadband::config::parse;
use deadband::io::parquet::read_events;
use deadband::record::EventBody;
use deadband::run::backtest::{self, BacktestOptions};
use deadband::run::gen::{GenOptions, MarketGen};
use deadband::signal::truth::{TruthReport, TruthScore, TruthTrack};
use proptest::prelude::*;

/// Scores one key: `truth[i]` is the bar's true trend, `signal[i]` the direction after it
/// (a trend event is passed whenever the direction changes, as the processor emits them).
fn score(truth: &[f64], signal: &[i8]) -> TruthReport {
    let mut s = TruthScore::default();
    let mut t = TruthTrack::default();
    let mut prev = 0;
    for (&x, &d) in truth.iter().zip(signal) {
        t.bar(x, (d != prev).then_some(d), &mut s);
        prev = d;
    }
    t.finish(&mut s);
    s.report().unwrap()
}

/// The definitions restated over whole arrays (a second method): regimes are the runs of equal
/// sign; each is detected at its first bar whose signal equals its sign.
#[derive(Debug, PartialEq)]
struct Batch {
    bars: u64,
    agree: u64,
    changes: u64,
    delays: Vec<u64>,
    missed: u64,
    flips: u64,
    false_flips: u64,
}

fn batch(truth: &[f64], signal: &[i8]) -> Batch {
    let s: Vec<i8> = truth
        .iter()
        .map(|&x| x.partial_cmp(&0.0).unwrap() as i8)
        .collect();
    let n = s.len();
    let before = |t: usize| if t == 0 { 0 } else { signal[t - 1] };
    let mut starts: Vec<usize> = vec![0];
    starts.extend((1..n).filter(|&t| s[t] != s[t - 1]));
    let (mut delays, mut missed, mut caused) = (Vec::new(), 0, 0);
    for (r, &b) in starts.iter().enumerate() {
        let end = starts.get(r + 1).copied().unwrap_or(n);
        match (b..end).find(|&u| signal[u] == s[b]) {
            Some(u) => {
                if r > 0 {
                    delays.push((u - b) as u64);
                }
                caused += u64::from(signal[u] != before(u));
            }
            None if r > 0 => missed += 1,
            None => {}
        }
    }
    let flips = (0..n).filter(|&t| signal[t] != before(t)).count() as u64;
    Batch {
        bars: n as u64,
        agree: (0..n).filter(|&t| s[t] == signal[t]).count() as u64,
        changes: starts.len() as u64 - 1,
        delays,
        missed,
        flips,
        false_flips: flips - caused,
    }
}

/// A report's figures in the batch's terms (delays as mean and median).
fn agrees(r: &TruthReport, b: &Batch) -> bool {
    let mut d = b.delays.clone();
    d.sort_unstable();
    let mean = (!d.is_empty()).then(|| d.iter().sum::<u64>() as f64 / d.len() as f64);
    let median = (!d.is_empty()).then(|| {
        let m = d.len() / 2;
        if d.len() % 2 == 1 {
            d[m] as f64
        } else {
            (d[m - 1] + d[m]) as f64 / 2.0
        }
    });
    r.bars == b.bars
        && r.direction_accuracy == b.agree as f64 / b.bars as f64
        && r.regime_changes == b.changes
        && r.detected == d.len() as u64
        && r.missed == b.missed
        && r.delay_mean == mean
        && r.delay_median == median
        && r.flips == b.flips
        && r.false_flips == b.false_flips
        && r.false_flips_per_1000 == 1000.0 * b.false_flips as f64 / b.bars as f64
}

#[test]
fn a_hand_built_series_scores_as_worked_out() {
    // Truth up, flat, down. The signal goes up at bar 2 (the initial regime: not a change, no
    // delay), flat at 5 (change at 4: delay 1), down at 8 (change at 7: delay 1) and up again
    // at 9, which no change explains. Agreeing bars: 2, 3, 5, 6, 8.
    let truth = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0];
    let signal = [0, 0, 1, 1, 1, 0, 0, 0, -1, 1];
    let r = score(&truth, &signal);
    assert_eq!(r.bars, 10);
    assert_eq!(r.direction_accuracy, 0.5);
    assert_eq!((r.regime_changes, r.detected, r.missed), (2, 2, 0));
    assert_eq!((r.delay_mean, r.delay_median), (Some(1.0), Some(1.0)));
    assert_eq!((r.flips, r.false_flips), (4, 1));
    assert_eq!(r.false_flips_per_1000, 100.0);
}

#[test]
fn a_change_overtaken_by_the_next_one_is_missed() {
    // Changes at 2 (to down) and 4 (back up); the signal goes up only at 6: the change at 2
    // is missed, the one at 4 detected after 2 bars; one flip, caused.
    let truth = [0.3, 0.3, -0.2, -0.2, 0.1, 0.1, 0.1];
    let signal = [0, 0, 0, 0, 0, 0, 1];
    let r = score(&truth, &signal);
    assert_eq!((r.regime_changes, r.detected, r.missed), (2, 1, 1));
    assert_eq!((r.delay_mean, r.delay_median), (Some(2.0), Some(2.0)));
    assert_eq!((r.flips, r.false_flips), (1, 0));
    assert_eq!(r.direction_accuracy, 1.0 / 7.0);

    // A change still waiting at the end of the data is missed; no delay at all is null.
    let r = score(&[0.0, 0.0, 1.0, 1.0], &[0, 0, 0, 0]);
    assert_eq!((r.regime_changes, r.detected, r.missed), (1, 0, 1));
    assert_eq!((r.delay_mean, r.delay_median), (None, None));
    assert_eq!(r.direction_accuracy, 0.5);
}

#[test]
fn a_signal_already_agreeing_has_no_delay_and_the_median_of_two_is_their_mean() {
    // Up from bar 0 (the first flip detects the initial regime), down at 3 caught at 6 (3
    // bars), up at 7 caught on the bar (0): delays 3 and 0.
    let truth = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0];
    let signal = [1, 1, 1, 1, 1, 1, -1, 1, 1];
    let r = score(&truth, &signal);
    assert_eq!((r.regime_changes, r.detected, r.missed), (2, 2, 0));
    assert_eq!((r.delay_mean, r.delay_median), (Some(1.5), Some(1.5)));
    assert_eq!((r.flips, r.false_flips), (3, 0));
    assert_eq!(r.direction_accuracy, 6.0 / 9.0);
}

#[test]
fn bars_without_a_finite_truth_are_not_scored_but_move_the_signal() {
    let mut s = TruthScore::default();
    let mut t = TruthTrack::default();
    t.bar(1.0, None, &mut s);
    t.signal(1); // a bar without truth emitted "up"
    t.bar(f64::NAN, None, &mut s);
    t.bar(1.0, None, &mut s);
    t.finish(&mut s);
    let r = s.report().unwrap();
    assert_eq!(r.bars, 2);
    assert_eq!(r.direction_accuracy, 0.5);
    // The move to "up" is seen on the next scored bar, and it detects the initial regime.
    assert_eq!((r.flips, r.false_flips), (1, 0));
    assert!(TruthScore::default().report().is_none());
}

/// Regimes as (length, sign) runs, consecutive signs different.
fn regimes(min_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((min_len..min_len + 30, 0usize..2), 1..12).prop_map(|runs| {
        let mut out = Vec::new();
        let mut sign = 0i8;
        for (i, (len, step)) in runs.into_iter().enumerate() {
            // The next sign of {-1, 0, 1}, never the previous one.
            sign = if i == 0 {
                step as i8 - 1
            } else {
                [-1i8, 0, 1]
                    .into_iter()
                    .filter(|&s| s != sign)
                    .nth(step)
                    .unwrap()
            };
            out.extend(std::iter::repeat_n(f64::from(sign) * 0.7, len));
        }
        out
    })
}

proptest! {
    /// A signal that is the truth k bars late detects every change after exactly k bars and
    /// never flips falsely, when every regime lasts longer than k.
    #[test]
    fn a_signal_k_bars_late_detects_every_change_after_k_bars(
        (k, truth) in (0usize..8).prop_flat_map(|k| (Just(k), regimes(k + 1))),
    ) {
        let s: Vec<i8> = truth.iter().map(|&x| x.partial_cmp(&0.0).unwrap() as i8).collect();
        let signal: Vec<i8> = (0..s.len()).map(|t| if t < k { 0 } else { s[t - k] }).collect();
        let r = score(&truth, &signal);
        let changes = (1..s.len()).filter(|&t| s[t] != s[t - 1]).count() as u64;
        prop_assert_eq!((r.regime_changes, r.detected, r.missed), (changes, changes, 0));
        if changes > 0 {
            prop_assert_eq!(r.delay_mean, Some(k as f64));
            prop_assert_eq!(r.delay_median, Some(k as f64));
        }
        prop_assert_eq!(r.false_flips, 0);
        let agree = (0..s.len()).filter(|&t| s[t] == signal[t]).count();
        prop_assert_eq!(r.direction_accuracy, agree as f64 / s.len() as f64);
    }

    /// Any truth and any signal: the streaming score equals the batch statement of the
    /// definitions, and two keys interleaved score as the sum of the keys alone.
    #[test]
    fn streaming_scores_equal_the_batch_definitions(
        a in prop::collection::vec((-1i8..=1, -1i8..=1), 1..200),
        b in prop::collection::vec((-1i8..=1, -1i8..=1), 1..200),
        order in prop::collection::vec(any::<bool>(), 400),
    ) {
        let split = |v: &[(i8, i8)]| -> (Vec<f64>, Vec<i8>) {
            (v.iter().map(|p| f64::from(p.0) * 0.01).collect(), v.iter().map(|p| p.1).collect())
        };
        let (ta, sa) = split(&a);
        let (tb, sb) = split(&b);
        let (ra, ba) = (score(&ta, &sa), batch(&ta, &sa));
        prop_assert!(agrees(&ra, &ba), "{:?} vs {:?}", ra, ba);
        prop_assert_eq!(ba.delays.len() as u64 + ba.missed, ba.changes);

        // Interleave the two keys in the drawn order.
        let mut joint = TruthScore::default();
        let mut tracks = [TruthTrack::default(), TruthTrack::default()];
        let keys = [(&ta, &sa), (&tb, &sb)];
        let (mut next, mut prev) = ([0usize, 0], [0i8, 0]);
        let mut picks = order.iter().map(|&p| usize::from(!p));
        while next[0] < ta.len() || next[1] < tb.len() {
            let want = picks.next().unwrap_or(0);
            // The drawn key while it has bars left, else the other one.
            let k = if next[want] < keys[want].0.len() { want } else { 1 - want };
            let (t, d) = (keys[k].0[next[k]], keys[k].1[next[k]]);
            tracks[k].bar(t, (d != prev[k]).then_some(d), &mut joint);
            prev[k] = d;
            next[k] += 1;
        }
        for t in &tracks {
            t.finish(&mut joint);
        }
        let bb = batch(&tb, &sb);
        let mut delays = [ba.delays.clone(), bb.delays.clone()].concat();
        delays.sort_unstable();
        let both = Batch {
            bars: ba.bars + bb.bars,
            agree: ba.agree + bb.agree,
            changes: ba.changes + bb.changes,
            delays,
            missed: ba.missed + bb.missed,
            flips: ba.flips + bb.flips,
            false_flips: ba.false_flips + bb.false_flips,
        };
        let rj = joint.report().unwrap();
        prop_assert!(agrees(&rj, &both), "{:?} vs {:?}", rj, both);
    }
}

/// `deadband backtest` on `gen market` data: `trend_truth` of the strategy equals the batch
/// definitions applied to the generator's `true_trend` and the directions of the trend events
/// in `events.parquet`; the baseline is scored too.
#[test]
fn the_backtest_scores_the_signal_against_the_generated_truth() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.parquet");
    let opts = GenOptions::new(3, 4000, 5);
    deadband::run::gen::write_market(&opts, &input).unwrap();
    let text = std::fs::read_to_string("config/market-atr.toml").unwrap();
    let cfg = parse(&text, Path::new("config/market-atr.toml")).unwrap();
    let out = dir.path().join("out");
    let s = backtest::run(
        &cfg,
        &BacktestOptions {
            input: Some(input.to_string_lossy().into_owned()),
            out: out.clone(),
            progress: false,
            report: true,
            shard: None,
            single_thread: false,
        },
    )
    .unwrap();

    // Per key: the truth and the signal after each bar, from the generator and the events.
    let mut dirs: HashMap<(String, i64), i8> = HashMap::new();
    for e in read_events(&out.join("events.parquet")).unwrap() {
        if let EventBody::Trend { direction, .. } = e.body {
            dirs.insert((e.key.to_string(), e.ts), direction);
        }
    }
    let mut per_key: HashMap<String, (Vec<f64>, Vec<i8>, i8)> = HashMap::new();
    for row in MarketGen::new(&opts).unwrap() {
        let k = per_key.entry(row.key.to_string()).or_default();
        if let Some(&d) = dirs.get(&(row.key.to_string(), row.ts)) {
            k.2 = d;
        }
        k.0.push(row.true_trend);
        k.1.push(k.2);
    }
    let mut total: Option<Batch> = None;
    for (truth, signal, _) in per_key.values() {
        let b = batch(truth, signal);
        total = Some(match total {
            None => b,
            Some(t) => Batch {
                bars: t.bars + b.bars,
                agree: t.agree + b.agree,
                changes: t.changes + b.changes,
                delays: [t.delays, b.delays].concat(),
                missed: t.missed + b.missed,
                flips: t.flips + b.flips,
                false_flips: t.false_flips + b.false_flips,
            },
        });
    }
    let total = total.unwrap();
    let a = s.strategy.trend_truth.as_ref().expect("strategy scored");
    println!("strategy {a:?}\nbaseline {:?}", s.baseline.trend_truth);
    assert!(agrees(a, &total), "{a:?} vs {total:?}");
    assert!(
        total.changes >= 10,
        "the data has regime changes: {total:?}"
    );
    let b = s.baseline.trend_truth.as_ref().expect("baseline scored");
    assert_eq!((b.bars, b.regime_changes), (a.bars, a.regime_changes));
    assert_eq!(b.detected + b.missed, b.regime_changes);

    // In summary.json, the CLI table and the report.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for side in ["strategy", "baseline"] {
        let t = &json[side]["trend_truth"];
        for f in [
            "direction_accuracy",
            "regime_changes",
            "missed",
            "delay_mean",
            "delay_median",
            "false_flips_per_1000",
        ] {
            assert!(t.get(f).is_some(), "{side}.trend_truth lacks {f}");
        }
    }
    let text = deadband::run::demo::describe(&s, &out);
    assert!(text.contains("direction accuracy"), "{text}");
    assert!(text.contains("false flips/1000 bars"), "{text}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<td>trend direction accuracy</td>"));
    assert!(html.contains("<td>false flips per 1,000 bars</td>"));
}
