//! Two-way crossed random-effects ANOVA of a study (Minitab / AIAG MSA layout), with the
//! interaction pooled into repeatability when it is not significant, and the variance
//! components from the expected mean squares.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::{mean, Study, VarianceComponents};

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
pub(super) fn anova_components(t: &AnovaTable, study: &Study) -> VarianceComponents {
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
