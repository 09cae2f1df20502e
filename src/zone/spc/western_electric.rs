//! Western Electric rules 1-4 over a ring of the last eight standardised values.

use serde::{Deserialize, Serialize};

use super::{Rule, Side, D_MAX};

/// Western Electric rules 1-4 on standardised values `z = (x - centre) / sigma`, as worded in
/// Montgomery & Runger, *Applied Statistics and Probability for Engineers* (3rd ed., 2003),
/// §16-5, after the *Western Electric Statistical Quality Control Handbook* (1956):
///
/// 1. one point plots outside 3-sigma control limits — `|z| > 3`;
/// 2. two out of three consecutive points plot beyond a 2-sigma limit — `z > 2` (or `< -2`);
/// 3. four out of five consecutive points plot at a distance of 1-sigma or beyond from the
///    centre line — `z >= 1` (or `<= -1`);
/// 4. eight consecutive points plot on one side of the centre line — all `z > 0` (or all
///    `< 0`); a point exactly on the centre line is on neither side and breaks the run.
///
/// "Rules 2 and 3 apply to one side of the centre line at a time" (same source). Choices where
/// the wording is silent: a point beyond 3σ also counts as beyond 2σ and 1σ; rules 2 and 3 fire
/// only on a point that is itself part of the pattern (so a pattern is reported when it is
/// completed, not again by the in-zone points after it); every rule is re-checked on every
/// point, so a continuing pattern keeps firing.
///
/// The windows are one ring of the last eight values (rule 4 needs 8, rule 3 needs 5, rule 2
/// needs 3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WesternElectric {
    ring: [f64; 8],
    /// Index of the slot the next value goes to.
    head: u8,
    /// Number of values held (<= 8).
    len: u8,
}

/// Which Western Electric rules fired on one point, and on which side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeSignal {
    pub we1: Option<Side>,
    pub we2: Option<Side>,
    pub we3: Option<Side>,
    pub we4: Option<Side>,
}

impl WeSignal {
    /// The side a rule fired on (None for `ewma`, `cusum`, or a rule that did not fire).
    pub fn get(&self, rule: Rule) -> Option<Side> {
        match rule {
            Rule::We1 => self.we1,
            Rule::We2 => self.we2,
            Rule::We3 => self.we3,
            Rule::We4 => self.we4,
            Rule::Ewma | Rule::Cusum => None,
        }
    }

    /// True when no rule fired.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl WesternElectric {
    /// Empty windows.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `back`-th most recent value (0 = newest). Caller ensures `back < len`.
    fn recent(&self, back: usize) -> f64 {
        self.ring[(usize::from(self.head) + 8 - 1 - back) % 8]
    }

    /// How many of the last `n` values satisfy `pred` (fewer values held count as failing).
    fn count_last(&self, n: usize, pred: impl Fn(f64) -> bool) -> usize {
        (0..n.min(usize::from(self.len)))
            .filter(|&b| pred(self.recent(b)))
            .count()
    }

    /// Add one standardised value and report the rules it completes. NaN is ignored (no
    /// signal, windows unchanged); ±inf is treated as an extreme value.
    pub fn update(&mut self, z: f64) -> WeSignal {
        if z.is_nan() {
            return WeSignal::default();
        }
        let z = z.clamp(-D_MAX, D_MAX);
        self.ring[usize::from(self.head)] = z;
        self.head = (self.head + 1) % 8;
        self.len = (self.len + 1).min(8);

        let side = |up: bool| if up { Side::Upper } else { Side::Lower };
        let mut s = WeSignal::default();
        if z.abs() > 3.0 {
            s.we1 = Some(side(z > 0.0));
        }
        if z > 2.0 && self.count_last(3, |v| v > 2.0) >= 2 {
            s.we2 = Some(Side::Upper);
        } else if z < -2.0 && self.count_last(3, |v| v < -2.0) >= 2 {
            s.we2 = Some(Side::Lower);
        }
        if z >= 1.0 && self.count_last(5, |v| v >= 1.0) >= 4 {
            s.we3 = Some(Side::Upper);
        } else if z <= -1.0 && self.count_last(5, |v| v <= -1.0) >= 4 {
            s.we3 = Some(Side::Lower);
        }
        if self.count_last(8, |v| v > 0.0) == 8 {
            s.we4 = Some(Side::Upper);
        } else if self.count_last(8, |v| v < 0.0) == 8 {
            s.we4 = Some(Side::Lower);
        }
        s
    }
}
