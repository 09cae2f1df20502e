//! Configuration of an SPC chart: known centre and sigma, baseline length, the rules that alarm,
//! and the EWMA and CUSUM parameters, with their defaults and validation.

use serde::{Deserialize, Serialize};

use super::{check_finite, Cusum, EwmaChart, Rule};
use crate::zone::ParamError;

/// EWMA parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwmaSpec {
    /// Smoothing constant λ in (0, 1] (default 0.2).
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Width of the limits in EWMA standard deviations, L > 0 (default 3).
    #[serde(default = "default_l")]
    pub l: f64,
}

/// CUSUM parameters, in sigma units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CusumSpec {
    /// Reference value k >= 0 (default 0.5: tuned to a 1-sigma shift).
    #[serde(default = "default_k")]
    pub k: f64,
    /// Decision interval h > 0 (default 5).
    #[serde(default = "default_h")]
    pub h: f64,
}

fn default_lambda() -> f64 {
    0.2
}
fn default_l() -> f64 {
    3.0
}
fn default_k() -> f64 {
    0.5
}
fn default_h() -> f64 {
    5.0
}
fn default_baseline() -> usize {
    20
}
fn default_rules() -> Vec<Rule> {
    vec![Rule::We1, Rule::We2, Rule::We3, Rule::We4]
}

impl Default for EwmaSpec {
    fn default() -> Self {
        Self {
            lambda: default_lambda(),
            l: default_l(),
        }
    }
}

impl Default for CusumSpec {
    fn default() -> Self {
        Self {
            k: default_k(),
            h: default_h(),
        }
    }
}

/// Configuration of one SPC chart (applied per key).
///
/// The EWMA chart runs when `ewma` is set or `rules` lists `ewma` (then with default
/// parameters); likewise for CUSUM. `rules` selects the Western Electric rules that raise alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpcSpec {
    /// Known centre (phase II). Estimated from the baseline when absent.
    #[serde(default)]
    pub target: Option<f64>,
    /// Known process sigma (phase II). Estimated as `MRbar / 1.128` when absent.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Number of leading records used to estimate what is not given (default 20). Ignored
    /// when both `target` and `sigma` are given.
    #[serde(default = "default_baseline")]
    pub baseline: usize,
    /// Rules that raise alarms (default `we1`..`we4`).
    #[serde(default = "default_rules")]
    pub rules: Vec<Rule>,
    /// EWMA chart parameters.
    #[serde(default)]
    pub ewma: Option<EwmaSpec>,
    /// CUSUM parameters.
    #[serde(default)]
    pub cusum: Option<CusumSpec>,
}

impl Default for SpcSpec {
    fn default() -> Self {
        Self {
            target: None,
            sigma: None,
            baseline: default_baseline(),
            rules: default_rules(),
            ewma: None,
            cusum: None,
        }
    }
}

impl SpcSpec {
    pub(super) fn ewma_params(&self) -> Option<EwmaSpec> {
        self.ewma
            .or_else(|| self.rules.contains(&Rule::Ewma).then(EwmaSpec::default))
    }

    pub(super) fn cusum_params(&self) -> Option<CusumSpec> {
        self.cusum
            .or_else(|| self.rules.contains(&Rule::Cusum).then(CusumSpec::default))
    }

    /// Check every parameter; the error names the parameter and the fix.
    pub fn validate(&self) -> Result<(), ParamError> {
        if let Some(t) = self.target {
            check_finite("target", t)?;
        }
        if let Some(s) = self.sigma {
            if !(s.is_finite() && s > 0.0) {
                return Err(ParamError::new(
                    "sigma",
                    format!("must be a finite number > 0, got {s}"),
                ));
            }
        }
        let needed = match (self.target, self.sigma) {
            (Some(_), Some(_)) => 0,
            (None, Some(_)) => 1,
            (_, None) => 2,
        };
        if self.baseline < needed {
            return Err(ParamError::new(
                "baseline",
                format!(
                    "must be at least {needed} to estimate {} (got {}); give `target` and \
                     `sigma` or lengthen the baseline",
                    if self.sigma.is_none() {
                        "sigma from moving ranges"
                    } else {
                        "the centre"
                    },
                    self.baseline
                ),
            ));
        }
        if let Some(e) = self.ewma_params() {
            EwmaChart::new(e.lambda, e.l, 0.0, 1.0).map_err(|err| {
                ParamError::new(
                    if err.param == "lambda" {
                        "ewma.lambda"
                    } else {
                        "ewma.l"
                    },
                    err.problem,
                )
            })?;
        }
        if let Some(c) = self.cusum_params() {
            Cusum::new(c.k, c.h, 0.0, 1.0).map_err(|err| {
                ParamError::new(
                    if err.param == "k" {
                        "cusum.k"
                    } else {
                        "cusum.h"
                    },
                    err.problem,
                )
            })?;
        }
        let any_we = self.rules.iter().any(|r| r.index() < 4);
        if !any_we && self.ewma_params().is_none() && self.cusum_params().is_none() {
            return Err(ParamError::new(
                "rules",
                "is empty and neither `ewma` nor `cusum` is set, so the chart could never \
                 alarm; list at least one rule",
            ));
        }
        Ok(())
    }
}
