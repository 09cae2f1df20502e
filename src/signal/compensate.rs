//! Predictive tool compensation: act before the predicted deviation leaves the guarded tolerance.
//!
//! From the fitted level and slope the deviation from nominal `horizon` parts ahead is
//! `predicted = level + slope·horizon - nominal`. When it leaves
//! `[-(half_tolerance - guard), +(half_tolerance - guard)]`, a compensation with
//! `offset = nominal - level` is due: it re-centres the process at nominal now (the drift then
//! continues from there). The caller assumes the offset is applied before the next part (the
//! backtest adds it to later measurements; a live machine applies it) and shifts its own fit by
//! it, so one drift is compensated once, not on every part after.
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
    /// Look-ahead in parts (fitter time units).
    pub horizon: f64,
    /// Safety margin inside each spec limit, in measurement units.
    pub guard: f64,
    /// Parts to wait after a compensation before the next one may fire.
    pub cooldown: u64,
    pub nominal: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
}

impl Default for CompSpec {
    fn default() -> Self {
        Self {
            trigger: Trigger::Predictive,
            horizon: 5.0,
            guard: 0.0,
            cooldown: 0,
            nominal: None,
            lsl: None,
            usl: None,
        }
    }
}

impl CompSpec {
    pub fn validate(&self) -> Result<(), ParamError> {
        if !(self.horizon.is_finite() && self.horizon >= 0.0) {
            return Err(ParamError::new(
                "horizon",
                format!("must be >= 0, got {}", self.horizon),
            ));
        }
        if !(self.guard.is_finite() && self.guard >= 0.0) {
            return Err(ParamError::new(
                "guard",
                format!("must be >= 0, got {}", self.guard),
            ));
        }
        if let (Some(l), Some(u)) = (self.lsl, self.usl) {
            if !(l < u) {
                return Err(ParamError::new(
                    "lsl",
                    format!("must be below usl ({l} >= {u})"),
                ));
            }
        }
        Ok(())
    }
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
    pub predicted: f64,
}

/// Per-key compensation state (the cooldown counter).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Compensator {
    since_last: Option<u64>,
    pub count: u64,
}

impl Compensator {
    fn ready(&self, spec: &CompSpec) -> bool {
        self.since_last.is_none_or(|n| n >= spec.cooldown)
    }

    fn fire(&mut self, c: Compensation) -> Option<Compensation> {
        self.since_last = Some(0);
        self.count += 1;
        Some(c)
    }

    /// Counts one part; call once per record before deciding.
    pub fn tick(&mut self) {
        if let Some(n) = self.since_last.as_mut() {
            *n = n.saturating_add(1);
        }
    }

    /// The predictive rule on the fitted level and slope.
    pub fn predictive(
        &mut self,
        spec: &CompSpec,
        part: &Spec,
        level: f64,
        slope: f64,
    ) -> Option<Compensation> {
        if !self.ready(spec) {
            return None;
        }
        let predicted = level + slope * spec.horizon - part.nominal;
        let allowed = (0.5 * part.tolerance() - spec.guard).max(0.0);
        if predicted.is_finite() && predicted.abs() > allowed {
            return self.fire(Compensation {
                offset: part.nominal - level,
                predicted,
            });
        }
        None
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
