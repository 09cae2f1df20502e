//! Writing a generator's rows to Parquet: the Arrow schemas, per-batch column buffers, and a
//! Snappy-compressed file through the atomic writer of `io::parquet` (temporary name, fsync,
//! rename).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringBuilder,
    TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::io::parquet::{AtomicParquetWriter, SinkError};

use super::{
    GenError, GenKind, GenOptions, GenSummary, MarketGen, MarketRow, Regime, SensorGen, SensorRow,
    TruthCounts, BAR_INTERVAL_NS, PART_INTERVAL_NS,
};

/// Rows per Parquet row group. The writer buffers one encoded row group in memory, so this
/// bounds the writer's memory together with the batch size.
pub const ROW_GROUP_ROWS: usize = 262_144;

/// Column buffers for one record batch.
trait Columns {
    type Row;
    fn push(&mut self, row: &Self::Row);
    fn len(&self) -> usize;
    /// Arrays in schema order; leaves the buffers empty for the next batch.
    fn finish(&mut self) -> Vec<ArrayRef>;
}

fn ts_array(v: &mut Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(std::mem::take(v)).with_timezone("UTC"))
}

fn f64_array(v: &mut Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(std::mem::take(v)))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gen".into());
    path.with_file_name(format!(".{name}.partial"))
}

fn write_rows<C: Columns>(
    kind: GenKind,
    opts: &GenOptions,
    path: &Path,
    schema: SchemaRef,
    mut cols: C,
    rows: impl Iterator<Item = C::Row>,
) -> Result<GenSummary, GenError> {
    let batches = write_batches(opts, path, schema, &mut cols, rows)?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let step = match kind {
        GenKind::Market => BAR_INTERVAL_NS,
        GenKind::Sensor => PART_INTERVAL_NS,
    };
    Ok(GenSummary {
        kind,
        path: path.to_path_buf(),
        keys: opts.keys,
        rows_per_key: opts.rows,
        rows: (opts.keys * opts.rows) as u64,
        batches,
        first_ts: opts.start_ts,
        last_ts: opts.start_ts + (opts.rows as i64 - 1) * step,
        bytes,
        truth: match kind {
            GenKind::Market => TruthCounts::Market {
                turbulent_rows: 0,
                jumps: 0,
            },
            GenKind::Sensor => TruthCounts::Sensor {
                tool_changes: 0,
                outliers: 0,
            },
        },
    })
}

/// The generator's error for a failure of the atomic writer.
fn gen_error(path: &Path, e: SinkError) -> GenError {
    let path = path.to_path_buf();
    match e {
        SinkError::Create { source, .. } => GenError::Create { path, source },
        SinkError::Write { source, .. } => GenError::Parquet { path, source },
        SinkError::Batch { source, .. } => GenError::Arrow { path, source },
        SinkError::Commit { source, .. } => GenError::Finish { path, source },
    }
}

/// Streams `rows` in batches through the atomic writer (a hidden `.NAME.partial` file, synced
/// and renamed into place; removed on failure); returns the number of batches.
fn write_batches<C: Columns>(
    opts: &GenOptions,
    path: &Path,
    schema: SchemaRef,
    cols: &mut C,
    rows: impl Iterator<Item = C::Row>,
) -> Result<u64, GenError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let err = |e| gen_error(path, e);
    let mut writer =
        AtomicParquetWriter::create_with_tmp(path, &temp_path(path), Arc::clone(&schema), props)
            .map_err(err)?;
    let mut batches = 0u64;
    let mut flush = |cols: &mut C, writer: &mut AtomicParquetWriter| {
        let batch = RecordBatch::try_new(Arc::clone(&schema), cols.finish()).map_err(|source| {
            GenError::Arrow {
                path: path.to_path_buf(),
                source,
            }
        })?;
        writer.write(&batch).map_err(err)?;
        batches += 1;
        Ok::<(), GenError>(())
    };
    for row in rows {
        cols.push(&row);
        if cols.len() == opts.batch_rows {
            flush(cols, &mut writer)?;
        }
    }
    if cols.len() > 0 {
        flush(cols, &mut writer)?;
    }
    writer.finish().map_err(err)?;
    Ok(batches)
}

/// Arrow schema of market files: the bar columns `key` (utf8), `ts` (timestamp ns, UTC),
/// `open`, `high`, `low`, `close`, `volume` (f64), then ground truth (`true_trend` f64,
/// `regime` utf8, `jump` f64).
pub fn market_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        ts_field(),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Float64, false),
        Field::new("true_trend", DataType::Float64, false),
        Field::new("regime", DataType::Utf8, false),
        Field::new("jump", DataType::Float64, false),
    ]))
}

fn ts_field() -> Field {
    Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        false,
    )
}

#[derive(Default)]
struct MarketColumns {
    key: StringBuilder,
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    true_trend: Vec<f64>,
    regime: StringBuilder,
    jump: Vec<f64>,
}

impl Columns for MarketColumns {
    type Row = MarketRow;

