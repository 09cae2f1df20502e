//! The `rls` update rule, exponentially weighted recursive least squares (the L2 baseline), and
//! the weighted RLS step that `robust_rls` and the `sm_rls` leak reuse.
//!
//! Every record is a weight-1 step and `P` is divided by `forgetting` (λ) at every record. With
//! λ = 1 it equals batch least squares.

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

use super::basis::Mat;
use super::{FitSpec, Record};

/// One `rls` correction: a weight-1 step. Returns (a step was taken, it is a correction).
pub(super) fn step<const D: usize>(
    theta: &mut [f64; 3],
    p: &mut Mat,
    r: &Record,
    spec: &FitSpec,
) -> (bool, bool) {
    rls_step::<D>(theta, p, r.e, 1.0, spec.forgetting);
    (true, true)
}

/// Weighted RLS step with regressor (1, 0, 0) and forgetting `lam`:
/// information `λR + wφφᵀ`, i.e. `k = wPφ/(λ + wP₁₁)`, `P ← (P - k·(Pφ)ᵀ)/λ`, over the first
/// `D` rows/columns.
#[inline]
pub(super) fn rls_step<const D: usize>(
    theta: &mut [f64; 3],
    p: &mut Mat,
    e: f64,
    w: f64,
    lam: f64,
) {
    let g = p[0][0];
    let denom = lam + w * g;
    let col = [p[0][0], p[1][0], p[2][0]];
    for i in 0..D {
        theta[i] += w * col[i] / denom * e;
    }
    for i in 0..D {
        for j in i..D {
            let v = (p[i][j] - w * col[i] * col[j] / denom) / lam;
            p[i][j] = v;
            p[j][i] = v;
        }
    }
}
