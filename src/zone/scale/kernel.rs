//! The per-kind state of a scale: feeds each record to the configured kind (ATR, gauge R&R sigma,
//! fixed eps, EWMA vol) and reads out its raw value, its eps before regime and floor, its cap and
//! whether it is warm.

use serde::{Deserialize, Serialize};

use super::{Atr, EwmaVol, ScaleInput};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum Kernel {
    Atr {
        atr: Atr,
        multiplier: f64,
    },
    Grr {
        sigma: f64,
        multiplier: f64,
        cap_fraction: Option<f64>,
        /// The last valid tolerance seen: spec limits, once known, hold until a record brings new ones.
        tolerance: Option<f64>,
    },
    Fixed {
        eps: f64,
    },
    EwmaVol {
        vol: EwmaVol,
        multiplier: f64,
    },
}

impl Kernel {
    /// Feeds a record; false if it was ignored.
    #[inline]
    pub(super) fn update(&mut self, input: &ScaleInput) -> bool {
        match self {
            Kernel::Atr { atr, .. } => atr.push(input.high, input.low, input.close),
            Kernel::Grr { tolerance, .. } => {
                if let Some(t) = input.tolerance {
                    if t.is_finite() && t > 0.0 {
                        *tolerance = Some(t);
                    }
                }
                true
            }
            Kernel::Fixed { .. } => true,
            Kernel::EwmaVol { vol, .. } => vol.update(input.close),
        }
    }

    /// (raw, eps before regime and floor, cap, warm)
    #[inline]
    pub(super) fn raw(&self) -> (f64, f64, Option<f64>, bool) {
        match self {
            Kernel::Atr { atr, multiplier } => {
                let raw = atr.warmup_estimate().unwrap_or(0.0);
                (raw, raw * multiplier, None, atr.is_warm())
            }
            Kernel::Grr {
                sigma,
                multiplier,
                cap_fraction,
                tolerance,
            } => {
                let cap = match (cap_fraction, tolerance) {
                    (Some(c), Some(t)) => Some(c * t),
                    _ => None,
                };
                (*sigma, sigma * multiplier, cap, true)
            }
            Kernel::Fixed { eps } => (*eps, *eps, None, true),
            Kernel::EwmaVol { vol, multiplier } => {
                let raw = vol.value().unwrap_or(0.0);
                (raw, raw * multiplier, None, vol.is_warm())
            }
        }
    }
}
