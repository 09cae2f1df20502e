//! Loss shapes ("wells") of the zero-loss-zone fit: rho, its derivative psi, and the IRLS weight.
//!
//! Every shape is a function of the residual `r` and the zone half-width `eps > 0`. Conventions,
//! chosen so that shapes are interchangeable in a weighted least-squares fit:
//!
//! * `rho(0) = 0`, `rho >= 0`, `rho(-r) = rho(r)`;
//! * `psi = d rho / d r`, `weight = psi / r` (finite at `r = 0`, taken as its limit there);
//! * shapes with a quadratic bottom (`gaussian`, `reciprocal`, `log`, `huber`) are scaled so that
//!   `rho ≈ r²` near zero, exactly like `quadratic`; their IRLS weight at `r = 0` is therefore 2,
//!   and `weight / 2` is the relative weight a robust fit gives a residual.
//! * Parameters that are lengths (`softness`, `scale`, `threshold`, `knee`) are in units of eps,
//!   so one well works across symbols and gauges whatever their price or measurement unit.
//!
//! The configuration reads a [`Well`] straight from the `[zone]` table: `well = "<shape>"` next to
//! the shape's parameters, by their serde names. The `scale` of `gaussian`, `reciprocal` and
//! `log` is written `width` there (`[zone.scale]` is the zone's own scale); state snapshots keep
//! writing `scale`, and both names are read. A new shape is a new variant here, its arm in
//! [`Well::param_names`], and its case in the tests.

use serde::{Deserialize, Serialize};

use super::ParamError;

/// A loss shape. A value, not a trait object: `match` on the hot path, no virtual call.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "well", rename_all = "snake_case", deny_unknown_fields)]
pub enum Well {
    /// `r²`: ordinary least squares, the L2 baseline.
    Quadratic,
    /// `max(|r| - eps, 0)²`: exactly zero inside the zone, quadratic outside; C1 at the edge.
    /// The default.
    #[default]
    DeadZone,
    /// Smooth (C∞) dead zone: `g(r)² - g(0)²` with
    /// `g(r) = s·softplus((r - eps)/s) + s·softplus((-r - eps)/s)`, `s = softness·eps`.
    /// Tends to `dead_zone` as `softness -> 0`.
    SoftDeadZone {
        #[serde(default = "default_softness")]
        softness: f64,
    },
    /// Logistic square well: flat near zero, rising around ±eps with edge width
    /// `s = sharpness·eps`, flat again at `depth·eps²` for large |r| (a bounded, redescending
    /// loss: gross outliers get no pull at all).
    /// `rho = depth·eps²·(σ((r-eps)/s) + σ((-r-eps)/s) - 2σ(-eps/s)) / (1 - 2σ(-eps/s))`.
    SquareWell {
        #[serde(default = "default_depth")]
        depth: f64,
        #[serde(default = "default_softness")]
        sharpness: f64,
    },
    /// Welsch / Gaussian: `2c²(1 - exp(-r²/2c²))`, `c = scale·eps` (default scale 1).
    Gaussian {
        #[serde(
            rename(deserialize = "width"),
            alias = "scale",
            default = "default_one"
        )]
        scale: f64,
    },
    /// Geman-McClure / reciprocal: `c²·r²/(r² + c²)`, `c = scale·eps`.
    Reciprocal {
        #[serde(
            rename(deserialize = "width"),
            alias = "scale",
            default = "default_one"
        )]
        scale: f64,
    },
    /// Cauchy / log: `c²·ln(1 + r²/c²)`, `c = scale·eps`.
    Log {
        #[serde(
            rename(deserialize = "width"),
            alias = "scale",
            default = "default_one"
        )]
        scale: f64,
    },
    /// Huber: `r²` for `|r| <= c`, `2c|r| - c²` beyond, `c = threshold·eps` (default 1.345).
    Huber {
        #[serde(default = "default_huber")]
        threshold: f64,
    },
    /// Zero inside eps, quadratic pull `(|r|-eps)²` up to `|r| = knee·eps`, then a reciprocal
    /// tail `d_k² + d_k²·u/(u + d_k/2)` (`d_k = (knee-1)·eps`, `u = |r| - knee·eps`) that is C1 at
    /// the knee and plateaus at `2·d_k²`.
    Hybrid {
        #[serde(default = "default_knee")]
        knee: f64,
    },
}

fn default_softness() -> f64 {
    0.1
}
fn default_depth() -> f64 {
    1.0
}
fn default_one() -> f64 {
    1.0
}
fn default_huber() -> f64 {
    1.345
}
fn default_knee() -> f64 {
    3.0
}

