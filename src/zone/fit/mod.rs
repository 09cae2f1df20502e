//! Recursive trend fitters: RLS (the L2 baseline), set-membership RLS, SM-NLMS and robust RLS.
//!
//! This file holds the [`Fitter`] itself: its state, the per-record driver that picks warm-up or
//! a correction, the trace guard, and the read-out. Each update rule lives in its own file.
//!
//! # Model
//!
//! Every fitter tracks a local polynomial trend in time,
//! `y(t) ≈ level + slope·(t - τ) + curvature·(t - τ)²` (`order = 1` drops the curvature), with the
//! parameters `theta = (level, slope, curvature)` held *at an origin time τ* together with the
//! matrix `P` (the inverse of the, possibly weighted and forgotten, information matrix).
//!
//! When a record at `t` changes the fit, the origin first moves to `t` (exactly, see `basis.rs`),
//! so the regressor of the current record is `(1, 0, 0)`. Records that change nothing (inside the
//! zone of a set-membership fitter) leave `theta`, `P` and τ untouched — bit for bit — and are
//! predicted by evaluating the polynomial at `t - τ`.
//!
//! **Time unit.** `t` is in the fitter's time unit and the slope is per that unit (the curvature
//! per unit²). Pass the record index, or `(ts - ts0) / time_unit` with `time_unit` near the typical
//! record spacing: `P` is then O(1) and stays well conditioned, and the default `trace_max`
//! makes sense. Time may repeat (`dt = 0`) or go backwards; the origin simply moves there.
//! Keep `|t|` moderate (offset from the stream start), as f64 resolution of `t` limits `dt`.
//!
//! # Methods
//!
//! With `e = y - prediction` and zone half-width `eps`:
//!
//! * `rls` (`rls.rs`) — exponentially weighted least squares, every record a weight-1 step.
//! * `sm_rls`, `sm_nlms` (`set_membership.rs`) — update only when `|e| > eps`, landing the
//!   a-posteriori error on the zone edge; inside the zone nothing changes.
//! * `robust_rls` (`robust.rs`) — RLS weighted by the configured well's IRLS weight / 2.
//!
//! The first `order + 1` distinct-time records fix the model by interpolation (`warmup.rs`).
//!
//! # Guards
//!
//! * `trace_max` bounds `trace(P)` after every step; `trace_guard` chooses `reset` (`P = p0·I`,
//!   keeping theta) or `scale` (`P ← P·trace_max/trace(P)`, keeping its shape). A `P` whose
//!   diagonal is not positive is always reset. Activations are counted.
//! * `leak` is a soft bottom: inside the zone an `sm_rls` fit takes a weighted RLS step of weight
//!   `leak` (with forgetting), `sm_nlms` an NLMS step with `μ = leak`, and `robust_rls` uses
//!   `max(weight/2, leak)`; `rls` is unaffected. Leak steps are not counted as updates.
//!   `leak = 0` is the pure set-membership behaviour.
//! * A step whose result would not be finite (overflow from huge values or huge gaps) is
//!   rejected: the state stays as it was and the record reports `updated = false`.
//!
//! # Inputs
//!
//! A record with non-finite `t` or `y` is ignored: the state and counts do not change and the
//! returned step has `updated = false` (its residual is then not finite either). `eps` should be
//! `> 0` (the scale guarantees a floor); a NaN or negative `eps` is treated as 0 (an empty zone).

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

mod basis;
mod rls;
mod robust;
mod set_membership;
mod spec;
mod warmup;

use serde::{Deserialize, Serialize};

use super::ParamError;
use basis::{all_finite, finite, level_at, shift_p, shift_theta, slope_at, Mat};
use warmup::Warmup;

pub use spec::{FitSpec, Method, TraceGuard};

/// What one record did to a fitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The fit's value at the record's time, before the record was used.
    pub predicted: f64,
    /// `y - predicted`.
    pub residual: f64,
    /// `|residual| <= eps` (always false during warm-up).
    pub inside: bool,
    /// The record moved the fit by a correction step (warm-up records included; leak steps not).
    pub updated: bool,
    /// Level of the fit at the record's time, after the record.
    pub level: f64,
    /// Slope of the fit at the record's time, after the record (per time unit).
    pub slope: f64,
}

/// Record counters of a fitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FitCounts {
    /// Records used (non-finite records are not counted).
    pub records: u64,
    /// Records that moved the fit by a correction step (warm-up records included).
    pub updates: u64,
    /// Records whose residual was inside the zone.
    pub inside: u64,
    /// Activations of the trace guard.
    pub guards: u64,
}

