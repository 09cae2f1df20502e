//! Scores a trend signal against the generator's ground truth (`true_trend`): direction
//! accuracy, delay to detect a regime change, and false flips.
//!
//! Definitions, per key, over the bars that carry a finite `true_trend` (in arrival order):
//!
//! - **truth** `s_t = sign(true_trend_t)` in {−1, 0, +1}; an exact 0 (the generator's flat
//!   stretches) is its own state, *flat*. **signal** `d_t` is the trend direction after bar t
//!   was processed (the hysteresis state that the position follows one bar later); it is 0
//!   until the first trend event (warm-up).
//! - **direction accuracy** = bars with `d_t = s_t` / bars. Flat counts like a direction: a
//!   flat truth is matched only by a flat signal, and a flat signal matches only a flat truth.
//! - A **regime change** is a bar t with `s_t ≠ s_{t−1}` (a key's first bar sets its initial
//!   regime and is not a change). The change is **detected** at the first bar u ≥ t, before
//!   the next change, with `d_u = s_t`; its **delay** is u − t bars (0 when the signal already
//!   agrees on the change bar). A change followed by another change, or by the end of the
//!   data, before the signal agrees is **missed**: it has no delay and is counted apart.
//! - A **flip** is a bar with `d_t ≠ d_{t−1}` (taking `d_{−1} = 0`), including moves to and
//!   from flat. A flip is **caused** when it is the one that detects the current regime — the
//!   first agreement with a change, or with the key's initial regime. Every other flip is
//!   **false**: a perfect signal flips once per regime change and never otherwise, so
//!   `false flips per 1,000 bars = 1000 × false / bars` scores noise immunity, the delay
//!   scores responsiveness.

use serde::{Deserialize, Serialize};

/// One key's state for scoring.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TruthTrack {
    started: bool,
    /// Sign of the current true regime.
    truth: i8,
    /// Signal direction after the last scored bar (or the last trend event).
    signal: i8,
    /// Signal direction at the last scored bar, for flips.
    scored_signal: i8,
    /// Bars of this key scored so far.
    index: u64,
    /// Bar index of the current regime's change.
    since: u64,
    /// The current regime is not yet matched by the signal.
    pending: bool,
    /// The current regime began with a counted change (not the key's first bar).
    counted: bool,
}

impl TruthTrack {
    /// A trend event moved the signal to `direction` (on a bar that may carry no truth).
    pub fn signal(&mut self, direction: i8) {
        self.signal = direction.signum();
    }

    /// Scores one bar: its `true_trend`, and the direction of the trend event it emitted, if
    /// any (without one the signal keeps its direction).
    pub fn bar(&mut self, true_trend: f64, event: Option<i8>, score: &mut TruthScore) {
        if let Some(d) = event {
            self.signal = d.signum();
        }
        if !true_trend.is_finite() {
            return;
        }
        let s = sign(true_trend);
        let d = self.signal;
        if !self.started {
            self.started = true;
            self.truth = s;
            self.pending = true;
            self.counted = false;
            self.scored_signal = 0;
        } else if s != self.truth {
            if self.pending && self.counted {
                score.missed += 1;
            }
            self.truth = s;
            self.since = self.index;
            self.pending = true;
            self.counted = true;
            score.changes += 1;
        }
        let flip = d != self.scored_signal;
        let mut caused = false;
        if self.pending && d == self.truth {
            if self.counted {
                score.delays.push(self.index - self.since);
            }
            self.pending = false;
            caused = flip;
        }
        score.flips += u64::from(flip);
        score.false_flips += u64::from(flip && !caused);
        score.agree += u64::from(d == s);
        score.bars += 1;
        self.scored_signal = d;
        self.index += 1;
    }

    /// Ends the key's data: a change still waiting for the signal is missed.
    pub fn finish(&self, score: &mut TruthScore) {
        if self.started && self.pending && self.counted {
            score.missed += 1;
        }
    }
}

fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// Counts over any number of keys (add each key's bars, then [`TruthTrack::finish`] each).
/// Scores of disjoint key sets add up ([`TruthScore::merge`]), which is how shards combine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthScore {
    pub bars: u64,
    pub agree: u64,
    pub changes: u64,
    pub missed: u64,
    /// Delay of each detected change, in bars.
    pub delays: Vec<u64>,
    pub flips: u64,
    pub false_flips: u64,
}

/// The scores as `summary.json` gives them (`trend_truth` of a method).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthReport {
    /// Bars that carried a finite `true_trend`.
    pub bars: u64,
    /// Share of those bars with signal direction = sign(true_trend) (flat = flat).
    pub direction_accuracy: f64,
    /// Sign changes of `true_trend` (regime changes).
    pub regime_changes: u64,
    /// Changes the signal agreed with before the next change.
    pub detected: u64,
    /// Changes never agreed with before the next change or the end of the data.
    pub missed: u64,
    /// Mean and median delay of the detected changes, in bars; null when none was detected.
    pub delay_mean: Option<f64>,
    pub delay_median: Option<f64>,
    /// Changes of the signal direction, and those that detected no regime.
    pub flips: u64,
    pub false_flips: u64,
    /// 1000 × false flips / bars.
    pub false_flips_per_1000: f64,
}

impl TruthScore {
    /// Adds the counts and delays of another key set's score.
    pub fn merge(&mut self, other: &TruthScore) {
        self.bars += other.bars;
        self.agree += other.agree;
        self.changes += other.changes;
        self.missed += other.missed;
        self.delays.extend_from_slice(&other.delays);
        self.flips += other.flips;
        self.false_flips += other.false_flips;
    }

    /// The report; `None` when no bar was scored.
    pub fn report(mut self) -> Option<TruthReport> {
        if self.bars == 0 {
            return None;
        }
        self.delays.sort_unstable();
        let n = self.delays.len();
        let delay_mean =
            (n > 0).then(|| self.delays.iter().map(|&d| d as f64).sum::<f64>() / n as f64);
        let delay_median = (n > 0).then(|| {
            if n % 2 == 1 {
                self.delays[n / 2] as f64
            } else {
                0.5 * (self.delays[n / 2 - 1] + self.delays[n / 2]) as f64
            }
        });
        let bars = self.bars as f64;
        Some(TruthReport {
            bars: self.bars,
            direction_accuracy: self.agree as f64 / bars,
            regime_changes: self.changes,
            detected: n as u64,
            missed: self.missed,
            delay_mean,
            delay_median,
            flips: self.flips,
            false_flips: self.false_flips,
            false_flips_per_1000: 1000.0 * self.false_flips as f64 / bars,
        })
    }
}
