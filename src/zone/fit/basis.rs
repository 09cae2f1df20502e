//! The moving-origin polynomial every fitter tracks: evaluating it at an offset from its origin,
//! and re-expressing theta and `P` exactly at a new origin.
//!
//! When a record at `t` changes the fit, the origin first moves to `t` (`dt = t - τ`):
//! `level += slope·dt + curvature·dt²`, `slope += 2·curvature·dt`, and `P ← T P Tᵀ` with
//! `T = [[1, dt, dt²], [0, 1, 2dt], [0, 0, 1]]`. This is an exact linear reparametrisation of the
//! same polynomial, so least-squares equivalences survive it, and the regressor of the current
//! record is then simply `(1, 0, 0)`: `φᵀPφ = P₁₁` and `Pφ` is the first column of `P`.
//!
//! The matrix helpers take the model's dimension `D` (order + 1) as a constant, so each order
//! gets its own straight-line copy of the loops (issue 10: the fit is the chain's largest part).

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

pub(super) type Mat = [[f64; 3]; 3];

/// Clamps an overflowed time difference so that polynomial evaluation stays NaN-free.
#[inline]
pub(super) fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else if x > 0.0 {
        f64::MAX
    } else {
        -f64::MAX
    }
}

/// Level of the polynomial `theta` at offset `dt` (Horner form: never NaN for finite inputs).
#[inline]
pub(super) fn level_at(theta: &[f64; 3], dt: f64) -> f64 {
    theta[0] + dt * (theta[1] + dt * theta[2])
}

/// Slope of the polynomial `theta` at offset `dt`.
#[inline]
pub(super) fn slope_at(theta: &[f64; 3], dt: f64) -> f64 {
    theta[1] + dt * (2.0 * theta[2])
}

/// Theta re-expressed at an origin `dt` later.
#[inline]
pub(super) fn shift_theta(theta: &[f64; 3], dt: f64) -> [f64; 3] {
    [level_at(theta, dt), slope_at(theta, dt), theta[2]]
}

/// `T P Tᵀ` for the origin move by `dt`, over the first `D` rows/columns.
#[inline]
pub(super) fn shift_p<const D: usize>(p: &Mat, dt: f64) -> Mat {
    if dt == 0.0 {
        return *p;
    }
    let mut t = [[1.0, dt, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    if D == 3 {
        t[0][2] = dt * dt;
        t[1][2] = 2.0 * dt;
    }
    let mut tp = [[0.0; 3]; 3];
    for i in 0..D {
        for j in 0..D {
            let mut s = 0.0;
            for k in i..D {
                s += t[i][k] * p[k][j];
            }
            tp[i][j] = s;
        }
    }
    let mut out = [[0.0; 3]; 3];
    for i in 0..D {
        for j in i..D {
            let mut s = 0.0;
            for k in j..D {
                s += tp[i][k] * t[j][k];
            }
            out[i][j] = s;
            out[j][i] = s;
        }
    }
    out
}

/// True when theta and `P` are finite over the first `D` rows/columns.
#[inline]
pub(super) fn all_finite<const D: usize>(theta: &[f64; 3], p: &Mat) -> bool {
    (0..D).all(|i| theta[i].is_finite() && (0..D).all(|j| p[i][j].is_finite()))
}
