//! `periods.parquet`: one row per period (timestamp) with the sums before division that a merge
//! of shards needs ([`PeriodSums`]); a streaming writer and a streaming reader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, TimestampNanosecondBuilder,
    UInt64Array, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::sink::{sink_props, write_columns};
use super::source::builder;
use super::{AtomicParquetWriter, SinkError, SourceError, SINK_BATCH_ROWS};
use crate::signal::periods::{ActiveSums, PeriodSums};

/// The float columns after `ts` and `keys`; the last three (active sums) are null for
/// measurement runs.
const F64: [&str; 7] = [
    "strategy",
    "baseline",
    "strategy_turnover",
    "baseline_turnover",
    "vs_baseline",
    "vs_hold",
    "baseline_vs_hold",
];

/// The Arrow schema of `periods.parquet`: `ts` (ns, UTC), `keys` (keys in the book at the end
/// of the period), then the sums of [`F64`].
pub fn periods_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("keys", DataType::UInt64, false),
    ];
    for (i, name) in F64.iter().enumerate() {
        fields.push(Field::new(*name, DataType::Float64, i >= 4));
    }
    Arc::new(Schema::new(fields))
}

/// Writes periods (schema: [`periods_schema`]) through an [`AtomicParquetWriter`].
pub struct PeriodWriter {
    out: AtomicParquetWriter,
    ts: TimestampNanosecondBuilder,
    keys: UInt64Builder,
    f: [Float64Builder; 7],
    pending: usize,
}

impl PeriodWriter {
    /// Creates `path.tmp`; `finish` renames it to `path`.
    pub fn create(path: &Path) -> Result<PeriodWriter, SinkError> {
        let n = SINK_BATCH_ROWS;
        Ok(PeriodWriter {
            out: AtomicParquetWriter::create(
                path,
                periods_schema(),
                sink_props(&periods_schema()),
            )?,
            ts: TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC"),
            keys: UInt64Builder::with_capacity(n),
            f: std::array::from_fn(|_| Float64Builder::with_capacity(n)),
            pending: 0,
        })
    }

    /// Appends one period.
    pub fn write(&mut self, p: &PeriodSums) -> Result<(), SinkError> {
        self.ts.append_value(p.ts);
        self.keys.append_value(p.keys);
        let a = p.active;
        let values = [
            Some(p.strategy),
            Some(p.baseline),
            Some(p.strategy_turnover),
            Some(p.baseline_turnover),
            a.map(|a| a.vs_baseline),
            a.map(|a| a.vs_hold),
            a.map(|a| a.baseline_vs_hold),
        ];
        for (b, v) in self.f.iter_mut().zip(values) {
            b.append_option(v);
        }
        self.pending += 1;
        if self.pending >= SINK_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.keys.finish()),
        ];
        cols.extend(self.f.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        self.pending = 0;
        write_columns(&mut self.out, cols)
    }

    /// Writes the buffered rows and the footer, syncs, and renames the file into place.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        self.flush()?;
        self.out.finish()
    }
}

/// Reads a `periods.parquet` back, one row at a time, a batch in memory.
pub struct PeriodReader {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    row: usize,
}

impl PeriodReader {
    /// Opens `path` and checks that it has the columns of [`periods_schema`].
    pub fn open(path: &Path) -> Result<PeriodReader, SourceError> {
        let b = builder(path)?;
        let want = periods_schema();
        for field in want.fields() {
            let found = b.schema().field_with_name(field.name()).ok();
            let ok = found.is_some_and(|f| {
                matches!(
                    (f.data_type(), field.data_type()),
                    (
                        DataType::Timestamp(TimeUnit::Nanosecond, _),
                        DataType::Timestamp(..)
                    )
                ) || f.data_type() == field.data_type()
            });
            if !ok {
                return Err(SourceError::WrongType {
                    file: path.to_path_buf(),
                    column: field.name().clone(),
                    found: found.map_or("nothing".into(), |f| f.data_type().to_string()),
                    expected: "the periods.parquet schema deadband writes",
                });
            }
        }
        let reader = b.build().map_err(|source| SourceError::Parquet {
            file: path.to_path_buf(),
            source,
        })?;
        Ok(PeriodReader {
            path: path.to_path_buf(),
            reader,
            batch: None,
            row: 0,
        })
    }

    /// The next period, `None` at the end of the file.
    pub fn next_period(&mut self) -> Result<Option<PeriodSums>, SourceError> {
        loop {
            if let Some(b) = &self.batch {
                if self.row < b.num_rows() {
                    let p = row(b, self.row);
                    self.row += 1;
                    return Ok(Some(p));
                }
            }
            match self.reader.next() {
                None => return Ok(None),
                Some(b) => {
                    self.batch = Some(b.map_err(|source| SourceError::Read {
                        file: self.path.clone(),
                        source,
                    })?);
                    self.row = 0;
                }
            }
        }
    }
}

/// Row `i` of a batch whose columns were checked in [`PeriodReader::open`].
fn row(b: &RecordBatch, i: usize) -> PeriodSums {
    let f = |name: &str| -> Option<f64> {
        let c: &Float64Array = b.column_by_name(name).expect("checked").as_primitive();
        c.is_valid(i).then(|| c.value(i))
    };
    let ts = b
        .column_by_name("ts")
        .expect("checked")
        .as_primitive::<TimestampNanosecondType>()
        .value(i);
    let keys: &UInt64Array = b.column_by_name("keys").expect("checked").as_primitive();
    let active = match (f("vs_baseline"), f("vs_hold"), f("baseline_vs_hold")) {
        (Some(vs_baseline), Some(vs_hold), Some(baseline_vs_hold)) => Some(ActiveSums {
            vs_baseline,
            vs_hold,
            baseline_vs_hold,
        }),
        _ => None,
    };
    PeriodSums {
        ts,
        keys: keys.value(i),
        strategy: f("strategy").unwrap_or(0.0),
        baseline: f("baseline").unwrap_or(0.0),
        strategy_turnover: f("strategy_turnover").unwrap_or(0.0),
        baseline_turnover: f("baseline_turnover").unwrap_or(0.0),
        active,
    }
}