impl FitCounts {
    /// `updates / records` (0 before any record).
    pub fn update_rate(&self) -> f64 {
        ratio(self.updates, self.records)
    }

    /// `inside / records` (0 before any record).
    pub fn dead_zone_ratio(&self) -> f64 {
        ratio(self.inside, self.records)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
/// A recursive trend fitter. Fixed-size state, no allocation in [`Fitter::update`].
///
/// Serde round-trips it exactly, so a restored fitter continues bit for bit: every field is a
/// plain number, and serde_json's `float_roundtrip` feature (enabled for this crate) parses each
/// f64 back to the same bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitter {
    spec: FitSpec,
    /// (level, slope, curvature) at `origin`; unused entries are 0.
    theta: [f64; 3],
    /// Inverse information matrix in the same parametrisation; unused rows/columns are 0.
    p: [[f64; 3]; 3],
    /// The time theta and P refer to.
    origin: f64,
    /// Time of the last record used.
    last_t: f64,
    warm: Warmup,
    counts: FitCounts,
}

/// A post-warm-up record as an update rule sees it; theta and `P` are already at its time.
struct Record {
    /// The observed value.
    y: f64,
    /// The fit's level at the record's time, before the record.
    predicted: f64,
    /// `y - predicted`.
    e: f64,
    /// Zone half-width (>= 0).
    eps: f64,
    /// `|e| <= eps`.
    inside: bool,
}

impl Fitter {
    /// A fitter with no data yet; fails if the spec is invalid.
    pub fn new(spec: FitSpec) -> Result<Self, ParamError> {
        spec.validate()?;
        let mut p = [[0.0; 3]; 3];
        for (i, row) in p.iter_mut().enumerate().take(spec.dim()) {
            row[i] = spec.p0;
        }
        Ok(Fitter {
            spec,
            theta: [0.0; 3],
            p,
            origin: 0.0,
            last_t: 0.0,
            warm: Warmup {
                n: 0,
                done: false,
                t: [0.0; 3],
                w: [0.0; 3],
                m: [0.0; 3],
            },
            counts: FitCounts::default(),
        })
    }

    /// Uses one record: `y` observed at time `t` (fitter time unit), zone half-width `eps`.
    pub fn update(&mut self, t: f64, y: f64, eps: f64) -> Step {
        if !(t.is_finite() && y.is_finite()) {
            let at = if t.is_finite() { t } else { self.last_t };
            let predicted = self.predict(at);
            let dt = finite(at - self.origin);
            return Step {
                predicted,
                residual: y - predicted,
                inside: false,
                updated: false,
                level: predicted,
                slope: slope_at(&self.theta, dt),
            };
        }
        let eps = if eps > 0.0 { eps } else { 0.0 };
        self.counts.records += 1;
        let step = if self.warm.done {
            self.correct(t, y, eps)
        } else {
            let predicted = self.warm_up(t, y);
            self.step_to(t, y, predicted, false, true)
        };
        self.last_t = t;
        self.counts.inside += u64::from(step.inside);
        self.counts.updates += u64::from(step.updated);
        step
    }

    /// The [`Step`] of a record at `t` once theta holds what the record left.
    #[inline]
    fn step_to(&self, t: f64, y: f64, predicted: f64, inside: bool, updated: bool) -> Step {
        let dt = finite(t - self.origin);
        Step {
            predicted,
            residual: y - predicted,
            inside,
            updated,
            level: level_at(&self.theta, dt),
            slope: slope_at(&self.theta, dt),
        }
    }

    /// A post-warm-up record.
    fn correct(&mut self, t: f64, y: f64, eps: f64) -> Step {
        // One copy of the step per order, with the dimension a constant: the same arithmetic in
        // the same order, without the loop bounds and branches of a run-time dimension.
        if self.spec.dim() == 2 {
            self.correct_in::<2>(t, y, eps)
        } else {
            self.correct_in::<3>(t, y, eps)
        }
    }

