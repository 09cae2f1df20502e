//! The AIAG average & range method: the MSA 4th ed. K1/K2/K3 and D4 constants, the data-sheet
//! intermediates of a study, and EV, AV and PV from them.

use serde::Serialize;

use super::{mean, Factor, Study, StudyError};

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
