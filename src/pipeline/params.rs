//! What a key's chain is built from: per-key parameters, processor-wide settings and the
//! `[keys."NAME"]` / `[keys."PATTERN"]` lookup.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::RecordKind;
use crate::signal::book::BookSpec;
use crate::signal::compensate::CompSpec;
use crate::signal::scales::MacroSpec;
use crate::signal::trend::TrendSpec;
use crate::zone::fit::FitSpec;
use crate::zone::scale::{RegimeSet, ScaleSpec};
use crate::zone::spc::SpcSpec;
use crate::zone::ParamError;

use super::chain::KeyCore;

/// The time axis of the fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "time")]
pub enum TimeAxis {
    /// t = the record's index within its key (bars, parts). The default: markets have gaps
    /// (nights, weekends) that a trend in record time ignores, and a part count is the natural
    /// clock of tool wear.
    #[default]
    Index,
    /// t = (ts − first ts of the key) / unit_s seconds.
    Seconds { unit_s: f64 },
}

/// What to do with a record older than its key's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutOfOrder {
    #[default]
    Drop,
    Accept,
}

/// Everything one key's chain needs; resolved from the config (defaults + `[keys."NAME"]`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyParams {
    pub scale: ScaleSpec,
    pub regimes: Option<RegimeSet>,
    /// eps never falls below this.
    pub floor: f64,
    /// When set, eps >= cost_fraction × close: moves smaller than the round-trip cost of a trade
    /// (spread + commission + slippage, as a fraction of price) are not worth acting on.
    pub cost_fraction: Option<f64>,
    pub time: TimeAxis,
    pub fit: FitSpec,
    pub trend: TrendSpec,
    pub book: BookSpec,
    pub comp: CompSpec,
    pub spc: Option<SpcSpec>,
    /// `[fit.macro]`: a second, slower fit with a wider zone that gates the trend (bars).
    pub macro_scale: Option<MacroSpec>,
}

impl KeyParams {
    /// Builds every component once, so that configuration errors surface before any record.
    pub fn check(&self) -> Result<(), ParamError> {
        KeyCore::new(self).map(|_| ())
    }
}

/// Processor-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    pub record: RecordKind,
    pub out_of_order: OutOfOrder,
    pub defaults: Arc<KeyParams>,
    /// Per-key settings by exact key name.
    pub overrides: HashMap<String, Arc<KeyParams>>,
    /// Per-key settings by glob pattern (`*/bore`, `SYM0?`), tried in order when no exact name
    /// matches.
    pub patterns: Vec<(KeyPattern, Arc<KeyParams>)>,
}

impl ProcessorConfig {
    /// The parameters of a key: its exact override, else the first matching pattern, else the
    /// defaults. Called once per key, when the key first appears.
    pub fn params_for(&self, key: &str) -> &Arc<KeyParams> {
        if let Some(p) = self.overrides.get(key) {
            return p;
        }
        self.patterns
            .iter()
            .find(|(pat, _)| pat.0.matches(key))
            .map_or(&self.defaults, |(_, p)| p)
    }

    /// Every distinct parameter set with the name it is configured under (`None` = defaults).
    pub(super) fn all_params(&self) -> impl Iterator<Item = (Option<&str>, &Arc<KeyParams>)> {
        std::iter::once((None, &self.defaults))
            .chain(self.overrides.iter().map(|(k, p)| (Some(k.as_str()), p)))
            .chain(self.patterns.iter().map(|(k, p)| (Some(k.0.as_str()), p)))
    }
}

/// A `[keys."PATTERN"]` name containing glob characters (`*`, `?`, `[`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPattern(pub glob::Pattern);

impl KeyPattern {
    /// `Some` when `name` is a valid pattern with at least one glob character.
    pub fn parse(name: &str) -> Option<Result<KeyPattern, String>> {
        if !name.contains(['*', '?', '[']) {
            return None;
        }
        Some(
            glob::Pattern::new(name)
                .map(KeyPattern)
                .map_err(|e| e.to_string()),
        )
    }
}

/// A parameter out of range, in the defaults (`key = None`) or in one key's override.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{source}", key.as_ref().map(|k| format!("[keys.\"{k}\"]: ")).unwrap_or_default())]
pub struct KeyParamError {
    pub key: Option<String>,
    pub source: ParamError,
}
