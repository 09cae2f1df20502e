//! Predictive tool compensation: act before the predicted deviation leaves the guarded tolerance.
//!
//! # The rule
//!
//! With the fitted level `L` and wear rate `b` (slope per part), the value `H` parts ahead is
//! predicted as `P = L + b·H`. A compensation is due when `P` leaves the guarded tolerance
//! `[lsl + g, usl - g]` (or the level itself already has). Its offset moves the level to a target `T` (`offset = T - L`); the caller
//! applies it to every later part (the backtest adds it to later measurements, a live machine
//! changes its wear offset) and shifts its own fit by it, so one drift is compensated once.
//!
//! # Defaults derived from the zone, the gauge and the wear (a precision engineer's reasoning)
//!
//! Let `eps` be the zone half-width, `σ` the gauge sigma (σ_GRR; `eps / 3` when unknown) and `b`
//! the fitted wear rate.
//!
//! * **Guard** `g = eps + guard_sigmas·σ` (default `guard_sigmas = 3`). A dead-zone fit does not
//!   move while the data stay within `eps` of it, so its level can be off the true level by up to
//!   `eps`; the gauge adds its own noise to every part judged against the limits. Holding the
//!   fitted level `g` inside each limit keeps the true value in tolerance whatever the fit's
//!   error, and the *measured* value in tolerance but for a 3-sigma gauge excursion. The derived
//!   guard never takes more than half of either half tolerance, so some band always remains.
//! * **Horizon** `H = eps / |b|`, within `[1, horizon_max]`. A change of the wear becomes visible
//!   to a dead-zone fit only once it has moved the process by `eps`, which takes `eps / |b|`
//!   parts; looking that far ahead covers the fit's reaction time (and at least the next part,
//!   which the offset must reach in time). `b·H` is then about `eps` in the wear direction.
//! * **Aim.** A setter sets a wearing tool where it has the most room to wear (a turned diameter
//!   that grows is set low). The target is `T = nominal - sign(b)·d` with
//!   `d = min(aim·room, |b|·horizon_max)`: `room` is the distance from nominal to the guarded
//!   limit on the far side of the wear, `aim` in `[0, 1]` (default 1) and `|b|·horizon_max` the
//!   expected wear over the longest interval a linear wear extrapolation is trusted, so that a
//!   barely significant slope does not aim far. The target is kept inside the guarded tolerance
//!   together with its own prediction `T + b·H`, so a compensation never causes the next one.
//!   `aim = 0` re-centres on nominal.
//!
//! Each compensation then moves the level across most of the guarded band instead of half of
//! it, which about halves the number of compensations over a tool's life.
//!
//! The Shewhart baseline instead compensates when an individuals-chart point passes 3 sigma,
//! with `offset = nominal - x` (re-centre on the point itself).

use serde::{Deserialize, Serialize};

use crate::zone::ParamError;

/// Which rule triggers compensations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Predict from the dead-zone fit (the strategy).
    #[default]
    Predictive,
    /// Individuals chart beyond 3 sigma (the baseline).
    Shewhart,
}

/// Compensation parameters (`[compensation]` table). Spec limits come from each record when
/// present, else from these defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompSpec {
    pub trigger: Trigger,
    /// Look-ahead in parts (fitter time units); derived from eps and the wear rate when absent.
    pub horizon: Option<f64>,
    /// Longest look-ahead of the derived horizon and of the aim, in parts (default 100).
    pub horizon_max: f64,
    /// Safety margin inside each spec limit, in measurement units; derived when absent.
    pub guard: Option<f64>,
    /// Gauge sigmas in the derived guard (default 3).
    pub guard_sigmas: f64,
    /// Gauge sigma for the derived guard when the zone is not scaled by a gauge study
    /// (`kind = "grr"` gives it); `eps / 3` when neither is known.
    pub sigma: Option<f64>,
    /// How far past nominal a compensation sets the level, as a fraction of the room up to the
    /// far guarded limit (0 = nominal, default 1).
    pub aim: f64,
    /// Parts to wait after a compensation before the next one may fire.
    pub cooldown: u64,
    /// Outlier gate: measurements farther than `gate·eps` from the prediction are counted but
    /// not fitted (0 = off; default 2).
    pub gate: f64,
    /// Consecutive parts beyond the gate (same side) or outside the tolerance that make a step
    /// (default 3).
    pub step_parts: u32,
    /// Detect steps without a `tool` column and re-centre on them (default true).
    pub detect_steps: bool,
    /// Restart the fit and the compensation when the record's `tool` changes (default true).
    pub tool_column: bool,
    pub nominal: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
}

