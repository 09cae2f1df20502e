//! The `robust_rls` update rule: a recursive M-estimate, i.e. a weighted RLS step whose weight is
//! the configured well's IRLS weight.
//!
//! The weight is `w = well.weight(e, eps) / 2` (1 for every residual with the quadratic well, so
//! it is then *identical* to `rls`). A zero weight (inside a dead zone) changes nothing and does
//! not forget; a positive weight forgets like `rls`. With `leak > 0` the step weight is
//! `max(weight/2, leak)` inside the zone.

use super::basis::Mat;
use super::rls::rls_step;
use super::{FitSpec, Record};

/// One `robust_rls` record. Returns (a step was taken, it is a correction rather than a leak
/// step).
pub(super) fn step<const D: usize>(
    theta: &mut [f64; 3],
    p: &mut Mat,
    r: &Record,
    spec: &FitSpec,
) -> (bool, bool) {
    let (lam, leak) = (spec.forgetting, spec.leak);
    let w = spec.well.weight(r.e, r.eps) / 2.0;
    let w = if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let w_step = if r.inside { w.max(leak) } else { w };
    if w_step > 0.0 {
        rls_step::<D>(theta, p, r.e, w_step, lam);
    }
    (w_step > 0.0, w > 0.0)
}
