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

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use crate::zone::ParamError;

/// The fewest parts, operators and trials a crossed study can have.
pub const MIN_LEVELS: usize = 2;

/// The ndc factor of AIAG MSA 4th ed. (≈ √2).
pub const NDC_FACTOR: f64 = 1.41;

/// Width of the study span in standard deviations used for %tolerance (and Minitab's
/// "Study Var" column).
pub const STUDY_SPAN_SIGMAS: f64 = 6.0;

/// AIAG MSA 4th ed. `K1 = 1/d2*` by number of trials (average & range method).
pub const K1_BY_TRIALS: [(usize, f64); 2] = [(2, 0.8862), (3, 0.5908)];
/// AIAG MSA 4th ed. `K2 = 1/d2*` by number of operators (appraisers).
#[allow(clippy::approx_constant)] // 0.7071 is the value the MSA table prints.
pub const K2_BY_OPERATORS: [(usize, f64); 2] = [(2, 0.7071), (3, 0.5231)];
/// AIAG MSA 4th ed. `K3 = 1/d2*` by number of parts.
#[allow(clippy::approx_constant)] // 0.7071 is the value the MSA table prints.
pub const K3_BY_PARTS: [(usize, f64); 9] = [
    (2, 0.7071),
    (3, 0.5231),
    (4, 0.4467),
    (5, 0.4030),
    (6, 0.3742),
    (7, 0.3534),
    (8, 0.3375),
    (9, 0.3249),
    (10, 0.3146),
];
/// D4 used for the upper control limit of the ranges on the MSA data sheet (3.27 for 2
/// trials, 2.58 for 3 trials).
pub const D4_BY_TRIALS: [(usize, f64); 2] = [(2, 3.27), (3, 2.58)];

/// One factor of the study, used to name what an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Parts,
    Operators,
    Trials,
}

impl Factor {
    fn hint(self) -> &'static str {
        match self {
            Factor::Parts => "measure at least 2 different parts (10 is usual)",
            Factor::Operators => "have at least 2 operators measure every part",
            Factor::Trials => {
                "have every operator measure every part at least twice (one row per measurement)"
            }
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Factor::Parts => "parts",
            Factor::Operators => "operators",
            Factor::Trials => "trials",
        })
    }
}

/// Why a study cannot be built or analysed. Observation indices count pushed measurements
/// from 0 in the order they were given, so a reader can map them back to file lines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StudyError {
    #[error("the study has no measurements; give rows with a part, an operator and a value")]
    Empty,
    #[error(
        "the study has {found} {factor}, a crossed gauge R&R needs at least {min}: {hint}",
        hint = factor.hint()
    )]
    TooFewLevels {
        factor: Factor,
        found: usize,
        min: usize,
    },
    #[error(
        "unbalanced design: part `{part}` × operator `{operator}` has {found} measurement(s) \
         while most part × operator cells have {expected} ({cells} cell(s) differ); every \
         operator must measure every part the same number of times"
    )]
    Unbalanced {
        part: String,
        operator: String,
        found: usize,
        expected: usize,
        /// How many cells differ from `expected`.
        cells: usize,
        /// Index of the first measurement of the offending cell (None: the cell is empty).
        first_observation: Option<usize>,
    },
    #[error("measurement {index} is {value}, not a finite number")]
    NonFinite { index: usize, value: f64 },
    #[error(
        "{values} values do not fill {parts} parts × {operators} operators × r trials \
         (need a multiple of {cell_count})",
        cell_count = parts * operators
    )]
    Layout {
        values: usize,
        parts: usize,
        operators: usize,
    },
    #[error("{factor} id `{id}` is listed twice; ids must be unique")]
    DuplicateLevel { factor: Factor, id: String },
    #[error(
        "the average & range method has AIAG MSA 4th ed. constants for {supported} {factor}, \
         the study has {found}: use the ANOVA method"
    )]
    RangeUnsupported {
        factor: Factor,
        found: usize,
        supported: &'static str,
    },
    #[error(
        "the study shows no variation at all (total variation is 0): check that the gauge \
         resolution is finer than the part-to-part spread"
    )]
    NoVariation,
    #[error(transparent)]
    Param(#[from] ParamError),
}