impl Default for CompSpec {
    fn default() -> Self {
        Self {
            trigger: Trigger::Predictive,
            horizon: None,
            horizon_max: 100.0,
            guard: None,
            guard_sigmas: 3.0,
            sigma: None,
            aim: 1.0,
            cooldown: 0,
            gate: 2.0,
            step_parts: 3,
            detect_steps: true,
            tool_column: true,
            nominal: None,
            lsl: None,
            usl: None,
        }
    }
}

fn non_negative(param: &'static str, v: f64) -> Result<(), ParamError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ParamError::new(param, format!("must be >= 0, got {v}")))
    }
}

impl CompSpec {
    pub fn validate(&self) -> Result<(), ParamError> {
        if let Some(h) = self.horizon {
            non_negative("horizon", h)?;
        }
        if let Some(g) = self.guard {
            non_negative("guard", g)?;
        }
        if let Some(s) = self.sigma {
            non_negative("sigma", s)?;
        }
        if !(self.horizon_max.is_finite() && self.horizon_max >= 1.0) {
            return Err(ParamError::new(
                "horizon_max",
                format!("must be >= 1 part, got {}", self.horizon_max),
            ));
        }
        non_negative("guard_sigmas", self.guard_sigmas)?;
        non_negative("gate", self.gate)?;
        if !(0.0..=1.0).contains(&self.aim) {
            return Err(ParamError::new(
                "aim",
                format!(
                    "must be in [0, 1] (0 = nominal, 1 = the far guarded limit), got {}",
                    self.aim
                ),
            ));
        }
        if self.step_parts == 0 {
            return Err(ParamError::new("step_parts", "must be at least 1, got 0"));
        }
        for (param, v) in [
            ("nominal", self.nominal),
            ("lsl", self.lsl),
            ("usl", self.usl),
        ] {
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                return Err(ParamError::new(
                    param,
                    format!("must be a finite number in measurement units, got {v}"),
                ));
            }
        }
        if let (Some(l), Some(u)) = (self.lsl, self.usl) {
            if l.partial_cmp(&u) != Some(std::cmp::Ordering::Less) {
                return Err(ParamError::new(
                    "lsl",
                    format!("must be below usl ({l} >= {u})"),
                ));
            }
        }
        Ok(())
    }

    /// The guard and horizon for one decision (configured values win over derived ones).
    /// `sigma` is the gauge sigma when the zone knows it; `slope` the fitted wear per part.
    pub fn plan(&self, part: &Spec, eps: f64, sigma: Option<f64>, slope: f64) -> Plan {
        let eps = if eps.is_finite() && eps > 0.0 {
            eps
        } else {
            0.0
        };
        let sigma = self.sigma.or(sigma).unwrap_or(eps / 3.0);
        let half = (part.usl - part.nominal)
            .min(part.nominal - part.lsl)
            .max(0.0);
        let guard = self
            .guard
            .unwrap_or_else(|| (eps + self.guard_sigmas * sigma).min(0.5 * half));
        let b = if slope.is_finite() { slope.abs() } else { 0.0 };
        let horizon = self.horizon.unwrap_or_else(|| {
            if b * self.horizon_max > eps {
                (eps / b).max(1.0)
            } else {
                self.horizon_max
            }
        });
        Plan {
            guard,
            horizon,
            low: part.lsl + guard,
            high: part.usl - guard,
        }
    }

    /// Where a compensation sets the level, for a fitted wear `slope` (see the module docs).
    pub fn target(&self, part: &Spec, plan: &Plan, slope: f64) -> f64 {
        let slope = if slope.is_finite() { slope } else { 0.0 };
        let reach = slope.abs() * self.horizon_max;
        let target = if slope > 0.0 {
            part.nominal - (self.aim * (part.nominal - plan.low).max(0.0)).min(reach)
        } else if slope < 0.0 {
            part.nominal + (self.aim * (plan.high - part.nominal).max(0.0)).min(reach)
        } else {
            part.nominal
        };
        // Keep the target and its own prediction inside the guarded band (when it has room).
        let ahead = slope * plan.horizon;
        let lo = plan.low - ahead.min(0.0);
        let hi = plan.high - ahead.max(0.0);
        if lo <= hi {
            target.clamp(lo, hi)
        } else {
            part.nominal
        }
    }
}

