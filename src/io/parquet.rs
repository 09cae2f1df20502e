//! Parquet IO: a streaming source that merges many files by `ts` (k-way) in bounded memory, and
//! the `events` / `fit` sinks.
//!
//! # Source
//!
//! [`ParquetSource`] reads bars or measurements (design §2) column by column **by name**; other
//! columns are never decoded. Per file it holds only the current Arrow record batch of
//! `batch_rows` rows, and a binary heap over one cursor per file yields records in `ts` order,
//! ties broken by file index (files sorted by path) and then by row order, so a run is
//! deterministic. Records are lent out: [`Record::key`] borrows from the current batch.
//!
//! Choices where the design is silent:
//! - Accepted types: `key` Utf8, LargeUtf8, Utf8View or a dictionary of strings; `ts` a Timestamp
//!   of any unit (converted to ns) or Int64 epoch nanoseconds. A Timestamp without a time zone
//!   is read as UTC, as polars and DuckDB do for naive times. Numbers: Float64, or any other
//!   integer, float or decimal type, converted to Float64.
//! - Nulls never stop a run. A null key becomes `""` and a null required number NaN, so
//!   [`Record::validate`] rejects that record and the Processor counts it. A null optional
//!   number (`volume`, `nominal`, `lsl`, `usl`) means "absent" (`None`). A null `ts` (or one that
//!   overflows i64 nanoseconds) makes every number of the record NaN and gives it the previous
//!   row's ts, so it keeps its place in the merge and is rejected as `not_finite`.
//! - The measurement column `part` is accepted but not read: [`Record`] has no field for it.
//! - The optional measurement column `tool` (any numeric type) is read as a tool id; a value
//!   that is not a whole number in `0..=u32::MAX` is absent. `true_value` (generated data's
//!   ground truth) is read when present.
//! - A directory given as the pattern means every `*.parquet` file in it.
//! - Order is checked while streaming, so an unsorted file is reported when the merge reaches
//!   the offending row; records before it have already been returned. After any error the
//!   source should be dropped.
//!
//! # Sinks
//!
//! [`EventWriter`] and [`FitWriter`] buffer rows in Arrow builders, hand a batch to the Parquet
//! writer every [`SINK_BATCH_ROWS`] rows, close a row group every [`SINK_ROW_GROUP_ROWS`] rows
//! (this bounds the writer's memory), and compress with Snappy. They write `NAME.tmp` and rename
//! it to `NAME` in `finish`, after an fsync, so a crash never leaves a half-written file under the
//! final name; a writer dropped without `finish` removes its `.tmp` file.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Array, Float64Builder, Int64Array, Int8Array,
    Int8Builder, LargeStringArray, StringArray, StringBuilder, StringViewArray,
    TimestampNanosecondBuilder, UInt32Array, UInt32Builder, UInt64Array, UInt64Builder,
};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use crate::record::{Bar, Event, EventBody, FitRow, Measurement, Payload, Record, RecordKind, Ts};
use crate::zone::spc::Rule;

/// Rows a sink buffers in its Arrow builders before handing them to the Parquet writer.
pub const SINK_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group written by the sinks. The Parquet writer keeps the encoded pages
/// of the open row group in memory, so this bounds a sink's memory. 128 Ki rows is within the
/// range polars, pyarrow and DuckDB use themselves.
pub const SINK_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Errors of [`ParquetSource`] and [`read_events`]. Each names the file (or the pattern) and says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("input pattern `{pattern}` is not a valid glob: {source}; escape special characters or name the file")]
    BadPattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("no file matches `{pattern}`; check the path or glob (e.g. `data/*.parquet`)")]
    NoMatch { pattern: String },
    #[error("{file}: cannot open: {source}; check the path and its permissions")]
    Open {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not a readable Parquet file: {source}; check that it was written completely")]
    Parquet { file: PathBuf, source: ParquetError },
    #[error(
        "{file}: reading a record batch failed: {source}; the file may be truncated or corrupt"
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
}

impl SourceError {
    /// Problems with the input the user can fix (exit code 2), as opposed to IO failures and
    /// corrupt files (1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            SourceError::BadPattern { .. }
                | SourceError::NoMatch { .. }
                | SourceError::MissingColumn { .. }
                | SourceError::WrongType { .. }
                | SourceError::Unsorted { .. }
                | SourceError::BadEvent { .. }
        )
    }
}

/// Errors of [`EventWriter`] and [`FitWriter`]. Each names the file and says what to do.
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

// ---------------------------------------------------------------------------------------------
// Source
// ---------------------------------------------------------------------------------------------

/// How a [`ParquetSource`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOptions {
    /// Rows per Arrow record batch: the most rows held per file (0 is read as 1).
    pub batch_rows: usize,
    /// Accept files whose `ts` is not sorted. Each file is first scanned (its `ts` column only);
    /// a file found unsorted is then read **whole** and sorted stably by `ts` in memory, which
    /// gives up the memory bound for that file. Sorted files still stream.
    pub sort: bool,
}

