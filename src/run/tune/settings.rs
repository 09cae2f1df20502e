//! The `[tune]` table: folds, search, objective and turnover cap, with their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::folds::FoldSpec;

/// How candidates are drawn from the space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    #[default]
    Grid,
    Random,
}

/// What the train windows maximise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Mean / sample std of per-period active returns against the fold's tuned baseline.
    #[default]
    InformationRatio,
    NetSharpe,
    NetReturn,
}

/// `[tune]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTune {
    folds: Option<usize>,
    train: Option<f64>,
    test: Option<f64>,
    anchored: Option<bool>,
    search: Option<Search>,
    samples: Option<usize>,
    objective: Option<Objective>,
    max_turnover: Option<f64>,
    max_turnover_ratio: Option<f64>,
    seed: Option<u64>,
    space: Option<BTreeMap<String, Vec<toml::Value>>>,
}

/// `[tune]` resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub folds: FoldSpec,
    pub search: Search,
    pub samples: usize,
    pub objective: Objective,
    /// Cap on turnover per key per period in a train window; candidates above it are skipped.
    pub max_turnover: Option<f64>,
    /// Cap on the strategy's train turnover as a fraction of the tuned baseline's in the same
    /// window (0.4: at most 40 % of the baseline's trading); the baseline itself is not capped.
    pub max_turnover_ratio: Option<f64>,
    pub seed: u64,
    /// Empty when `[tune.space]` is absent (the caller then uses the default space).
    pub space: BTreeMap<String, Vec<toml::Value>>,
}

/// Defaults: 4 rolling folds, train 40 % of the span, the rest split into equal test windows,
/// grid search (random: 20 samples, seed 0), information ratio, no turnover caps.
pub fn parse(tune: Option<&toml::Value>) -> Result<Settings, String> {
    let raw: RawTune = match tune {
        None => RawTune::default(),
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| format!("[tune]: {}", e.message()))?,
    };
    let folds = raw.folds.unwrap_or(4);
    let train = raw.train.unwrap_or(0.4);
    let test = raw
        .test
        .unwrap_or_else(|| (1.0 - train) / folds.max(1) as f64);
    let spec = FoldSpec {
        folds,
        train,
        test,
        anchored: raw.anchored.unwrap_or(false),
    };
    spec.check()?;
    if let Some(m) = raw.max_turnover {
        if m.is_nan() || m <= 0.0 {
            return Err("[tune] max_turnover must be positive".into());
        }
    }
    if let Some(m) = raw.max_turnover_ratio {
        if !(m > 0.0 && m.is_finite()) {
            return Err(format!(
                "[tune] max_turnover_ratio must be a positive fraction of the baseline's turnover \
                 (0.4 = at most 40 %), got {m}"
            ));
        }
    }
    let space = raw.space.unwrap_or_default();
    if let Some((name, _)) = space.iter().find(|(_, v)| v.is_empty()) {
        return Err(format!("[tune.space] `{name}` has no values"));
    }
    Ok(Settings {
        folds: spec,
        search: raw.search.unwrap_or_default(),
        samples: raw.samples.unwrap_or(20).max(1),
        objective: raw.objective.unwrap_or_default(),
        max_turnover: raw.max_turnover,
        max_turnover_ratio: raw.max_turnover_ratio,
        seed: raw.seed.unwrap_or(0),
        space,
    })
}
