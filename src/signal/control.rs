//! The strategy's loop for one measured part: tool change, outlier gate, fit, residual chart and
//! predictive compensation, in that order.
//!
//! One call of [`Control::part`] per measurement of a key:
//!
//! 1. **Tool change** (a new value in the `tool` column, when `tool_column` is on): the fit and
//!    the compensation restart — the new tool has its own level, wear and wear offset — while
//!    the zone scale and the gauge sigma (the caller's) stay. The residual chart starts a new
//!    baseline.
//! 2. **Gate** (once the fit has seen `warmup` parts of this tool): the residual against the
//!    prediction decides whether the part is fitted, gated as an outlier, or completes a step.
//!    A step moves the fit to the new level in one go, restarts the chart's baseline and
//!    re-centres at once (no cooldown), as a setter would.
//! 3. **Fit** with the zone half-width `eps` (gated parts are not fitted).
//! 4. **Chart** the residual (not the gated parts: a gross gauge error says nothing about the
//!    process, and would ruin a baseline's sigma); only after `warmup` parts of the tool, since
//!    the first residuals of a fresh fit measure the fit, not the process.
//! 5. **Compensate** (after `warmup` parts of the tool, never on a gated part: it may be the
//!    first part of a step, and the fit does not know where the process is until the gate has
//!    decided) by the rule of [`super::compensate`]; the fit is shifted by the offset, which the
//!    caller applies to every later part.

use serde::{Deserialize, Serialize};

use super::chart::ResidualChart;
use super::compensate::{CompSpec, Compensation, Compensator, Spec};
use super::gate::{Gate, GateParams, ToolWatch, Verdict};
use crate::zone::fit::{FitCounts, Fitter, Step};
use crate::zone::spc::{Alarm, SpcSpec};
use crate::zone::ParamError;

/// Per-key state of the measurement loop (the fitter is the caller's).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Control {
    pub comp: Compensator,
    pub gate: Gate,
    pub tool: ToolWatch,
    pub chart: Option<ResidualChart>,
    /// Fit counts of the fitters retired at tool changes (add the current fitter's).
    pub retired: FitCounts,
}

/// One part as the loop sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part {
    /// Fitter time.
    pub t: f64,
    /// Measured value, after the offsets applied so far.
    pub y: f64,
    /// Zone half-width.
    pub eps: f64,
    /// Gauge sigma, when the zone knows it.
    pub sigma: Option<f64>,
    /// Tool id, when the record carries one.
    pub tool: Option<u32>,
    /// Specification, when known.
    pub spec: Option<Spec>,
}

/// What one part did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The fit's step (for a gated part: the prediction, not updated).
    pub fit: Step,
    pub verdict: Verdict,
    /// The new tool, when this part started one.
    pub tool_change: Option<u32>,
    pub compensation: Option<Compensation>,
    /// An SPC alarm on the residual (first part of an excursion).
    pub alarm: Option<Alarm>,
    /// Whether the measured value is outside the tolerance (None without limits).
    pub out_of_tolerance: Option<bool>,
}

impl Control {
    /// A loop charting residuals under `spc` when given.
    pub fn new(spc: Option<&SpcSpec>) -> Result<Self, ParamError> {
        Ok(Self {
            chart: spc.map(ResidualChart::new).transpose()?,
            ..Self::default()
        })
    }

    /// Fit counts over every tool of the key.
    pub fn counts(&self, fitter: &Fitter) -> FitCounts {
        let c = fitter.counts();
        FitCounts {
            records: self.retired.records + c.records,
            updates: self.retired.updates + c.updates,
            inside: self.retired.inside + c.inside,
            guards: self.retired.guards + c.guards,
        }
    }

    fn restart(&mut self, fitter: &mut Fitter) {
        self.retired = self.counts(fitter);
        // The spec was validated when the first fitter was built.
        if let Ok(f) = Fitter::new(*fitter.spec()) {
            *fitter = f;
        }
        self.comp.restart();
        self.gate.restart();
        if let Some(c) = self.chart.as_mut() {
            c.restart();
        }
    }

    /// Runs one part through the loop (see the module docs). `warmup` is the number of parts
    /// of a tool the fit needs before its predictions are trusted.
    pub fn part(
        &mut self,
        spec: &CompSpec,
        fitter: &mut Fitter,
        part: &Part,
        warmup: u64,
    ) -> Outcome {
        self.comp.tick();
        let mut tool_change = None;
        if spec.tool_column && self.tool.changed(part.tool) {
            self.restart(fitter);
            self.comp.tick();
            tool_change = part.tool;
        }
        let trusted = self.comp.parts > warmup && fitter.is_warm();
        let out_of_tolerance = part.spec.map(|s| s.out_of_tolerance(part.y));

        let verdict = if trusted {
            let params = GateParams {
                k: spec.gate,
                m: spec.step_parts,
                detect_steps: spec.detect_steps,
            };
            let residual = part.y - fitter.predict(part.t);
            self.gate.judge(
                &params,
                residual,
                part.eps,
                out_of_tolerance.unwrap_or(false),
            )
        } else {
            Verdict::Fit
        };
        if let Verdict::Step { shift } = verdict {
            fitter.shift_level(shift);
            if let Some(c) = self.chart.as_mut() {
                c.restart();
            }
        }
        let fit = match verdict {
            Verdict::Gated => held(fitter, part.t, part.y),
            _ => fitter.update(part.t, part.y, part.eps),
        };

        let mut alarm = None;
        if let (true, Some(chart)) = (trusted && verdict != Verdict::Gated, self.chart.as_mut()) {
            alarm = chart.update(fit.residual, part.sigma).alarm;
        }

        let mut compensation = None;
        if let (true, false, Some(s)) = (trusted, verdict == Verdict::Gated, part.spec) {
            let force = matches!(verdict, Verdict::Step { .. });
            compensation = self
                .comp
                .predictive(spec, &s, fit.level, fit.slope, part.eps, part.sigma, force);
            if let Some(c) = compensation {
                fitter.shift_level(c.offset);
            }
        }
        Outcome {
            fit,
            verdict,
            tool_change,
            compensation,
            alarm,
            out_of_tolerance,
        }
    }
}

/// The step of a part that is not fitted: the fit as it stands at `t`.
fn held(fitter: &Fitter, t: f64, y: f64) -> Step {
    let theta = fitter.theta();
    let dt = t - fitter.origin();
    let predicted = fitter.predict(t);
    Step {
        predicted,
        residual: y - predicted,
        inside: false,
        updated: false,
        level: predicted,
        slope: theta[1] + 2.0 * theta[2] * dt,
    }
}
