//! The `events` and `fit` sinks: rows buffered in Arrow builders and written in batches through
//! an [`AtomicParquetWriter`].

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int8Builder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::events::*;
use super::{AtomicParquetWriter, SinkError};
use crate::record::{Event, EventBody, FitRow};

/// Rows a sink buffers in its Arrow builders before handing them to the Parquet writer.
pub const SINK_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group written by the sinks. The Parquet writer keeps the encoded pages
/// of the open row group in memory, so this bounds a sink's memory. 128 Ki rows is within the
/// range polars, pyarrow and DuckDB use themselves.
pub const SINK_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Snappy, [`SINK_ROW_GROUP_ROWS`] rows per row group, and dictionary encoding only where values
/// repeat: the text columns (keys, event kinds, rule, scale and regime names) except the unique
/// event `id`. Numbers and ids are nearly all distinct, so a dictionary would only cost the
/// writer a hash of every value before it gave up on it (12 % of a replay's time, measured
/// with `perf` on `benches/file.rs`).
pub(super) fn sink_props(schema: &Schema) -> WriterProperties {
    let repeated_text = schema
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Utf8) && f.name() != "id");
    repeated_text
        .fold(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(SINK_ROW_GROUP_ROWS))
                .set_dictionary_enabled(false),
            |b, f| b.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), true),
        )
        .build()
}

/// Assembles `columns` into a batch of the writer's schema and writes it.
pub(super) fn write_columns(
    out: &mut AtomicParquetWriter,
    columns: Vec<ArrayRef>,
) -> Result<(), SinkError> {
    let batch =
        RecordBatch::try_new(out.schema().clone(), columns).map_err(|source| SinkError::Batch {
            file: out.dest().to_path_buf(),
            source,
        })?;
    out.write(&batch)
}

/// Writes events to Parquet (schema: [`events_schema`]).
pub struct EventWriter {
    out: AtomicParquetWriter,
    id: StringBuilder,
    key: StringBuilder,
    seq: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    kind: StringBuilder,
    direction: Int8Builder,
    f: [Float64Builder; 12],
    rule: StringBuilder,
    tool: UInt32Builder,
    scale: StringBuilder,
    pending: usize,
    /// The event id being written (one buffer for every event).
    scratch: String,
}

impl EventWriter {
    /// Creates `path.tmp`; `finish` renames it to `path`.
    pub fn create(path: &Path) -> Result<EventWriter, SinkError> {
        let n = SINK_BATCH_ROWS;
        Ok(EventWriter {
            out: AtomicParquetWriter::create(path, events_schema(), sink_props(&events_schema()))?,
            id: StringBuilder::with_capacity(n, n * 24),
            key: StringBuilder::with_capacity(n, n * 8),
            seq: UInt64Builder::with_capacity(n),
            ts: TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC"),
            kind: StringBuilder::with_capacity(n, n * 8),
            direction: Int8Builder::with_capacity(n),
            f: std::array::from_fn(|_| Float64Builder::with_capacity(n)),
            rule: StringBuilder::with_capacity(n, n),
            tool: UInt32Builder::with_capacity(n),
            scale: StringBuilder::with_capacity(n, n),
            pending: 0,
            scratch: String::new(),
        })
    }

    /// Appends one event; every [`SINK_BATCH_ROWS`] rows a batch goes to the Parquet writer.
    pub fn write(&mut self, e: &Event) -> Result<(), SinkError> {
        let mut f = [None; 12];
        let mut direction = None;
        let mut rule = None;
        let mut tool = None;
        let mut scale = None;
        match e.body {
            EventBody::Trend {
                direction: d,
                strength,
                level,
                slope,
                zone,
                scale: s,
            } => {
                direction = Some(d);
                scale = s.map(|s| s.as_str());
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
        self.scratch.clear();
        e.write_id(&mut self.scratch);
        self.id.append_value(&self.scratch);
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
        self.scale.append_option(scale);
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
        cols.push(Arc::new(self.scale.finish()));
        self.pending = 0;
        write_columns(&mut self.out, cols)
    }

    /// Writes the buffered rows and the footer, syncs, and renames the file into place.
    /// Returns the number of rows written.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        self.flush()?;
        self.out.finish()
    }
}

/// Writes per-record fit rows to Parquet (schema: [`fit_schema`]).
pub struct FitWriter {
    out: AtomicParquetWriter,
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
            out: AtomicParquetWriter::create(path, fit_schema(), sink_props(&fit_schema()))?,
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
        write_columns(&mut self.out, cols)
    }

    /// Writes the buffered rows and the footer, syncs, and renames the file into place.
    /// Returns the number of rows written.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        self.flush()?;
        self.out.finish()
    }
}