    fn push(&mut self, r: &MarketRow) {
        self.key.append_value(&*r.key);
        self.ts.push(r.ts);
        self.open.push(r.open);
        self.high.push(r.high);
        self.low.push(r.low);
        self.close.push(r.close);
        self.volume.push(r.volume);
        self.true_trend.push(r.true_trend);
        self.regime.append_value(r.regime.as_str());
        self.jump.push(r.jump);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.key.finish()),
            ts_array(&mut self.ts),
            f64_array(&mut self.open),
            f64_array(&mut self.high),
            f64_array(&mut self.low),
            f64_array(&mut self.close),
            f64_array(&mut self.volume),
            f64_array(&mut self.true_trend),
            Arc::new(self.regime.finish()),
            f64_array(&mut self.jump),
        ]
    }
}

/// Writes `opts.keys * opts.rows` market bars to `path` (Parquet, Snappy), in batches of
/// `opts.batch_rows` rows. Memory stays bounded by one batch plus one row group.
pub fn write_market(opts: &GenOptions, path: &Path) -> Result<GenSummary, GenError> {
    let gen = MarketGen::new(opts)?;
    let (mut turbulent_rows, mut jumps) = (0u64, 0u64);
    let rows = gen.inspect(|r| {
        turbulent_rows += u64::from(r.regime == Regime::Turbulent);
        jumps += u64::from(r.jump != 0.0);
    });
    let mut summary = write_rows(
        GenKind::Market,
        opts,
        path,
        market_schema(),
        MarketColumns::default(),
        rows,
    )?;
    summary.truth = TruthCounts::Market {
        turbulent_rows,
        jumps,
    };
    Ok(summary)
}

/// Arrow schema of sensor files: the measurement columns `key` (utf8), `ts` (timestamp ns,
/// UTC), `value`, `nominal`, `lsl`, `usl` (f64), `part` (utf8), then ground truth
/// (`true_value`, `true_drift` f64, `tool` i64, `outlier` bool, `sigma_grr` f64).
pub fn sensor_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        ts_field(),
        Field::new("value", DataType::Float64, false),
        Field::new("nominal", DataType::Float64, false),
        Field::new("lsl", DataType::Float64, false),
        Field::new("usl", DataType::Float64, false),
        Field::new("part", DataType::Utf8, false),
        Field::new("true_value", DataType::Float64, false),
        Field::new("true_drift", DataType::Float64, false),
        Field::new("tool", DataType::Int64, false),
        Field::new("outlier", DataType::Boolean, false),
        Field::new("sigma_grr", DataType::Float64, false),
    ]))
}

#[derive(Default)]
struct SensorColumns {
    key: StringBuilder,
    ts: Vec<i64>,
    value: Vec<f64>,
    nominal: Vec<f64>,
    lsl: Vec<f64>,
    usl: Vec<f64>,
    part: StringBuilder,
    true_value: Vec<f64>,
    true_drift: Vec<f64>,
    tool: Vec<i64>,
    outlier: Vec<bool>,
    sigma_grr: Vec<f64>,
}

impl Columns for SensorColumns {
    type Row = SensorRow;

    fn push(&mut self, r: &SensorRow) {
        self.key.append_value(&*r.key);
        self.ts.push(r.ts);
        self.value.push(r.value);
        self.nominal.push(r.nominal);
        self.lsl.push(r.lsl);
        self.usl.push(r.usl);
        self.part.append_value(&r.part);
        self.true_value.push(r.true_value);
        self.true_drift.push(r.true_drift);
        self.tool.push(r.tool);
        self.outlier.push(r.outlier);
        self.sigma_grr.push(r.sigma_grr);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let outlier = BooleanArray::from(std::mem::take(&mut self.outlier));
        vec![
            Arc::new(self.key.finish()),
            ts_array(&mut self.ts),
            f64_array(&mut self.value),
            f64_array(&mut self.nominal),
            f64_array(&mut self.lsl),
            f64_array(&mut self.usl),
            Arc::new(self.part.finish()),
            f64_array(&mut self.true_value),
            f64_array(&mut self.true_drift),
            Arc::new(Int64Array::from(std::mem::take(&mut self.tool))),
            Arc::new(outlier),
            f64_array(&mut self.sigma_grr),
        ]
    }
}

/// Writes `opts.keys * opts.rows` measurements to `path` (Parquet, Snappy), in batches of
/// `opts.batch_rows` rows. Memory stays bounded by one batch plus one row group.
pub fn write_sensor(opts: &GenOptions, path: &Path) -> Result<GenSummary, GenError> {
    let gen = SensorGen::new(opts)?;
    let (mut outliers, mut last_tool) = (0u64, vec![0i64; opts.keys]);
    let mut index = 0usize;
    let rows = gen.inspect(|r| {
        outliers += u64::from(r.outlier);
        last_tool[index] = r.tool;
        index = (index + 1) % last_tool.len();
    });
    let mut summary = write_rows(
        GenKind::Sensor,
        opts,
        path,
        sensor_schema(),
        SensorColumns::default(),
        rows,
    )?;
    summary.truth = TruthCounts::Sensor {
        tool_changes: last_tool.iter().map(|&t| t as u64).sum(),
        outliers,
    };
    Ok(summary)
}
