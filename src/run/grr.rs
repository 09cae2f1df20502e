//! The `grr` command: reads a study file, analyses it, and writes a Minitab-like report with the AIAG verdict, or one JSON object.
//!
//! Table layout follows Minitab's crossed gage R&R session output (ANOVA tables, variance
//! components with %Contribution, gage evaluation with %Study Var and %Tolerance on a
//! 6-sigma study span, number of distinct categories); the verdict lines follow the AIAG MSA
//! 4th ed. guidelines. The JSON object is the serialised [`GrrResult`]; non-finite numbers
//! (an F ratio with a zero denominator) become `null`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::StudyReader;
use crate::io::study_csv::{read_study, StudyCsvError};
use crate::zone::grr::{
    analyse, AnovaRow, GrrMethod, GrrResult, StudyError, Verdict, STUDY_SPAN_SIGMAS,
};
use crate::zone::ParamError;

/// What the `grr` command was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct GrrOptions {
    pub input: PathBuf,
    pub method: GrrMethod,
    /// USL − LSL, for %tolerance.
    pub tolerance: Option<f64>,
    pub interaction_alpha: f64,
    pub json: bool,
}

/// Why the `grr` command failed. [`GrrRunError::is_bad_input`] tells input problems (exit 2)
/// from runtime failures (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum GrrRunError {
    #[error(transparent)]
    Input(#[from] StudyCsvError),
    #[error("{path}: {source}", path = path.display())]
    Analysis {
        path: PathBuf,
        source: Box<StudyError>,
    },
    #[error("argument --{flag}: {problem}", flag = .0.param.replace('_', "-"), problem = .0.problem)]
    Argument(ParamError),
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl GrrRunError {
    /// True for problems with the study file or the arguments (the user can fix them).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, GrrRunError::Output(_))
    }
}

