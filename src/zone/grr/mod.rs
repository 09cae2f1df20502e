//! Gauge R&R for a crossed part × operator × trial study: two-way ANOVA with interaction pooling, and the AIAG average & range method — pure math, no IO.
//!
//! Conventions (AIAG *Measurement Systems Analysis*, 4th ed., 2010, chapter III section B):
//! - EV, AV, the interaction, GRR, PV and TV are **standard deviations** (1 sigma). The 4th
//!   edition's K constants are `1/d2*`, so `EV = R̄·K1` is already a sigma; the 3rd-and-older
//!   convention of 5.15-sigma spreads (K1 = 3.05 for 3 trials) is not used anywhere here.
//! - `GRR = sqrt(EV² + AV² + INT²)`: AV is the operator component alone and INT the
//!   part × operator interaction, as in the MSA ANOVA table; Minitab's "Reproducibility" is
//!   `sqrt(AV² + INT²)`.
//! - %study variation = 100·GRR/TV; %contribution = 100·GRR²/TV²; %tolerance uses a 6-sigma
//!   study span: 100·6·GRR/tolerance; ndc = floor(1.41·PV/GRR).
//! - ANOVA: part and operator are random effects; with the interaction in the model the part
//!   and operator F tests use the interaction mean square as denominator (Minitab, MSA). The
//!   interaction is pooled into repeatability when its p-value is >= `interaction_alpha`, and
//!   negative variance components are clipped to 0.
//!
//! This file runs an analysis and holds its result; the study data, the ANOVA and the average &
//! range method live in their own files.

mod anova;
mod range;
mod study;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::zone::ParamError;

pub use anova::{anova_table, AnovaRow, AnovaTable, ReducedAnova};
pub use range::{
    range_components, range_summary, RangeComponents, RangeSummary, D4_BY_TRIALS, K1_BY_TRIALS,
    K2_BY_OPERATORS, K3_BY_PARTS,
};
pub use study::{Factor, Study, StudyBuilder, StudyError, MIN_LEVELS};

use anova::anova_components;

/// The ndc factor of AIAG MSA 4th ed. (≈ √2).
pub const NDC_FACTOR: f64 = 1.41;

/// Width of the study span in standard deviations used for %tolerance (and Minitab's
/// "Study Var" column).
pub const STUDY_SPAN_SIGMAS: f64 = 6.0;

/// How the variance components are estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrrMethod {
    /// Two-way random-effects ANOVA with the part × operator interaction.
    Anova,
    /// AIAG average & range method (K1/K2/K3 constants, MSA 4th ed.).
    Range,
}

impl fmt::Display for GrrMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrrMethod::Anova => "anova",
            GrrMethod::Range => "range",
        })
    }
}

impl FromStr for GrrMethod {
    type Err = ParamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "anova" => Ok(GrrMethod::Anova),
            "range" => Ok(GrrMethod::Range),
            other => Err(ParamError::new(
                "method",
                format!("is `{other}`, expected `anova` or `range`"),
            )),
        }
    }
}

/// AIAG acceptance class of a %GRR (of study variation or of tolerance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// %GRR <= 10.
    Acceptable,
    /// 10 < %GRR <= 30: may be acceptable depending on the application and cost.
    Marginal,
    /// %GRR > 30.
    Unacceptable,
}

impl Verdict {
    /// AIAG MSA 4th ed. guideline: <= 10 % acceptable, 10–30 % marginal, > 30 % unacceptable.
    pub fn from_pct(pct_grr: f64) -> Verdict {
        if pct_grr <= 10.0 {
            Verdict::Acceptable
        } else if pct_grr <= 30.0 {
            Verdict::Marginal
        } else {
            Verdict::Unacceptable
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Acceptable => "acceptable",
            Verdict::Marginal => "marginal",
            Verdict::Unacceptable => "unacceptable",
        })
    }
}

