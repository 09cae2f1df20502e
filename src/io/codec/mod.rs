//! JSON <-> records: decoding bars and measurements (with typed errors) and encoding events.
//!
//! Wire format: one JSON object per message, field names as the Parquet columns.
//! `ts` is an RFC 3339 string or an integer of epoch nanoseconds. Choices made
//! here: unknown fields are ignored (producers often add fields such as `source`); numbers
//! written as strings are refused, and `"NaN"`/`"inf"` strings are reported as `not_finite`; a
//! `null` in a required field is `null_field`, in an optional one it means "absent"; `part` may
//! be a string or a number and is not used by the core.

mod scan;

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::record::{Bar, Event, EventBody, Invalid, Measurement, Payload, Record, RecordKind, Ts};

/// Why a message could not be decoded into a record. [`DecodeError::code`] is a short stable
/// name (a metrics label); `Display` adds the detail (the DLQ `deadband-error` header).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not a JSON object (syntax error, empty payload, an array...).
    #[error("malformed_json: {0}")]
    Malformed(String),
    /// A required field is absent.
    #[error("missing_field: `{0}`")]
    Missing(&'static str),
    /// A required field is `null`.
    #[error("null_field: `{0}`")]
    Null(&'static str),
    /// A field has the wrong JSON type.
    #[error("wrong_type: `{field}` must be {expected}, got {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// A number written as a string "NaN", "inf", "-Infinity"...
    #[error("not_finite: `{0}` is not a finite number")]
    NotFinite(&'static str),
    /// `ts` is neither an RFC 3339 string nor an integer of epoch nanoseconds in range.
    #[error("bad_timestamp: {0}")]
    BadTimestamp(String),
    /// A measurement on a bar stream or the other way round.
    #[error("wrong_record_kind: expected a {expected}, got what looks like a {found}")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
}

impl DecodeError {
    /// The reason, in the vocabulary shared with validation (counters, DLQ header, summary).
    pub fn reason(&self) -> Invalid {
        match self {
            DecodeError::Malformed(_) => Invalid::Malformed,
            DecodeError::Missing(_) => Invalid::MissingField,
            DecodeError::Null(_) => Invalid::NullField,
            DecodeError::WrongType { .. } => Invalid::WrongType,
            DecodeError::NotFinite(_) => Invalid::NotFinite,
            DecodeError::BadTimestamp(_) => Invalid::BadTimestamp,
            DecodeError::WrongKind { .. } => Invalid::WrongKind,
        }
    }

    /// The short reason name, for counters and labels.
    pub fn code(&self) -> &'static str {
        self.reason().as_str()
    }
}

/// A JSON value as seen by the decoder: only what is needed to tell the cases apart.
#[derive(Debug, Default)]
enum Field<'a> {
    #[default]
    Missing,
    Null,
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Bool,
    Array,
    Object,
}

impl Field<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Field::Missing => "nothing",
            Field::Null => "null",
            Field::Int(_) | Field::Uint(_) | Field::Float(_) => "a number",
            Field::Str(_) => "a string",
            Field::Bool => "a boolean",
            Field::Array => "an array",
            Field::Object => "an object",
        }
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Field::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Field::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Object)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

/// Every field either record kind may carry; which are required depends on the kind.
#[derive(Debug, Default, Deserialize)]
struct Wire<'a> {
    #[serde(default, borrow)]
    key: Field<'a>,
    #[serde(default, borrow)]
    ts: Field<'a>,
    #[serde(default, borrow)]
    open: Field<'a>,
    #[serde(default, borrow)]
    high: Field<'a>,
    #[serde(default, borrow)]
    low: Field<'a>,
    #[serde(default, borrow)]
    close: Field<'a>,
    #[serde(default, borrow)]
    volume: Field<'a>,
    #[serde(default, borrow)]
    value: Field<'a>,
    #[serde(default, borrow)]
    nominal: Field<'a>,
    #[serde(default, borrow)]
    lsl: Field<'a>,
    #[serde(default, borrow)]
    usl: Field<'a>,
    #[serde(default, borrow)]
    tool: Field<'a>,
}

