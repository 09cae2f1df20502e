//! Signals against hand-computed examples: book PnL/turnover/costs, performance statistics
//! (Sharpe, empyrical max drawdown, hit rate), trend hysteresis, compensation trigger.

use deadband::signal::book::{Book, BookSpec, Sizing};
use deadband::signal::compensate::{CompSpec, Compensator, Spec};
use deadband::signal::perf::{Perf, Portfolio};
use deadband::signal::trend::{Trend, TrendSpec};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Closes 100 -> 110 -> 99 -> 99, long decided on the first bar, band 0.05, 10 bps.
/// By hand: bar 1 trades 0 -> 1 (turnover 1, cost 0.001), earns nothing (flat during 100->110);
/// bar 2 earns 1 x (99/110 - 1) = -0.1, exposure drifts to 0.9, |1 - 0.9| = 0.1 > 0.05 so it
/// trades back to 1 (turnover 0.1, cost 0.0001); bar 3 earns 0.
#[test]
fn book_matches_a_hand_computed_example() {
    let spec = BookSpec {
        sizing: Sizing::Sign,
        cost_bps: 10.0,
        band: 0.05,
        weight: 1.0,
    };
    let mut b = Book::default();
    let s0 = b.on_close(&spec, 100.0);
    assert!(s0.trade.is_none() && s0.gross == 0.0);
    b.decide(spec.target(1, 1.0));
    let s1 = b.on_close(&spec, 110.0);
    assert_eq!(
        s1.gross, 0.0,
        "no look-ahead: the decision does not earn the bar it was made on"
    );
    let t1 = s1.trade.expect("trade on the next bar");
    assert_eq!((t1.from, t1.to), (0.0, 1.0));
    assert!(close(t1.cost, 0.001));
    b.decide(spec.target(1, 1.0));
    let s2 = b.on_close(&spec, 99.0);
    assert!(close(s2.gross, 99.0 / 110.0 - 1.0));
    let t2 = s2.trade.expect("drift past the band is rebalanced");
    assert!(close(t2.from, 0.9) && close(t2.turnover, 0.1), "{t2:?}");
    b.decide(spec.target(1, 1.0));
    let s3 = b.on_close(&spec, 99.0);
    assert!(s3.trade.is_none() && s3.gross == 0.0);
    assert!(close(b.turnover, 1.1));
    assert!(close(b.costs, 0.0011));
    assert!(close(b.gross, -0.1));
    assert_eq!(b.trades, 2);
}

#[test]
fn drift_inside_the_band_is_not_traded_but_exits_always_are() {
    let spec = BookSpec {
        band: 0.5,
        ..BookSpec::default()
    };
    let mut b = Book::default();
    b.on_close(&spec, 100.0);
    b.decide(1.0);
    assert!(b.on_close(&spec, 100.0).trade.is_some());
    b.decide(1.0);
    assert!(
        b.on_close(&spec, 120.0).trade.is_none(),
        "0.2 drift < 0.5 band"
    );
    b.decide(0.0);
    let exit = b
        .on_close(&spec, 120.0)
        .trade
        .expect("flat target is always executed");
    assert!(close(exit.to, 0.0));
}

/// Returns 1 %, -2 %, 3 %: mean 0.0066667, sample std 0.0251661 (ddof 1) -> Sharpe 0.264906;
/// equity 1.01, 0.9898, 1.019494 -> max drawdown 0.9898/1.01 - 1 = -0.02; 2 of 3 positive.
#[test]
fn perf_matches_hand_computed_statistics() {
    let mut p = Perf::default();
    for r in [0.01, -0.02, 0.03] {
        p.push(r);
    }
    assert!(
        (p.sharpe(None) - 0.264_906).abs() < 1e-6,
        "{}",
        p.sharpe(None)
    );
    assert!((p.sharpe(Some(252.0)) - 0.264_906 * 252f64.sqrt()).abs() < 1e-5);
    assert!(
        (p.max_drawdown() + 0.02).abs() < 1e-12,
        "{}",
        p.max_drawdown()
    );
    assert!((p.hit_rate() - 2.0 / 3.0).abs() < 1e-12);
    assert!((p.equity() - 1.01 * 0.98 * 1.03).abs() < 1e-12);
}

