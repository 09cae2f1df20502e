//! SPC on the compensated process: charts the residual of the fit, restarts with a new tool,
//! and raises one alarm per excursion.
//!
//! A wearing, compensated process is not stationary in its raw values — the wear drifts them and
//! every compensation steps them — so a chart of the raw values is a wall of alarms that says
//! nothing. What should be stable is the residual `y - predicted` of the measurement (after the
//! applied offsets) against the fit's prediction: gauge noise plus part-to-part variation. This
//! chart runs the configured [`Spc`] on that residual, with its centre fixed at 0 (a residual
//! has no other expected value) and its sigma estimated from the first `baseline` residuals
//! (moving ranges, so an unnoticed slow drift does not inflate it) unless given.
//!
//! * **Restart.** A new tool is a new process: [`ResidualChart::restart`] starts a new
//!   baseline, so the limits are re-estimated from the new tool's residuals.
//! * **One alarm per excursion.** An excursion starts on a part where at least one rule fires
//!   and lasts until [`QUIET`] consecutive parts have passed with no rule firing; only its first
//!   part raises an alarm (the first rule that fired, in [`Rule::ALL`] order). The Western
//!   Electric windows reach up to eight parts back, so one cause keeps some rule firing, on and
//!   off, for up to eight parts; counting each of those again would say the same thing many
//!   times.

use serde::{Deserialize, Serialize};

use crate::zone::spc::{Alarm, Alarms, Rule, Spc, SpcSpec};
use crate::zone::ParamError;

/// Parts without any rule firing that end an excursion: the longest Western Electric window.
pub const QUIET: u32 = 8;

/// The residual chart of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidualChart {
    spc: Spc,
    /// Parts since a rule last fired (`QUIET` or more: not in an excursion).
    quiet: u32,
    /// Alarms raised (excursions started).
    pub alarms: u64,
    /// Whether the current limits use the sigma floor instead of the baseline's estimate.
    #[serde(default)]
    floored: bool,
}

/// What one residual did to the chart.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChartStep {
    /// Every rule that fires on this part.
    pub firing: Alarms,
    /// The alarm to raise: set on the first part of an excursion only.
    pub alarm: Option<Alarm>,
}

impl ResidualChart {
    /// A chart of residuals under `spec` (its `target` is replaced by 0).
    pub fn new(spec: &SpcSpec) -> Result<Self, ParamError> {
        let spec = SpcSpec {
            target: Some(0.0),
            ..spec.clone()
        };
        Ok(Self {
            spc: Spc::new(&spec)?,
            quiet: QUIET,
            alarms: 0,
            floored: false,
        })
    }

    /// Starts a new baseline (new tool): limits are estimated again. The alarm count stays.
    pub fn restart(&mut self) {
        let mut spec = self.spc.spec().clone();
        if self.floored {
            spec.sigma = None;
            self.floored = false;
        }
        // The spec was validated when the chart was built.
        if let Ok(spc) = Spc::new(&spec) {
            self.spc = spc;
        }
        self.quiet = QUIET;
    }

    /// The underlying chart (its sigma, limits).
    pub fn spc(&self) -> &Spc {
        &self.spc
    }

    /// Charts one residual. `floor` is the least sigma the chart may use (the gauge's sigma:
    /// no residual varies less than the gauge that measures it, so a smaller baseline estimate
    /// is chance, and would put the limits too close).
    pub fn update(&mut self, residual: f64, floor: Option<f64>) -> ChartStep {
        let was_frozen = self.spc.sigma().is_some();
        let firing = self.spc.update(residual);
        if let (false, Some(s), Some(f)) = (was_frozen, self.spc.sigma(), floor) {
            if s < f && f.is_finite() {
                let spec = SpcSpec {
                    sigma: Some(f),
                    ..self.spc.spec().clone()
                };
                if let Ok(spc) = Spc::new(&spec) {
                    // The same chart with the floor as its known sigma (phase II at once).
                    self.spc = spc;
                    self.floored = true;
                }
            }
        }
        let started = !firing.is_empty() && self.quiet >= QUIET;
        self.quiet = if firing.is_empty() {
            self.quiet.saturating_add(1)
        } else {
            0
        };
        let alarm = if started {
            self.alarms += 1;
            Rule::ALL.iter().find_map(|&r| firing.get(r))
        } else {
            None
        };
        ChartStep { firing, alarm }
    }
}
