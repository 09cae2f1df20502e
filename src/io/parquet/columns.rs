//! The input columns per record kind, the Arrow types accepted for them, the schema check, and
//! reading typed values out of one record batch.

use std::path::Path;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, LargeStringArray, StringArray,
    StringViewArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::SourceError;
use crate::record::{Bar, Measurement, Payload, RecordKind, Ts};

/// What a column holds, which decides the Arrow types accepted for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColType {
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

/// One input column: its name, what it holds, and whether a file must have it.
pub(crate) struct ColSpec {
    pub(crate) name: &'static str,
    pub(crate) ty: ColType,
    pub(crate) required: bool,
}

pub(crate) const fn col(name: &'static str, ty: ColType, required: bool) -> ColSpec {
    ColSpec { name, ty, required }
}

/// Bar columns. The order (`key`, `ts`, then the numbers as in [`Bar`]) is relied on by the
/// CSV source.
const BAR_COLS: &[ColSpec] = &[
    col("key", ColType::Key, true),
    col("ts", ColType::Ts, true),
    col("open", ColType::Num, true),
    col("high", ColType::Num, true),
    col("low", ColType::Num, true),
    col("close", ColType::Num, true),
    col("volume", ColType::Num, false),
    col("true_trend", ColType::Num, false),
];

/// Measurement columns, in the same layout as [`BAR_COLS`].
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

/// The columns of `kind` and its name for messages.
pub(crate) fn specs(kind: RecordKind) -> (&'static [ColSpec], &'static str) {
    match kind {
        RecordKind::Bar => (BAR_COLS, "bar"),
        RecordKind::Measurement => (MEAS_COLS, "measurement"),
    }
}

/// Checks the columns `specs` against `schema`; returns the indices of the present ones.
pub(crate) fn check_schema(
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
pub(crate) enum KeyCol {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
}

impl KeyCol {
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &str {
        match self {
            KeyCol::Utf8(a) if a.is_valid(i) => a.value(i),
            KeyCol::Large(a) if a.is_valid(i) => a.value(i),
            KeyCol::View(a) if a.is_valid(i) => a.value(i),
            _ => "",
        }
    }
}

/// An array that does not have the layout its type promised (a bug, not bad input).
pub(crate) fn internal(file: &Path, column: &'static str, what: &str) -> SourceError {
    SourceError::Convert {
        file: file.to_path_buf(),
        column,
        source: ArrowError::InvalidArgumentError(format!("unexpected array layout: {what}")),
    }
}

/// A string column, read without copying.
pub(crate) fn key_col(
    file: &Path,
    name: &'static str,
    a: &ArrayRef,
) -> Result<KeyCol, SourceError> {
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
pub(crate) fn ts_col(
    file: &Path,
    name: &'static str,
    a: &ArrayRef,
) -> Result<(Int64Array, i64), SourceError> {
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

/// A number column as Float64.
pub(crate) fn f64_col(
    file: &Path,
    name: &'static str,
    a: &ArrayRef,
) -> Result<Float64Array, SourceError> {
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
pub(crate) fn opt(a: &Option<Float64Array>, i: usize) -> Option<f64> {
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
        true_trend: Option<Float64Array>,
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
pub(crate) struct Cols {
    pub(crate) len: usize,
    pub(crate) key: KeyCol,
    ts: Int64Array,
    ts_mult: i64,
    nums: Nums,
}

impl Cols {
    pub(crate) fn new(file: &Path, kind: RecordKind, b: &RecordBatch) -> Result<Cols, SourceError> {
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
                true_trend: num_opt("true_trend")?,
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
    pub(crate) fn ts_at(&self, i: usize) -> Option<Ts> {
        if self.ts.is_valid(i) {
            self.ts.value(i).checked_mul(self.ts_mult)
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn payload(&self, i: usize, poisoned: bool) -> Payload {
        let p = match &self.nums {
            Nums::Bar {
                open,
                high,
                low,
                close,
                volume,
                true_trend,
            } => Payload::Bar(Bar {
                open: req(open, i),
                high: req(high, i),
                low: req(low, i),
                close: req(close, i),
                volume: opt(volume, i),
                true_trend: opt(true_trend, i),
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

/// The payload of a row whose `ts` is missing: every number NaN (an optional one only where
/// present), so validation rejects the record as `not_finite`.
#[cold]
pub(crate) fn nan_payload(p: Payload) -> Payload {
    let n = f64::NAN;
    match p {
        Payload::Bar(b) => Payload::Bar(Bar {
            open: n,
            high: n,
            low: n,
            close: n,
            volume: b.volume.map(|_| n),
            true_trend: b.true_trend.map(|_| n),
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
pub(crate) fn tool_id(v: f64) -> Option<u32> {
    (v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v)).then_some(v as u32)
}
