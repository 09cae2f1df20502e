//! The TOML run configuration: schema (serde, unknown keys refused), validation, per-key overrides,
//! and errors that name file:line:col, the key, and the fix.
//!
//! Sections: `[input]`, `[zone]` (+ `[zone.scale]`, `[[zone.regimes]]`), `[fit]`, `[signal]`,
//! `[compensation]`, `[spc]`, `[output]`, `[kafka]`, `[metrics]`, and `[keys."NAME"]` whose
//! `zone`, `fit`, `signal` and `compensation` tables override those settings for one key (a deep
//! merge: keys not given keep the global value).
//!
//! This layer does no IO besides reading the configuration file in [`load`]: a gauge study named
//! by `[zone.scale] study` is read through a [`StudyReader`] the caller passes to
//! [`parse_with`] / [`load_with`].
//!
//! This file holds the entry points and the resolved [`Config`]; the tables as written are in
//! `schema`, their resolution into per-key parameters in `resolve` (the well and the `[zone.scale]`
//! table in `zone`), the daemon's settings in `kafka`, and error reporting in `error`.

mod error;
mod kafka;
mod resolve;
mod schema;
mod zone;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::pipeline::{KeyParams, ProcessorConfig};
use crate::record::RecordKind;
use crate::signal::compensate::Trigger;
use crate::zone::fit::Method;
use crate::zone::spc::Rule;
use crate::zone::well::Well;

pub use error::ConfigError;
pub use kafka::{
    default_changelog_topic, default_dlq_topic, expand_env, KafkaConfig, MetricsConfig,
};
pub use schema::{InputConfig, InputKind, OutputConfig, OutputKind};
pub use zone::{NoStudies, StudyReader};

use error::Locator;
use schema::RawConfig;

/// A validated, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub processor: ProcessorConfig,
    pub periods_per_year: Option<f64>,
    pub kafka: KafkaConfig,
    pub metrics: MetricsConfig,
}

/// Reads and validates a configuration file; a `[zone.scale] study` is refused (see
/// [`NoStudies`]). Drivers that accept gauge studies call [`load_with`].
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &NoStudies)
}

/// Reads and validates a configuration file, reading any gauge study through `studies`.
pub fn load_with(path: &Path, studies: &dyn StudyReader) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        at: None,
        message: format!("cannot read the configuration: {e}"),
        help: Some("check the path given to --config".into()),
    })?;
    parse_with(&src, path, studies)
}

/// Parses and validates configuration text; `path` names it in errors. A `[zone.scale] study`
/// is refused (see [`NoStudies`]); [`parse_with`] reads it.
pub fn parse(src: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with(src, path, &NoStudies)
}

/// Parses and validates configuration text; `path` names it in errors and anchors relative
/// paths (a gauge study) to its folder, and `studies` reads those studies.
pub fn parse_with(
    src: &str,
    path: &Path,
    studies: &dyn StudyReader,
) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let loc = Locator { src, file: &file };
    let raw: RawConfig = toml::from_str(src).map_err(|e| loc.toml_error(&e, None))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (processor, periods_per_year) = resolve::processor(&loc, &base_dir, studies, &raw)?;

    let input = raw.input;
    if input.batch_rows == 0 {
        return Err(loc.key_error("input", "batch_rows", "must be at least 1".into(), None));
    }
    if input.kind == InputKind::Kafka && input.topic.is_none() && input.topics.is_none() {
        return Err(loc.key_error(
            "input",
            "kind",
            "kafka input needs `topic` or `topics`".into(),
            Some("add topic = \"bars\" to [input]".into()),
        ));
    }
    kafka::check_kafka(&loc, &input, &raw.output, &raw.kafka, &raw.metrics)?;
    Ok(Config {
        file: path.to_path_buf(),
        input,
        output: raw.output,
        processor,
        periods_per_year,
        kafka: raw.kafka,
        metrics: raw.metrics,
    })
}

impl Config {
    /// The same run with the baseline method: L2 RLS with a quadratic well and the same signal
    /// rules for bars; Shewhart-triggered compensation (3-sigma individuals chart) for
    /// measurements.
    pub fn baseline(&self) -> ProcessorConfig {
        let to_baseline = |p: &KeyParams| -> KeyParams {
            let mut b = p.clone();
            b.fit.method = Method::Rls;
            b.fit.well = Well::Quadratic;
            b.fit.leak = 0.0;
            if self.processor.record == RecordKind::Measurement {
                b.comp.trigger = Trigger::Shewhart;
                let mut spc = b.spc.clone().unwrap_or_default();
                spc.rules = vec![Rule::We1];
                spc.ewma = None;
                spc.cusum = None;
                b.spc = Some(spc);
            }
            b
        };
        ProcessorConfig {
            record: self.processor.record,
            out_of_order: self.processor.out_of_order,
            defaults: Arc::new(to_baseline(&self.processor.defaults)),
            overrides: self
                .processor
                .overrides
                .iter()
                .map(|(k, p)| (k.clone(), Arc::new(to_baseline(p))))
                .collect(),
            patterns: self
                .processor
                .patterns
                .iter()
                .map(|(k, p)| (k.clone(), Arc::new(to_baseline(p))))
                .collect(),
        }
    }
}
