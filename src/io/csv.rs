//! [`CsvSource`]: bars or measurements read from CSV files with a header row, merged by `ts`
//! with the same k-way merge as the Parquet source.
//!
//! The format mirrors the Parquet input, so a file converts one to one:
//! - The header names the columns, in any order, with the Parquet column names: bars `key`,
//!   `ts`, `open`, `high`, `low`, `close` and optionally `volume` and `true_trend`; measurements `key`, `ts`,
//!   `value` and optionally `nominal`, `lsl`, `usl`, `tool` (a whole number from 0 to
//!   4294967295, else absent) and `true_value`. Other columns (such as `part`) are ignored.
//!   Header names and fields are trimmed; a UTF-8 byte order mark is ignored. A required column
//!   that is missing, or a needed column named twice, is an error naming file and line.
//! - `ts` is integer epoch nanoseconds or an RFC 3339 time with any offset (`T` or a space
//!   between date and time), converted to UTC nanoseconds.
//! - Numbers use `.` as decimal separator. Bad values never stop a run, as with Parquet nulls:
//!   an empty or unparsable required number becomes NaN, an empty optional one is absent
//!   (`None`), an unparsable optional one NaN; an empty key is `""`. An empty or unparsable
//!   `ts` (or one outside the i64 nanosecond range) makes every number of the record NaN and
//!   gives it the previous row's ts. Validation then rejects such records (`not_finite`,
//!   `empty_key`) and the run counts them.
//! - A line that is not valid CSV (unbalanced quotes, a different number of fields than the
//!   header, invalid UTF-8) is an error naming file and line: the file cannot be read reliably.
//! - A directory given as the pattern means every `*.csv` file in it; several files are merged
//!   by (ts, file index, row), files sorted by path, exactly as Parquet files are.
//! - Order is checked while streaming, as for Parquet. With `sort`, each file is first scanned
//!   (its `ts` only) and a file found unsorted is read whole and sorted stably in memory.
//!
//! Memory: one record buffer per streaming file, reused from row to row; the key of a returned
//! record borrows from it.

use std::fs::File;
use std::path::{Path, PathBuf};

use ::csv::{ByteRecord, Reader, ReaderBuilder, StringRecord, Trim};

use crate::io::parquet::merge::{matched_files, Cursor, Merge};
use crate::io::parquet::{nan_payload, specs, tool_id, SourceError, SourceOptions};
use crate::record::{Bar, Measurement, Payload, Record, RecordKind, Ts};

/// Where each needed column is in a file's records.
struct Layout {
    key: usize,
    ts: usize,
    nums: Nums,
}

/// Field indices of the numbers; `None` for an optional column the file does not have.
enum Nums {
    Bar {
        open: usize,
        high: usize,
        low: usize,
        close: usize,
        volume: Option<usize>,
        true_trend: Option<usize>,
    },
    Meas {
        value: usize,
        nominal: Option<usize>,
        lsl: Option<usize>,
        usl: Option<usize>,
        tool: Option<usize>,
        true_value: Option<usize>,
    },
}

/// Where a cursor's rows come from.
enum Rows {
    /// Read from the file, one record at a time into the cursor's buffer.
    Stream(Reader<File>),
    /// The whole file, sorted in memory (`sort` on an unsorted file).
    Memory(std::vec::IntoIter<StringRecord>),
}

/// One file's read position: its current record.
struct CsvCursor {
    path: PathBuf,
    rows: Rows,
    layout: Layout,
    /// The current record; reused for every row of a streamed file.
    rec: StringRecord,
    /// Whether `rec` holds a current row.
    live: bool,
    /// The current row's ts; `None` when empty or unparsable.
    ts: Option<Ts>,
    /// Last usable ts, for the order check and as the merge key of rows without one.
    last_ts: Option<Ts>,
    /// Merge key of the current row.
    head: Ts,
}

/// An empty or unparsable number is NaN, so validation rejects the record.
#[inline]
fn num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

/// Integer epoch nanoseconds or RFC 3339; `None` when empty, unparsable or out of range.
fn parse_ts(s: &str) -> Option<Ts> {
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .timestamp_nanos_opt()
}

fn csv_error(path: &Path, line: u64, source: ::csv::Error) -> SourceError {
    let line = source.position().map_or(line, |p| p.line());
    SourceError::Csv {
        file: path.to_path_buf(),
        line,
        source,
    }
}

fn open_reader(path: &Path) -> Result<Reader<File>, SourceError> {
    let f = File::open(path).map_err(|source| SourceError::Open {
        file: path.to_path_buf(),
        source,
    })?;
    Ok(ReaderBuilder::new().trim(Trim::All).from_reader(f))
}

