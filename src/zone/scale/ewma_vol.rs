//! Exponentially weighted volatility of a close series (the `ewma_vol` scale kind), and the
//! normalised EWMA it and the regime classifier average with.

use serde::{Deserialize, Serialize};

use super::positive;
use crate::zone::ParamError;

/// Decay per record of an EWMA with the given half-life (in records): `0.5^(1/half_life)`.
fn decay(half_life: f64) -> f64 {
    0.5f64.powf(1.0 / half_life)
}

/// Exponentially weighted mean with weights `lambda^age`, normalised by the sum of the weights
/// (pandas `ewm(adjust=True)`): `sum_j lambda^(t-j) x_j / sum_j lambda^(t-j)`. Being a true
/// weighted mean from the first sample on, it needs no arbitrary starting value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Ewma {
    lambda: f64,
    num: f64,
    den: f64,
}

impl Ewma {
    pub(super) fn new(half_life: f64) -> Ewma {
        Ewma {
            lambda: decay(half_life),
            num: 0.0,
            den: 0.0,
        }
    }

    /// Adds a sample; returns false (and changes nothing) if the sums would overflow.
    pub(super) fn push(&mut self, x: f64) -> bool {
        let num = self.lambda * self.num + x;
        let den = self.lambda * self.den + 1.0;
        if !(num.is_finite() && den.is_finite()) {
            return false;
        }
        self.num = num;
        self.den = den;
        true
    }

    pub(super) fn mean(&self) -> Option<f64> {
        (self.den > 0.0).then(|| self.num / self.den)
    }
}

/// What [`EwmaVol`] averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolOf {
    /// EWMA of squared simple returns `r_t = (C_t - C_{t-1}) / |C_{t-1}|`; the vol is
    /// `sqrt(EWMA) · |C_t|`, i.e. converted to price units with the last close.
    SquaredReturns,
    /// EWMA of absolute changes `|C_t - C_{t-1}|`, already in price units.
    #[default]
    AbsDelta,
}

/// Exponentially weighted volatility of a close (or measurement) series, in price units.
///
/// The mean is the normalised weighted mean described on `Ewma` (weights `0.5^(age/half_life)`).
/// Nothing is known before the second record (value `None`). It is *warm* once it has seen
/// `ceil(half_life)` changes. For squared returns a change from a previous close of exactly 0 has
/// no return and is skipped (the close is still remembered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EwmaVol {
    of: VolOf,
    half_life: f64,
    ewma: Ewma,
    prev_close: Option<f64>,
    changes: u64,
}

impl EwmaVol {
    /// A new EWMA vol; `half_life` in records, finite and > 0.
    pub fn new(half_life: f64, of: VolOf) -> Result<EwmaVol, ParamError> {
        positive("half_life", half_life)?;
        Ok(EwmaVol {
            of,
            half_life,
            ewma: Ewma::new(half_life),
            prev_close: None,
            changes: 0,
        })
    }

    /// Feeds one close; returns false if the record was ignored (non-finite or overflowing).
    pub fn update(&mut self, close: f64) -> bool {
        if !close.is_finite() {
            return false;
        }
        if let Some(prev) = self.prev_close {
            let x = match self.of {
                VolOf::AbsDelta => Some((close - prev).abs()),
                VolOf::SquaredReturns if prev == 0.0 => None,
                VolOf::SquaredReturns => {
                    let r = (close - prev) / prev.abs();
                    Some(r * r)
                }
            };
            if let Some(x) = x {
                if !x.is_finite() || !self.ewma.push(x) {
                    return false;
                }
                self.changes = self.changes.saturating_add(1);
            }
        }
        self.prev_close = Some(close);
        true
    }

    /// The volatility in price units, `None` until a first change has been seen.
    pub fn value(&self) -> Option<f64> {
        let m = self.ewma.mean()?;
        Some(match self.of {
            VolOf::AbsDelta => m,
            VolOf::SquaredReturns => m.sqrt() * self.prev_close.map_or(0.0, f64::abs),
        })
    }

    /// Whether at least `ceil(half_life)` changes have been averaged.
    pub fn is_warm(&self) -> bool {
        self.changes > 0 && self.changes as f64 >= self.half_life.ceil()
    }
}