/// A validated, balanced crossed study: every part measured `trials` times by every operator.
///
/// Part and operator ids keep the order in which they were first given.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    parts: Vec<String>,
    operators: Vec<String>,
    trials: usize,
    /// Layout: `((part * operators) + operator) * trials + trial`.
    values: Vec<f64>,
}

impl Study {
    /// Builds a study from a balanced layout: `values[((i·o) + j)·r + k]` is trial `k` of
    /// part `i` by operator `j`; the number of trials `r` is `values.len() / (p·o)`.
    pub fn from_cells(
        parts: Vec<String>,
        operators: Vec<String>,
        values: Vec<f64>,
    ) -> Result<Study, StudyError> {
        check_unique(&parts, Factor::Parts)?;
        check_unique(&operators, Factor::Operators)?;
        if values.is_empty() {
            return Err(StudyError::Empty);
        }
        check_levels(Factor::Parts, parts.len())?;
        check_levels(Factor::Operators, operators.len())?;
        let cells = parts.len() * operators.len();
        if !values.len().is_multiple_of(cells) {
            return Err(StudyError::Layout {
                values: values.len(),
                parts: parts.len(),
                operators: operators.len(),
            });
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StudyError::NonFinite { index, value });
        }
        let trials = values.len() / cells;
        check_levels(Factor::Trials, trials)?;
        Ok(Study {
            parts,
            operators,
            trials,
            values,
        })
    }

    /// Part ids, in order of first appearance.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// Operator ids, in order of first appearance.
    pub fn operators(&self) -> &[String] {
        &self.operators
    }

    /// Repeated measurements per part × operator cell.
    pub fn trials(&self) -> usize {
        self.trials
    }

    /// The `trials` measurements of part `part` by operator `operator` (indices).
    pub fn cell(&self, part: usize, operator: usize) -> &[f64] {
        let start = (part * self.operators.len() + operator) * self.trials;
        &self.values[start..start + self.trials]
    }

    /// All measurements in the balanced layout (see [`Study::from_cells`]).
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

fn check_levels(factor: Factor, found: usize) -> Result<(), StudyError> {
    if found < MIN_LEVELS {
        return Err(StudyError::TooFewLevels {
            factor,
            found,
            min: MIN_LEVELS,
        });
    }
    Ok(())
}

fn check_unique(ids: &[String], factor: Factor) -> Result<(), StudyError> {
    let mut seen = HashMap::with_capacity(ids.len());
    for id in ids {
        if seen.insert(id.as_str(), ()).is_some() {
            return Err(StudyError::DuplicateLevel {
                factor,
                id: id.clone(),
            });
        }
    }
    Ok(())
}

/// Collects `(part, operator, value)` triples in any order; the trial number of a
/// measurement is its order of appearance within its part × operator cell.
#[derive(Debug, Default, Clone)]
pub struct StudyBuilder {
    parts: Vec<String>,
    part_index: HashMap<String, usize>,
    operators: Vec<String>,
    operator_index: HashMap<String, usize>,
    /// (part, operator) -> (index of first observation, values in order).
    cells: HashMap<(usize, usize), (usize, Vec<f64>)>,
    observations: usize,
}

