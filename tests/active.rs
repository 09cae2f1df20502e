//! Active statistics against hand-computed examples and their properties: active return,
//! tracking error and information ratio of a strategy against a benchmark, buy-and-hold, and
//! the backtest's `active` block in `summary.json`.

use deadband::signal::active::{ActiveBook, ActiveStats, HoldLong};
use proptest::prelude::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12 * (1.0 + a.abs().max(b.abs()))
}

/// Active returns 0.01, 0.03, -0.01, 0.01 (strategy minus benchmark): mean 0.01, sample
/// variance (0 + 0.0004 + 0.0004 + 0) / 3, so TE = 0.02·sqrt(2/3) and IR = sqrt(6) / 4.
#[test]
fn matches_a_hand_computed_example() {
    let r = [0.02, 0.01, 0.0, 0.03];
    let b = [0.01, -0.02, 0.01, 0.02];
    let s = ActiveStats::from_returns(&r, &b, None);
    assert_eq!(s.periods, 4);
    assert!(close(s.active_return, 0.01), "{s:?}");
    let te = 0.02 * (2.0f64 / 3.0).sqrt();
    assert!(close(s.tracking_error.unwrap(), te), "{s:?}");
    assert!(
        close(s.information_ratio.unwrap(), 6f64.sqrt() / 4.0),
        "{s:?}"
    );

    // Annualised: active return x 252, TE x sqrt(252), IR x sqrt(252).
    let a = ActiveStats::from_returns(&r, &b, Some(252.0));
    assert!(close(a.active_return, 0.01 * 252.0));
    assert!(close(a.tracking_error.unwrap(), te * 252f64.sqrt()));
    assert!(close(
        a.information_ratio.unwrap(),
        6f64.sqrt() / 4.0 * 252f64.sqrt()
    ));
}

/// A constant active return has no tracking error: TE is 0 and the IR undefined (None), not
/// infinite; below two periods TE is undefined too.
#[test]
fn constant_active_return_has_zero_tracking_error_and_no_ratio() {
    let r = [0.02, -0.01, 0.05];
    let b = [0.01, -0.02, 0.04];
    let s = ActiveStats::from_returns(&r, &b, Some(252.0));
    assert!(s.tracking_error.unwrap().abs() < 1e-15, "{s:?}");
    assert!(close(s.active_return, 0.01 * 252.0));
    assert_eq!(
        s.information_ratio, None,
        "rounding noise is not active risk"
    );
    // 0.02-0.01 and 0.05-0.04 differ in the last bits: only an exactly constant series is 0,
    // so check the exact case too.
    let s = ActiveStats::from_returns(&[0.5, 0.25, 0.75], &[0.25, 0.0, 0.5], None);
    assert_eq!(s.tracking_error, Some(0.0));
    assert_eq!(s.information_ratio, None);
    let one = ActiveStats::from_returns(&[0.1], &[0.0], None);
    assert_eq!((one.tracking_error, one.information_ratio), (None, None));
    let none = ActiveStats::from_returns(&[], &[], None);
    assert_eq!((none.active_return, none.periods), (0.0, 0));
}

/// Buy-and-hold of one key: long from the first close, exposure drifting with the price.
#[test]
fn buy_and_hold_earns_the_price_path_from_the_first_bar() {
    let mut h = HoldLong::default();
    assert_eq!(h.on_close(100.0), 0.0);
    assert!(close(h.on_close(110.0), 0.1));
    // exposure 1.1 into 99: 1.1 x (99/110 - 1) = -0.11
    assert!(close(h.on_close(99.0), -0.11));
}

/// Two keys, bars at the same timestamps: the active book groups them into periods exactly as
/// the portfolio does, and against buy-and-hold it subtracts the held PnL.
#[test]
fn active_book_groups_records_into_periods() {
    let mut a = ActiveBook::default();
    // period 1: both keys' first bars (hold earns 0)
    a.add("A", 1, 100.0, 0.0, 0.0, 1);
    a.add("B", 1, 50.0, 0.0, 0.0, 2);
    // period 2: A +10 %, B -10 %; strategy earned 0.1 on A and 0 on B, baseline 0.02 on B
    a.add("A", 2, 110.0, 0.1, 0.0, 2);
    a.add("B", 2, 45.0, 0.0, 0.02, 2);
    // period 3: A flat, B +20 % (B's exposure 0.9): hold 0.18 on B
    a.add("A", 3, 110.0, 0.0, 0.0, 2);
    a.add("B", 3, 54.0, 0.1, 0.1, 2);
    let r = a.finish(None);
    // Hold PnL: period 2 A +0.1, B -0.1; period 3 A 0, B 0.9 x 0.2 = 0.18.
    // vs baseline: (0, (0.1 - 0.02) / 2, 0); vs hold: (0, (0 + 0.1) / 2, (0 - 0.08) / 2);
    // baseline vs hold: (0, (-0.1 + 0.12) / 2, (0 - 0.08) / 2).
    let vb = ActiveStats::from_returns(&[0.0, 0.04, 0.0], &[0.0; 3], None);
    let vh = ActiveStats::from_returns(&[0.0, 0.05, -0.04], &[0.0; 3], None);
    let bh = ActiveStats::from_returns(&[0.0, 0.01, -0.04], &[0.0; 3], None);
    for (got, want) in [
        (r.vs_baseline, vb),
        (r.vs_buy_and_hold, vh),
        (r.baseline_vs_buy_and_hold, bh),
    ] {
        assert_eq!(got.periods, 3);
        assert!(
            close(got.active_return, want.active_return),
            "{got:?} {want:?}"
        );
        assert!(close(
            got.tracking_error.unwrap(),
            want.tracking_error.unwrap()
        ));
    }
}

proptest! {
    /// A strategy against itself has no active risk: TE 0 and no information ratio.
    #[test]
    fn strategy_against_itself_has_no_ratio(r in prop::collection::vec(-0.1f64..0.1, 0..50)) {
        let s = ActiveStats::from_returns(&r, &r, Some(252.0));
        prop_assert_eq!(s.information_ratio, None);
        prop_assert_eq!(s.active_return, 0.0);
        if r.len() >= 2 {
            prop_assert_eq!(s.tracking_error, Some(0.0));
        }
    }

    /// Swapping strategy and benchmark flips the sign of active return and IR, keeps TE.
    #[test]
    fn swapping_flips_the_sign(
        pairs in prop::collection::vec((-0.1f64..0.1, -0.1f64..0.1), 2..50),
        ppy in prop::option::of(1.0f64..400.0),
    ) {
        let (r, b): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let ab = ActiveStats::from_returns(&r, &b, ppy);
        let ba = ActiveStats::from_returns(&b, &r, ppy);
        prop_assert_eq!(ab.active_return, -ba.active_return);
        prop_assert_eq!(ab.tracking_error, ba.tracking_error);
        prop_assert_eq!(ab.information_ratio, ba.information_ratio.map(|x| -x));
    }
}
