//! The configuration file as written: one serde struct per table, unknown keys refused (in
//! `[zone]`, when its well is resolved), before any defaults are merged or values checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::kafka::{KafkaConfig, MetricsConfig};
use crate::pipeline::OutOfOrder;
use crate::record::RecordKind;
use crate::signal::book::Sizing;
use crate::signal::compensate::CompSpec;
use crate::zone::fit::Method;
use crate::zone::scale::RegimeSpec;
use crate::zone::spc::{CusumSpec, EwmaSpec, Rule};

/// Where the input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    #[default]
    Parquet,
    /// CSV files with a header row of the Parquet column names; `ts` RFC 3339 or epoch ns.
    Csv,
    Kafka,
}

/// `[input]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    #[serde(default)]
    pub kind: InputKind,
    /// Parquet or CSV: a file, a directory or a glob (`data/*.parquet`).
    pub path: Option<String>,
    #[serde(default)]
    pub record: RecordKind,
    #[serde(default)]
    pub out_of_order: OutOfOrder,
    /// Parquet: sort each file by ts in memory when it is not sorted (off: unsorted files are an error).
    #[serde(default)]
    pub sort: bool,
    /// Records per Arrow batch when reading Parquet.
    #[serde(default = "default_batch")]
    pub batch_rows: usize,
    /// Kafka: bootstrap servers, topics and consumer group (daemon).
    pub brokers: Option<String>,
    pub topic: Option<String>,
    pub topics: Option<Vec<String>>,
    pub group: Option<String>,
    pub format: Option<String>,
}

fn default_batch() -> usize {
    8192
}

/// Where events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    #[default]
    Parquet,
    Stdout,
    Kafka,
}

/// `[output]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    #[serde(default)]
    pub kind: OutputKind,
    /// Parquet: the output directory.
    pub path: Option<String>,
    /// Also write the per-record fit rows (`fit.parquet`).
    #[serde(default)]
    pub emit_fit: bool,
    /// Report: how many keys get their own chart.
    #[serde(default = "default_report_keys")]
    pub report_keys: usize,
    /// Kafka: output topic, dead-letter topic, changelog topic (daemon).
    pub topic: Option<String>,
    pub dlq_topic: Option<String>,
    pub changelog_topic: Option<String>,
}

fn default_report_keys() -> usize {
    4
}

/// `[zone]` as written (before resolving the well and the scale).
///
/// The well is not spelt out here: every key this struct does not name lands in `well` and is
/// read as a [`crate::zone::well::Well`] (`well = "<shape>"` plus that shape's parameters) when
/// the zone is resolved, which is also where keys that fit neither are refused. So unknown keys
/// are not refused by serde here (`deny_unknown_fields` does not combine with `flatten`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RawZone {
    #[serde(default = "default_floor")]
    pub(super) floor: f64,
    pub(super) scale: Option<toml::Table>,
    pub(super) regimes: Option<Vec<RegimeSpec>>,
    pub(super) regime_half_life: Option<f64>,
    pub(super) regime_confirm: Option<u32>,
    /// `well` and the well's parameters (and any misspelt key, refused on resolution).
    #[serde(flatten)]
    pub(super) well: toml::Table,
}

/// The `[zone]` keys besides the well's parameters, for "did you mean" on a key that is neither.
pub(super) const ZONE_KEYS: [&str; 6] = [
    "well",
    "floor",
    "scale",
    "regimes",
    "regime_half_life",
    "regime_confirm",
];

fn default_floor() -> f64 {
    1e-9
}

impl Default for RawZone {
    fn default() -> Self {
        toml::from_str("").expect("all [zone] keys have defaults")
    }
}

/// How the fit's time axis is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(super) enum TimeKind {
    #[default]
    Index,
    Seconds,
}

/// `[fit]` as written; missing keys take `FitSpec::default()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFit {
    pub(super) method: Option<Method>,
    pub(super) order: Option<u8>,
    pub(super) forgetting: Option<f64>,
    pub(super) p0: Option<f64>,
    pub(super) trace_max: Option<f64>,
    pub(super) leak: Option<f64>,
    #[serde(default)]
    pub(super) time: TimeKind,
    pub(super) time_unit_s: Option<f64>,
    /// `[fit.macro]`: the slow scale (bars); absent = one scale.
    #[serde(rename = "macro")]
    pub(super) macro_scale: Option<RawMacro>,
}