/// A decoded record whose key may borrow from the payload (`Cow::Owned` only when the key
/// contains JSON escapes).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    pub key: Cow<'a, str>,
    pub ts: Ts,
    pub payload: Payload,
}

impl Decoded<'_> {
    /// The record view the Processor takes.
    pub fn record(&self) -> Record<'_> {
        Record {
            key: &self.key,
            ts: self.ts,
            payload: self.payload,
        }
    }
}

fn is_non_finite_text(s: &str) -> bool {
    let t = s.trim().trim_start_matches(['+', '-']).to_ascii_lowercase();
    matches!(t.as_str(), "nan" | "inf" | "infinity")
}

fn number(name: &'static str, f: &Field<'_>) -> Result<Option<f64>, DecodeError> {
    match f {
        Field::Missing | Field::Null => Ok(None),
        Field::Int(v) => Ok(Some(*v as f64)),
        Field::Uint(v) => Ok(Some(*v as f64)),
        Field::Float(v) => Ok(Some(*v)),
        Field::Str(s) if is_non_finite_text(s) => Err(DecodeError::NotFinite(name)),
        other => Err(DecodeError::WrongType {
            field: name,
            expected: "a number",
            found: other.type_name(),
        }),
    }
}

fn required(name: &'static str, f: &Field<'_>) -> Result<f64, DecodeError> {
    match f {
        Field::Missing => Err(DecodeError::Missing(name)),
        Field::Null => Err(DecodeError::Null(name)),
        _ => Ok(number(name, f)?.expect("present and not null")),
    }
}

/// Parses the optional `tool`: a whole number in `0..=u32::MAX`.
fn tool(f: &Field<'_>) -> Result<Option<u32>, DecodeError> {
    let wrong = |found| DecodeError::WrongType {
        field: "tool",
        expected: "a tool id (an integer from 0 to 4294967295)",
        found,
    };
    match f {
        Field::Missing | Field::Null => Ok(None),
        Field::Int(v) => u32::try_from(*v)
            .map(Some)
            .map_err(|_| wrong("a negative integer")),
        Field::Uint(v) => u32::try_from(*v)
            .map(Some)
            .map_err(|_| wrong("a larger integer")),
        other => Err(wrong(other.type_name())),
    }
}

/// Parses `ts`: an integer of epoch nanoseconds, or an RFC 3339 string (any offset; converted
/// to UTC).
fn timestamp(f: &Field<'_>) -> Result<Ts, DecodeError> {
    match f {
        Field::Missing => Err(DecodeError::Missing("ts")),
        Field::Null => Err(DecodeError::Null("ts")),
        Field::Int(v) => Ok(*v),
        Field::Uint(v) => i64::try_from(*v)
            .map_err(|_| DecodeError::BadTimestamp(format!("{v} ns is beyond the year 2262"))),
        Field::Float(v) => Err(DecodeError::BadTimestamp(format!(
            "{v} is not an integer of epoch nanoseconds"
        ))),
        Field::Str(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| DecodeError::BadTimestamp(format!("`{s}` is not RFC 3339 ({e})")))?;
            t.timestamp_nanos_opt()
                .ok_or_else(|| DecodeError::BadTimestamp(format!("`{s}` is outside 1677..2262")))
        }
        other => Err(DecodeError::WrongType {
            field: "ts",
            expected: "an RFC 3339 string or integer epoch nanoseconds",
            found: other.type_name(),
        }),
    }
}

/// Decodes one JSON message as a record of `kind`. Validation of values (high >= low, finite
/// prices...) is left to the Processor, as for Parquet input.
///
/// A flat object of plain values (what producers send) is read by a one-pass scanner; anything
/// else goes through serde, which also words the syntax errors. Both give the same result.
pub fn decode(bytes: &[u8], kind: RecordKind) -> Result<Decoded<'_>, DecodeError> {
    let w = match scan::scan(bytes) {
        Some(w) => w,
        None => wire_by_serde(bytes)?,
    };
    from_wire(w, kind)
}

fn wire_by_serde(bytes: &[u8]) -> Result<Wire<'_>, DecodeError> {
    // serde would also fill a struct from a JSON array, positionally: only objects are records.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError::Malformed(
            "a record must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let mut s = e.to_string();
        s.truncate(200);
        DecodeError::Malformed(s)
    })
}

