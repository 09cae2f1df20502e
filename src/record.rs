//! Input records (bars, measurements), output events and fit rows, with their ids and validation.
//!
//! Timestamps are event time in i64 nanoseconds since the Unix epoch, UTC.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::zone::spc::Rule;

/// Event time: nanoseconds since 1970-01-01T00:00:00Z.
pub type Ts = i64;

/// Which kind of input a run processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    #[default]
    Bar,
    Measurement,
}

/// One OHLC bar. `volume` is optional and not used by the math.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: Option<f64>,
    /// Ground truth of generated data (the `true_trend` column): the bar's drift. Only the
    /// backtest reads it, to score the trend signal (`signal::truth`).
    #[serde(default)]
    pub true_trend: Option<f64>,
}

/// One measured value of a feature, with optional specification limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub value: f64,
    pub nominal: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
    /// The tool that made the part (the `tool` column); a new value is a tool change.
    #[serde(default)]
    pub tool: Option<u32>,
    /// Ground truth of generated data (the `true_value` column): the value without gauge noise.
    /// Only the backtest reads it, to count parts truly out of tolerance.
    #[serde(default)]
    pub true_value: Option<f64>,
}

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload {
    Bar(Bar),
    Measurement(Measurement),
}

/// An input record borrowed from its source buffer: the key is not copied on the hot path.
/// (The `part` column of measurements is read by the sources but not needed by the core.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    pub key: &'a str,
    pub ts: Ts,
    pub payload: Payload,
}

/// Why a record is bad: the one reason vocabulary of the decoders (JSON, CSV), validation, the
/// counters, the metrics `reason` label, the DLQ header and `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// Not a record at all: not a JSON object, a syntax error, an empty payload.
    Malformed,
    /// A required field is absent.
    MissingField,
    /// A required field is null.
    NullField,
    /// A field has the wrong type (a string where a number belongs...).
    WrongType,
    /// `ts` is neither RFC 3339 nor integer epoch nanoseconds in range.
    BadTimestamp,
    /// A price, value or limit is NaN or infinite.
    NotFinite,
    /// high < low.
    HighBelowLow,
    /// open or close lies outside [low, high].
    OutsideRange,
    /// A price is zero or negative.
    NonPositivePrice,
    /// lsl >= usl.
    LimitsInverted,
    /// A bar arrived on a measurement run or the other way round.
    WrongKind,
    /// The key is empty.
    EmptyKey,
    /// The key is longer than [`MAX_KEY_BYTES`].
    KeyTooLong,
}

/// The longest key a record may have, in bytes. A key is copied into every event (message key,
/// `key` and `id` fields) and into the changelog, so an unbounded one could push an event past
/// the broker's message size limit and block its partition; 1 KiB is far above any symbol or
/// `machine/feature` name.
pub const MAX_KEY_BYTES: usize = 1024;

impl Invalid {
    pub const ALL: [Invalid; 13] = [
        Invalid::Malformed,
        Invalid::MissingField,
        Invalid::NullField,
        Invalid::WrongType,
        Invalid::BadTimestamp,
        Invalid::NotFinite,
        Invalid::HighBelowLow,
        Invalid::OutsideRange,
        Invalid::NonPositivePrice,
        Invalid::LimitsInverted,
        Invalid::WrongKind,
        Invalid::EmptyKey,
        Invalid::KeyTooLong,
    ];

    /// The stable short name (metrics label, DLQ header prefix, summary key).
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed_json",
            Invalid::MissingField => "missing_field",
            Invalid::NullField => "null_field",
            Invalid::WrongType => "wrong_type",
            Invalid::BadTimestamp => "bad_timestamp",
            Invalid::NotFinite => "not_finite",
            Invalid::HighBelowLow => "high_below_low",
            Invalid::OutsideRange => "open_or_close_outside_range",
            Invalid::NonPositivePrice => "non_positive_price",
            Invalid::LimitsInverted => "lsl_not_below_usl",
            Invalid::WrongKind => "wrong_record_kind",
            Invalid::EmptyKey => "empty_key",
            Invalid::KeyTooLong => "key_too_long",
        }
    }

    /// Position in [`Invalid::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record was not processed. Bad records (`Invalid`) go to the dead-letter output; late
