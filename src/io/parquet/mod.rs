//! Parquet IO: a streaming source that merges many files by `ts` (k-way) in bounded memory, the
//! `events` / `fit` sinks, and the errors every input source shares.
//!
//! # Source
//!
//! [`ParquetSource`] reads bars or measurements column by column **by name**; other columns are
//! never decoded. Per file it holds only the current Arrow record batch of `batch_rows` rows,
//! and a binary heap over one cursor per file yields records in `ts` order, ties broken by file
//! index (files sorted by path) and then by row order, so a run is deterministic. Records are
//! lent out: [`Record::key`](crate::record::Record::key) borrows from the current batch.
//!
//! Choices made here:
//! - Accepted types: `key` Utf8, LargeUtf8, Utf8View or a dictionary of strings; `ts` a Timestamp
//!   of any unit (converted to ns) or Int64 epoch nanoseconds. A Timestamp without a time zone
//!   is read as UTC, as polars and DuckDB do for naive times. Numbers: Float64, or any other
//!   integer, float or decimal type, converted to Float64.
//! - Nulls never stop a run. A null key becomes `""` and a null required number NaN, so
//!   [`Record::validate`](crate::record::Record::validate) rejects that record and the
//!   Processor counts it. A null optional number (`volume`, `nominal`, `lsl`, `usl`) means
//!   "absent" (`None`). A null `ts` (or one that overflows i64 nanoseconds) makes every number
//!   of the record NaN and gives it the previous row's ts, so it keeps its place in the merge and
//!   is rejected as `not_finite`.
//! - The optional measurement column `tool` (any numeric type) is read as a tool id; a value
//!   that is not a whole number in `0..=u32::MAX` is absent. `true_value` (generated data's
//!   ground truth) is read when present, and so is the bar column `true_trend`.
//! - Other columns, such as the measurement column `part`, are not read: the record has no
//!   field for them.
//! - A directory given as the pattern means every `*.parquet` file in it.
//! - Order is checked while streaming, so an unsorted file is reported when the merge reaches
//!   the offending row; records before it have already been returned. After any error the
//!   source should be dropped.
//!
//! The merge itself (module `merge`) is generic over a per-file cursor, so the CSV source
//! ([`crate::io::csv`]) shares it, and shares [`SourceError`] and [`SourceOptions`].
//!
//! # Shard outputs
//!
//! [`PeriodWriter`] / [`PeriodReader`] write and read `periods.parquet` (per-period sums a merge
//! of shards needs), and [`combine_sorted`] merges shards' events or fit files into one sorted
//! file (k-way by `ts`).
//!
//! # Sinks
//!
//! [`EventWriter`] and [`FitWriter`] buffer rows in Arrow builders, hand a batch to the Parquet
//! writer every [`SINK_BATCH_ROWS`] rows, close a row group every [`SINK_ROW_GROUP_ROWS`] rows
//! (this bounds the writer's memory), and compress with Snappy. They write through an
//! [`AtomicParquetWriter`]: `NAME.tmp`, fsynced and renamed to `NAME` in `finish`, so a crash
//! never leaves a half-written file under the final name; a writer dropped without `finish`
//! removes its `.tmp` file.

use std::path::PathBuf;

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

use crate::record::Ts;

mod atomic;
mod columns;
mod combine;
mod events;
pub(crate) mod merge;
mod periods;
mod sink;
mod source;

pub use atomic::AtomicParquetWriter;
pub use combine::{combine_sorted, CombineError};
pub use events::{events_schema, fit_schema, read_events};
pub use periods::{periods_schema, PeriodReader, PeriodWriter};
pub use sink::{EventWriter, FitWriter, SINK_BATCH_ROWS, SINK_ROW_GROUP_ROWS};
pub use source::{ParquetSource, SourceOptions};

pub(crate) use columns::{nan_payload, specs, tool_id};