impl Default for SourceOptions {
    /// 8192 rows per batch, no sorting.
    fn default() -> Self {
        SourceOptions {
            batch_rows: 8192,
            sort: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ColType {
    Key,
    Ts,
    Num,
}

impl ColType {
    fn expected(self) -> &'static str {
        match self {
            ColType::Key => "Utf8 (or LargeUtf8, Utf8View, a dictionary of strings)",
            ColType::Ts => "Timestamp (any unit, any or no time zone) or Int64 epoch nanoseconds",
            ColType::Num => "Float64 (or another integer, float or decimal type)",
        }
    }

    fn accepts(self, dt: &DataType) -> bool {
        match self {
            ColType::Key => match dt {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
                DataType::Dictionary(_, v) => matches!(
                    v.as_ref(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ),
                _ => false,
            },
            ColType::Ts => matches!(dt, DataType::Timestamp(_, _) | DataType::Int64),
            ColType::Num => dt.is_numeric() || matches!(dt, DataType::Null),
        }
    }
}

struct ColSpec {
    name: &'static str,
    ty: ColType,
    required: bool,
}

const fn col(name: &'static str, ty: ColType, required: bool) -> ColSpec {
    ColSpec { name, ty, required }
}

const BAR_COLS: &[ColSpec] = &[
    col("key", ColType::Key, true),
    col("ts", ColType::Ts, true),
    col("open", ColType::Num, true),
    col("high", ColType::Num, true),
    col("low", ColType::Num, true),
    col("close", ColType::Num, true),
    col("volume", ColType::Num, false),
];

const MEAS_COLS: &[ColSpec] = &[
    col("key", ColType::Key, true),
    col("ts", ColType::Ts, true),
    col("value", ColType::Num, true),
    col("nominal", ColType::Num, false),
    col("lsl", ColType::Num, false),
    col("usl", ColType::Num, false),
    col("tool", ColType::Num, false),
    col("true_value", ColType::Num, false),
];

fn specs(kind: RecordKind) -> (&'static [ColSpec], &'static str) {
    match kind {
        RecordKind::Bar => (BAR_COLS, "bar"),
        RecordKind::Measurement => (MEAS_COLS, "measurement"),
    }
}

/// Checks the columns `specs` against `schema`; returns the indices of the present ones.
fn check_schema(
    file: &Path,
    schema: &Schema,
    specs: &[ColSpec],
    kind: &'static str,
) -> Result<Vec<usize>, SourceError> {
    let mut roots = Vec::with_capacity(specs.len());
    for spec in specs {
        match schema.index_of(spec.name) {
            Ok(i) => {
                let dt = schema.field(i).data_type();
                if !spec.ty.accepts(dt) {
                    return Err(SourceError::WrongType {
                        file: file.to_path_buf(),
                        column: spec.name.to_string(),
                        found: dt.to_string(),
                        expected: spec.ty.expected(),
                    });
                }
                roots.push(i);
            }
            Err(_) if spec.required => {
                let found = schema
                    .fields()
                    .iter()
                    .map(|f| format!("`{}` {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(SourceError::MissingColumn {
                    file: file.to_path_buf(),
                    column: spec.name,
                    kind,
                    found,
                });
            }
            Err(_) => {}
        }
    }
    roots.sort_unstable();
    Ok(roots)
}

/// A string column in one of the layouts read without copying.
enum KeyCol {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
}

impl KeyCol {
    #[inline]
    fn get(&self, i: usize) -> &str {
        match self {
            KeyCol::Utf8(a) if a.is_valid(i) => a.value(i),
            KeyCol::Large(a) if a.is_valid(i) => a.value(i),
            KeyCol::View(a) if a.is_valid(i) => a.value(i),
            _ => "",
        }
    }
}

fn internal(file: &Path, column: &'static str, what: &str) -> SourceError {
    SourceError::Convert {
        file: file.to_path_buf(),
        column,
        source: ArrowError::InvalidArgumentError(format!("unexpected array layout: {what}")),
    }
}

fn key_col(file: &Path, name: &'static str, a: &ArrayRef) -> Result<KeyCol, SourceError> {
    let conv = |source| SourceError::Convert {
        file: file.to_path_buf(),
        column: name,
        source,
    };
    let owned;
    let a = match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => a,
        _ => {
            owned = cast(a, &DataType::Utf8).map_err(conv)?;
            &owned
        }
    };
    let k = match a.data_type() {
        DataType::Utf8 => a.as_string_opt::<i32>().cloned().map(KeyCol::Utf8),
        DataType::LargeUtf8 => a.as_string_opt::<i64>().cloned().map(KeyCol::Large),
        _ => a.as_string_view_opt().cloned().map(KeyCol::View),
    };
    k.ok_or_else(|| internal(file, name, "string"))
}

/// The `ts` column as i64 values and the factor to nanoseconds.
fn ts_col(file: &Path, name: &'static str, a: &ArrayRef) -> Result<(Int64Array, i64), SourceError> {
    let mult = match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        _ => 1,
    };
    let ints = cast(a, &DataType::Int64).map_err(|source| SourceError::Convert {
        file: file.to_path_buf(),
        column: name,
        source,
    })?;
    let ints = ints
        .as_primitive_opt::<Int64Type>()
        .cloned()
        .ok_or_else(|| internal(file, name, "int64"))?;
    Ok((ints, mult))
}

fn f64_col(file: &Path, name: &'static str, a: &ArrayRef) -> Result<Float64Array, SourceError> {
    let owned;
    let a = if a.data_type() == &DataType::Float64 {
        a
    } else {
        owned = cast(a, &DataType::Float64).map_err(|source| SourceError::Convert {
            file: file.to_path_buf(),
            column: name,
            source,
        })?;
        &owned
    };
    a.as_primitive_opt::<Float64Type>()
        .cloned()
        .ok_or_else(|| internal(file, name, "float64"))
}

#[inline]
fn req(a: &Float64Array, i: usize) -> f64 {
    if a.is_valid(i) {
        a.value(i)
    } else {
        f64::NAN
    }
}

#[inline]
fn opt(a: &Option<Float64Array>, i: usize) -> Option<f64> {
    match a {
        Some(a) if a.is_valid(i) => Some(a.value(i)),
        _ => None,
    }
}

enum Nums {
    Bar {
        open: Float64Array,
        high: Float64Array,
        low: Float64Array,
        close: Float64Array,
        volume: Option<Float64Array>,
    },
    Meas {
        value: Float64Array,
        nominal: Option<Float64Array>,
        lsl: Option<Float64Array>,
        usl: Option<Float64Array>,
        tool: Option<Float64Array>,
        true_value: Option<Float64Array>,
    },
}

/// One record batch, its columns downcast once.
struct Cols {
    len: usize,
    key: KeyCol,
    ts: Int64Array,
    ts_mult: i64,
    nums: Nums,
}

impl Cols {
    fn new(file: &Path, kind: RecordKind, b: &RecordBatch) -> Result<Cols, SourceError> {
        let get = |name: &'static str| b.column_by_name(name);
        let need = |name: &'static str| get(name).ok_or_else(|| internal(file, name, "missing"));
        let num = |name: &'static str| f64_col(file, name, need(name)?);
        let num_opt = |name: &'static str| get(name).map(|a| f64_col(file, name, a)).transpose();
        let (ts, ts_mult) = ts_col(file, "ts", need("ts")?)?;
        let nums = match kind {
            RecordKind::Bar => Nums::Bar {
                open: num("open")?,
                high: num("high")?,
                low: num("low")?,
                close: num("close")?,
                volume: num_opt("volume")?,
            },
            RecordKind::Measurement => Nums::Meas {
                value: num("value")?,
                nominal: num_opt("nominal")?,
                lsl: num_opt("lsl")?,
                usl: num_opt("usl")?,
                tool: num_opt("tool")?,
                true_value: num_opt("true_value")?,
            },
        };
        Ok(Cols {
            len: b.num_rows(),
            key: key_col(file, "key", need("key")?)?,
            ts,
            ts_mult,
            nums,
        })
    }