impl StudyBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one measurement. A non-finite value is rejected at once.
    pub fn push(&mut self, part: &str, operator: &str, value: f64) -> Result<(), StudyError> {
        let index = self.observations;
        if !value.is_finite() {
            return Err(StudyError::NonFinite { index, value });
        }
        let i = level(&mut self.parts, &mut self.part_index, part);
        let j = level(&mut self.operators, &mut self.operator_index, operator);
        self.cells
            .entry((i, j))
            .or_insert_with(|| (index, Vec::new()))
            .1
            .push(value);
        self.observations += 1;
        Ok(())
    }

    /// Number of measurements pushed so far.
    pub fn len(&self) -> usize {
        self.observations
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.observations == 0
    }

    /// Checks the design (at least 2 parts, 2 operators, 2 trials, every cell the same size)
    /// and lays the values out.
    ///
    /// For an unbalanced design the expected cell size is the most common one (ties: the
    /// larger), and the error names the first offending cell in part, then operator, order.
    pub fn build(self) -> Result<Study, StudyError> {
        if self.observations == 0 {
            return Err(StudyError::Empty);
        }
        let (p, o) = (self.parts.len(), self.operators.len());
        check_levels(Factor::Parts, p)?;
        check_levels(Factor::Operators, o)?;
        let size = |i: usize, j: usize| self.cells.get(&(i, j)).map_or(0, |c| c.1.len());
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for i in 0..p {
            for j in 0..o {
                *counts.entry(size(i, j)).or_default() += 1;
            }
        }
        let expected = counts
            .iter()
            .max_by_key(|(size, n)| (**n, **size))
            .map(|(size, _)| *size)
            .unwrap_or(0);
        let differing = p * o - counts.get(&expected).copied().unwrap_or(0);
        if differing > 0 {
            let (i, j) = (0..p)
                .flat_map(|i| (0..o).map(move |j| (i, j)))
                .find(|&(i, j)| size(i, j) != expected)
                .expect("a differing cell exists");
            return Err(StudyError::Unbalanced {
                part: self.parts[i].clone(),
                operator: self.operators[j].clone(),
                found: size(i, j),
                expected,
                cells: differing,
                first_observation: self.cells.get(&(i, j)).map(|c| c.0),
            });
        }
        check_levels(Factor::Trials, expected)?;
        let mut values = Vec::with_capacity(self.observations);
        for i in 0..p {
            for j in 0..o {
                values.extend_from_slice(&self.cells[&(i, j)].1);
            }
        }
        Ok(Study {
            parts: self.parts,
            operators: self.operators,
            trials: expected,
            values,
        })
    }
}

fn level(names: &mut Vec<String>, index: &mut HashMap<String, usize>, name: &str) -> usize {
    if let Some(&i) = index.get(name) {
        return i;
    }
    names.push(name.to_owned());
    index.insert(name.to_owned(), names.len() - 1);
    names.len() - 1
}

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

/// One line of an ANOVA table. `ms`, `f` and `p` are absent where the table has no entry
/// (total row; F of the error row). `f` is infinite when its denominator is 0 and its
/// numerator is not, and absent when both are 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnovaRow {
    pub df: usize,
    pub ss: f64,
    pub ms: Option<f64>,
    pub f: Option<f64>,
    pub p: Option<f64>,
}

/// The two-way ANOVA without interaction, used when the interaction is pooled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReducedAnova {
    pub part: AnovaRow,
    pub operator: AnovaRow,
    /// Interaction and repeatability pooled.
    pub repeatability: AnovaRow,
    pub total: AnovaRow,
}

/// Two-way ANOVA with interaction (Minitab layout), and the reduced table when pooled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnovaTable {
    pub part: AnovaRow,
    pub operator: AnovaRow,
    pub interaction: AnovaRow,
    pub repeatability: AnovaRow,
    pub total: AnovaRow,
    /// The alpha the interaction p-value was compared with.
    pub alpha: f64,
    /// Present when the interaction was pooled into repeatability.
    pub reduced: Option<ReducedAnova>,
}

/// The intermediate quantities of the AIAG average & range data sheet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeSummary {
    /// X̄ of each operator (mean of all its measurements), in operator order.
    pub operator_means: Vec<f64>,
    /// R̄ of each operator (mean of its within-cell ranges).
    pub operator_mean_ranges: Vec<f64>,
    /// Mean of each part over all operators and trials, in part order.
    pub part_means: Vec<f64>,
    /// R̄̄: mean of the operator R̄s.
    pub r_bar: f64,
    /// X̄diff: max operator mean − min operator mean.
    pub x_diff: f64,
    /// Rp: max part mean − min part mean.
    pub r_p: f64,
    /// UCL of the ranges: D4·R̄̄.
    pub ucl_r: f64,
    /// Number of cells whose range is above `ucl_r` (the MSA asks to re-measure them).
    pub ranges_above_ucl: usize,
    pub k1: f64,
    pub k2: f64,
    pub k3: f64,
}

/// EV, AV and PV (standard deviations) from the average & range intermediates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RangeComponents {
    pub ev: f64,
    pub av: f64,
    pub pv: f64,
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

