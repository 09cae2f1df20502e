//! Combines Parquet files of one schema written by shards (`events.parquet`, `fit.parquet`)
//! into one file sorted by `ts`, then `key`, then `seq`, `kind` and `id` where the schema has
//! them: a k-way merge by timestamp that sorts the rows of one timestamp at a time, so memory
//! holds the batches in flight and one timestamp's rows, never a whole file.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampNanosecondType, UInt64Type};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::sink::sink_props;
use super::source::builder;
use super::{AtomicParquetWriter, SinkError, SourceError, SINK_BATCH_ROWS};

/// Why files could not be combined.
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{file}: its columns differ from {first}'s; every shard must be written by the same deadband version with the same settings")]
    Schema { file: PathBuf, first: PathBuf },
    #[error("{file}: needs a Timestamp(ns) column `ts` and a Utf8 column `key`; this is not a file written by deadband")]
    Columns { file: PathBuf },
    #[error("{file}: row {row} has ts {ts} ns, before the previous row's {prev} ns; a shard's files are written in time order, so this one was edited or not written by deadband")]
    Unsorted {
        file: PathBuf,
        row: u64,
        ts: i64,
        prev: i64,
    },
}

impl CombineError {
    /// Problems with the files given (exit code 2), as opposed to failures of the machine (1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            CombineError::Source(e) => e.is_bad_input(),
            CombineError::Sink(_) => false,
            _ => true,
        }
    }
}

/// The columns rows are ordered by, typed.
struct SortCols {
    ts: TimestampNanosecondArray,
    key: StringArray,
    seq: Option<UInt64Array>,
    kind: Option<StringArray>,
    id: Option<StringArray>,
}

impl SortCols {
    fn of(b: &RecordBatch) -> Option<SortCols> {
        let text = |n: &str| b.column_by_name(n)?.as_string_opt::<i32>().cloned();
        Some(SortCols {
            ts: b
                .column_by_name("ts")?
                .as_primitive_opt::<TimestampNanosecondType>()?
                .clone(),
            key: text("key")?,
            seq: b
                .column_by_name("seq")
                .and_then(|c| c.as_primitive_opt::<UInt64Type>().cloned()),
            kind: text("kind"),
            id: text("id"),
        })
    }
}

/// Orders two rows of one timestamp: key, then seq, kind and id when present.
fn cmp_rows(a: (&SortCols, usize), b: (&SortCols, usize)) -> Ordering {
    let ((x, i), (y, j)) = (a, b);
    let text = |p: &Option<StringArray>, q: &Option<StringArray>| match (p, q) {
        (Some(p), Some(q)) => p.value(i).cmp(q.value(j)),
        _ => Ordering::Equal,
    };
    x.key
        .value(i)
        .cmp(y.key.value(j))
        .then_with(|| match (&x.seq, &y.seq) {
            (Some(p), Some(q)) => p.value(i).cmp(&q.value(j)),
            _ => Ordering::Equal,
        })
        .then_with(|| text(&x.kind, &y.kind))
        .then_with(|| text(&x.id, &y.id))
}

/// One input file: its reader, current batch and row, and where that batch sits in the pool.
struct Cursor {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    row: usize,
    rows: usize,
    slot: usize,
    read: u64,
    prev: i64,
}

/// Batches the pending output rows point into, with their sort columns.
type Pool = Vec<(RecordBatch, SortCols)>;

impl Cursor {
    /// Loads the next non-empty batch into the pool; false at the end of the file.
    fn load(&mut self, pool: &mut Pool) -> Result<bool, CombineError> {
        for b in self.reader.by_ref() {
            let b = b.map_err(|source| SourceError::Read {
                file: self.path.clone(),
                source,
            })?;
            if b.num_rows() == 0 {
                continue;
            }
            let cols = SortCols::of(&b).ok_or_else(|| CombineError::Columns {
                file: self.path.clone(),
            })?;
            (self.row, self.rows, self.slot) = (0, b.num_rows(), pool.len());
            pool.push((b, cols));
            return Ok(true);
        }
        self.rows = 0;
        Ok(false)
    }