/// Variance components (sigma², not sigma) of the study.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VarianceComponents {
    pub repeatability: f64,
    pub operator: f64,
    pub interaction: f64,
    pub part: f64,
}

impl VarianceComponents {
    /// Repeatability + operator + interaction.
    pub fn grr(&self) -> f64 {
        self.repeatability + self.operator + self.interaction
    }

    /// All components.
    pub fn total(&self) -> f64 {
        self.grr() + self.part
    }
}

/// The outcome of a gauge R&R analysis. All spreads are standard deviations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrrResult {
    pub method: GrrMethod,
    pub parts: usize,
    pub operators: usize,
    pub trials: usize,
    /// Repeatability (equipment variation).
    pub ev: f64,
    /// Reproducibility: the operator (appraiser) component alone.
    pub av: f64,
    /// Part × operator interaction (0 when pooled, and for the range method).
    pub interaction: f64,
    /// sqrt(EV² + AV² + INT²).
    pub grr: f64,
    /// Part variation.
    pub pv: f64,
    /// Total variation sqrt(GRR² + PV²).
    pub tv: f64,
    pub variance: VarianceComponents,
    pub pct_grr_study_var: f64,
    pub pct_grr_contribution: f64,
    pub tolerance: Option<f64>,
    pub pct_grr_tolerance: Option<f64>,
    /// floor(1.41·PV/GRR); saturates at `u32::MAX` when GRR is 0.
    pub ndc: u32,
    /// AIAG class of `pct_grr_study_var`.
    pub verdict: Verdict,
    /// AIAG class of `pct_grr_tolerance`, when a tolerance is given.
    pub verdict_tolerance: Option<Verdict>,
    /// ndc >= 5.
    pub ndc_adequate: bool,
    /// The interaction was pooled into repeatability (always false for the range method,
    /// which cannot separate an interaction).
    pub interaction_pooled: bool,
    /// p-value of the interaction F test (None for the range method).
    pub interaction_p: Option<f64>,
    pub anova: Option<AnovaTable>,
    pub range: Option<RangeSummary>,
}

/// One line of the variance-component / study-variation tables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ComponentLine {
    pub name: &'static str,
    pub std_dev: f64,
    pub variance: f64,
    pub pct_contribution: f64,
    pub pct_study_var: f64,
    pub pct_tolerance: Option<f64>,
}

impl GrrResult {
    /// EV, AV, interaction, GRR, PV and TV with their percentages, in that order.
    /// The interaction line is left out when it is pooled or not estimated.
    pub fn components(&self) -> Vec<ComponentLine> {
        let mut rows = vec![
            ("Repeatability (EV)", self.ev),
            ("Reproducibility (AV)", self.av),
        ];
        if self.method == GrrMethod::Anova && !self.interaction_pooled {
            rows.push(("Interaction (INT)", self.interaction));
        }
        rows.extend([
            ("Gauge R&R (GRR)", self.grr),
            ("Part variation (PV)", self.pv),
            ("Total variation (TV)", self.tv),
        ]);
        rows.into_iter()
            .map(|(name, sd)| ComponentLine {
                name,
                std_dev: sd,
                variance: sd * sd,
                pct_contribution: 100.0 * sd * sd / (self.tv * self.tv),
                pct_study_var: 100.0 * sd / self.tv,
                pct_tolerance: self.tolerance.map(|t| 100.0 * STUDY_SPAN_SIGMAS * sd / t),
            })
            .collect()
    }
}