/// Guard and horizon in force for one decision, and the guarded limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub guard: f64,
    pub horizon: f64,
    /// `lsl + guard`.
    pub low: f64,
    /// `usl - guard`.
    pub high: f64,
}

/// Specification of one part feature, resolved from the record and the defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub nominal: f64,
    pub lsl: f64,
    pub usl: f64,
}

impl Spec {
    /// Resolves nominal and limits; nominal defaults to the middle of the limits. `None` when
    /// the limits are unknown (no compensation possible).
    pub fn resolve(
        spec: &CompSpec,
        nominal: Option<f64>,
        lsl: Option<f64>,
        usl: Option<f64>,
    ) -> Option<Spec> {
        let lsl = lsl.or(spec.lsl)?;
        let usl = usl.or(spec.usl)?;
        let nominal = nominal.or(spec.nominal).unwrap_or(0.5 * (lsl + usl));
        Some(Spec { nominal, lsl, usl })
    }

    pub fn tolerance(&self) -> f64 {
        self.usl - self.lsl
    }

    /// True when `x` is outside [lsl, usl].
    pub fn out_of_tolerance(&self, x: f64) -> bool {
        x < self.lsl || x > self.usl
    }
}

/// A compensation decided on one record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compensation {
    pub offset: f64,
    /// Predicted deviation from nominal that triggered it.
    pub predicted: f64,
}

/// Per-key compensation state: cooldown counter, the offset applied on the current tool.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Compensator {
    since_last: Option<u64>,
    pub count: u64,
    /// Sum of the offsets applied since the current tool started.
    #[serde(default)]
    pub applied: f64,
    /// Parts seen since the current tool started (or the key's first part).
    #[serde(default)]
    pub parts: u64,
}

impl Compensator {
    fn ready(&self, spec: &CompSpec) -> bool {
        self.since_last.is_none_or(|n| n >= spec.cooldown)
    }

    fn fire(&mut self, c: Compensation) -> Option<Compensation> {
        self.since_last = Some(0);
        self.count += 1;
        self.applied += c.offset;
        Some(c)
    }

    /// Counts one part; call once per record before deciding.
    pub fn tick(&mut self) {
        if let Some(n) = self.since_last.as_mut() {
            *n = n.saturating_add(1);
        }
        self.parts = self.parts.saturating_add(1);
    }

    /// A new tool: its wear offset starts from zero and the cooldown is over (the count stays).
    pub fn restart(&mut self) {
        self.since_last = None;
        self.applied = 0.0;
        self.parts = 0;
    }

    /// The predictive rule on the fitted level and slope (see the module docs). `force` skips
    /// the cooldown (a re-centre after a detected step).
    #[allow(clippy::too_many_arguments)]
    pub fn predictive(
        &mut self,
        spec: &CompSpec,
        part: &Spec,
        level: f64,
        slope: f64,
        eps: f64,
        sigma: Option<f64>,
        force: bool,
    ) -> Option<Compensation> {
        if !(force || self.ready(spec)) || !(level.is_finite() && slope.is_finite()) {
            return None;
        }
        let plan = spec.plan(part, eps, sigma, slope);
        let ahead = level + slope * plan.horizon;
        let inside = |x: f64| x >= plan.low && x <= plan.high;
        if inside(ahead) && inside(level) {
            return None;
        }
        let offset = spec.target(part, &plan, slope) - level;
        self.fire(Compensation {
            offset,
            predicted: ahead - part.nominal,
        })
    }

    /// The Shewhart baseline: a 3-sigma individuals-chart signal on `x`.
    pub fn shewhart(&mut self, spec: &CompSpec, part: &Spec, x: f64) -> Option<Compensation> {
        if !self.ready(spec) {
            return None;
        }
        self.fire(Compensation {
            offset: part.nominal - x,
            predicted: x - part.nominal,
        })
    }
}