/// empyrical: max drawdown of a monotone rising series is 0; of a crash to half it is -0.5.
#[test]
fn drawdown_edge_cases() {
    let mut up = Perf::default();
    for _ in 0..10 {
        up.push(0.01);
    }
    assert_eq!(up.max_drawdown(), 0.0);
    let mut crash = Perf::default();
    for r in [0.1, -0.5, 0.2] {
        crash.push(r);
    }
    assert!((crash.max_drawdown() + 0.5).abs() < 1e-12);
}

#[test]
fn portfolio_groups_records_by_timestamp() {
    let mut pf = Portfolio::default();
    // Two keys, two periods: (0.02 + 0.00)/2 = 0.01, then (-0.01 + 0.03)/2 = 0.01.
    pf.add(1, 0.02, 2);
    pf.add(1, 0.0, 2);
    pf.add(2, -0.01, 2);
    pf.add(2, 0.03, 2);
    let p = pf.finish();
    assert_eq!(p.periods(), 2);
    assert!((p.equity() - 1.01 * 1.01).abs() < 1e-12);
}

/// A period's sum is divided by the keys in the book at the end of that period: a key that
/// first appears in the next period does not dilute it.
#[test]
fn portfolio_divides_by_the_keys_at_the_end_of_the_period() {
    let mut pf = Portfolio::default();
    pf.add(1, 0.02, 1);
    pf.add(1, 0.02, 2); // a second key joins within period 1: 0.04 / 2
    pf.add(2, 0.03, 3); // a third key joins at period 2's first record: 0.03 / 3
    let p = pf.finish();
    assert_eq!(p.periods(), 2);
    assert!((p.equity() - 1.02 * 1.01).abs() < 1e-12, "{}", p.equity());
}

#[test]
fn trend_has_hysteresis_and_reports_changes_only() {
    let spec = TrendSpec {
        horizon: 10.0,
        enter: 1.0,
        exit: 0.5,
        saturate: 2.0,
        warmup: 0,
    };
    let eps = 1.0;
    let mut t = Trend::default();
    // slope x horizon in eps units: 0.9 (no), 1.1 (enter up), 0.6 (hold), 0.4 (exit), -1.5 (down)
    let steps = [
        (0.09, false, 0),
        (0.11, true, 1),
        (0.06, false, 1),
        (0.04, true, 0),
        (-0.15, true, -1),
    ];
    for (slope, changed, dir) in steps {
        assert_eq!(t.update(&spec, slope, eps), changed, "slope {slope}");
        assert_eq!(t.direction, dir, "slope {slope}");
    }
    assert!(
        (t.strength - 0.75).abs() < 1e-12,
        "1.5 eps of a 2 eps saturation"
    );
    // A flip straight from down to up.
    assert!(t.update(&spec, 0.3, eps));
    assert_eq!((t.direction, t.strength), (1, 1.0));
}

#[test]
fn compensation_fires_when_the_prediction_leaves_the_guarded_tolerance() {
    let spec = CompSpec {
        horizon: Some(5.0),
        guard: Some(0.1),
        aim: 0.0,
        cooldown: 3,
        ..CompSpec::default()
    };
    let part = Spec {
        nominal: 10.0,
        lsl: 9.0,
        usl: 11.0,
    };
    let fire =
        |c: &mut Compensator, level: f64| c.predictive(&spec, &part, level, 0.1, 0.05, None, false);
    let mut c = Compensator::default();
    c.tick();
    // level 10.3 + 0.1 x 5 = 10.8 -> 0.8 < 1 - 0.1: no.
    assert!(fire(&mut c, 10.3).is_none());
    c.tick();
    // level 10.45 + 0.5 = 10.95 -> 0.95 > 0.9: with aim = 0 the offset re-centres the level.
    let k = fire(&mut c, 10.45).expect("fires");
    assert!((k.offset + 0.45).abs() < 1e-12 && (k.predicted - 0.95).abs() < 1e-12);
    // Cooldown of 3 parts.
    for _ in 0..2 {
        c.tick();
        assert!(fire(&mut c, 10.9).is_none());
    }
    c.tick();
    assert!(fire(&mut c, 10.9).is_some());
}