    /// The row's ts in ns; `None` when null or out of the i64 ns range.
    #[inline]
    fn ts_at(&self, i: usize) -> Option<Ts> {
        if self.ts.is_valid(i) {
            self.ts.value(i).checked_mul(self.ts_mult)
        } else {
            None
        }
    }

    #[inline]
    fn payload(&self, i: usize, poisoned: bool) -> Payload {
        let p = match &self.nums {
            Nums::Bar {
                open,
                high,
                low,
                close,
                volume,
            } => Payload::Bar(Bar {
                open: req(open, i),
                high: req(high, i),
                low: req(low, i),
                close: req(close, i),
                volume: opt(volume, i),
            }),
            Nums::Meas {
                value,
                nominal,
                lsl,
                usl,
                tool,
                true_value,
            } => Payload::Measurement(Measurement {
                value: req(value, i),
                nominal: opt(nominal, i),
                lsl: opt(lsl, i),
                usl: opt(usl, i),
                tool: opt(tool, i).and_then(tool_id),
                true_value: opt(true_value, i),
            }),
        };
        if poisoned {
            nan_payload(p)
        } else {
            p
        }
    }
}

#[cold]
fn nan_payload(p: Payload) -> Payload {
    let n = f64::NAN;
    match p {
        Payload::Bar(b) => Payload::Bar(Bar {
            open: n,
            high: n,
            low: n,
            close: n,
            volume: b.volume.map(|_| n),
        }),
        Payload::Measurement(m) => Payload::Measurement(Measurement {
            value: n,
            nominal: m.nominal.map(|_| n),
            lsl: m.lsl.map(|_| n),
            usl: m.usl.map(|_| n),
            tool: m.tool,
            true_value: m.true_value.map(|_| n),
        }),
    }
}

/// A tool id from its column value: a whole number in `0..=u32::MAX`, else absent.
fn tool_id(v: f64) -> Option<u32> {
    (v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v)).then_some(v as u32)
}

/// Where a cursor's batches come from.
enum Batches {
    /// Streamed from the file, one batch at a time.
    Stream(ParquetRecordBatchReader),
    /// The whole file, sorted in memory (`sort = true` on an unsorted file).
    Memory {
        queue: VecDeque<RecordBatch>,
        rows: usize,
    },
}

