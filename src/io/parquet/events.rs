//! The `events` and `fit` output files: their Arrow schemas, and [`read_events`], which reads an
//! events file back.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array, Int8Array, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::columns::{
    check_schema, col, f64_col, internal, key_col, opt, ts_col, ColSpec, ColType,
};
use super::source::builder;
use super::SourceError;
use crate::record::{Event, EventBody};
use crate::signal::scales::TrendScale;
use crate::zone::spc::Rule;

/// `ts` of the output files: nanoseconds, UTC.
fn ts_utc_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The float columns of the events schema, in order, after `direction`.
pub(super) const EVENT_F64: [&str; 12] = [
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
pub(super) const F_STRENGTH: usize = 0;
pub(super) const F_LEVEL: usize = 1;
pub(super) const F_SLOPE: usize = 2;
pub(super) const F_ZONE: usize = 3;
pub(super) const F_FROM: usize = 4;
pub(super) const F_TO: usize = 5;
pub(super) const F_TURNOVER: usize = 6;
pub(super) const F_COST: usize = 7;
pub(super) const F_OFFSET: usize = 8;
pub(super) const F_PREDICTED: usize = 9;
pub(super) const F_STATISTIC: usize = 10;
pub(super) const F_LIMIT: usize = 11;

/// The Arrow schema of `events.parquet`: `id`, `key`, `seq`, `ts`, `kind`, then the
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
    fields.push(Field::new("scale", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// The Arrow schema of `fit.parquet`: per record `key`, `ts`, the fitted `y`, `level`, `slope`
/// and `zone`, whether the record was `inside` the zone, whether the fit was `updated`, and the
/// scale's `regime` name.
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

/// Reads an events file (as written by [`EventWriter`](super::EventWriter)) back into [`Event`]s, in file order.
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
        col("tool", ColType::Num, false),
        col("scale", ColType::Key, false),
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
    let mut keys: HashMap<String, Arc<str>> = Default::default();
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
    keys: &mut HashMap<String, Arc<str>>,
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
    let scale = b
        .column_by_name("scale")
        .map(|a| key_col(path, "scale", a))
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
                // Null (or absent) without `[fit.macro]`.
                scale: match scale.as_ref().map(|s| s.get(i)).filter(|s| !s.is_empty()) {
                    None => None,
                    Some(s) => Some(TrendScale::parse(s).ok_or_else(|| {
                        bad(format!("`scale` is `{s}`; expected tactical or macro"))
                    })?),
                },
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