/// Errors of the input sources ([`ParquetSource`], [`crate::io::csv::CsvSource`]) and of
/// [`read_events`]. Each names the file (or the pattern), where in it when that is known, and
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("input pattern `{pattern}` is not a valid glob: {source}; escape special characters or name the file")]
    BadPattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("no file matches `{pattern}`; check the path or glob (e.g. `data/*.{ext}`)")]
    NoMatch { pattern: String, ext: &'static str },
    #[error("{file}: cannot open: {source}; check the path and its permissions")]
    Open {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not a readable Parquet file, it looks corrupt or truncated: {source}; write it again, completely, or check that it is a Parquet file")]
    Parquet { file: PathBuf, source: ParquetError },
    #[error(
        "{file}: reading a record batch failed, the file looks corrupt or truncated: {source}; write it again, completely"
    )]
    Read { file: PathBuf, source: ArrowError },
    #[error("{file}: required column `{column}` for {kind} records is missing (columns found: {found}); add it, rename the column, or set the record kind that matches the file")]
    MissingColumn {
        file: PathBuf,
        column: &'static str,
        kind: &'static str,
        found: String,
    },
    #[error("{file}: column `{column}` has type {found}, expected {expected}; convert the column when writing the file")]
    WrongType {
        file: PathBuf,
        column: String,
        found: String,
        expected: &'static str,
    },
    #[error("{file}: converting column `{column}` failed: {source}; write the column as the expected type")]
    Convert {
        file: PathBuf,
        column: &'static str,
        source: ArrowError,
    },
    #[error("{file}: row {row} has ts {ts} ns, before the previous row's {prev} ns; sort the file by ts or set `[input] sort = true`")]
    Unsorted {
        file: PathBuf,
        row: u64,
        ts: Ts,
        prev: Ts,
    },
    #[error("{file}: row {row}: {problem}; this is not an events file written by deadband, or it was edited")]
    BadEvent {
        file: PathBuf,
        row: u64,
        problem: String,
    },
    #[error("{file}: line {line}: cannot read the CSV: {source}; fix that line (quoting, number of fields, UTF-8) or check that the file was written completely")]
    Csv {
        file: PathBuf,
        line: u64,
        source: ::csv::Error,
    },
    #[error("{file}: line {line}: the header has no column `{column}`, required for {kind} records (header: {found}); add or rename the column, or set the record kind that matches the file")]
    CsvMissingColumn {
        file: PathBuf,
        line: u64,
        column: &'static str,
        kind: &'static str,
        found: String,
    },
    #[error(
        "{file}: line {line}: column `{column}` appears more than once in the header; keep one"
    )]
    CsvDuplicateColumn {
        file: PathBuf,
        line: u64,
        column: &'static str,
    },
    #[error("{file}: line {line}, column `ts`: {ts} ns is before the previous row's {prev} ns; sort the file by ts or set `[input] sort = true`")]
    CsvUnsorted {
        file: PathBuf,
        line: u64,
        ts: Ts,
        prev: Ts,
    },
}

impl SourceError {
    /// Problems with the input the user can fix (exit code 2), as opposed to failures of the
    /// machine (1). A CSV syntax error and a corrupt or truncated Parquet file are bad input;
    /// a failed read of the disk (other than an unexpected end of file) is not.
    pub fn is_bad_input(&self) -> bool {
        match self {
            SourceError::Csv { source, .. } => !matches!(source.kind(), ::csv::ErrorKind::Io(_)),
            SourceError::Parquet { source, .. } => !parquet_io_failure(source),
            SourceError::Read { source, .. } => !arrow_io_failure(source),
            _ => matches!(
                self,
                SourceError::BadPattern { .. }
                    | SourceError::NoMatch { .. }
                    | SourceError::MissingColumn { .. }
                    | SourceError::WrongType { .. }
                    | SourceError::Unsorted { .. }
                    | SourceError::BadEvent { .. }
                    | SourceError::CsvMissingColumn { .. }
                    | SourceError::CsvDuplicateColumn { .. }
                    | SourceError::CsvUnsorted { .. }
            ),
        }
    }
}

/// Whether an IO error is the machine's (a read failure) rather than the file's own end.
fn machine_io(e: &std::io::Error) -> bool {
    e.kind() != std::io::ErrorKind::UnexpectedEof
}

/// Whether a Parquet error comes from the disk rather than from the file's bytes.
fn parquet_io_failure(e: &ParquetError) -> bool {
    match e {
        ParquetError::External(inner) => inner.downcast_ref().is_some_and(machine_io),
        _ => false,
    }
}

/// Whether an Arrow error met while decoding comes from the disk rather than the file's bytes.
fn arrow_io_failure(e: &ArrowError) -> bool {
    match e {
        ArrowError::IoError(_, inner) => machine_io(inner),
        ArrowError::ExternalError(inner) => {
            inner.downcast_ref().is_some_and(machine_io)
                || inner.downcast_ref().is_some_and(parquet_io_failure)
        }
        _ => false,
    }
}

/// Errors of [`AtomicParquetWriter`] and the sinks built on it. Each names the file and says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{file}: cannot create: {source}; check that the directory exists and is writable")]
    Create {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: writing Parquet failed: {source}; check free disk space")]
    Write { file: PathBuf, source: ParquetError },
    #[error("{file}: building a record batch failed: {source}; this is a bug, please report it")]
    Batch { file: PathBuf, source: ArrowError },
    #[error("{file}: cannot sync or rename the finished file from `{tmp}`: {source}; check free disk space and permissions")]
    Commit {
        file: PathBuf,
        tmp: PathBuf,
        source: std::io::Error,
    },
}