impl Batches {
    fn next(&mut self) -> Option<Result<RecordBatch, ArrowError>> {
        match self {
            Batches::Stream(r) => r.next(),
            Batches::Memory { queue, rows } => {
                let b = queue.pop_front()?;
                *rows -= b.num_rows();
                Some(Ok(b))
            }
        }
    }

    fn held_rows(&self) -> usize {
        match self {
            Batches::Stream(_) => 0,
            Batches::Memory { rows, .. } => *rows,
        }
    }
}

/// One file's read position: its current batch and row.
struct FileCursor {
    path: PathBuf,
    kind: RecordKind,
    batches: Batches,
    /// The current batch; `None` once the file is exhausted.
    cols: Option<Cols>,
    row: usize,
    /// File row index of the current batch's first row.
    base: u64,
    /// Last non-null ts, for the order check and as the merge key of null-ts rows.
    last_ts: Option<Ts>,
    /// Merge key of the current row.
    head: Ts,
}

impl FileCursor {
    /// Drops the current batch and loads the next non-empty one; false at the end of the file.
    fn load(&mut self) -> Result<bool, SourceError> {
        if let Some(c) = self.cols.take() {
            self.base += c.len as u64;
        }
        self.row = 0;
        while let Some(b) = self.batches.next() {
            let b = b.map_err(|source| SourceError::Read {
                file: self.path.clone(),
                source,
            })?;
            if b.num_rows() > 0 {
                self.cols = Some(Cols::new(&self.path, self.kind, &b)?);
                return self.settle();
            }
        }
        Ok(false)
    }

    /// Moves to the next row; false at the end of the file.
    #[inline]
    fn advance(&mut self) -> Result<bool, SourceError> {
        self.row += 1;
        match &self.cols {
            Some(c) if self.row < c.len => self.settle(),
            _ => self.load(),
        }
    }

    /// Checks the current row's ts against the previous one and sets the merge key.
    #[inline]
    fn settle(&mut self) -> Result<bool, SourceError> {
        let Some(c) = &self.cols else {
            return Ok(false);
        };
        match c.ts_at(self.row) {
            Some(ts) => {
                if let Some(prev) = self.last_ts {
                    if ts < prev {
                        return Err(SourceError::Unsorted {
                            file: self.path.clone(),
                            row: self.base + self.row as u64,
                            ts,
                            prev,
                        });
                    }
                }
                self.last_ts = Some(ts);
                self.head = ts;
            }
            None => self.head = self.last_ts.unwrap_or(Ts::MIN),
        }
        Ok(true)
    }

    #[inline]
    fn record(&self) -> Option<Record<'_>> {
        let c = self.cols.as_ref()?;
        let i = self.row;
        let ts = c.ts_at(i);
        Some(Record {
            key: c.key.get(i),
            ts: ts.unwrap_or(self.head),
            payload: c.payload(i, ts.is_none()),
        })
    }

    fn buffered_rows(&self) -> usize {
        self.cols.as_ref().map_or(0, |c| c.len - self.row) + self.batches.held_rows()
    }
}

/// Streams bars or measurements from one or many Parquet files, merged by `ts`.
///
/// See the [module docs](self) for accepted column types, null handling and ordering.
pub struct ParquetSource {
    files: Vec<FileCursor>,
    /// Cursors with a current row, except the active one: min-heap on (ts, file index).
    heap: BinaryHeap<Reverse<(Ts, usize)>>,
    /// The file whose current row was returned last; it is advanced on the next call.
    active: Option<usize>,
    total_rows: u64,
    rows_read: u64,
}