/// Reads the header and finds the columns of `kind` in it.
fn layout(path: &Path, r: &mut Reader<File>, kind: RecordKind) -> Result<Layout, SourceError> {
    let header = r.headers().map_err(|e| csv_error(path, 1, e))?.clone();
    let line = header.position().map_or(1, |p| p.line());
    let names: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                h.trim_start_matches('\u{feff}').trim()
            } else {
                h
            }
        })
        .collect();
    let (specs, kind_name) = specs(kind);
    let mut found = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut at = names.iter().enumerate().filter(|(_, h)| **h == spec.name);
        let first = at.next().map(|(i, _)| i);
        if at.next().is_some() {
            return Err(SourceError::CsvDuplicateColumn {
                file: path.to_path_buf(),
                line,
                column: spec.name,
            });
        }
        if first.is_none() && spec.required {
            let found = if names.iter().all(|h| h.is_empty()) {
                "none, the file is empty".to_string()
            } else {
                names
                    .iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(SourceError::CsvMissingColumn {
                file: path.to_path_buf(),
                line,
                column: spec.name,
                kind: kind_name,
                found,
            });
        }
        found.push((spec.name, first));
    }
    let opt = |name: &str| found.iter().find(|(n, _)| *n == name).and_then(|(_, i)| *i);
    // Required columns were checked above; usize::MAX (never a field) cannot be reached.
    let req = |name: &str| opt(name).unwrap_or(usize::MAX);
    let nums = match kind {
        RecordKind::Bar => Nums::Bar {
            open: req("open"),
            high: req("high"),
            low: req("low"),
            close: req("close"),
            volume: opt("volume"),
            true_trend: opt("true_trend"),
        },
        RecordKind::Measurement => Nums::Meas {
            value: req("value"),
            nominal: opt("nominal"),
            lsl: opt("lsl"),
            usl: opt("usl"),
            tool: opt("tool"),
            true_value: opt("true_value"),
        },
    };
    Ok(Layout {
        key: req("key"),
        ts: req("ts"),
        nums,
    })
}

/// Scans only the `ts` field of every row: is the file non-decreasing (bad ts ignored)?
fn is_sorted(path: &Path, mut r: Reader<File>, ts_field: usize) -> Result<bool, SourceError> {
    let mut rec = ByteRecord::new();
    let mut last = Ts::MIN;
    loop {
        let line = r.position().line();
        if !r
            .read_byte_record(&mut rec)
            .map_err(|e| csv_error(path, line, e))?
        {
            return Ok(true);
        }
        let ts = rec.get(ts_field).and_then(|b| std::str::from_utf8(b).ok());
        if let Some(ts) = ts.and_then(parse_ts) {
            if ts < last {
                return Ok(false);
            }
            last = ts;
        }
    }
}

/// Reads the file whole and sorts its rows stably by ts (a row without one keeps its
/// predecessor's).
fn read_sorted(path: &Path, mut r: Reader<File>, ts_field: usize) -> Result<Rows, SourceError> {
    let mut rows: Vec<(Ts, StringRecord)> = Vec::new();
    let mut last = Ts::MIN;
    loop {
        let line = r.position().line();
        let mut rec = StringRecord::new();
        if !r
            .read_record(&mut rec)
            .map_err(|e| csv_error(path, line, e))?
        {
            break;
        }
        if let Some(ts) = rec.get(ts_field).and_then(parse_ts) {
            last = ts;
        }
        rows.push((last, rec));
    }
    rows.sort_by_key(|&(ts, _)| ts);
    let rows: Vec<StringRecord> = rows.into_iter().map(|(_, rec)| rec).collect();
    Ok(Rows::Memory(rows.into_iter()))
}

impl CsvCursor {
    fn open(path: PathBuf, kind: RecordKind, sort: bool) -> Result<CsvCursor, SourceError> {
        let mut r = open_reader(&path)?;
        let layout = layout(&path, &mut r, kind)?;
        let rows = if !sort {
            Rows::Stream(r)
        } else if is_sorted(&path, r, layout.ts)? {
            Rows::Stream(open_reader(&path)?)
        } else {
            read_sorted(&path, open_reader(&path)?, layout.ts)?
        };
        Ok(CsvCursor {
            path,
            rows,
            layout,
            rec: StringRecord::new(),
            live: false,
            ts: None,
            last_ts: None,
            head: Ts::MIN,
        })
    }

    /// The current row's field `i`; `""` when missing.
    #[inline]
    fn field(&self, i: usize) -> &str {
        self.rec.get(i).unwrap_or("")
    }

