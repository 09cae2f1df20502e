//! Reads a long gauge R&R study CSV (columns part, operator, value) into a [`Study`], with errors that name the file, line and column.
//!
//! Format choices (the spec names only the three columns):
//! - the header is matched after trimming, case-insensitively, and a UTF-8 BOM is ignored;
//!   other columns are ignored, a needed column given twice is an error;
//! - fields are trimmed; blank lines are skipped; rows may come in any order, and the trial
//!   number of a measurement is its order of appearance within its part × operator cell;
//! - `value` must be a finite decimal number with `.` as decimal separator (`nan`, `inf`
//!   are refused);
//! - line numbers are 1-based physical lines of the file, the header being line 1.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::zone::grr::{Factor, Study, StudyBuilder, StudyError};

/// The columns a study file must have.
pub const REQUIRED_COLUMNS: [&str; 3] = ["part", "operator", "value"];

/// Why a study file cannot be read. Every message starts with the file path.
#[derive(Debug, thiserror::Error)]
pub enum StudyCsvError {
    #[error(
        "{path}: cannot open the study file: {source}; check the path (a CSV file with \
         columns part, operator, value)",
        path = path.display()
    )]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: line {line}: {source}; fix the CSV syntax (quotes, UTF-8) on that line",
        path = path.display()
    )]
    Csv {
        path: PathBuf,
        line: u64,
        source: csv::Error,
    },
    #[error(
        "{path}: line 1: missing column `{column}` (header has: {found}); the header needs the \
         columns part, operator and value, in any order",
        path = path.display()
    )]
    MissingColumn {
        path: PathBuf,
        column: &'static str,
        found: String,
    },
    #[error(
        "{path}: line 1: column `{column}` appears more than once in the header; keep one",
        path = path.display()
    )]
    DuplicateColumn { path: PathBuf, column: &'static str },
    #[error(
        "{path}: line {line}, column `{column}`: the field is empty or missing; every row needs \
         a part, an operator and a value",
        path = path.display()
    )]
    EmptyField {
        path: PathBuf,
        line: u64,
        column: &'static str,
    },
    #[error(
        "{path}: line {line}, column `value`: `{text}` is not a finite number; write a decimal \
         number such as 0.25 (`.` as decimal separator)",
        path = path.display()
    )]
    NotNumeric {
        path: PathBuf,
        line: u64,
        text: String,
    },
    #[error("{path}{at}: {source}", path = path.display(), at = location(*line, *column))]
    Study {
        path: PathBuf,
        /// The line of the measurement the problem is about, when there is one.
        line: Option<u64>,
        /// The column the problem is about (too few parts: `part`), when there is one.
        column: Option<&'static str>,
        source: Box<StudyError>,
    },
}

fn location(line: Option<u64>, column: Option<&'static str>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(": line {l}, column `{c}`"),
        (Some(l), None) => format!(": line {l}"),
        (None, Some(c)) => format!(": column `{c}`"),
        (None, None) => String::new(),
    }
}

/// Reads and validates the study at `path`.
pub fn read_study(path: &Path) -> Result<Study, StudyCsvError> {
    let file = File::open(path).map_err(|source| StudyCsvError::Open {
        path: path.to_owned(),
        source,
    })?;
    parse_study(file, path)
}

/// Parses a study from any reader; `path` is only used in error messages.
pub fn parse_study<R: Read>(reader: R, path: &Path) -> Result<Study, StudyCsvError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let csv_err = |line: u64, source: csv::Error| StudyCsvError::Csv {
        path: path.to_owned(),
        line,
        source,
    };
    let header = csv.headers().map_err(|e| csv_err(1, e))?.clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_lowercase())
        .collect();
    let mut columns = [0usize; 3];
    for (slot, wanted) in columns.iter_mut().zip(REQUIRED_COLUMNS) {
        let mut hits = names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.as_str() == wanted);
        *slot = match (hits.next(), hits.next()) {
            (Some((i, _)), None) => i,
            (Some(_), Some(_)) => {
                return Err(StudyCsvError::DuplicateColumn {
                    path: path.to_owned(),
                    column: wanted,
                })
            }
            (None, _) => {
                return Err(StudyCsvError::MissingColumn {
                    path: path.to_owned(),
                    column: wanted,
                    found: if names.iter().all(|n| n.is_empty()) {
                        "nothing".to_owned()
                    } else {
                        header.iter().collect::<Vec<_>>().join(", ")
                    },
                })
            }
        };
    }

    let mut builder = StudyBuilder::new();
    // Line of each pushed measurement, to turn observation indices back into lines.
    let mut lines: Vec<u64> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let next_line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(next_line, |p| p.line());
                return Err(csv_err(line, e));
            }
        }
        let line = record.position().map_or(next_line, |p| p.line());
        let field = |k: usize| -> Result<&str, StudyCsvError> {
            match record.get(columns[k]) {
                Some(s) if !s.is_empty() => Ok(s),
                _ => Err(StudyCsvError::EmptyField {
                    path: path.to_owned(),
                    line,
                    column: REQUIRED_COLUMNS[k],
                }),
            }
        };
        let (part, operator, text) = (field(0)?, field(1)?, field(2)?);
        let value = text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| StudyCsvError::NotNumeric {
                path: path.to_owned(),
                line,
                text: text.to_owned(),
            })?;
        builder
            .push(part, operator, value)
            .map_err(|source| StudyCsvError::Study {
                path: path.to_owned(),
                line: Some(line),
                column: Some("value"),
                source: Box::new(source),
            })?;
        lines.push(line);
    }
    builder.build().map_err(|source| {
        let (line, column) = match &source {
            StudyError::Unbalanced {
                first_observation, ..
            } => (first_observation.and_then(|i| lines.get(i).copied()), None),
            StudyError::TooFewLevels {
                factor: Factor::Parts,
                ..
            } => (None, Some("part")),
            StudyError::TooFewLevels {
                factor: Factor::Operators,
                ..
            } => (None, Some("operator")),
            _ => (None, None),
        };
        StudyCsvError::Study {
            path: path.to_owned(),
            line,
            column,
            source: Box::new(source),
        }
    })
}
