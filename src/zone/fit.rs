//! Recursive trend fitters: RLS (the L2 baseline), set-membership RLS, SM-NLMS and robust RLS.
//!
//! # Model
//!
//! Every fitter tracks a local polynomial trend in time,
//! `y(t) ≈ level + slope·(t - τ) + curvature·(t - τ)²` (`order = 1` drops the curvature), with the
//! parameters `theta = (level, slope, curvature)` held *at an origin time τ* together with the
//! matrix `P` (the inverse of the, possibly weighted and forgotten, information matrix).
//!
//! **Moving the origin.** When a record at `t` changes the fit, the origin first moves to `t`
//! (`dt = t - τ`): `level += slope·dt + curvature·dt²`, `slope += 2·curvature·dt`, and
//! `P ← T P Tᵀ` with `T = [[1, dt, dt²], [0, 1, 2dt], [0, 0, 1]]`. This is an exact linear
//! reparametrisation of the same polynomial, so least-squares equivalences survive it, and the
//! regressor of the current record is then simply `(1, 0, 0)`: `φᵀPφ = P₁₁` and `Pφ` is the first
//! column of `P`. Records that change nothing (inside the zone of a set-membership fitter) leave
//! `theta`, `P` and τ untouched — bit for bit — and are predicted by evaluating the polynomial at
//! `t - τ`.
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
//! * `rls` — exponentially weighted least squares: every record is a weight-1 step and `P` is
//!   divided by `forgetting` (λ) at every record. With λ = 1 it equals batch least squares.
//! * `sm_rls` — set-membership RLS in the BEACON form (Nagaraj, Gollamudi, Kapoor, Huang, IEEE
//!   Trans. Signal Processing 47(11), 1999): only when `|e| > eps`, a weighted RLS step whose
//!   weight `w = (|e|/eps - 1)/φᵀPφ` puts the a-posteriori error exactly on the zone edge
//!   (`±eps`); in closed form `Δθ = Pφ·(e ∓ eps)/P₁₁` and `P ← P - c·PφφᵀP/P₁₁` with
//!   `c = 1 - eps/|e|`. Inside the zone nothing changes (no windup). Choice: correction steps do
//!   **not** forget — dividing `P` by λ is a uniform rescale that would leave every later theta
//!   unchanged (the step above is invariant to the scale of `P`) and only inflate the trace; the
//!   tracking of a set-membership fit comes from its data-dependent weights. λ still shapes the
//!   warm-up `P` and the `leak` steps (below), where the scale of `P` matters.
//! * `sm_nlms` — set-membership NLMS (Gollamudi, Nagaraj, Kapoor, Huang 1998): `μ = 1 - eps/|e|`
//!   outside the zone, 0 inside, and a normalised step `Δθ = μ·e·Mφ/(φᵀMφ)`, so the
//!   a-posteriori error lands on `±eps` too. NLMS depends on the metric `M` of the parameter
//!   space (with `M = I` and φ = (1, 0, 0) it would never learn a slope). Choice: `M` is the
//!   steady-state inverse information of discounted least squares with discount λ = `forgetting`
//!   at unit spacing, so the step direction is Brown's fading-memory polynomial filter gain
//!   (order 1: `(1-λ², (1-λ)²)`; order 2: `(1-λ³, 1.5(1-λ)²(1+λ), 0.5(1-λ)³)`) — the direction
//!   `rls` settles to — with a fixed shape and no `P` to maintain. `P` is unused; with λ = 1 only
//!   the level moves.
//! * `robust_rls` — recursive M-estimate: a weighted RLS step with weight
//!   `w = well.weight(e, eps) / 2` (1 for every residual with the quadratic well, so it is then
//!   *identical* to `rls`). A zero weight (inside a dead zone) changes nothing and does not
//!   forget; a positive weight forgets like `rls`.
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
//! # Warm-up
//!
//! The first `order + 1` records at distinct times fix theta exactly by polynomial interpolation
//! and set `P = (Φᵀ W Φ)⁻¹` for those points (`W` the forgetting weights), so that `rls` with
//! λ = 1 equals batch least squares from then on (and exponentially weighted least squares for
//! λ < 1). Records at a time already seen (within 1e-9 time units) are merged into that point as a
//! weighted mean, which is again the least-squares answer. Warm-up records report
//! `updated = true`, `inside = false` (no zone test before the model is determined), and their
//! prediction is the lower-degree interpolant of the points so far (the record's own value for the
//! very first one, so its residual is 0). Should an interpolant overflow, the newest point is
//! merged into its nearest neighbour instead, so warm-up never produces a non-finite state.
//!
//! # Inputs
//!
//! A record with non-finite `t` or `y` is ignored: the state and counts do not change and the
//! returned step has `updated = false` (its residual is then not finite either). `eps` should be
//! `> 0` (the scale guarantees a floor); a NaN or negative `eps` is treated as 0 (an empty zone).

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use super::well::Well;
use super::ParamError;