    #[inline]
    fn opt(&self, i: Option<usize>) -> Option<f64> {
        match self.field(i?) {
            "" => None,
            s => Some(num(s)),
        }
    }

    #[inline]
    fn payload(&self) -> Payload {
        match self.layout.nums {
            Nums::Bar {
                open,
                high,
                low,
                close,
                volume,
                true_trend,
            } => Payload::Bar(Bar {
                open: num(self.field(open)),
                high: num(self.field(high)),
                low: num(self.field(low)),
                close: num(self.field(close)),
                volume: self.opt(volume),
                true_trend: self.opt(true_trend),
            }),
            Nums::Meas {
                value,
                nominal,
                lsl,
                usl,
                tool,
                true_value,
            } => Payload::Measurement(Measurement {
                value: num(self.field(value)),
                nominal: self.opt(nominal),
                lsl: self.opt(lsl),
                usl: self.opt(usl),
                tool: self.opt(tool).and_then(tool_id),
                true_value: self.opt(true_value),
            }),
        }
    }

    /// The line the current row starts on (1 is the header).
    fn line(&self) -> u64 {
        self.rec.position().map_or(0, |p| p.line())
    }

    fn buffered_rows(&self) -> usize {
        let held = match &self.rows {
            Rows::Stream(_) => 0,
            Rows::Memory(rest) => rest.len(),
        };
        held + usize::from(self.live)
    }
}

impl Cursor for CsvCursor {
    /// Reads the next record into the buffer, parses its ts and checks the order.
    #[inline]
    fn advance(&mut self) -> Result<bool, SourceError> {
        self.live = match &mut self.rows {
            Rows::Stream(r) => {
                let line = r.position().line();
                r.read_record(&mut self.rec)
                    .map_err(|e| csv_error(&self.path, line, e))?
            }
            Rows::Memory(rest) => match rest.next() {
                Some(rec) => {
                    self.rec = rec;
                    true
                }
                None => false,
            },
        };
        if !self.live {
            return Ok(false);
        }
        self.ts = parse_ts(self.field(self.layout.ts));
        match self.ts {
            Some(ts) => {
                if let Some(prev) = self.last_ts {
                    if ts < prev {
                        return Err(SourceError::CsvUnsorted {
                            file: self.path.clone(),
                            line: self.line(),
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
    fn head(&self) -> Ts {
        self.head
    }

    #[inline]
    fn record(&self) -> Option<Record<'_>> {
        if !self.live {
            return None;
        }
        let payload = self.payload();
        Some(Record {
            key: self.field(self.layout.key),
            ts: self.ts.unwrap_or(self.head),
            payload: if self.ts.is_some() {
                payload
            } else {
                nan_payload(payload)
            },
        })
    }
}

/// Streams bars or measurements from one or many CSV files, merged by `ts`.
///
/// See the [module docs](self) for the format, bad values and ordering.
pub struct CsvSource {
    merge: Merge<CsvCursor>,
}

impl CsvSource {
    /// Opens every file matching `pattern` (a file, a directory = its `*.csv`, or a glob), in
    /// sorted path order, checks their headers and reads the first row of each. Of `opts`
    /// only `sort` applies (CSV is read row by row, so `batch_rows` has no meaning here).
    pub fn open(
        pattern: &str,
        kind: RecordKind,
        opts: SourceOptions,
    ) -> Result<CsvSource, SourceError> {
        let cursors = matched_files(pattern, "csv")?
            .into_iter()
            .map(|path| CsvCursor::open(path, kind, opts.sort))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CsvSource {
            merge: Merge::new(cursors)?,
        })
    }

    /// The next record in (ts, file, row) order, or `None` when every file is exhausted. The
    /// record borrows its key from the file's record buffer, so it must be dropped before the
    /// next call.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        self.merge.next_record()
    }

    /// Always 0: a CSV file's row count is not known without reading it, so 0 means unknown
    /// (show a spinner rather than a bar).
    pub fn total_rows(&self) -> u64 {
        0
    }

    /// Records returned so far.
    pub fn rows_read(&self) -> u64 {
        self.merge.rows_read()
    }

    /// Rows held in memory over all files: one per streamed file, the rest of a file sorted in
    /// memory.
    pub fn buffered_rows(&self) -> usize {
        self.merge
            .cursors()
            .iter()
            .map(CsvCursor::buffered_rows)
            .sum()
    }

    /// The matched files, in merge order (ties go to the earlier file).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.merge.cursors().iter().map(|c| c.path.as_path())
    }
}
