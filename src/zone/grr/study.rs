//! The data of a crossed gauge R&R study: collecting `(part, operator, value)` measurements,
//! checking that the design is balanced, and the errors that explain what is wrong with a study.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::zone::ParamError;

/// The fewest parts, operators and trials a crossed study can have.
pub const MIN_LEVELS: usize = 2;

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
    pub(super) parts: Vec<String>,
    pub(super) operators: Vec<String>,
    pub(super) trials: usize,
    /// Layout: `((part * operators) + operator) * trials + trial`.
    pub(super) values: Vec<f64>,
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
