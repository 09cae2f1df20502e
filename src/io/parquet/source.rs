//! [`ParquetSource`]: bars or measurements streamed from Parquet files, one record batch per
//! file at a time, merged by `ts`.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::UInt64Array;
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::columns::{check_schema, internal, specs, ts_col, Cols};
use super::merge::{matched_files, Cursor, Merge};
use super::SourceError;
use crate::record::{Record, RecordKind, Ts};

/// How a file source reads ([`ParquetSource`]; [`crate::io::csv::CsvSource`] uses `sort` only).
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

    fn buffered_rows(&self) -> usize {
        self.cols.as_ref().map_or(0, |c| c.len - self.row) + self.batches.held_rows()
    }
}

impl Cursor for FileCursor {
    /// The next row of the current batch, else the first row of the next non-empty batch.
    /// A fresh cursor has no batch, so the first call loads one.
    #[inline]
    fn advance(&mut self) -> Result<bool, SourceError> {
        self.row += 1;
        match &self.cols {
            Some(c) if self.row < c.len => self.settle(),
            _ => self.load(),
        }
    }

    #[inline]
    fn head(&self) -> Ts {
        self.head
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
}

pub(super) fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, SourceError> {
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

/// Streams bars or measurements from one or many Parquet files, merged by `ts`.
///
/// See the [module docs](super) for accepted column types, null handling and ordering.
pub struct ParquetSource {
    merge: Merge<FileCursor>,
    total_rows: u64,
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
        let paths = matched_files(pattern, "parquet")?;
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
        Ok(ParquetSource {
            merge: Merge::new(files)?,
            total_rows,
        })
    }

    /// The next record in (ts, file, row) order, or `None` when every file is exhausted. The
    /// record borrows its key from the current batch, so it must be dropped before the next call.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        self.merge.next_record()
    }

    /// Rows currently held in decoded Arrow batches, over all files. With streaming files this
    /// stays at most `files × batch_rows`.
    pub fn buffered_rows(&self) -> usize {
        self.merge
            .cursors()
            .iter()
            .map(FileCursor::buffered_rows)
            .sum()
    }

    /// Rows in all matched files, from the Parquet footers (for a progress bar).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Records returned so far.
    pub fn rows_read(&self) -> u64 {
        self.merge.rows_read()
    }

    /// The matched files, in merge order (ties go to the earlier file).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.merge.cursors().iter().map(|f| f.path.as_path())
    }
}