/// and duplicate ones are only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    Invalid(Invalid),
    /// Older than the key's last record (and `out_of_order = "drop"`).
    OutOfOrder,
    /// Same key and timestamp as the key's last record.
    Duplicate,
}

impl Reject {
    /// The `result` label of the record counters: `invalid`, `out_of_order` or `duplicate`.
    pub fn result(&self) -> &'static str {
        match self {
            Reject::Invalid(_) => "invalid",
            Reject::OutOfOrder => "out_of_order",
            Reject::Duplicate => "duplicate",
        }
    }

    /// The reason: the [`Invalid`] name, or the result for late and duplicate records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reject::Invalid(i) => i.as_str(),
            other => other.result(),
        }
    }

    /// Whether the record belongs in the dead-letter output (bad data, not merely late).
    pub fn is_dead_letter(&self) -> bool {
        matches!(self, Reject::Invalid(_))
    }
}

fn finite_opt(v: Option<f64>) -> bool {
    v.is_none_or(f64::is_finite)
}

impl Record<'_> {
    /// Checks the record's own consistency (not its order relative to others).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.key.is_empty() {
            return Err(Invalid::EmptyKey);
        }
        if self.key.len() > MAX_KEY_BYTES {
            return Err(Invalid::KeyTooLong);
        }
        match &self.payload {
            Payload::Bar(b) => {
                // The common case in one pass of comparisons: 0 < low <= open, close <= high <
                // inf holds only for finite prices (NaN fails every comparison), so such a bar
                // is valid once its volume is. Anything else takes the checks below, which
                // name the first rule broken, in this order.
                if 0.0 < b.low
                    && b.low <= b.open
                    && b.low <= b.close
                    && b.open <= b.high
                    && b.close <= b.high
                    && b.high < f64::INFINITY
                    && finite_opt(b.volume)
                {
                    return Ok(());
                }
                if ![b.open, b.high, b.low, b.close]
                    .iter()
                    .all(|v| v.is_finite())
                    || !finite_opt(b.volume)
                {
                    return Err(Invalid::NotFinite);
                }
                if b.low <= 0.0 || b.open <= 0.0 || b.close <= 0.0 {
                    return Err(Invalid::NonPositivePrice);
                }
                if b.high < b.low {
                    return Err(Invalid::HighBelowLow);
                }
                if b.open < b.low || b.open > b.high || b.close < b.low || b.close > b.high {
                    return Err(Invalid::OutsideRange);
                }
                Ok(())
            }
            Payload::Measurement(m) => {
                if !m.value.is_finite()
                    || !finite_opt(m.nominal)
                    || !finite_opt(m.lsl)
                    || !finite_opt(m.usl)
                {
                    return Err(Invalid::NotFinite);
                }
                if let (Some(l), Some(u)) = (m.lsl, m.usl) {
                    if l >= u {
                        return Err(Invalid::LimitsInverted);
                    }
                }
                Ok(())
            }
        }
    }

    pub fn kind(&self) -> RecordKind {
        match &self.payload {
            Payload::Bar(_) => RecordKind::Bar,
            Payload::Measurement(_) => RecordKind::Measurement,
        }
    }

    /// The series value the trend is fitted to: the close of a bar, the measured value.
    pub fn y(&self) -> f64 {
        match &self.payload {
            Payload::Bar(b) => b.close,
            Payload::Measurement(m) => m.value,
        }
    }
}

/// The kinds of output event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Trend,
    Rebalance,
    ToolCompensation,
    SpcAlarm,
    ToolChange,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Trend,
        EventKind::Rebalance,
        EventKind::ToolCompensation,
        EventKind::SpcAlarm,
        EventKind::ToolChange,
    ];

    /// The `kind` column / JSON field / metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Trend => "trend",
            EventKind::Rebalance => "rebalance",
            EventKind::ToolCompensation => "tool_compensation",
            EventKind::SpcAlarm => "spc_alarm",
            EventKind::ToolChange => "tool_change",
        }
    }

    /// Position in [`EventKind::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind-specific part of an output event: the columns of `events.parquet` beyond `id, key,