/// Checks the fields `kind` needs and builds the record.
fn from_wire(w: Wire<'_>, kind: RecordKind) -> Result<Decoded<'_>, DecodeError> {
    let key = match w.key {
        Field::Str(s) => s,
        Field::Missing => return Err(DecodeError::Missing("key")),
        Field::Null => return Err(DecodeError::Null("key")),
        other => {
            return Err(DecodeError::WrongType {
                field: "key",
                expected: "a string",
                found: other.type_name(),
            })
        }
    };
    let present = |f: &Field<'_>| !matches!(f, Field::Missing);
    let payload = match kind {
        RecordKind::Bar => {
            if !present(&w.open) && !present(&w.close) && present(&w.value) {
                return Err(DecodeError::WrongKind {
                    expected: "bar",
                    found: "measurement",
                });
            }
            Payload::Bar(Bar {
                open: required("open", &w.open)?,
                high: required("high", &w.high)?,
                low: required("low", &w.low)?,
                close: required("close", &w.close)?,
                volume: number("volume", &w.volume)?,
                true_trend: None,
            })
        }
        RecordKind::Measurement => {
            if !present(&w.value) && present(&w.close) {
                return Err(DecodeError::WrongKind {
                    expected: "measurement",
                    found: "bar",
                });
            }
            Payload::Measurement(Measurement {
                value: required("value", &w.value)?,
                nominal: number("nominal", &w.nominal)?,
                lsl: number("lsl", &w.lsl)?,
                usl: number("usl", &w.usl)?,
                tool: tool(&w.tool)?,
                true_value: None,
            })
        }
    };
    let ts = timestamp(&w.ts)?;
    Ok(Decoded { key, ts, payload })
}

/// A record as JSON (`ts` as integer nanoseconds; optional fields left out when absent), the
/// inverse of [`decode`]. Used by `deadband produce`.
pub fn encode_record(rec: &Record<'_>, buf: &mut Vec<u8>) {
    #[derive(Serialize)]
    struct BarOut<'a> {
        key: &'a str,
        ts: Ts,
        open: f64,
        high: f64,
        low: f64,
        close: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        volume: Option<f64>,
    }
    #[derive(Serialize)]
    struct MeasOut<'a> {
        key: &'a str,
        ts: Ts,
        value: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        nominal: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        lsl: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        usl: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool: Option<u32>,
    }
    buf.clear();
    let r = match rec.payload {
        Payload::Bar(b) => serde_json::to_writer(
            &mut *buf,
            &BarOut {
                key: rec.key,
                ts: rec.ts,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                volume: b.volume,
            },
        ),
        Payload::Measurement(m) => serde_json::to_writer(
            &mut *buf,
            &MeasOut {
                key: rec.key,
                ts: rec.ts,
                value: m.value,
                nominal: m.nominal,
                lsl: m.lsl,
                usl: m.usl,
                tool: m.tool,
            },
        ),
    };
    r.expect("records serialise to JSON");
}