    /// [`Fitter::correct`] for a model of dimension `D` (= `spec.dim()`).
    #[inline]
    fn correct_in<const D: usize>(&mut self, t: f64, y: f64, eps: f64) -> Step {
        let dt = finite(t - self.origin);
        let predicted = level_at(&self.theta, dt);
        let e = y - predicted;
        let inside = e.abs() <= eps;
        // Fast path, the common case of a set-membership fit: inside the zone without leak
        // nothing changes, so skip re-expressing theta and P at the new origin — and the level
        // after the record is the prediction (theta and its origin stay as they were).
        if inside
            && self.spec.leak == 0.0
            && matches!(self.spec.method, Method::SmRls | Method::SmNlms)
        {
            return Step {
                predicted,
                residual: e,
                inside: true,
                updated: false,
                level: predicted,
                slope: slope_at(&self.theta, dt),
            };
        }

        let mut theta = shift_theta(&self.theta, dt);
        let mut p = if self.spec.method == Method::SmNlms {
            self.p // not used by NLMS: kept as it was
        } else {
            shift_p::<D>(&self.p, dt)
        };
        let r = Record {
            y,
            predicted,
            e,
            eps,
            inside,
        };
        // (a step is taken, it is a correction rather than a leak step)
        let (step, correction) = match self.spec.method {
            Method::Rls => rls::step::<D>(&mut theta, &mut p, &r, &self.spec),
            Method::RobustRls => robust::step::<D>(&mut theta, &mut p, &r, &self.spec),
            Method::SmRls => set_membership::sm_rls::<D>(&mut theta, &mut p, &r, &self.spec),
            Method::SmNlms => set_membership::sm_nlms::<D>(&mut theta, &r, &self.spec),
        };
        if !step || !all_finite::<D>(&theta, &p) {
            // Nothing to do, or overflow: the previous state stays.
            return self.step_to(t, y, predicted, inside, false);
        }
        if self.spec.method != Method::SmNlms {
            self.guard::<D>(&mut p);
        }
        self.theta = theta;
        self.p = p;
        self.origin = t;
        self.step_to(t, y, predicted, inside, correction)
    }

    /// Applies the trace guard to a freshly computed `P` of dimension `D`.
    #[inline]
    fn guard<const D: usize>(&mut self, p: &mut Mat) {
        let trace: f64 = (0..D).map(|i| p[i][i]).sum();
        let positive = (0..D).all(|i| p[i][i] > 0.0);
        if positive && trace <= self.spec.trace_max {
            return;
        }
        self.guard_fire::<D>(p, positive, trace);
    }

    /// The trace guard's action, once it fired: rescale or reset `P`.
    #[cold]
    fn guard_fire<const D: usize>(&mut self, p: &mut Mat, positive: bool, trace: f64) {
        self.counts.guards += 1;
        if positive && self.spec.trace_guard == TraceGuard::Scale {
            let s = self.spec.trace_max / trace;
            for row in p.iter_mut().take(D) {
                for v in row.iter_mut().take(D) {
                    *v *= s;
                }
            }
        } else {
            *p = [[0.0; 3]; 3];
            for (i, row) in p.iter_mut().enumerate().take(D) {
                row[i] = self.spec.p0;
            }
        }
    }

    /// The fit's value at time `t` (0 before any record).
    pub fn predict(&self, t: f64) -> f64 {
        level_at(&self.theta, finite(t - self.origin))
    }

    /// Level at the time of the last record.
    pub fn level(&self) -> f64 {
        self.predict(self.last_t)
    }

    /// Slope at the time of the last record (per time unit).
    pub fn slope(&self) -> f64 {
        slope_at(&self.theta, finite(self.last_t - self.origin))
    }

    /// Curvature coefficient (per time unit²; 0 for order 1). Independent of the origin.
    pub fn curvature(&self) -> f64 {
        self.theta[2]
    }

    /// Moves the whole fitted curve by `dy` (level only; slope, curvature and P unchanged): the
    /// series was shifted by a known amount, e.g. a tool offset applied to every later part.
    pub fn shift_level(&mut self, dy: f64) {
        if !dy.is_finite() {
            return;
        }
        self.theta[0] += dy;
        if !self.warm.done {
            for m in self.warm.m.iter_mut().take(self.warm.n) {
                *m += dy;
            }
        }
    }

    /// Record counters.
    pub fn counts(&self) -> FitCounts {
        self.counts
    }

    /// The configuration the fitter was built with.
    pub fn spec(&self) -> &FitSpec {
        &self.spec
    }

    /// True once the first `order + 1` distinct-time records have determined the model.
    pub fn is_warm(&self) -> bool {
        self.warm.done
    }

    /// Raw parameters (level, slope, curvature) at [`Fitter::origin`].
    pub fn theta(&self) -> [f64; 3] {
        self.theta
    }

    /// Raw `P` at [`Fitter::origin`] (meaningful for the RLS methods after warm-up).
    pub fn covariance(&self) -> [[f64; 3]; 3] {
        self.p
    }

    /// The time `theta` and `P` refer to: the last record that changed the fit.
    pub fn origin(&self) -> f64 {
        self.origin
    }
}
