//! Warm-up of a fitter: the first `order + 1` records at distinct times fix theta exactly by
//! polynomial interpolation and set `P`.
//!
//! `P = (Φᵀ W Φ)⁻¹` for those points (`W` the forgetting weights), so that `rls` with λ = 1 equals
//! batch least squares from then on (and exponentially weighted least squares for λ < 1).
//! Records at a time already seen (within 1e-9 time units) are merged into that point as a
//! weighted mean, which is again the least-squares answer. Warm-up records report
//! `updated = true`, `inside = false` (no zone test before the model is determined), and their
//! prediction is the lower-degree interpolant of the points so far (the record's own value for the
//! very first one, so its residual is 0). Should an interpolant overflow, the newest point is
//! merged into its nearest neighbour instead, so warm-up never produces a non-finite state.

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use super::basis::all_finite;
use super::Fitter;

/// Two record times closer than this (in time units) are the same time during warm-up.
const SAME_TIME: f64 = 1e-9;

/// The distinct-time points collected before the model is determined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Warmup {
    /// Number of points in use.
    pub(super) n: usize,
    /// True once `order + 1` distinct points have fixed theta and P.
    pub(super) done: bool,
    /// Point times.
    pub(super) t: [f64; 3],
    /// Point weights (number of records merged, decayed by forgetting).
    pub(super) w: [f64; 3],
    /// Weighted mean of the values at each point.
    pub(super) m: [f64; 3],
}

/// Lagrange basis coefficient vectors (level, slope, curvature at offset 0) of the points `u`.
fn lagrange(u: &[f64; 3], k: usize) -> [[f64; 3]; 3] {
    let mut l = [[0.0; 3]; 3];
    match k {
        1 => l[0][0] = 1.0,
        2 => {
            let d0 = u[0] - u[1];
            l[0] = [-u[1] / d0, 1.0 / d0, 0.0];
            l[1] = [u[0] / d0, -1.0 / d0, 0.0];
        }
        _ => {
            for i in 0..3 {
                let (a, b) = ((i + 1) % 3, (i + 2) % 3);
                let den = (u[i] - u[a]) * (u[i] - u[b]);
                l[i] = [u[a] * u[b] / den, -(u[a] + u[b]) / den, 1.0 / den];
            }
        }
    }
    l
}

impl Fitter {
    /// A warm-up record: merges it into the distinct-time points, refits the interpolant and,
    /// once `order + 1` points exist, sets P. Returns the prediction before the record.
    pub(super) fn warm_up(&mut self, t: f64, y: f64) -> f64 {
        let d = self.spec.dim();
        let predicted = if self.warm.n == 0 { y } else { self.predict(t) };
        let lam = self.spec.forgetting;
        let saved = self.warm.clone();
        let w = &mut self.warm;
        for i in 0..w.n {
            w.w[i] *= lam;
        }
        let same = (0..w.n).find(|&i| (w.t[i] - t).abs() <= SAME_TIME);
        let slot = match same {
            Some(i) => {
                merge(w, i, y);
                i
            }
            None => {
                let i = w.n;
                w.t[i] = t;
                w.w[i] = 1.0;
                w.m[i] = y;
                w.n += 1;
                i
            }
        };
        if !self.refit(slot) {
            // Overflow: merge the newest point into its nearest neighbour instead.
            self.warm = saved;
            let w = &mut self.warm;
            for i in 0..w.n {
                w.w[i] *= lam;
            }
            let near = (0..w.n)
                .min_by(|&i, &j| (w.t[i] - t).abs().total_cmp(&(w.t[j] - t).abs()))
                .unwrap_or(0);
            merge(w, near, y);
            if !self.refit(near) {
                // Still overflowing: collapse everything into one weighted mean.
                collapse(&mut self.warm);
                self.refit(0);
            }
        }
        if self.warm.n == d {
            self.warm.done = true;
            let mut p = self.p;
            if d == 2 {
                self.guard::<2>(&mut p);
            } else {
                self.guard::<3>(&mut p);
            }
            self.p = p;
        }
        predicted
    }

    /// Interpolates the warm-up points with the origin at point `slot`; on success stores theta
    /// (and P when the points determine the model) and returns true.
    fn refit(&mut self, slot: usize) -> bool {
        let d = self.spec.dim();
        let w = &self.warm;
        let k = w.n;
        let o = w.t[slot];
        let mut u = [0.0; 3];
        for i in 0..k {
            u[i] = w.t[i] - o;
        }
        let l = lagrange(&u, k);
        let mut theta = [0.0; 3];
        for i in 0..k {
            for j in 0..k {
                theta[j] += w.m[i] * l[i][j];
            }
        }
        let mut p = self.p;
        if k == d {
            p = [[0.0; 3]; 3];
            for i in 0..k {
                for a in 0..d {
                    for b in 0..d {
                        p[a][b] += l[i][a] * l[i][b] / w.w[i];
                    }
                }
            }
        }
        let finite = if d == 2 {
            all_finite::<2>(&theta, &p)
        } else {
            all_finite::<3>(&theta, &p)
        };
        if !finite {
            return false;
        }
        self.theta = theta;
        self.p = p;
        self.origin = o;
        true
    }
}

/// Merges value `y` (weight 1) into warm-up point `i` as a weighted mean (a convex combination, so
/// it cannot overflow).
fn merge(w: &mut Warmup, i: usize, y: f64) {
    let total = w.w[i] + 1.0;
    w.m[i] = w.m[i] * (w.w[i] / total) + y * (1.0 / total);
    w.w[i] = total;
}

/// Collapses all warm-up points into one (weighted mean at the newest point's time).
fn collapse(w: &mut Warmup) {
    let mut total = 0.0;
    let mut m = 0.0;
    for i in 0..w.n {
        let nt = total + w.w[i];
        m = m * (total / nt) + w.m[i] * (w.w[i] / nt);
        total = nt;
    }
    w.t[0] = w.t[w.n - 1];
    w.m[0] = m;
    w.w[0] = total;
    w.n = 1;
}
