//! The set-membership update rules `sm_rls` and `sm_nlms`: no change inside the zone, and outside
//! it a step that puts the a-posteriori error exactly on the zone edge (`±eps`).
//!
//! * `sm_rls` — set-membership RLS in the BEACON form (Nagaraj, Gollamudi, Kapoor, Huang, IEEE
//!   Trans. Signal Processing 47(11), 1999): only when `|e| > eps`, a weighted RLS step whose
//!   weight `w = (|e|/eps - 1)/φᵀPφ` puts the a-posteriori error exactly on the zone edge
//!   (`±eps`); in closed form `Δθ = Pφ·(e ∓ eps)/P₁₁` and `P ← P - c·PφφᵀP/P₁₁` with
//!   `c = 1 - eps/|e|`. Inside the zone nothing changes (no windup). Choice: correction steps do
//!   **not** forget — dividing `P` by λ is a uniform rescale that would leave every later theta
//!   unchanged (the step above is invariant to the scale of `P`) and only inflate the trace; the
//!   tracking of a set-membership fit comes from its data-dependent weights. λ still shapes the
//!   warm-up `P` and the `leak` steps, where the scale of `P` matters: inside the zone a `leak > 0`
//!   fit takes a weighted RLS step of weight `leak` (with forgetting).
//! * `sm_nlms` — set-membership NLMS (Gollamudi, Nagaraj, Kapoor, Huang 1998): `μ = 1 - eps/|e|`
//!   outside the zone, 0 inside (`leak` with `leak > 0`), and a normalised step
//!   `Δθ = μ·e·Mφ/(φᵀMφ)`, so the a-posteriori error lands on `±eps` too. NLMS depends on the
//!   metric `M` of the parameter space (with `M = I` and φ = (1, 0, 0) it would never learn a
//!   slope). Choice: `M` is the steady-state inverse information of discounted least squares with
//!   discount λ = `forgetting` at unit spacing, so the step direction is Brown's fading-memory
//!   polynomial filter gain (order 1: `(1-λ², (1-λ)²)`; order 2:
//!   `(1-λ³, 1.5(1-λ)²(1+λ), 0.5(1-λ)³)`) — the direction `rls` settles to — with a fixed shape
//!   and no `P` to maintain. `P` is unused; with λ = 1 only the level moves.

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

use super::basis::Mat;
use super::rls::rls_step;
use super::{FitSpec, Record};

/// One `sm_rls` record. Returns (a step was taken, it is a correction rather than a leak step).
pub(super) fn sm_rls<const D: usize>(
    theta: &mut [f64; 3],
    p: &mut Mat,
    r: &Record,
    spec: &FitSpec,
) -> (bool, bool) {
    let (lam, leak) = (spec.forgetting, spec.leak);
    let (y, e, eps) = (r.y, r.e, r.eps);
    if r.inside {
        if leak > 0.0 {
            rls_step::<D>(theta, p, e, leak, lam);
        }
        return (leak > 0.0, false);
    }
    let a = e.abs();
    let sign = if e < 0.0 { -1.0 } else { 1.0 };
    let g = p[0][0];
    if g > 0.0 && g.is_finite() {
        // c = 1 - eps/|e|; the level lands exactly on the zone edge.
        let keep = eps / a;
        let c = 1.0 - keep;
        let col = [p[0][0], p[1][0], p[2][0]];
        let gain = (e - sign * eps) / g;
        for i in 1..D {
            theta[i] += col[i] * gain;
        }
        theta[0] = y - sign * eps;
        for i in 1..D {
            for j in i..D {
                let v = p[i][j] - c * col[i] * col[j] / g;
                p[i][j] = v;
                p[j][i] = v;
            }
            let v = col[i] * keep;
            p[0][i] = v;
            p[i][0] = v;
        }
        p[0][0] = g * keep;
        (true, true)
    } else {
        (false, false)
    }
}

/// One `sm_nlms` record (`P` is not used). Returns (a step was taken, it is a correction rather
/// than a leak step).
pub(super) fn sm_nlms<const D: usize>(
    theta: &mut [f64; 3],
    r: &Record,
    spec: &FitSpec,
) -> (bool, bool) {
    let (lam, leak) = (spec.forgetting, spec.leak);
    let (e, eps, inside) = (r.e, r.eps, r.inside);
    let a = e.abs();
    let mu = if inside { leak } else { 1.0 - eps / a };
    if mu > 0.0 {
        let dir = nlms_direction(lam, D);
        for i in 1..D {
            theta[i] += mu * e * dir[i];
        }
        theta[0] = r.predicted + mu * e;
        (true, !inside)
    } else {
        (false, false)
    }
}

/// Step direction of `sm_nlms` (level component 1): the steady-state gain of discounted least
/// squares with discount λ and unit spacing — Brown's fading-memory polynomial filter:
/// order 1 `(1 - λ², (1 - λ)²)`, order 2 `(1 - λ³, 1.5(1 - λ)²(1 + λ), 0.5(1 - λ)³)` for
/// (level, slope, curvature) — divided by its level component.
#[inline]
fn nlms_direction(lam: f64, d: usize) -> [f64; 3] {
    let q = 1.0 - lam;
    if d == 2 {
        [1.0, q / (1.0 + lam), 0.0]
    } else {
        let s = 1.0 + lam + lam * lam;
        [1.0, 1.5 * q * (1.0 + lam) / s, 0.5 * q * q / s]
    }
}