fn matched_files(pattern: &str) -> Result<Vec<PathBuf>, SourceError> {
    let p = Path::new(pattern);
    if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let glob_pattern = if p.is_dir() {
        let dir = glob::Pattern::escape(pattern.trim_end_matches(['/', '\\']));
        format!("{dir}/*.parquet")
    } else {
        pattern.to_string()
    };
    let paths = glob::glob(&glob_pattern).map_err(|source| SourceError::BadPattern {
        pattern: pattern.to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| SourceError::Open {
            file: e.path().to_path_buf(),
            source: e.into(),
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(SourceError::NoMatch {
            pattern: pattern.to_string(),
        });
    }
    files.sort();
    Ok(files)
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, SourceError> {
    let f = File::open(path).map_err(|source| SourceError::Open {
        file: path.to_path_buf(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(f).map_err(|source| SourceError::Parquet {
        file: path.to_path_buf(),
        source,
    })
}

fn build_reader(
    path: &Path,
    b: ParquetRecordBatchReaderBuilder<File>,
    roots: &[usize],
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, SourceError> {
    let mask = ProjectionMask::roots(b.parquet_schema(), roots.iter().copied());
    b.with_projection(mask)
        .with_batch_size(batch_rows)
        .build()
        .map_err(|source| SourceError::Parquet {
            file: path.to_path_buf(),
            source,
        })
}

/// Scans only the `ts` column of a file: is it non-decreasing (nulls ignored)?
fn is_sorted(path: &Path, ts_root: usize) -> Result<bool, SourceError> {
    let reader = build_reader(path, builder(path)?, &[ts_root], 64 * 1024)?;
    let mut last = Ts::MIN;
    for b in reader {
        let b = b.map_err(|source| SourceError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let (ts, mult) = ts_col(path, "ts", b.column(0))?;
        for v in ts.iter().flatten() {
            let Some(v) = v.checked_mul(mult) else {
                continue;
            };
            if v < last {
                return Ok(false);
            }
            last = v;
        }
    }
    Ok(true)
}

/// Reads the projected file whole and sorts it stably by ts (null ts keep their predecessor's).
fn read_sorted(
    path: &Path,
    reader: ParquetRecordBatchReader,
    batch_rows: usize,
) -> Result<Batches, SourceError> {
    use arrow::record_batch::RecordBatchReader;
    let schema: SchemaRef = reader.schema();
    let read_err = |source| SourceError::Read {
        file: path.to_path_buf(),
        source,
    };
    let parts = reader.collect::<Result<Vec<_>, _>>().map_err(read_err)?;
    let all = concat_batches(&schema, &parts).map_err(read_err)?;
    drop(parts);
    let ts = all
        .column_by_name("ts")
        .ok_or_else(|| internal(path, "ts", "missing"))?;
    let (ts, mult) = ts_col(path, "ts", ts)?;
    let mut last = Ts::MIN;
    let keys: Vec<Ts> = ts
        .iter()
        .map(|v| {
            if let Some(v) = v.and_then(|v| v.checked_mul(mult)) {
                last = v;
            }
            last
        })
        .collect();
    let mut order: Vec<u64> = (0..keys.len() as u64).collect();
    order.sort_by_key(|&i| keys[i as usize]);
    drop(keys);
    let sorted = take_record_batch(&all, &UInt64Array::from(order)).map_err(read_err)?;
    drop(all);
    let n = sorted.num_rows();
    let queue: VecDeque<RecordBatch> = (0..n)
        .step_by(batch_rows)
        .map(|off| sorted.slice(off, batch_rows.min(n - off)))
        .collect();
    Ok(Batches::Memory { queue, rows: n })
}

impl ParquetSource {
    /// Opens every file matching `pattern` (a file, a directory = its `*.parquet`, or a glob),
    /// in sorted path order, checks their columns and loads the first batch of each.
    pub fn open(
        pattern: &str,
        kind: RecordKind,
        opts: SourceOptions,
    ) -> Result<ParquetSource, SourceError> {
        let batch_rows = opts.batch_rows.max(1);
        let (specs, kind_name) = specs(kind);
        let paths = matched_files(pattern)?;
        let mut files = Vec::with_capacity(paths.len());
        let mut total_rows = 0u64;
        for path in paths {
            let b = builder(&path)?;
            let roots = check_schema(&path, b.schema(), specs, kind_name)?;
            total_rows += b.metadata().file_metadata().num_rows().max(0) as u64;
            let batches = if opts.sort && !is_sorted(&path, b.schema().index_of("ts").unwrap_or(0))?
            {
                let reader = build_reader(&path, b, &roots, 64 * 1024)?;
                read_sorted(&path, reader, batch_rows)?
            } else {
                Batches::Stream(build_reader(&path, b, &roots, batch_rows)?)
            };
            files.push(FileCursor {
                path,
                kind,
                batches,
                cols: None,
                row: 0,
                base: 0,
                last_ts: None,
                head: Ts::MIN,
            });
        }
        let mut heap = BinaryHeap::with_capacity(files.len());
        for (i, f) in files.iter_mut().enumerate() {
            if f.load()? {
                heap.push(Reverse((f.head, i)));
            }
        }
        Ok(ParquetSource {
            files,
            heap,
            active: None,
            total_rows,
            rows_read: 0,
        })
    }

    /// The next record in (ts, file, row) order, or `None` when every file is exhausted. The
    /// record borrows its key from the current batch, so it must be dropped before the next call.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        let next = match self.active.take() {
            Some(f) if self.files[f].advance()? => {
                let mine = (self.files[f].head, f);
                match self.heap.peek() {
                    Some(&Reverse(top)) if top < mine => {
                        self.heap.push(Reverse(mine));
                        self.heap.pop().map(|Reverse((_, g))| g)
                    }
                    _ => Some(f),
                }
            }
            _ => self.heap.pop().map(|Reverse((_, g))| g),
        };
        let Some(f) = next else {
            return Ok(None);
        };
        self.active = Some(f);
        self.rows_read += 1;
        Ok(self.files[f].record())
    }

    /// Rows currently held in decoded Arrow batches, over all files. With streaming files this
    /// stays at most `files × batch_rows`.
    pub fn buffered_rows(&self) -> usize {
        self.files.iter().map(FileCursor::buffered_rows).sum()
    }

    /// Rows in all matched files, from the Parquet footers (for a progress bar).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Records returned so far.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The matched files, in merge order (ties go to the earlier file).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }
}

// ---------------------------------------------------------------------------------------------
// Sinks
// ---------------------------------------------------------------------------------------------

fn ts_utc_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A Parquet file written under `NAME.tmp` and renamed to `NAME` when finished.
struct TmpParquet {
    dest: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl TmpParquet {
    fn create(dest: &Path, schema: SchemaRef) -> Result<TmpParquet, SinkError> {
        let mut tmp = dest.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|source| SinkError::Create {
            file: dest.to_path_buf(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(SINK_ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|source| {
            SinkError::Write {
                file: dest.to_path_buf(),
                source,
            }
        });
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        Ok(TmpParquet {
            dest: dest.to_path_buf(),
            tmp,
            schema,
            writer: Some(writer),
            rows: 0,
        })
    }

    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), SinkError> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| {
            SinkError::Batch {
                file: self.dest.clone(),
                source,
            }
        })?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let w = self.writer.as_mut().expect("writer used after finish");
        w.write(&batch).map_err(|source| SinkError::Write {
            file: self.dest.clone(),
            source,
        })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        let mut w = self.writer.take().expect("writer finished twice");
        let commit = |source| SinkError::Commit {
            file: self.dest.clone(),
            tmp: self.tmp.clone(),
            source,
        };
        w.finish().map_err(|source| SinkError::Write {
            file: self.dest.clone(),
            source,
        })?;
        w.inner().sync_all().map_err(commit)?;
        drop(w);
        std::fs::rename(&self.tmp, &self.dest).map_err(commit)?;
        Ok(self.rows)
    }
}

impl Drop for TmpParquet {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The float columns of the events schema, in order, after `direction`.
const EVENT_F64: [&str; 12] = [
    "strength",
    "level",
    "slope",
    "zone",
    "position_from",
    "position_to",
    "turnover",
    "cost",
    "offset",
    "predicted",
    "statistic",
    "limit",
];
const F_STRENGTH: usize = 0;
const F_LEVEL: usize = 1;
const F_SLOPE: usize = 2;
const F_ZONE: usize = 3;
const F_FROM: usize = 4;
const F_TO: usize = 5;
const F_TURNOVER: usize = 6;
const F_COST: usize = 7;
const F_OFFSET: usize = 8;
const F_PREDICTED: usize = 9;
const F_STATISTIC: usize = 10;
const F_LIMIT: usize = 11;

/// The Arrow schema of `events.parquet` (design §2): `id`, `key`, `seq`, `ts`, `kind`, then the
/// per-kind columns, null where the event's kind does not have them.
pub fn events_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("ts", ts_utc_type(), false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("direction", DataType::Int8, true),
    ];
    fields.extend(
        EVENT_F64
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    fields.push(Field::new("rule", DataType::Utf8, true));
    fields.push(Field::new("tool", DataType::UInt32, true));
    Arc::new(Schema::new(fields))
}

/// Writes events to Parquet (schema: [`events_schema`]).
pub struct EventWriter {
    out: TmpParquet,
    id: StringBuilder,
    key: StringBuilder,
    seq: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    kind: StringBuilder,
    direction: Int8Builder,
    f: [Float64Builder; 12],
    rule: StringBuilder,
    tool: UInt32Builder,
    pending: usize,
}

impl EventWriter {
    /// Creates `path.tmp`; `finish` renames it to `path`.
    pub fn create(path: &Path) -> Result<EventWriter, SinkError> {
        let n = SINK_BATCH_ROWS;
        Ok(EventWriter {
            out: TmpParquet::create(path, events_schema())?,
            id: StringBuilder::with_capacity(n, n * 24),
            key: StringBuilder::with_capacity(n, n * 8),
            seq: UInt64Builder::with_capacity(n),
            ts: TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC"),
            kind: StringBuilder::with_capacity(n, n * 8),
            direction: Int8Builder::with_capacity(n),
            f: std::array::from_fn(|_| Float64Builder::with_capacity(n)),
            rule: StringBuilder::with_capacity(n, n),
            tool: UInt32Builder::with_capacity(n),
            pending: 0,
        })
    }

    /// Appends one event; every [`SINK_BATCH_ROWS`] rows a batch goes to the Parquet writer.
    pub fn write(&mut self, e: &Event) -> Result<(), SinkError> {
        let mut f = [None; 12];
        let mut direction = None;
        let mut rule = None;
        let mut tool = None;
        match e.body {
            EventBody::Trend {
                direction: d,
                strength,
                level,
                slope,
                zone,
            } => {
                direction = Some(d);
                f[F_STRENGTH] = Some(strength);
                f[F_LEVEL] = Some(level);
                f[F_SLOPE] = Some(slope);
                f[F_ZONE] = Some(zone);
            }
            EventBody::Rebalance {
                position_from,
                position_to,
                turnover,
                cost,
            } => {
                f[F_FROM] = Some(position_from);
                f[F_TO] = Some(position_to);
                f[F_TURNOVER] = Some(turnover);
                f[F_COST] = Some(cost);
            }
            EventBody::ToolCompensation {
                offset,
                predicted,
                zone,
            } => {
                f[F_OFFSET] = Some(offset);
                f[F_PREDICTED] = Some(predicted);
                f[F_ZONE] = Some(zone);
            }
            EventBody::SpcAlarm {
                rule: r,
                statistic,
                limit,
            } => {
                rule = Some(r.name());
                f[F_STATISTIC] = Some(statistic);
                f[F_LIMIT] = Some(limit);
            }
            EventBody::ToolChange { tool: t } => tool = Some(t),
        }
        self.id.append_value(e.id());
        self.key.append_value(&e.key);
        self.seq.append_value(e.seq);
        self.ts.append_value(e.ts);
        self.kind.append_value(e.body.kind().as_str());
        self.direction.append_option(direction);
        for (b, v) in self.f.iter_mut().zip(f) {
            b.append_option(v);
        }
        self.rule.append_option(rule);
        self.tool.append_option(tool);
        self.pending += 1;
        if self.pending >= SINK_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.kind.finish()),
            Arc::new(self.direction.finish()),
        ];
        cols.extend(self.f.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        cols.push(Arc::new(self.rule.finish()));
        cols.push(Arc::new(self.tool.finish()));
        self.pending = 0;
        self.out.write(cols)
    }

    /// Writes the buffered rows and the footer, syncs, and renames the file into place.
    /// Returns the number of rows written.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        self.flush()?;
        self.out.finish()
    }
}

/// The Arrow schema of `fit.parquet` (design §2).
pub fn fit_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("ts", ts_utc_type(), false),
        Field::new("y", DataType::Float64, false),
        Field::new("level", DataType::Float64, false),
        Field::new("slope", DataType::Float64, false),
        Field::new("zone", DataType::Float64, false),
        Field::new("inside", DataType::Boolean, false),
        Field::new("updated", DataType::Boolean, false),
        Field::new("regime", DataType::Utf8, false),
    ]))
}

/// Writes per-record fit rows to Parquet (schema: [`fit_schema`]).
pub struct FitWriter {
    out: TmpParquet,
    key: StringBuilder,
    ts: TimestampNanosecondBuilder,
    f: [Float64Builder; 4],
    inside: BooleanBuilder,
    updated: BooleanBuilder,
    regime: StringBuilder,
    pending: usize,
}

impl FitWriter {
    /// Creates `path.tmp`; `finish` renames it to `path`.
    pub fn create(path: &Path) -> Result<FitWriter, SinkError> {
        let n = SINK_BATCH_ROWS;
        Ok(FitWriter {
            out: TmpParquet::create(path, fit_schema())?,
            key: StringBuilder::with_capacity(n, n * 8),
            ts: TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC"),
            f: std::array::from_fn(|_| Float64Builder::with_capacity(n)),
            inside: BooleanBuilder::with_capacity(n),
            updated: BooleanBuilder::with_capacity(n),
            regime: StringBuilder::with_capacity(n, n * 8),
            pending: 0,
        })
    }

    /// Appends one fit row of `key`; `regime` is the name of the row's regime.
    pub fn write(&mut self, key: &str, row: &FitRow, regime: &str) -> Result<(), SinkError> {
        self.key.append_value(key);
        self.ts.append_value(row.ts);
        for (b, v) in self
            .f
            .iter_mut()
            .zip([row.y, row.level, row.slope, row.zone])
        {
            b.append_value(v);
        }
        self.inside.append_value(row.inside);
        self.updated.append_value(row.updated);
        self.regime.append_value(regime);
        self.pending += 1;
        if self.pending >= SINK_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
        ];
        cols.extend(self.f.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        cols.push(Arc::new(self.inside.finish()));
        cols.push(Arc::new(self.updated.finish()));
        cols.push(Arc::new(self.regime.finish()));
        self.pending = 0;
        self.out.write(cols)
    }

    /// Writes the buffered rows and the footer, syncs, and renames the file into place.
    /// Returns the number of rows written.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        self.flush()?;
        self.out.finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading events back
// ---------------------------------------------------------------------------------------------

/// Reads an events file (as written by [`EventWriter`]) back into [`Event`]s, in file order.
///
/// Columns are found by name. `key`, `seq`, `ts` and `kind` are required; a per-kind column is
/// needed only by rows of that kind and must not be null there. `id` is not read (it is derived
/// from the other fields). `seq` may be any integer type and `ts` any Timestamp or Int64.
pub fn read_events(path: &Path) -> Result<Vec<Event>, SourceError> {
    let b = builder(path)?;
    let schema = b.schema().clone();
    let mut specs: Vec<ColSpec> = vec![
        col("key", ColType::Key, true),
        col("seq", ColType::Num, true),
        col("ts", ColType::Ts, true),
        col("kind", ColType::Key, true),
        col("direction", ColType::Num, false),
        col("rule", ColType::Key, false),
    ];
    specs.extend(EVENT_F64.iter().map(|n| col(n, ColType::Num, false)));
    check_schema(path, &schema, &specs, "event")?;
    if let Ok(i) = schema.index_of("seq") {
        let dt = schema.field(i).data_type();
        if !dt.is_integer() {
            return Err(SourceError::WrongType {
                file: path.to_path_buf(),
                column: "seq".into(),
                found: dt.to_string(),
                expected: "UInt64 (or another integer type)",
            });
        }
    }
    let reader = b.build().map_err(|source| SourceError::Parquet {
        file: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut keys: std::collections::HashMap<String, Arc<str>> = Default::default();
    for batch in reader {
        let batch = batch.map_err(|source| SourceError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        read_event_batch(path, &batch, &mut keys, &mut out)?;
    }
    Ok(out)
}

fn read_event_batch(
    path: &Path,
    b: &RecordBatch,
    keys: &mut std::collections::HashMap<String, Arc<str>>,
    out: &mut Vec<Event>,
) -> Result<(), SourceError> {
    let need = |name: &'static str| {
        b.column_by_name(name)
            .ok_or_else(|| internal(path, name, "missing"))
    };
    let key = key_col(path, "key", need("key")?)?;
    let kind = key_col(path, "kind", need("kind")?)?;
    let seq = cast(need("seq")?, &DataType::UInt64).map_err(|source| SourceError::Convert {
        file: path.to_path_buf(),
        column: "seq",
        source,
    })?;
    let seq = seq
        .as_primitive_opt::<arrow::datatypes::UInt64Type>()
        .cloned()
        .ok_or_else(|| internal(path, "seq", "uint64"))?;
    let (ts, mult) = ts_col(path, "ts", need("ts")?)?;
    let direction: Option<Int8Array> = match b.column_by_name("direction") {
        Some(a) => Some(
            cast(a, &DataType::Int8)
                .map_err(|source| SourceError::Convert {
                    file: path.to_path_buf(),
                    column: "direction",
                    source,
                })?
                .as_primitive_opt::<arrow::datatypes::Int8Type>()
                .cloned()
                .ok_or_else(|| internal(path, "direction", "int8"))?,
        ),
        None => None,
    };
    let rule = b
        .column_by_name("rule")
        .map(|a| key_col(path, "rule", a))
        .transpose()?;
    let tool: Option<UInt32Array> = match b.column_by_name("tool") {
        Some(a) => Some(
            cast(a, &DataType::UInt32)
                .map_err(|source| SourceError::Convert {
                    file: path.to_path_buf(),
                    column: "tool",
                    source,
                })?
                .as_primitive_opt::<arrow::datatypes::UInt32Type>()
                .cloned()
                .ok_or_else(|| internal(path, "tool", "uint32"))?,
        ),
        None => None,
    };
    let mut f: Vec<Option<Float64Array>> = Vec::with_capacity(EVENT_F64.len());
    for name in EVENT_F64 {
        f.push(
            b.column_by_name(name)
                .map(|a| f64_col(path, name, a))
                .transpose()?,
        );
    }
    let base = out.len() as u64;
    for i in 0..b.num_rows() {
        let row = base + i as u64;
        let bad = |problem: String| SourceError::BadEvent {
            file: path.to_path_buf(),
            row,
            problem,
        };
        let kind_s = kind.get(i);
        let num = |j: usize| -> Result<f64, SourceError> {
            opt(&f[j], i).ok_or_else(|| {
                bad(format!(
                    "a `{kind_s}` event needs `{}`, which is null or missing",
                    EVENT_F64[j]
                ))
            })
        };
        if !seq.is_valid(i) {
            return Err(bad("`seq` is null".into()));
        }
        let t = if ts.is_valid(i) {
            ts.value(i).checked_mul(mult)
        } else {
            None
        };
        let t = t.ok_or_else(|| bad("`ts` is null or out of range".into()))?;
        let body = match kind_s {
            "trend" => EventBody::Trend {
                direction: match &direction {
                    Some(d) if d.is_valid(i) => d.value(i),
                    _ => return Err(bad("a `trend` event needs `direction`, which is null or missing".into())),
                },
                strength: num(F_STRENGTH)?,
                level: num(F_LEVEL)?,
                slope: num(F_SLOPE)?,
                zone: num(F_ZONE)?,
            },
            "rebalance" => EventBody::Rebalance {
                position_from: num(F_FROM)?,
                position_to: num(F_TO)?,
                turnover: num(F_TURNOVER)?,
                cost: num(F_COST)?,
            },
            "tool_compensation" => EventBody::ToolCompensation {
                offset: num(F_OFFSET)?,
                predicted: num(F_PREDICTED)?,
                zone: num(F_ZONE)?,
            },
            "spc_alarm" => {
                let name = rule.as_ref().map_or("", |r| r.get(i));
                let r = Rule::ALL.iter().find(|r| r.name() == name).ok_or_else(|| {
                    let mut known = String::new();
                    for r in Rule::ALL {
                        let _ = write!(known, " {}", r.name());
                    }
                    bad(format!(
                        "unknown SPC rule `{name}` (known:{known})"
                    ))
                })?;
                EventBody::SpcAlarm {
                    rule: *r,
                    statistic: num(F_STATISTIC)?,
                    limit: num(F_LIMIT)?,
                }
            }
            "tool_change" => EventBody::ToolChange {
                tool: match &tool {
                    Some(t) if t.is_valid(i) => t.value(i),
                    _ => return Err(bad("a `tool_change` event needs `tool`, which is null or missing".into())),
                },
            },
            other => {
                return Err(bad(format!(
                    "unknown kind `{other}` (expected trend, rebalance, tool_compensation, spc_alarm or tool_change)"
                )))
            }
        };
        let k = key.get(i);
        let key = match keys.get(k) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(k);
                keys.insert(k.to_string(), a.clone());
                a
            }
        };
        out.push(Event {
            key,
            seq: seq.value(i),
            ts: t,
            body,
        });
    }
    Ok(())
}
