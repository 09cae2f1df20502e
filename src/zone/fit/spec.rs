//! Configuration of a fitter: the update rule, the polynomial order and the guard parameters,
//! with their defaults and validation.

use serde::{Deserialize, Serialize};

use crate::zone::well::Well;
use crate::zone::ParamError;

/// The update rule of a fitter (configuration names `rls`, `sm_rls`, `sm_nlms`, `robust_rls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exponentially weighted recursive least squares, the L2 baseline.
    Rls,
    /// Set-membership RLS (BEACON): update only outside the zone, landing on its edge.
    SmRls,
    /// Set-membership normalised LMS: `μ = 1 - eps/|e|` outside the zone.
    SmNlms,
    /// Recursive M-estimate: RLS weighted by the configured well's IRLS weight / 2.
    RobustRls,
}

/// What the `trace_max` guard does when `trace(P)` exceeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceGuard {
    /// `P = p0·I`: forget the covariance shape, keep theta.
    Reset,
    /// `P ← P·trace_max/trace(P)`: keep the shape, shrink the size.
    Scale,
}

/// Configuration of a fitter. Every field has a default (see [`FitSpec::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FitSpec {
    /// Update rule. Default `sm_rls`.
    pub method: Method,
    /// Polynomial order: 1 = level + slope, 2 = + curvature. Default 1.
    pub order: u8,
    /// Forgetting factor λ in (0, 1], per step (not per time unit): `rls` and `robust_rls` steps,
    /// `leak` steps, the warm-up weights, and the `sm_nlms` step direction; not the `sm_rls`
    /// corrections (see `fit/set_membership.rs`). Default 0.99 (an effective memory of about 100
    /// steps).
    pub forgetting: f64,
    /// Diagonal of `P` after a `reset` by the trace guard. Default 100.
    pub p0: f64,
    /// Upper bound on `trace(P)`. Default 1e6.
    pub trace_max: f64,
    /// Action when `trace(P) > trace_max`. Default `scale`.
    pub trace_guard: TraceGuard,
    /// Soft-bottom weight inside the zone, in [0, 1]. Default 0 (pure set membership).
    pub leak: f64,
    /// Loss shape of `robust_rls` (ignored by the other methods). Default `dead_zone`.
    pub well: Well,
}

impl Default for FitSpec {
    fn default() -> Self {
        FitSpec {
            method: Method::SmRls,
            order: 1,
            forgetting: 0.99,
            p0: 100.0,
            trace_max: 1e6,
            trace_guard: TraceGuard::Scale,
            leak: 0.0,
            well: Well::DeadZone,
        }
    }
}

impl FitSpec {
    /// Checks every parameter; the error names the configuration key at fault.
    pub fn validate(&self) -> Result<(), ParamError> {
        if !(self.order == 1 || self.order == 2) {
            return Err(ParamError::new(
                "order",
                format!(
                    "must be 1 (level + slope) or 2 (+ curvature), got {}",
                    self.order
                ),
            ));
        }
        if !(self.forgetting > 0.0 && self.forgetting <= 1.0) {
            return Err(ParamError::new(
                "forgetting",
                format!(
                    "must be in (0, 1] (1 = no forgetting, 0.99 ≈ 100-step memory), got {}",
                    self.forgetting
                ),
            ));
        }
        if !(self.p0.is_finite() && self.p0 > 0.0) {
            return Err(ParamError::new(
                "p0",
                format!("must be a finite number > 0, got {}", self.p0),
            ));
        }
        if !(self.trace_max.is_finite() && self.trace_max > 0.0) {
            return Err(ParamError::new(
                "trace_max",
                format!("must be a finite number > 0, got {}", self.trace_max),
            ));
        }
        let dim = f64::from(self.order) + 1.0;
        if self.trace_guard == TraceGuard::Reset && self.p0 * dim > self.trace_max {
            return Err(ParamError::new(
                "trace_max",
                format!(
                    "must be at least p0·(order + 1) = {} so that a reset satisfies it, got {}",
                    self.p0 * dim,
                    self.trace_max
                ),
            ));
        }
        if !(self.leak >= 0.0 && self.leak <= 1.0) {
            return Err(ParamError::new(
                "leak",
                format!(
                    "must be in [0, 1] (0 = pure set membership), got {}",
                    self.leak
                ),
            ));
        }
        self.well.validate()
    }

    pub(super) fn dim(&self) -> usize {
        usize::from(self.order) + 1
    }
}