/// Reads `opts.input`, analyses it and writes the report to `out`.
pub fn run(opts: &GrrOptions, out: &mut dyn Write) -> Result<GrrResult, GrrRunError> {
    let study = read_study(&opts.input)?;
    let result =
        analyse(&study, opts.method, opts.tolerance, opts.interaction_alpha).map_err(|source| {
            match source {
                StudyError::Param(p) => GrrRunError::Argument(p),
                source => GrrRunError::Analysis {
                    path: opts.input.clone(),
                    source: Box::new(source),
                },
            }
        })?;
    let text = if opts.json {
        render_json(&result)
    } else {
        render_table(&result, &opts.input)
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(result)
}

/// The result as one pretty-printed JSON object, followed by a newline.
pub fn render_json(result: &GrrResult) -> String {
    let mut s = serde_json::to_string_pretty(result).expect("GrrResult serialises");
    s.push('\n');
    s
}

/// Formats `x` with `sig` significant digits (fixed notation, at most 8 decimals).
fn sig(x: f64, sig: usize) -> String {
    if !x.is_finite() {
        return if x.is_nan() { "*".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i64;
    let decimals = (sig as i64 - 1 - magnitude).clamp(0, 8) as usize;
    format!("{x:.decimals$}")
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_default()
}

fn anova_line(out: &mut String, name: &str, row: &AnovaRow) {
    let line = format!(
        "{name:<18}{df:>4}{ss:>12}{ms:>12}{f:>11}{p:>8}",
        df = row.df,
        ss = sig(row.ss, 6),
        ms = opt(row.ms, |m| sig(m, 6)),
        f = opt(row.f, |f| sig(f, 6)),
        p = opt(row.p, |p| format!("{p:.3}")),
    );
    let _ = writeln!(out, "{}", line.trim_end());
}

fn anova_header(out: &mut String, title: &str) {
    let _ = writeln!(out, "{title}\n");
    let _ = writeln!(
        out,
        "{:<18}{:>4}{:>12}{:>12}{:>11}{:>8}",
        "Source", "DF", "SS", "MS", "F", "P"
    );
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Acceptable => "acceptable (<= 10%)",
        Verdict::Marginal => {
            "marginal (10-30%: may be acceptable depending on the importance of the \
             measurement, the cost of the gauge and of repairs)"
        }
        Verdict::Unacceptable => "unacceptable (> 30%: improve the measurement system)",
    }
}

/// The human-readable report.
pub fn render_table(r: &GrrResult, input: &Path) -> String {
    let mut out = String::new();
    let method = match r.method {
        GrrMethod::Anova => "ANOVA method",
        GrrMethod::Range => "average & range method (AIAG MSA 4th ed.)",
    };
    let _ = writeln!(out, "Gauge R&R study (crossed) - {method}");
    let _ = writeln!(
        out,
        "Input: {}  ({} parts x {} operators x {} trials = {} measurements)\n",
        input.display(),
        r.parts,
        r.operators,
        r.trials,
        r.parts * r.operators * r.trials
    );

    if let Some(t) = &r.anova {
        anova_header(&mut out, "Two-way ANOVA table with interaction");
        anova_line(&mut out, "Part", &t.part);
        anova_line(&mut out, "Operator", &t.operator);
        anova_line(&mut out, "Part * Operator", &t.interaction);
        anova_line(&mut out, "Repeatability", &t.repeatability);
        anova_line(&mut out, "Total", &t.total);
        let p = t
            .interaction
            .p
            .map_or("undefined".to_owned(), |p| format!("{p:.3}"));
        let _ = writeln!(
            out,
            "\nalpha to remove interaction term = {}: interaction p = {p}, {}\n",
            t.alpha,
            if r.interaction_pooled {
                "pooled into repeatability"
            } else {
                "kept in the model"
            }
        );
        if let Some(red) = &t.reduced {
            anova_header(&mut out, "Two-way ANOVA table without interaction");
            anova_line(&mut out, "Part", &red.part);
            anova_line(&mut out, "Operator", &red.operator);
            anova_line(&mut out, "Repeatability", &red.repeatability);
            anova_line(&mut out, "Total", &red.total);
            out.push('\n');
        }
    }
    if let Some(s) = &r.range {
        let _ = writeln!(out, "Data sheet");
        let _ = writeln!(out, "  R-bar (mean range)        {}", sig(s.r_bar, 4));
        let _ = writeln!(out, "  X-bar diff (operators)    {}", sig(s.x_diff, 4));
        let _ = writeln!(out, "  Rp (part means range)     {}", sig(s.r_p, 4));
        let _ = writeln!(
            out,
            "  UCL_R = D4 x R-bar        {}  ({} range(s) above it{})",
            sig(s.ucl_r, 4),
            s.ranges_above_ucl,
            if s.ranges_above_ucl > 0 {
                ": re-measure those cells or find the cause"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  K1 = {}  K2 = {}  K3 = {}  (1/d2*, MSA 4th ed.; results are 1-sigma)\n",
            s.k1, s.k2, s.k3
        );
    }

    let lines = r.components();
    let _ = writeln!(out, "Variance components\n");
    let _ = writeln!(
        out,
        "{:<24}{:>12}{:>16}",
        "Source", "VarComp", "%Contribution"
    );
    for l in &lines {
        let _ = writeln!(
            out,
            "{:<24}{:>12}{:>16.2}",
            l.name,
            sig(l.variance, 6),
            l.pct_contribution
        );
    }

    let _ = writeln!(out, "\nGauge evaluation\n");
    let mut header = format!(
        "{:<24}{:>12}{:>20}{:>12}",
        "Source",
        "StdDev (SD)",
        format!("Study Var ({STUDY_SPAN_SIGMAS} x SD)"),
        "%Study Var"
    );
    if r.tolerance.is_some() {
        let _ = write!(header, "{:>13}", "%Tolerance");
    }
    let _ = writeln!(out, "{header}");
    for l in &lines {
        let _ = write!(
            out,
            "{:<24}{:>12}{:>20}{:>12.2}",
            l.name,
            sig(l.std_dev, 5),
            sig(STUDY_SPAN_SIGMAS * l.std_dev, 5),
            l.pct_study_var
        );
        if let Some(pt) = l.pct_tolerance {
            let _ = write!(out, "{pt:>13.2}");
        }
        out.push('\n');
    }
    if let Some(t) = r.tolerance {
        let _ = writeln!(out, "\nProcess tolerance = {t}");
    }
    let ndc = if r.ndc == u32::MAX {
        "unbounded (GRR = 0)".to_owned()
    } else {
        r.ndc.to_string()
    };
    let _ = writeln!(out, "\nNumber of distinct categories = {ndc}\n");

    let _ = writeln!(out, "AIAG verdict");
    let _ = writeln!(
        out,
        "  %GRR of study variation = {:.2}%: {}",
        r.pct_grr_study_var,
        verdict_text(r.verdict)
    );
    if let (Some(pt), Some(v)) = (r.pct_grr_tolerance, r.verdict_tolerance) {
        let _ = writeln!(
            out,
            "  %GRR of tolerance       = {pt:.2}%: {}",
            verdict_text(v)
        );
    }
    let _ = writeln!(
        out,
        "  ndc = {ndc}: {}",
        if r.ndc_adequate {
            "adequate (>= 5)"
        } else {
            "inadequate (< 5: the system cannot tell enough part categories apart)"
        }
    );
    out
}

/// sigma_GRR (the measurement system's standard deviation) of a study file, for a `grr` zone
/// scale configured with `study = "file.csv"`. ANOVA pools the interaction at alpha 0.05.
/// Configurations reach it through [`StudyFiles`].
pub fn sigma_from_study(path: &Path, method: GrrMethod) -> Result<f64, GrrRunError> {
    let study = read_study(path)?;
    let result = analyse(&study, method, None, 0.05).map_err(|e| GrrRunError::Analysis {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok(result.grr)
}

/// The gauge-study reader the command line gives the configuration: reads `[zone.scale] study`
/// files from disk with [`sigma_from_study`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StudyFiles;

impl StudyReader for StudyFiles {
    fn sigma_grr(
        &self,
        path: &Path,
        method: GrrMethod,
    ) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(sigma_from_study(path, method)?)
    }
}