/// seq, ts, kind`, and the fields of a JSON event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Trend {
        direction: i8,
        strength: f64,
        level: f64,
        slope: f64,
        zone: f64,
        /// With `[fit.macro]`: the scale whose change moved the traded direction.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<crate::signal::scales::TrendScale>,
    },
    Rebalance {
        position_from: f64,
        position_to: f64,
        turnover: f64,
        cost: f64,
    },
    ToolCompensation {
        offset: f64,
        predicted: f64,
        zone: f64,
    },
    SpcAlarm {
        rule: Rule,
        statistic: f64,
        limit: f64,
    },
    /// The `tool` column changed: the key's fit and compensation restarted for the new tool.
    ToolChange { tool: u32 },
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::Trend { .. } => EventKind::Trend,
            EventBody::Rebalance { .. } => EventKind::Rebalance,
            EventBody::ToolCompensation { .. } => EventKind::ToolCompensation,
            EventBody::SpcAlarm { .. } => EventKind::SpcAlarm,
            EventBody::ToolChange { .. } => EventKind::ToolChange,
        }
    }
}

/// One output event. The key is shared with the key's state (`Arc`), so emitting costs no copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub key: Arc<str>,
    /// Index of the input record within its key, from 0.
    pub seq: u64,
    pub ts: Ts,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// The deterministic id `"{key}:{seq}:{kind}"`, the same in live and replay runs, so a
    /// consumer can drop duplicates. Two SPC alarms of different rules on one record get the
    /// rule appended (`"{key}:{seq}:spc_alarm:{rule}"`) so ids stay unique.
    pub fn id(&self) -> String {
        // Sized up front: growing the string while formatting reallocated it about three times
        // per event (issue 10: 4 % of a replay's instructions).
        let mut id = String::with_capacity(self.key.len() + 40);
        self.write_id(&mut id);
        id
    }

    /// Appends [`Event::id`] to `out` (a sink reuses one buffer for every event).
    pub fn write_id(&self, out: &mut String) {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = match self.body {
            EventBody::SpcAlarm { rule, .. } => {
                write!(out, "{}:{}:spc_alarm:{}", self.key, self.seq, rule.name())
            }
            _ => write!(
                out,
                "{}:{}:{}",
                self.key,
                self.seq,
                self.body.kind().as_str()
            ),
        };
    }
}

/// The per-record fit row (`fit` output), for plots and research.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitRow {
    pub ts: Ts,
    pub y: f64,
    pub level: f64,
    pub slope: f64,
    pub zone: f64,
    pub inside: bool,
    pub updated: bool,
    pub regime: u8,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The bar rules read one at a time, in the order the errors are named: the reference the
    /// one-pass fast path of [`Record::validate`] must agree with.
    fn rules_one_by_one(b: &Bar) -> Result<(), Invalid> {
        let prices = [b.open, b.high, b.low, b.close];
        if prices.iter().any(|v| !v.is_finite()) || b.volume.is_some_and(|v| !v.is_finite()) {
            Err(Invalid::NotFinite)
        } else if [b.low, b.open, b.close].iter().any(|&v| v <= 0.0) {
            // high is not checked: a non-positive high is below a positive low.
            Err(Invalid::NonPositivePrice)
        } else if b.high < b.low {
            Err(Invalid::HighBelowLow)
        } else if [b.open, b.close].iter().any(|&v| v < b.low || v > b.high) {
            Err(Invalid::OutsideRange)
        } else {
            Ok(())
        }
    }

    /// Prices drawn mostly from a few values, so that ties, orderings and every special value
    /// come up often.
    fn price() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(1.0),
            Just(2.0),
            Just(3.0),
            Just(0.0),
            Just(-1.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            -10.0..10.0f64,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn bar_validation_names_the_first_rule_broken(
            open in price(),
            high in price(),
            low in price(),
            close in price(),
            volume in proptest::option::of(price()),
        ) {
            let bar = Bar { open, high, low, close, volume, true_trend: None };
            let rec = Record { key: "k", ts: 0, payload: Payload::Bar(bar) };
            prop_assert_eq!(rec.validate(), rules_one_by_one(&bar), "{:?}", bar);
        }
    }
}