/// Runs a gauge R&R analysis.
///
/// `tolerance` (USL − LSL) must be finite and > 0 when given; `interaction_alpha` must be in
/// [0, 1] (0 always pools; it is checked for both methods and used only by ANOVA).
pub fn analyse(
    study: &Study,
    method: GrrMethod,
    tolerance: Option<f64>,
    interaction_alpha: f64,
) -> Result<GrrResult, StudyError> {
    if let Some(t) = tolerance {
        if !(t.is_finite() && t > 0.0) {
            return Err(ParamError::new(
                "tolerance",
                format!("is {t}, must be a number > 0 (USL − LSL)"),
            )
            .into());
        }
    }
    if !(0.0..=1.0).contains(&interaction_alpha) {
        return Err(ParamError::new(
            "interaction_alpha",
            format!("is {interaction_alpha}, must be between 0 and 1 (usually 0.05)"),
        )
        .into());
    }
    match method {
        GrrMethod::Anova => {
            let anova = anova_table(study, interaction_alpha);
            let variance = anova_components(&anova, study);
            let pooled = anova.reduced.is_some();
            let p = anova.interaction.p;
            let ev = variance.repeatability.sqrt();
            let av = variance.operator.sqrt();
            let int = variance.interaction.sqrt();
            let pv = variance.part.sqrt();
            let grr = variance.grr().sqrt();
            let tv = variance.total().sqrt();
            finish(
                study,
                method,
                Parts {
                    ev,
                    av,
                    interaction: int,
                    grr,
                    pv,
                    tv,
                    variance,
                },
                tolerance,
                pooled,
                p,
                Some(anova),
                None,
            )
        }
        GrrMethod::Range => {
            let summary = range_summary(study)?;
            let c = range_components(
                summary.r_bar,
                summary.x_diff,
                summary.r_p,
                study.parts.len(),
                study.operators.len(),
                study.trials,
            )?;
            let grr = c.ev.hypot(c.av);
            let tv = grr.hypot(c.pv);
            let variance = VarianceComponents {
                repeatability: c.ev * c.ev,
                operator: c.av * c.av,
                interaction: 0.0,
                part: c.pv * c.pv,
            };
            finish(
                study,
                method,
                Parts {
                    ev: c.ev,
                    av: c.av,
                    interaction: 0.0,
                    grr,
                    pv: c.pv,
                    tv,
                    variance,
                },
                tolerance,
                false,
                None,
                None,
                Some(summary),
            )
        }
    }
}

struct Parts {
    ev: f64,
    av: f64,
    interaction: f64,
    grr: f64,
    pv: f64,
    tv: f64,
    variance: VarianceComponents,
}

#[allow(clippy::too_many_arguments)]
fn finish(
    study: &Study,
    method: GrrMethod,
    c: Parts,
    tolerance: Option<f64>,
    interaction_pooled: bool,
    interaction_p: Option<f64>,
    anova: Option<AnovaTable>,
    range: Option<RangeSummary>,
) -> Result<GrrResult, StudyError> {
    if c.tv.is_nan() || c.tv <= 0.0 {
        return Err(StudyError::NoVariation);
    }
    let pct_grr_study_var = 100.0 * c.grr / c.tv;
    let pct_grr_contribution = 100.0 * (c.grr / c.tv).powi(2);
    let pct_grr_tolerance = tolerance.map(|t| 100.0 * STUDY_SPAN_SIGMAS * c.grr / t);
    // `as` saturates: GRR = 0 gives u32::MAX.
    let ndc = (NDC_FACTOR * c.pv / c.grr).floor() as u32;
    Ok(GrrResult {
        method,
        parts: study.parts.len(),
        operators: study.operators.len(),
        trials: study.trials,
        ev: c.ev,
        av: c.av,
        interaction: c.interaction,
        grr: c.grr,
        pv: c.pv,
        tv: c.tv,
        variance: c.variance,
        pct_grr_study_var,
        pct_grr_contribution,
        tolerance,
        pct_grr_tolerance,
        ndc,
        verdict: Verdict::from_pct(pct_grr_study_var),
        verdict_tolerance: pct_grr_tolerance.map(Verdict::from_pct),
        ndc_adequate: ndc >= 5,
        interaction_pooled,
        interaction_p,
        anova,
        range,
    })
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (mut n, mut s) = (0usize, 0.0);
    for x in xs {
        n += 1;
        s += x;
    }
    s / n as f64
}