/// Two-way crossed ANOVA with interaction; when the interaction p-value is >= `alpha` the
/// reduced table (interaction pooled into repeatability) is added.
pub fn anova_table(study: &Study, alpha: f64) -> AnovaTable {
    let (p, o, r) = (study.parts.len(), study.operators.len(), study.trials);
    let grand = mean(study.values.iter().copied());
    let part_means: Vec<f64> = (0..p)
        .map(|i| mean((0..o).flat_map(|j| study.cell(i, j).iter().copied())))
        .collect();
    let operator_means: Vec<f64> = (0..o)
        .map(|j| mean((0..p).flat_map(|i| study.cell(i, j).iter().copied())))
        .collect();
    let sq = |x: f64| x * x;
    let ss_part = (o * r) as f64 * part_means.iter().map(|m| sq(m - grand)).sum::<f64>();
    let ss_operator = (p * r) as f64 * operator_means.iter().map(|m| sq(m - grand)).sum::<f64>();
    let mut ss_cells = 0.0;
    let mut ss_error = 0.0;
    for i in 0..p {
        for j in 0..o {
            let cell = study.cell(i, j);
            let m = mean(cell.iter().copied());
            ss_cells += r as f64 * sq(m - grand);
            ss_error += cell.iter().map(|y| sq(y - m)).sum::<f64>();
        }
    }
    let ss_total: f64 = study.values.iter().map(|y| sq(y - grand)).sum();
    // Clip rounding noise: the interaction SS is a difference of sums.
    let ss_int = (ss_cells - ss_part - ss_operator).max(0.0);

    let (df_p, df_o) = (p - 1, o - 1);
    let df_i = df_p * df_o;
    let df_e = p * o * (r - 1);
    let df_t = p * o * r - 1;
    let (ms_p, ms_o) = (ss_part / df_p as f64, ss_operator / df_o as f64);
    let ms_i = ss_int / df_i as f64;
    let ms_e = ss_error / df_e as f64;

    let test = |ms: f64, df: usize, ms_den: f64, df_den: usize| f_test(ms, df, ms_den, df_den);
    let (f_i, p_i) = test(ms_i, df_i, ms_e, df_e);
    let (f_p, p_p) = test(ms_p, df_p, ms_i, df_i);
    let (f_o, p_o) = test(ms_o, df_o, ms_i, df_i);
    let row = |df, ss, ms, f, p| AnovaRow {
        df,
        ss,
        ms: Some(ms),
        f,
        p,
    };
    let total = AnovaRow {
        df: df_t,
        ss: ss_total,
        ms: None,
        f: None,
        p: None,
    };
    // p is None only for 0/0, where there is no evidence of an interaction: pool.
    let pool = p_i.is_none_or(|pv| pv >= alpha);
    let reduced = pool.then(|| {
        let df_pool = df_i + df_e;
        let ms_pool = (ss_int + ss_error) / df_pool as f64;
        let (f_p2, p_p2) = test(ms_p, df_p, ms_pool, df_pool);
        let (f_o2, p_o2) = test(ms_o, df_o, ms_pool, df_pool);
        ReducedAnova {
            part: row(df_p, ss_part, ms_p, f_p2, p_p2),
            operator: row(df_o, ss_operator, ms_o, f_o2, p_o2),
            repeatability: row(df_pool, ss_int + ss_error, ms_pool, None, None),
            total,
        }
    });
    AnovaTable {
        part: row(df_p, ss_part, ms_p, f_p, p_p),
        operator: row(df_o, ss_operator, ms_o, f_o, p_o),
        interaction: row(df_i, ss_int, ms_i, f_i, p_i),
        repeatability: row(df_e, ss_error, ms_e, None, None),
        total,
        alpha,
        reduced,
    }
}

/// F = ms/ms_den and its upper-tail p-value from the F(df, df_den) distribution.
fn f_test(ms: f64, df: usize, ms_den: f64, df_den: usize) -> (Option<f64>, Option<f64>) {
    if ms_den > 0.0 {
        let f = ms / ms_den;
        let dist = FisherSnedecor::new(df as f64, df_den as f64)
            .expect("degrees of freedom are >= 1 for a validated study");
        (Some(f), Some(dist.sf(f).clamp(0.0, 1.0)))
    } else if ms > 0.0 {
        (Some(f64::INFINITY), Some(0.0))
    } else {
        (None, None)
    }
}

