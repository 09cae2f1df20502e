//! Trend direction and strength from the fitted slope, with enter/exit hysteresis.
//!
//! The fitted move over the horizon, `m = slope × horizon`, is compared with the zone `eps`: a
//! trend starts when `|m| > enter·eps` and ends when the move in its direction drops below
//! `exit·eps` (`exit <= enter`, so the direction does not flicker around one threshold). A move
//! past `enter·eps` the other way flips the direction at once. `strength = min(1, |m| /
//! (saturate·eps))`. A `trend` event is emitted only when the direction changes.

use serde::{Deserialize, Serialize};

use crate::zone::ParamError;

/// Trend rule parameters (`[signal]` table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendSpec {
    /// Horizon of the fitted move, in fitter time units (records by default).
    pub horizon: f64,
    /// Enter a trend when |slope·horizon| > enter·eps.
    pub enter: f64,
    /// Leave it when the move in its direction falls below exit·eps.
    pub exit: f64,
    /// |move| (in eps) at which strength reaches 1.
    pub saturate: f64,
    /// Records per key before any signal (fit and zone warm-up).
    pub warmup: u64,
}

impl Default for TrendSpec {
    fn default() -> Self {
        Self {
            horizon: 10.0,
            enter: 1.0,
            exit: 0.5,
            saturate: 2.0,
            warmup: 20,
        }
    }
}

impl TrendSpec {
    pub fn validate(&self) -> Result<(), ParamError> {
        if !(self.horizon.is_finite() && self.horizon > 0.0) {
            return Err(ParamError::new(
                "horizon",
                format!("must be > 0, got {}", self.horizon),
            ));
        }
        if !(self.enter.is_finite() && self.enter > 0.0) {
            return Err(ParamError::new(
                "enter",
                format!("must be > 0, got {}", self.enter),
            ));
        }
        if !(self.exit.is_finite() && self.exit >= 0.0 && self.exit <= self.enter) {
            return Err(ParamError::new(
                "exit",
                format!("must be in [0, enter = {}], got {}", self.enter, self.exit),
            ));
        }
        if !(self.saturate.is_finite() && self.saturate > 0.0) {
            return Err(ParamError::new(
                "saturate",
                format!("must be > 0, got {}", self.saturate),
            ));
        }
        Ok(())
    }
}

/// The current trend of one key.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Trend {
    pub direction: i8,
    pub strength: f64,
}

impl Trend {
    /// Applies one fitted slope; returns true when the direction changed.
    #[inline]
    pub fn update(&mut self, spec: &TrendSpec, slope: f64, eps: f64) -> bool {
        let m = slope * spec.horizon;
        let units = if eps > 0.0 { m / eps } else { 0.0 };
        let units = if units.is_finite() { units } else { 0.0 };
        let prev = self.direction;
        let along = units * f64::from(prev);
        self.direction = if units > spec.enter {
            1
        } else if units < -spec.enter {
            -1
        } else if prev != 0 && along >= spec.exit {
            prev
        } else {
            0
        };
        self.strength = if self.direction == 0 {
            0.0
        } else {
            (units.abs() / spec.saturate).min(1.0)
        };
        self.direction != prev
    }
}
