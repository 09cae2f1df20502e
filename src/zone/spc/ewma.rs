//! EWMA control chart for individual values, with exact time-varying limits.

use serde::{Deserialize, Serialize};

use super::{check_finite, check_sigma, standardise, Side};
use crate::zone::ParamError;

/// EWMA chart for individual values (Roberts 1959; Montgomery ISQC ch. 9):
/// `z_i = λ·x_i + (1-λ)·z_{i-1}`, `z_0 = centre`, with the exact time-varying limits
/// `centre ± L·σ·sqrt(λ/(2-λ)·(1-(1-λ)^{2i}))`. Signals when `z_i` is strictly outside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EwmaChart {
    lambda: f64,
    l: f64,
    centre: f64,
    sigma: f64,
    /// `(z_i - centre) / sigma`, kept standardised so that it stays finite.
    z: f64,
    i: u64,
}

/// One EWMA step: the statistic, the limits at this sample, and the side that signalled.
pub type EwmaStep = (f64, f64, f64, Option<Side>);

impl EwmaChart {
    /// `lambda` in (0, 1], `l > 0`, `sigma >= 0`, all finite.
    pub fn new(lambda: f64, l: f64, centre: f64, sigma: f64) -> Result<Self, ParamError> {
        if !(lambda.is_finite() && lambda > 0.0 && lambda <= 1.0) {
            return Err(ParamError::new(
                "lambda",
                format!("must be in (0, 1], got {lambda}"),
            ));
        }
        if !(l.is_finite() && l > 0.0) {
            return Err(ParamError::new("l", format!("must be > 0, got {l}")));
        }
        check_finite("centre", centre)?;
        check_sigma("sigma", sigma)?;
        Ok(Self {
            lambda,
            l,
            centre,
            sigma,
            z: 0.0,
            i: 0,
        })
    }

    /// Number of samples charted so far.
    pub fn samples(&self) -> u64 {
        self.i
    }

    /// Current statistic `z_i` (the centre before the first sample).
    pub fn z(&self) -> f64 {
        self.centre + self.sigma * self.z
    }

    /// Half-width of the limits at sample `i` (1-based) in sigma units.
    fn width(&self, i: u64) -> f64 {
        let decay = (1.0 - self.lambda).powf(2.0 * i as f64);
        self.l * (self.lambda / (2.0 - self.lambda) * (1.0 - decay)).sqrt()
    }

    /// Chart one value: returns `(z, lcl, ucl, signal)`. A non-finite `x` is ignored (the
    /// returned values are the current statistic and the limits of the last sample, no signal).
    pub fn update(&mut self, x: f64) -> EwmaStep {
        if !x.is_finite() {
            let w = self.sigma * self.width(self.i);
            return (self.z(), self.centre - w, self.centre + w, None);
        }
        self.update_std(standardise(x, self.centre, self.sigma))
    }

    pub(super) fn update_std(&mut self, d: f64) -> EwmaStep {
        self.i = self.i.saturating_add(1);
        self.z = self.lambda * d + (1.0 - self.lambda) * self.z;
        let w = self.width(self.i);
        let signal = if self.z > w {
            Some(Side::Upper)
        } else if self.z < -w {
            Some(Side::Lower)
        } else {
            None
        };
        let half = self.sigma * w;
        (self.z(), self.centre - half, self.centre + half, signal)
    }
}