/// Expected-mean-square estimates of the variance components, clipped at 0.
fn anova_components(t: &AnovaTable, study: &Study) -> VarianceComponents {
    let (p, o, r) = (
        study.parts.len() as f64,
        study.operators.len() as f64,
        study.trials as f64,
    );
    let ms = |row: &AnovaRow| row.ms.expect("effect rows have a mean square");
    let (ms_p, ms_o) = (ms(&t.part), ms(&t.operator));
    match &t.reduced {
        Some(red) => {
            let ms_e = ms(&red.repeatability);
            VarianceComponents {
                repeatability: ms_e,
                operator: ((ms_o - ms_e) / (p * r)).max(0.0),
                interaction: 0.0,
                part: ((ms_p - ms_e) / (o * r)).max(0.0),
            }
        }
        None => {
            let (ms_i, ms_e) = (ms(&t.interaction), ms(&t.repeatability));
            VarianceComponents {
                repeatability: ms_e,
                operator: ((ms_o - ms_i) / (p * r)).max(0.0),
                interaction: ((ms_i - ms_e) / r).max(0.0),
                part: ((ms_p - ms_i) / (o * r)).max(0.0),
            }
        }
    }
}

fn lookup(
    table: &[(usize, f64)],
    n: usize,
    factor: Factor,
    supported: &'static str,
) -> Result<f64, StudyError> {
    table
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, v)| *v)
        .ok_or(StudyError::RangeUnsupported {
            factor,
            found: n,
            supported,
        })
}

/// EV = R̄̄·K1, AV = sqrt((X̄diff·K2)² − EV²/(n·r)) (0 when negative), PV = Rp·K3, with the
/// AIAG MSA 4th ed. constants for `trials`, `operators` and `parts`.
///
/// Exposed so that a worked example's printed intermediates can be checked on their own.
pub fn range_components(
    r_bar: f64,
    x_diff: f64,
    r_p: f64,
    parts: usize,
    operators: usize,
    trials: usize,
) -> Result<RangeComponents, StudyError> {
    let k1 = lookup(&K1_BY_TRIALS, trials, Factor::Trials, "2 or 3")?;
    let k2 = lookup(&K2_BY_OPERATORS, operators, Factor::Operators, "2 or 3")?;
    let k3 = lookup(&K3_BY_PARTS, parts, Factor::Parts, "2 to 10")?;
    let ev = r_bar * k1;
    let av2 = (x_diff * k2).powi(2) - ev * ev / (parts * trials) as f64;
    Ok(RangeComponents {
        ev,
        av: av2.max(0.0).sqrt(),
        pv: r_p * k3,
    })
}

/// The AIAG data-sheet intermediates (R̄ per operator, X̄diff, Rp, UCL_R) of a study.
pub fn range_summary(study: &Study) -> Result<RangeSummary, StudyError> {
    let (p, o, r) = (study.parts.len(), study.operators.len(), study.trials);
    let k1 = lookup(&K1_BY_TRIALS, r, Factor::Trials, "2 or 3")?;
    let k2 = lookup(&K2_BY_OPERATORS, o, Factor::Operators, "2 or 3")?;
    let k3 = lookup(&K3_BY_PARTS, p, Factor::Parts, "2 to 10")?;
    let d4 = lookup(&D4_BY_TRIALS, r, Factor::Trials, "2 or 3")?;
    let range = |c: &[f64]| {
        let (lo, hi) = c
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        hi - lo
    };
    let operator_means: Vec<f64> = (0..o)
        .map(|j| mean((0..p).flat_map(|i| study.cell(i, j).iter().copied())))
        .collect();
    let operator_mean_ranges: Vec<f64> = (0..o)
        .map(|j| mean((0..p).map(|i| range(study.cell(i, j)))))
        .collect();
    let part_means: Vec<f64> = (0..p)
        .map(|i| mean((0..o).flat_map(|j| study.cell(i, j).iter().copied())))
        .collect();
    let spread = |xs: &[f64]| range(xs);
    let r_bar = mean(operator_mean_ranges.iter().copied());
    let ucl_r = d4 * r_bar;
    let ranges_above_ucl = (0..p)
        .flat_map(|i| (0..o).map(move |j| (i, j)))
        .filter(|&(i, j)| range(study.cell(i, j)) > ucl_r)
        .count();
    Ok(RangeSummary {
        x_diff: spread(&operator_means),
        r_p: spread(&part_means),
        operator_means,
        operator_mean_ranges,
        part_means,
        r_bar,
        ucl_r,
        ranges_above_ucl,
        k1,
        k2,
        k3,
    })
}