/// An event as JSON: `id`, `key`, `seq`, `ts` (integer ns), `kind` and the kind's fields
/// as in `events.parquet`. Writes into `buf` (cleared first) so the caller can reuse it.
pub fn encode_event(e: &Event, buf: &mut Vec<u8>) {
    #[derive(Serialize)]
    struct Out<'a> {
        id: &'a str,
        key: &'a str,
        seq: u64,
        ts: Ts,
        #[serde(flatten)]
        body: &'a EventBody,
    }
    buf.clear();
    let id = e.id();
    serde_json::to_writer(
        &mut *buf,
        &Out {
            id: &id,
            key: &e.key,
            seq: e.seq,
            ts: e.ts,
            body: &e.body,
        },
    )
    .expect("events serialise to JSON");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(json: &str) -> Result<Decoded<'_>, DecodeError> {
        decode(json.as_bytes(), RecordKind::Bar)
    }

    #[test]
    fn bar_with_integer_and_rfc3339_ts() {
        let a =
            bar(r#"{"key":"A","ts":1000000000,"open":1,"high":2,"low":0.5,"close":1.5}"#).unwrap();
        assert_eq!(a.ts, 1_000_000_000);
        assert!(matches!(a.key, Cow::Borrowed("A")));
        let b =
            bar(r#"{"key":"A","ts":"1970-01-01T00:00:01+00:00","open":1,"high":2,"low":0.5,"close":1.5,"volume":null,"x":[1]}"#)
                .unwrap();
        assert_eq!(b.ts, 1_000_000_000);
        // 2024-01-02T03:04:05.5Z = 1704164645.5 s (date -d @1704164645 gives 03:04:05 UTC).
        let c = bar(r#"{"key":"A","ts":"2024-01-02T05:04:05.5+02:00","open":1,"high":2,"low":0.5,"close":1.5}"#)
            .unwrap();
        assert_eq!(c.ts, 1_704_164_645_500_000_000);
    }

    #[test]
    fn a_measurement_may_name_its_tool() {
        fn m(j: &str) -> Result<Decoded<'_>, DecodeError> {
            decode(j.as_bytes(), RecordKind::Measurement)
        }
        let tool = |j: &str| match m(j).unwrap().payload {
            Payload::Measurement(x) => x.tool,
            Payload::Bar(_) => panic!("a bar"),
        };
        assert_eq!(tool(r#"{"key":"b","ts":1,"value":1,"tool":3}"#), Some(3));
        assert_eq!(tool(r#"{"key":"b","ts":1,"value":1,"tool":null}"#), None);
        assert_eq!(tool(r#"{"key":"b","ts":1,"value":1}"#), None);
        for bad in ["-1", "4294967296", "1.5", "\"T1\""] {
            let j = format!(r#"{{"key":"b","ts":1,"value":1,"tool":{bad}}}"#);
            assert_eq!(m(&j).unwrap_err().code(), "wrong_type", "{bad}");
        }
    }

    #[test]
    fn bad_records_are_typed() {
        let e = |j: &str| bar(j).unwrap_err().code();
        assert_eq!(e("{not json"), "malformed_json");
        assert_eq!(e("[1,2]"), "malformed_json");
        assert_eq!(
            e(r#"{"key":"A","ts":1,"open":1,"high":2,"low":0.5}"#),
            "missing_field"
        );
        assert_eq!(
            e(r#"{"key":"A","ts":1,"open":1,"high":null,"low":0.5,"close":1}"#),
            "null_field"
        );
        assert_eq!(
            e(r#"{"key":"A","ts":1,"open":1,"high":"2","low":0.5,"close":1}"#),
            "wrong_type"
        );
        assert_eq!(
            e(r#"{"key":"A","ts":1,"open":1,"high":"NaN","low":0.5,"close":1}"#),
            "not_finite"
        );
        assert_eq!(
            e(r#"{"key":"A","ts":1,"open":1,"high":"-Infinity","low":0.5,"close":1}"#),
            "not_finite"
        );
        assert_eq!(
            e(r#"{"key":"A","ts":1.5,"open":1,"high":2,"low":0.5,"close":1}"#),
            "bad_timestamp"
        );
        assert_eq!(
            e(r#"{"key":"A","ts":"yesterday","open":1,"high":2,"low":0.5,"close":1}"#),
            "bad_timestamp"
        );
        assert_eq!(
            e(r#"{"key":7,"ts":1,"open":1,"high":2,"low":0.5,"close":1}"#),
            "wrong_type"
        );
        assert_eq!(e(r#"{"key":"A","ts":1,"value":3}"#), "wrong_record_kind");
        let m = decode(
            br#"{"key":"A","ts":1,"open":1,"high":2,"low":0.5,"close":1}"#,
            RecordKind::Measurement,
        );
        assert_eq!(m.unwrap_err().code(), "wrong_record_kind");
    }

    #[test]
    fn record_round_trip() {
        let rec = Record {
            key: "k\"1",
            ts: -5,
            payload: Payload::Measurement(Measurement {
                value: 0.1 + 0.2,
                nominal: None,
                lsl: Some(-1.0),
                usl: Some(1e-300),
                tool: Some(7),
                true_value: None,
            }),
        };
        let mut buf = Vec::new();
        encode_record(&rec, &mut buf);
        let d = decode(&buf, RecordKind::Measurement).unwrap();
        assert_eq!(d.record(), rec);
    }
}
