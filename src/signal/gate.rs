//! Outlier gate and step detection on the residuals of a fit: one wild part is counted and
//! ignored, a run of them is a real step.
//!
//! A measurement whose residual against the fit's prediction exceeds `k·eps` is *gated*: it is
//! counted but not fitted, so a single gross gauge error neither moves the fit nor triggers a
//! compensation. When `m` consecutive parts are beyond the gate on the same side, the process
//! really moved (a tool change, a new insert, a fixture shift): that is a *step* of the mean
//! residual of the run, and the caller moves its fit there in one go instead of creeping after
//! it through many dead-zone updates. `m` consecutive parts outside the tolerance are a step too
//! (of zero size: the fit already follows them, but the process must be re-centred now).
//!
//! With step detection off, a run of `m` beyond the gate is fitted normally again (the fit must
//! eventually follow a real move).

use serde::{Deserialize, Serialize};

/// What to do with one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Fit it as usual.
    Fit,
    /// A suspected outlier: count it, do not fit it.
    Gated,
    /// The process stepped by `shift` (measurement units): move the fit by it and re-centre.
    Step { shift: f64 },
}

/// Gate parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateParams {
    /// Gate width in zone half-widths (0 = no gate).
    pub k: f64,
    /// Consecutive parts that make a step (>= 1).
    pub m: u32,
    /// Whether runs are reported as steps (else a run beyond the gate is fitted again).
    pub detect_steps: bool,
}

/// Per-key gate state.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Gate {
    /// Current run of parts beyond the gate on side `side`.
    run: u32,
    side: i8,
    /// Sum of the residuals of that run.
    sum: f64,
    /// Current run of parts outside the tolerance.
    oot_run: u32,
    /// Parts gated (not fitted).
    pub gated: u64,
    /// Steps detected.
    pub steps: u64,
}

impl Gate {
    /// Judges one measurement by its `residual` against the prediction, the zone half-width
    /// `eps` and whether it is outside the tolerance.
    pub fn judge(
        &mut self,
        p: &GateParams,
        residual: f64,
        eps: f64,
        out_of_tolerance: bool,
    ) -> Verdict {
        if !residual.is_finite() {
            return Verdict::Fit;
        }
        self.oot_run = if out_of_tolerance {
            self.oot_run + 1
        } else {
            0
        };
        let beyond = p.k > 0.0 && eps > 0.0 && residual.abs() > p.k * eps;
        if !beyond {
            self.run = 0;
            self.sum = 0.0;
            if p.detect_steps && self.oot_run >= p.m {
                self.oot_run = 0;
                self.steps += 1;
                return Verdict::Step { shift: 0.0 };
            }
            return Verdict::Fit;
        }
        let side = if residual > 0.0 { 1 } else { -1 };
        if self.run > 0 && side == self.side {
            self.run += 1;
            self.sum += residual;
        } else {
            self.run = 1;
            self.side = side;
            self.sum = residual;
        }
        if self.run < p.m {
            self.gated += 1;
            return Verdict::Gated;
        }
        let shift = self.sum / f64::from(self.run);
        self.run = 0;
        self.sum = 0.0;
        if p.detect_steps {
            self.oot_run = 0;
            self.steps += 1;
            Verdict::Step { shift }
        } else {
            Verdict::Fit
        }
    }

    /// Forgets the current runs (a new tool); the counts stay.
    pub fn restart(&mut self) {
        self.run = 0;
        self.side = 0;
        self.sum = 0.0;
        self.oot_run = 0;
    }
}

/// Watches a `tool` column: a change of its value is a tool change.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolWatch {
    last: Option<u32>,
    /// Tool changes seen.
    pub changes: u64,
}

impl ToolWatch {
    /// True when `tool` differs from the last known tool. A missing value changes nothing; the
    /// first known tool of a key is not a change.
    pub fn changed(&mut self, tool: Option<u32>) -> bool {
        let Some(t) = tool else {
            return false;
        };
        let changed = self.last.is_some_and(|l| l != t);
        self.last = Some(t);
        self.changes += u64::from(changed);
        changed
    }
}
