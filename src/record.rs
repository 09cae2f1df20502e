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
}

/// One measured value of a feature, with optional specification limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub value: f64,
    pub nominal: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
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

/// Why a record was rejected by validation. The names are the `reason` label of the counters and
/// the DLQ header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
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
}

impl Invalid {
    pub const ALL: [Invalid; 7] = [
        Invalid::NotFinite,
        Invalid::HighBelowLow,
        Invalid::OutsideRange,
        Invalid::NonPositivePrice,
        Invalid::LimitsInverted,
        Invalid::WrongKind,
        Invalid::EmptyKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::NotFinite => "not_finite",
            Invalid::HighBelowLow => "high_below_low",
            Invalid::OutsideRange => "open_or_close_outside_range",
            Invalid::NonPositivePrice => "non_positive_price",
            Invalid::LimitsInverted => "lsl_not_below_usl",
            Invalid::WrongKind => "wrong_record_kind",
            Invalid::EmptyKey => "empty_key",
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

fn finite_opt(v: Option<f64>) -> bool {
    v.is_none_or(f64::is_finite)
}

impl Record<'_> {
    /// Checks the record's own consistency (not its order relative to others).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.key.is_empty() {
            return Err(Invalid::EmptyKey);
        }
        match self.payload {
            Payload::Bar(b) => {
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
        match self.payload {
            Payload::Bar(_) => RecordKind::Bar,
            Payload::Measurement(_) => RecordKind::Measurement,
        }
    }

    /// The series value the trend is fitted to: the close of a bar, the measured value.
    pub fn y(&self) -> f64 {
        match self.payload {
            Payload::Bar(b) => b.close,
            Payload::Measurement(m) => m.value,
        }
    }
}

/// The kind-specific part of an output event (design §2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Trend {
        direction: i8,
        strength: f64,
        level: f64,
        slope: f64,
        zone: f64,
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
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Trend { .. } => "trend",
            EventBody::Rebalance { .. } => "rebalance",
            EventBody::ToolCompensation { .. } => "tool_compensation",
            EventBody::SpcAlarm { .. } => "spc_alarm",
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
        match self.body {
            EventBody::SpcAlarm { rule, .. } => {
                format!("{}:{}:spc_alarm:{}", self.key, self.seq, rule.name())
            }
            _ => format!("{}:{}:{}", self.key, self.seq, self.body.kind()),
        }
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