    fn head(&self, pool: &Pool) -> Option<i64> {
        (self.row < self.rows).then(|| pool[self.slot].1.ts.value(self.row))
    }

    /// Moves past the current row, checking that the next one is not earlier.
    fn advance(&mut self, pool: &mut Pool) -> Result<(), CombineError> {
        self.prev = pool[self.slot].1.ts.value(self.row);
        self.row += 1;
        self.read += 1;
        if self.row >= self.rows && !self.load(pool)? {
            return Ok(());
        }
        let ts = pool[self.slot].1.ts.value(self.row);
        if ts < self.prev {
            return Err(CombineError::Unsorted {
                file: self.path.clone(),
                row: self.read,
                ts,
                prev: self.prev,
            });
        }
        Ok(())
    }
}

/// Writes every row of `inputs` (same schema) into `out`, sorted as the module says; returns
/// the number of rows.
pub fn combine_sorted(inputs: &[PathBuf], out: &Path) -> Result<u64, CombineError> {
    let mut schema: Option<SchemaRef> = None;
    let mut cursors = Vec::new();
    let mut pool: Pool = Vec::new();
    for path in inputs {
        let b = builder(path)?;
        let s = b.schema().clone();
        let ts_ok = s
            .field_with_name("ts")
            .is_ok_and(|f| matches!(f.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _)));
        if !ts_ok {
            return Err(CombineError::Columns { file: path.clone() });
        }
        match &schema {
            Some(first) if first != &s => {
                return Err(CombineError::Schema {
                    file: path.clone(),
                    first: inputs[0].clone(),
                })
            }
            Some(_) => {}
            None => schema = Some(s),
        }
        let reader = b
            .with_batch_size(SINK_BATCH_ROWS)
            .build()
            .map_err(|source| SourceError::Parquet {
                file: path.clone(),
                source,
            })?;
        let mut c = Cursor {
            path: path.clone(),
            reader,
            row: 0,
            rows: 0,
            slot: 0,
            read: 0,
            prev: i64::MIN,
        };
        c.load(&mut pool)?;
        cursors.push(c);
    }
    let Some(schema) = schema else {
        return Ok(0);
    };
    let props = sink_props(&schema);
    let mut writer = AtomicParquetWriter::create(out, schema, props)?;
    let mut pending: Vec<(usize, usize)> = Vec::new();
    while let Some(t) = cursors.iter().filter_map(|c| c.head(&pool)).min() {
        let start = pending.len();
        for c in cursors.iter_mut() {
            while c.head(&pool) == Some(t) {
                pending.push((c.slot, c.row));
                c.advance(&mut pool)?;
            }
        }
        pending[start..].sort_by(|a, b| cmp_rows((&pool[a.0].1, a.1), (&pool[b.0].1, b.1)));
        if pending.len() >= SINK_BATCH_ROWS {
            write(&mut writer, &pool, &pending)?;
            pending.clear();
            // Keep only the batches the cursors still read from.
            let mut kept = Vec::new();
            for c in cursors.iter_mut().filter(|c| c.row < c.rows) {
                kept.push(std::mem::replace(
                    &mut pool[c.slot],
                    (
                        RecordBatch::new_empty(writer.schema().clone()),
                        empty_cols(),
                    ),
                ));
                c.slot = kept.len() - 1;
            }
            pool = kept;
        }
    }
    write(&mut writer, &pool, &pending)?;
    Ok(writer.finish()?)
}

fn empty_cols() -> SortCols {
    SortCols {
        ts: TimestampNanosecondArray::from(Vec::<i64>::new()),
        key: StringArray::from(Vec::<&str>::new()),
        seq: None,
        kind: None,
        id: None,
    }
}

fn write(
    writer: &mut AtomicParquetWriter,
    pool: &Pool,
    rows: &[(usize, usize)],
) -> Result<(), CombineError> {
    if rows.is_empty() {
        return Ok(());
    }
    let batches: Vec<&RecordBatch> = pool.iter().map(|(b, _)| b).collect();
    let batch = interleave_record_batch(&batches, rows).map_err(|source| SinkError::Batch {
        file: writer.dest().to_path_buf(),
        source,
    })?;
    Ok(writer.write(&batch)?)
}
