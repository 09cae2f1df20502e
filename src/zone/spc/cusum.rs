//! Tabular (Page) CUSUM chart, two-sided, restarting a side after it signals.

use serde::{Deserialize, Serialize};

use super::{check_finite, check_sigma, standardise, Side};
use crate::zone::ParamError;

/// Tabular (Page) CUSUM, Montgomery ISQC ch. 9:
/// `C⁺_i = max(0, x_i - (μ0 + K) + C⁺_{i-1})`, `C⁻_i = max(0, (μ0 - K) - x_i + C⁻_{i-1})`,
/// `K = k·σ`, `H = h·σ`; a side signals when its sum exceeds `H` (strictly) and then restarts
/// from zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    k: f64,
    h: f64,
    centre: f64,
    sigma: f64,
    /// Sums in sigma units (finite by construction).
    c_plus: f64,
    c_minus: f64,
}

/// One CUSUM step: `C⁺`, `C⁻` (before any restart) and the side that signalled.
pub type CusumStep = (f64, f64, Option<Side>);

impl Cusum {
    /// `k >= 0`, `h > 0` (both in sigma units), `sigma >= 0`, all finite.
    pub fn new(k: f64, h: f64, centre: f64, sigma: f64) -> Result<Self, ParamError> {
        if !(k.is_finite() && k >= 0.0) {
            return Err(ParamError::new("k", format!("must be >= 0, got {k}")));
        }
        if !(h.is_finite() && h > 0.0) {
            return Err(ParamError::new("h", format!("must be > 0, got {h}")));
        }
        check_finite("centre", centre)?;
        check_sigma("sigma", sigma)?;
        Ok(Self {
            k,
            h,
            centre,
            sigma,
            c_plus: 0.0,
            c_minus: 0.0,
        })
    }

    /// Decision interval `H = h·σ` in measurement units.
    pub fn decision_interval(&self) -> f64 {
        self.h * self.sigma
    }

    /// Current sums `(C⁺, C⁻)` in measurement units.
    pub fn sums(&self) -> (f64, f64) {
        (self.sigma * self.c_plus, self.sigma * self.c_minus)
    }

    /// Chart one value: returns `(C⁺, C⁻, signal)` as computed for this sample; if a side
    /// signalled, its sum has already been restarted at zero for the next sample. A non-finite
    /// `x` is ignored (current sums, no signal).
    pub fn update(&mut self, x: f64) -> CusumStep {
        if !x.is_finite() {
            let (p, m) = self.sums();
            return (p, m, None);
        }
        self.update_std(standardise(x, self.centre, self.sigma))
    }

    pub(super) fn update_std(&mut self, d: f64) -> CusumStep {
        self.c_plus = (d - self.k + self.c_plus).max(0.0);
        self.c_minus = (-d - self.k + self.c_minus).max(0.0);
        let (p, m) = self.sums();
        // With k >= 0 both sides cannot exceed h on the same sample (their sum before it was
        // at most 2h and falls by 2k); the larger one is reported should it ever happen.
        let signal = if self.c_plus > self.h && self.c_plus >= self.c_minus {
            self.c_plus = 0.0;
            Some(Side::Upper)
        } else if self.c_minus > self.h {
            self.c_minus = 0.0;
            Some(Side::Lower)
        } else {
            None
        };
        (p, m, signal)
    }
}