/// Two record times closer than this (in time units) are the same time during warm-up.
const SAME_TIME: f64 = 1e-9;

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
    /// corrections (see the module doc). Default 0.99 (an effective memory of about 100 steps).
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

    fn dim(&self) -> usize {
        usize::from(self.order) + 1
    }
}

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

/// The distinct-time points collected before the model is determined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Warmup {
    /// Number of points in use.
    n: usize,
    /// True once `order + 1` distinct points have fixed theta and P.
    done: bool,
    /// Point times.
    t: [f64; 3],
    /// Point weights (number of records merged, decayed by forgetting).
    w: [f64; 3],
    /// Weighted mean of the values at each point.
    m: [f64; 3],
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

type Mat = [[f64; 3]; 3];

/// Clamps an overflowed time difference so that polynomial evaluation stays NaN-free.
#[inline]
fn finite(x: f64) -> f64 {
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
fn level_at(theta: &[f64; 3], dt: f64) -> f64 {
    theta[0] + dt * (theta[1] + dt * theta[2])
}

/// Slope of the polynomial `theta` at offset `dt`.
#[inline]
fn slope_at(theta: &[f64; 3], dt: f64) -> f64 {
    theta[1] + dt * (2.0 * theta[2])
}

/// Theta re-expressed at an origin `dt` later.
#[inline]
fn shift_theta(theta: &[f64; 3], dt: f64) -> [f64; 3] {
    [level_at(theta, dt), slope_at(theta, dt), theta[2]]
}

/// `T P Tᵀ` for the origin move by `dt`, over the first `d` rows/columns.
#[inline]
fn shift_p(p: &Mat, dt: f64, d: usize) -> Mat {
    if dt == 0.0 {
        return *p;
    }
    let mut t = [[1.0, dt, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    if d == 3 {
        t[0][2] = dt * dt;
        t[1][2] = 2.0 * dt;
    }
    let mut tp = [[0.0; 3]; 3];
    for i in 0..d {
        for j in 0..d {
            let mut s = 0.0;
            for k in i..d {
                s += t[i][k] * p[k][j];
            }
            tp[i][j] = s;
        }
    }
    let mut out = [[0.0; 3]; 3];
    for i in 0..d {
        for j in i..d {
            let mut s = 0.0;
            for k in j..d {
                s += tp[i][k] * t[j][k];
            }
            out[i][j] = s;
            out[j][i] = s;
        }
    }
    out
}

fn all_finite(theta: &[f64; 3], p: &Mat, d: usize) -> bool {
    (0..d).all(|i| theta[i].is_finite() && (0..d).all(|j| p[i][j].is_finite()))
}

/// Weighted RLS step with regressor (1, 0, 0) and forgetting `lam`:
/// information `λR + wφφᵀ`, i.e. `k = wPφ/(λ + wP₁₁)`, `P ← (P - k·(Pφ)ᵀ)/λ`.
#[inline]
fn rls_step(theta: &mut [f64; 3], p: &mut Mat, e: f64, w: f64, lam: f64, d: usize) {
    let g = p[0][0];
    let denom = lam + w * g;
    let col = [p[0][0], p[1][0], p[2][0]];
    for i in 0..d {
        theta[i] += w * col[i] / denom * e;
    }
    for i in 0..d {
        for j in i..d {
            let v = (p[i][j] - w * col[i] * col[j] / denom) / lam;
            p[i][j] = v;
            p[j][i] = v;
        }
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
        let (predicted, inside, updated) = if self.warm.done {
            self.correct(t, y, eps)
        } else {
            (self.warm_up(t, y), false, true)
        };
        self.last_t = t;
        if inside {
            self.counts.inside += 1;
        }
        if updated {
            self.counts.updates += 1;
        }
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

    /// A post-warm-up record: returns (predicted, inside, updated).
    fn correct(&mut self, t: f64, y: f64, eps: f64) -> (f64, bool, bool) {
        let d = self.spec.dim();
        let lam = self.spec.forgetting;
        let leak = self.spec.leak;
        let dt = finite(t - self.origin);
        let predicted = level_at(&self.theta, dt);
        let e = y - predicted;
        let a = e.abs();
        let inside = a <= eps;
        let sign = if e < 0.0 { -1.0 } else { 1.0 };
        // Fast path, the common case of a set-membership fit: inside the zone without leak
        // nothing changes, so skip re-expressing theta and P at the new origin.
        if inside && leak == 0.0 && matches!(self.spec.method, Method::SmRls | Method::SmNlms) {
            return (predicted, true, false);
        }

        let mut theta = shift_theta(&self.theta, dt);
        let mut p = if self.spec.method == Method::SmNlms {
            self.p // not used by NLMS: kept as it was
        } else {
            shift_p(&self.p, dt, d)
        };
        // (a step is taken, it is a correction rather than a leak step)
        let (step, correction) = match self.spec.method {
            Method::Rls => {
                rls_step(&mut theta, &mut p, e, 1.0, lam, d);
                (true, true)
            }
            Method::RobustRls => {
                let w = self.spec.well.weight(e, eps) / 2.0;
                let w = if w.is_finite() && w > 0.0 { w } else { 0.0 };
                let w_step = if inside { w.max(leak) } else { w };
                if w_step > 0.0 {
                    rls_step(&mut theta, &mut p, e, w_step, lam, d);
                }
                (w_step > 0.0, w > 0.0)
            }
            Method::SmRls if inside => {
                if leak > 0.0 {
                    rls_step(&mut theta, &mut p, e, leak, lam, d);
                }
                (leak > 0.0, false)
            }
            Method::SmRls => {
                let g = p[0][0];
                if g > 0.0 && g.is_finite() {
                    // c = 1 - eps/|e|; the level lands exactly on the zone edge.
                    let keep = eps / a;
                    let c = 1.0 - keep;
                    let col = [p[0][0], p[1][0], p[2][0]];
                    let gain = (e - sign * eps) / g;
                    for i in 1..d {
                        theta[i] += col[i] * gain;
                    }
                    theta[0] = y - sign * eps;
                    for i in 1..d {
                        for j in i..d {
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
            Method::SmNlms => {
                let mu = if inside { leak } else { 1.0 - eps / a };
                if mu > 0.0 {
                    let dir = nlms_direction(lam, d);
                    for i in 1..d {
                        theta[i] += mu * e * dir[i];
                    }
                    theta[0] = predicted + mu * e;
                    (true, !inside)
                } else {
                    (false, false)
                }
            }
        };
        if !step || !all_finite(&theta, &p, d) {
            // Nothing to do, or overflow: the previous state stays.
            return (predicted, inside, false);
        }
        if self.spec.method != Method::SmNlms {
            self.guard(&mut p, d);
        }
        self.theta = theta;
        self.p = p;
        self.origin = t;
        (predicted, inside, correction)
    }

    /// Applies the trace guard to a freshly computed `P`.
    fn guard(&mut self, p: &mut Mat, d: usize) {
        let trace: f64 = (0..d).map(|i| p[i][i]).sum();
        let positive = (0..d).all(|i| p[i][i] > 0.0);
        if positive && trace <= self.spec.trace_max {
            return;
        }
        self.counts.guards += 1;
        if positive && self.spec.trace_guard == TraceGuard::Scale {
            let s = self.spec.trace_max / trace;
            for row in p.iter_mut().take(d) {
                for v in row.iter_mut().take(d) {
                    *v *= s;
                }
            }
        } else {
            *p = [[0.0; 3]; 3];
            for (i, row) in p.iter_mut().enumerate().take(d) {
                row[i] = self.spec.p0;
            }
        }
    }

    /// A warm-up record: merges it into the distinct-time points, refits the interpolant and,
    /// once `order + 1` points exist, sets P. Returns the prediction before the record.
    fn warm_up(&mut self, t: f64, y: f64) -> f64 {
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
            self.guard(&mut p, d);
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
        if !all_finite(&theta, &p, d) {
            return false;
        }
        self.theta = theta;
        self.p = p;
        self.origin = o;
        true
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
