//! The math: loss shapes, zone scales, recursive fitters, SPC charts and gauge R&R — pure, no IO.
//!
//! Nothing below this folder may import `io`, `run`, tokio, rdkafka, arrow, parquet or polars.

pub mod fit;
pub mod grr;
pub mod scale;
pub mod spc;
pub mod well;

/// A parameter of a math component that is out of its domain (negative period, eps <= 0, ...).
/// `param` is the configuration name of the parameter so that the config layer can point at it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{param}` {problem}")]
pub struct ParamError {
    pub param: &'static str,
    pub problem: String,
}

impl ParamError {
    pub fn new(param: &'static str, problem: impl Into<String>) -> Self {
        Self {
            param,
            problem: problem.into(),
        }
    }
}