/// Numerically stable softplus, `ln(1 + e^x)`.
#[inline]
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Logistic function, stable for large |x|.
#[inline]
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Derivative of the logistic function; computed from |x| so that it is exactly even.
#[inline]
fn sigmoid_d(x: f64) -> f64 {
    let s = sigmoid(-x.abs());
    s * (1.0 - s)
}

/// Below this |r|/eps the IRLS weight is taken as its analytic limit at r = 0 to avoid 0/0.
const TINY: f64 = 1e-9;

impl Well {
    /// Checks parameters; call once at configuration time.
    pub fn validate(&self) -> Result<(), ParamError> {
        let positive = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ParamError::new(
                    name,
                    format!("must be a finite number > 0, got {v}"),
                ))
            }
        };
        match *self {
            Well::Quadratic | Well::DeadZone => Ok(()),
            Well::SoftDeadZone { softness } => positive("softness", softness),
            Well::SquareWell { depth, sharpness } => {
                positive("depth", depth)?;
                positive("sharpness", sharpness)
            }
            Well::Gaussian { scale } | Well::Reciprocal { scale } | Well::Log { scale } => {
                positive("width", scale)
            }
            Well::Huber { threshold } => positive("threshold", threshold),
            Well::Hybrid { knee } => {
                if knee.is_finite() && knee > 1.0 {
                    Ok(())
                } else {
                    Err(ParamError::new(
                        "knee",
                        format!("must be > 1 (in units of eps), got {knee}"),
                    ))
                }
            }
        }
    }

    /// The configuration keys of this shape's parameters (besides `well`), as they are read;
    /// any other key next to this shape is refused by the configuration.
    pub fn param_names(&self) -> &'static [&'static str] {
        match self {
            Well::Quadratic | Well::DeadZone => &[],
            Well::SoftDeadZone { .. } => &["softness"],
            Well::SquareWell { .. } => &["depth", "sharpness"],
            Well::Gaussian { .. } | Well::Reciprocal { .. } | Well::Log { .. } => &["width"],
            Well::Huber { .. } => &["threshold"],
            Well::Hybrid { .. } => &["knee"],
        }
    }

    /// The configuration name of the shape (`dead_zone`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Well::Quadratic => "quadratic",
            Well::DeadZone => "dead_zone",
            Well::SoftDeadZone { .. } => "soft_dead_zone",
            Well::SquareWell { .. } => "square_well",
            Well::Gaussian { .. } => "gaussian",
            Well::Reciprocal { .. } => "reciprocal",
            Well::Log { .. } => "log",
            Well::Huber { .. } => "huber",
            Well::Hybrid { .. } => "hybrid",
        }
    }

    /// The loss of residual `r` with zone half-width `eps`.
    #[inline]
    pub fn rho(&self, r: f64, eps: f64) -> f64 {
        let a = r.abs();
        match *self {
            Well::Quadratic => r * r,
            Well::DeadZone => {
                let d = (a - eps).max(0.0);
                d * d
            }
            Well::SoftDeadZone { softness } => {
                let s = softness * eps;
                let g = soft_g(a, eps, s);
                let g0 = soft_g(0.0, eps, s);
                // (g - g0)(g + g0) keeps precision near r = 0.
                ((g - g0) * (g + g0)).max(0.0)
            }
            Well::SquareWell { depth, sharpness } => {
                let s = sharpness * eps;
                let base = 2.0 * sigmoid(-eps / s);
                let v = sigmoid((a - eps) / s) + sigmoid((-a - eps) / s) - base;
                depth * eps * eps * v.max(0.0) / (1.0 - base)
            }
            Well::Gaussian { scale } => {
                let c = scale * eps;
                -2.0 * c * c * (-(r * r) / (2.0 * c * c)).exp_m1()
            }
            Well::Reciprocal { scale } => {
                let c2 = (scale * eps).powi(2);
                c2 * r * r / (r * r + c2)
            }
            Well::Log { scale } => {
                let c2 = (scale * eps).powi(2);
                c2 * (r * r / c2).ln_1p()
            }
            Well::Huber { threshold } => {
                let c = threshold * eps;
                if a <= c {
                    r * r
                } else {
                    2.0 * c * a - c * c
                }
            }
            Well::Hybrid { knee } => {
                let dk = (knee - 1.0) * eps;
                let d = (a - eps).max(0.0);
                if d <= dk {
                    d * d
                } else {
                    let u = d - dk;
                    dk * dk + dk * dk * u / (u + 0.5 * dk)
                }
            }
        }
    }

    /// `d rho / d r`.
    #[inline]
    pub fn psi(&self, r: f64, eps: f64) -> f64 {
        let a = r.abs();
        let sign = if r < 0.0 { -1.0 } else { 1.0 };
        match *self {
            Well::Quadratic => 2.0 * r,
            Well::DeadZone => 2.0 * (a - eps).max(0.0) * sign,
            Well::SoftDeadZone { softness } => {
                let s = softness * eps;
                2.0 * sign * soft_g(a, eps, s) * (sigmoid((a - eps) / s) - sigmoid((-a - eps) / s))
            }
            Well::SquareWell { depth, sharpness } => {
                let s = sharpness * eps;
                let k = depth * eps * eps / (1.0 - 2.0 * sigmoid(-eps / s));
                sign * k / s * (sigmoid_d((a - eps) / s) - sigmoid_d((a + eps) / s))
            }
            Well::Gaussian { scale } => {
                let c = scale * eps;
                2.0 * r * (-(r * r) / (2.0 * c * c)).exp()
            }
            Well::Reciprocal { scale } => {
                let c2 = (scale * eps).powi(2);
                let q = r * r + c2;
                2.0 * r * c2 * c2 / (q * q)
            }
            Well::Log { scale } => {
                let c2 = (scale * eps).powi(2);
                2.0 * r * c2 / (c2 + r * r)
            }
            Well::Huber { threshold } => {
                let c = threshold * eps;
                if a <= c {
                    2.0 * r
                } else {
                    2.0 * c * sign
                }
            }
            Well::Hybrid { knee } => {
                let dk = (knee - 1.0) * eps;
                let d = (a - eps).max(0.0);
                if d <= dk {
                    2.0 * d * sign
                } else {
                    let u = d - dk;
                    let c = 0.5 * dk;
                    sign * dk * dk * c / ((u + c) * (u + c))
                }
            }
        }
    }

    /// The IRLS weight `psi(r)/r`, finite everywhere (its limit at `r = 0`).
    #[inline]
    pub fn weight(&self, r: f64, eps: f64) -> f64 {
        let a = r.abs();
        match *self {
            Well::Quadratic => 2.0,
            Well::DeadZone => {
                if a <= eps {
                    0.0
                } else {
                    2.0 * (a - eps) / a
                }
            }
            Well::SoftDeadZone { softness } => {
                let s = softness * eps;
                if a < TINY * eps {
                    // (σ((r-e)/s) - σ((-r-e)/s)) / r -> 2σ'(-e/s)/s
                    2.0 * soft_g(0.0, eps, s) * 2.0 * sigmoid_d(-eps / s) / s
                } else {
                    self.psi(r, eps) / r
                }
            }
            Well::SquareWell { depth, sharpness } => {
                let s = sharpness * eps;
                if a < TINY * eps {
                    // σ'((r-e)/s) - σ'((r+e)/s) ≈ 2σ''(-e/s)·r/s with σ'' = σ'(1 - 2σ).
                    let x = -eps / s;
                    let s2 = sigmoid_d(x) * (1.0 - 2.0 * sigmoid(x));
                    let k = depth * eps * eps / (1.0 - 2.0 * sigmoid(x));
                    2.0 * k * s2 / (s * s)
                } else {
                    self.psi(r, eps) / r
                }
            }
            Well::Gaussian { scale } => {
                let c = scale * eps;
                2.0 * (-(r * r) / (2.0 * c * c)).exp()
            }
            Well::Reciprocal { scale } => {
                let c2 = (scale * eps).powi(2);
                let q = r * r + c2;
                2.0 * c2 * c2 / (q * q)
            }
            Well::Log { scale } => {
                let c2 = (scale * eps).powi(2);
                2.0 * c2 / (c2 + r * r)
            }
            Well::Huber { threshold } => {
                let c = threshold * eps;
                if a <= c {
                    2.0
                } else {
                    2.0 * c / a
                }
            }
            Well::Hybrid { .. } => {
                if a <= eps {
                    0.0
                } else {
                    self.psi(r, eps) / r
                }
            }
        }
    }

    /// True when `rho` is exactly zero on the whole zone `|r| <= eps` (a hard dead zone).
    pub fn is_flat_inside(&self) -> bool {
        matches!(self, Well::DeadZone | Well::Hybrid { .. })
    }
}

/// The even, convex smoothing of `max(|r| - eps, 0)` used by `soft_dead_zone`.
#[inline]
fn soft_g(r: f64, eps: f64, s: f64) -> f64 {
    s * (softplus((r - eps) / s) + softplus((-r - eps) / s))
}
