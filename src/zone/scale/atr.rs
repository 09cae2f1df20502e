//! Wilder's Average True Range, streaming: the `atr` scale kind.

use serde::{Deserialize, Serialize};

use crate::zone::ParamError;

/// Warm-up convention of Wilder's ATR (the recursion after the seed is the same for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtrSeed {
    /// TA-Lib's convention: the true range is undefined at bar 0 (no previous close), the seed is
    /// the mean of TR_1..TR_n and the first value is at bar n (TA-Lib lookback = n).
    #[default]
    Talib,
    /// Wilder's / Tulip Indicators' convention: TR_0 = H_0 - L_0, the seed is the mean of
    /// TR_0..TR_{n-1} and the first value is at bar n-1.
    Wilder,
}

/// Wilder's Average True Range, streaming, O(1) per bar.
///
/// `TR_t = max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|)`; after the seed (the plain mean of
/// the first `period` true ranges, see [`AtrSeed`]), `ATR_t = (ATR_{t-1}·(n-1) + TR_t) / n`,
/// evaluated in that order so that the result equals TA-Lib's to round-off.
///
/// A close-only stream (open = high = low = close) gives `TR_t = |C_t - C_{t-1}|`.
/// If `high < low` the two are swapped (the range is never negative).
///
/// **Warm-up rule** ([`Atr::warmup_estimate`]): before the first ATR value, the estimate is the
/// mean of the true ranges seen so far, counting `H_0 - L_0` for bar 0 under both seeds. It is
/// `None` only before the first bar and may be 0 (flat bars); [`Scale`](super::Scale) then falls
/// back to the floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    seed: AtrSeed,
    prev_close: Option<f64>,
    /// `H_0 - L_0`; enters the warm-up estimate (and, for the Wilder seed, the seed itself).
    first_range: f64,
    /// Sum and count of the true ranges that belong to the seed window.
    seed_sum: f64,
    seed_count: usize,
    value: Option<f64>,
}

impl Atr {
    /// A new ATR with `period >= 1` bars.
    pub fn new(period: usize, seed: AtrSeed) -> Result<Atr, ParamError> {
        if period == 0 {
            return Err(ParamError::new(
                "period",
                "must be at least 1 bar (1 gives the plain true range), got 0",
            ));
        }
        Ok(Atr {
            period,
            seed,
            prev_close: None,
            first_range: 0.0,
            seed_sum: 0.0,
            seed_count: 0,
            value: None,
        })
    }

    /// The period n.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The warm-up convention.
    pub fn seed(&self) -> AtrSeed {
        self.seed
    }

    /// Feeds one bar; returns the ATR, or `None` during warm-up. A bar with a non-finite field
    /// (or whose true range would overflow) is ignored and the previous value is returned.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        self.push(high, low, close);
        self.value
    }

    /// [`Atr::update`] that tells whether the bar was accepted.
    pub(super) fn push(&mut self, high: f64, low: f64, close: f64) -> bool {
        if !(high.is_finite() && low.is_finite() && close.is_finite()) {
            return false;
        }
        let (hi, lo) = if high >= low {
            (high, low)
        } else {
            (low, high)
        };
        let range = hi - lo;
        let tr = match self.prev_close {
            None => range,
            // Every term is a number (finite inputs, a finite previous close: a difference may
            // overflow to infinity but is never NaN), so the plain comparison gives what
            // `f64::max` gives without its NaN handling.
            Some(pc) => larger(larger(range, (hi - pc).abs()), (lo - pc).abs()),
        };
        if !tr.is_finite() {
            return false;
        }
        let n = self.period as f64;
        match self.value {
            Some(v) => {
                // Multiplying by 1/n keeps the division off the loop-carried dependency chain
                // (the reciprocal depends only on the period); TA-Lib divides, which differs by
                // at most one rounding (tests compare to 1e-12 relative).
                let next = (v * (n - 1.0) + tr) * (1.0 / n);
                if !next.is_finite() {
                    return false;
                }
                self.value = Some(next);
            }
            None => {
                let first = self.prev_close.is_none();
                // Under the TA-Lib seed bar 0 has no true range: it only sets the previous close.
                if !(first && self.seed == AtrSeed::Talib) {
                    let sum = self.seed_sum + tr;
                    if !sum.is_finite() {
                        return false;
                    }
                    self.seed_sum = sum;
                    self.seed_count += 1;
                    if self.seed_count >= self.period {
                        self.value = Some(self.seed_sum / n);
                    }
                }
                if first {
                    self.first_range = range;
                }
            }
        }
        self.prev_close = Some(close);
        true
    }

    /// The ATR once warm, `None` before.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The best current estimate of the ATR: the ATR once warm; during warm-up the mean of the
    /// true ranges seen so far (bar 0 counting as `H_0 - L_0`); `None` before the first bar.
    pub fn warmup_estimate(&self) -> Option<f64> {
        if self.value.is_some() {
            return self.value;
        }
        self.prev_close?;
        Some(match self.seed {
            AtrSeed::Wilder => self.seed_sum / self.seed_count.max(1) as f64,
            AtrSeed::Talib => (self.first_range + self.seed_sum) / (self.seed_count + 1) as f64,
        })
    }

    /// Whether the ATR has produced its first value.
    pub fn is_warm(&self) -> bool {
        self.value.is_some()
    }
}

/// The larger of two numbers that are not NaN.
#[inline]
fn larger(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}