/// `[fit.macro]` as written; missing keys take `MacroSpec::with_trend` of the key's `[signal]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMacro {
    pub(super) multiplier: Option<f64>,
    pub(super) forgetting: Option<f64>,
    pub(super) horizon: Option<f64>,
    pub(super) enter: Option<f64>,
    pub(super) exit: Option<f64>,
    pub(super) combine: Option<crate::signal::scales::Combine>,
}

/// `[signal]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignal {
    pub(super) horizon: Option<f64>,
    pub(super) enter: Option<f64>,
    pub(super) exit: Option<f64>,
    pub(super) saturate: Option<f64>,
    pub(super) warmup: Option<u64>,
    pub(super) sizing: Option<Sizing>,
    pub(super) cost_bps: Option<f64>,
    pub(super) band: Option<f64>,
    pub(super) weight: Option<f64>,
    /// Annualise Sharpe with sqrt(periods_per_year) (e.g. 252 for daily bars); off by default.
    pub(super) periods_per_year: Option<f64>,
    /// Put a floor under eps at the round-trip cost of a trade: (spread + commission + slippage) × price.
    /// On by default when those are given; `false` keeps them for the book's costs only.
    pub(super) zone_from_costs: Option<bool>,
    /// Round-trip costs as fractions of price; when given they are the book's costs too (one
    /// unit of one-way turnover costs half their sum), and `cost_bps` must not be.
    pub(super) spread: Option<f64>,
    pub(super) commission: Option<f64>,
    pub(super) slippage: Option<f64>,
}

/// `[spc]` as written. Charts run on measurement streams only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpc {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    pub(super) target: Option<f64>,
    pub(super) sigma: Option<f64>,
    pub(super) baseline: Option<usize>,
    pub(super) rules: Option<Vec<Rule>>,
    pub(super) ewma: Option<EwmaSpec>,
    pub(super) cusum: Option<CusumSpec>,
}

fn yes() -> bool {
    true
}

impl Default for RawSpc {
    fn default() -> Self {
        toml::from_str("").expect("all [spc] keys have defaults")
    }
}

/// One `[keys."NAME"]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyOverride {
    pub(super) zone: Option<Spanned<toml::Table>>,
    pub(super) fit: Option<Spanned<toml::Table>>,
    pub(super) signal: Option<Spanned<toml::Table>>,
    pub(super) compensation: Option<Spanned<toml::Table>>,
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) input: InputConfig,
    #[serde(default)]
    pub(super) zone: RawZone,
    #[serde(default)]
    pub(super) fit: RawFit,
    #[serde(default)]
    pub(super) signal: RawSignal,
    #[serde(default)]
    pub(super) compensation: CompSpec,
    #[serde(default)]
    pub(super) spc: RawSpc,
    #[serde(default)]
    pub(super) output: OutputConfig,
    #[serde(default)]
    pub(super) keys: BTreeMap<String, Spanned<RawKeyOverride>>,
    #[serde(default)]
    pub(super) kafka: KafkaConfig,
    #[serde(default)]
    pub(super) metrics: MetricsConfig,
    /// `[tune]`: read by `deadband tune` (`run::tune::settings`); other commands ignore it.
    #[serde(default, rename = "tune")]
    pub(super) _tune: Option<toml::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ZONE_KEYS` names exactly what `RawZone` claims, plus `well`.
    #[test]
    fn zone_keys_match_the_raw_zone_fields() {
        let z: RawZone = toml::from_str(
            "floor = 1e-6\nregime_half_life = 50.0\nregime_confirm = 3\nregimes = []\n[scale]\n",
        )
        .unwrap();
        assert!(z.well.is_empty(), "{:?}", z.well);
        let written = toml::Value::try_from(&z).unwrap();
        let mut keys: Vec<&str> = written
            .as_table()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.push("well");
        keys.sort_unstable();
        let mut expected = ZONE_KEYS;
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
}
