//! The TOML run configuration: schema (serde, unknown keys refused), validation, per-key overrides,
//! and errors that name file:line:col, the key, and the fix.
//!
//! Sections: `[input]`, `[zone]` (+ `[zone.scale]`, `[[zone.regimes]]`), `[fit]`, `[signal]`,
//! `[compensation]`, `[spc]`, `[output]`, and `[keys."NAME"]` whose `zone`, `fit`, `signal` and
//! `compensation` tables override those settings for one key (a deep merge: keys not given keep
//! the global value).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::pipeline::{KeyParams, KeyPattern, OutOfOrder, ProcessorConfig, TimeAxis};
use crate::record::RecordKind;
use crate::signal::book::{BookSpec, Sizing};
use crate::signal::compensate::{CompSpec, Trigger};
use crate::signal::trend::TrendSpec;
use crate::zone::fit::{FitSpec, Method};
use crate::zone::grr::GrrMethod;
use crate::zone::scale::{RegimeSet, RegimeSpec, ScaleSpec};
use crate::zone::spc::{CusumSpec, EwmaSpec, Rule, SpcSpec};
use crate::zone::well::Well;
use crate::zone::ParamError;

/// A configuration problem with its place in the file and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column; `None` when the problem is not at one place (a missing file).
    pub at: Option<(usize, usize)>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((l, c)) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where the input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    #[default]
    Parquet,
    Kafka,
}

/// `[input]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    #[serde(default)]
    pub kind: InputKind,
    /// Parquet: a file or a glob (`data/*.parquet`).
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

/// `[kafka]`: daemon settings besides the topics (which live in `[input]` and `[output]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// How often each partition checkpoints (events flushed, state written, offsets committed).
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_interval_ms: u64,
    /// How long a SIGTERM/SIGINT shutdown may take before the daemon gives up and exits 1.
    #[serde(default = "default_shutdown_s")]
    pub shutdown_timeout_s: u64,
    /// librdkafka properties passed unchanged to every client (`"security.protocol" = "SASL_SSL"`;
    /// dotted keys written bare form nested tables, which are read back as the dotted name).
    /// String values may reference environment variables as `${NAME}`.
    #[serde(default)]
    pub properties: toml::Table,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        toml::from_str("").expect("all [kafka] keys have defaults")
    }
}

fn default_checkpoint_ms() -> u64 {
    1000
}

fn default_shutdown_s() -> u64 {
    30
}

impl KafkaConfig {
    /// `[kafka.properties]` as librdkafka name/value pairs, nested tables joined with dots,
    /// `${NAME}` references still unexpanded. Numbers and booleans become their TOML text.
    pub fn property_pairs(&self) -> Result<Vec<(String, String)>, String> {
        fn walk(
            prefix: &str,
            t: &toml::Table,
            out: &mut Vec<(String, String)>,
        ) -> Result<(), String> {
            for (k, v) in t {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::String(s) => out.push((name, s.clone())),
                    toml::Value::Integer(i) => out.push((name, i.to_string())),
                    toml::Value::Float(f) => out.push((name, f.to_string())),
                    toml::Value::Boolean(b) => out.push((name, b.to_string())),
                    toml::Value::Table(t) => walk(&name, t, out)?,
                    _ => return Err(name),
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk("", &self.properties, &mut out)?;
        Ok(out)
    }
}

/// `[metrics]`: where `/metrics`, `/healthz` and `/readyz` are served (daemon).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port`; loopback by default so nothing is exposed unless asked for.
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

/// The changelog topic when `[output] changelog_topic` is not given.
pub fn default_changelog_topic(group: &str) -> String {
    format!("{group}-state")
}

/// The dead-letter topic when `[output] dlq_topic` is not given (the spec is silent; this
/// mirrors the changelog default).
pub fn default_dlq_topic(group: &str) -> String {
    format!("{group}-dlq")
}

/// Kafka input and Kafka output go together (the daemon), and each needs its names.
fn check_kafka(
    loc: &Locator<'_>,
    input: &InputConfig,
    output: &OutputConfig,
    kafka: &KafkaConfig,
    metrics: &MetricsConfig,
) -> Result<(), ConfigError> {
    let kin = input.kind == InputKind::Kafka;
    let kout = output.kind == OutputKind::Kafka;
    if kin && !kout {
        return Err(loc.key_error(
            "output",
            "kind",
            "must be \"kafka\" when [input] kind = \"kafka\"".into(),
            Some(
                "the daemon writes events to Kafka: set kind = \"kafka\" and topic in [output]"
                    .into(),
            ),
        ));
    }
    if kout && !kin {
        return Err(loc.key_error(
            "input",
            "kind",
            "must be \"kafka\" when [output] kind = \"kafka\"".into(),
            Some("set kind = \"kafka\", brokers, topic and group in [input]".into()),
        ));
    }
    if !kin {
        return Ok(());
    }
    for (name, v) in [("brokers", &input.brokers), ("group", &input.group)] {
        if v.as_deref().is_none_or(str::is_empty) {
            return Err(loc.key_error(
                "input",
                name,
                "is required for kafka input".into(),
                Some(match name {
                    "brokers" => "add brokers = \"host:9092\" to [input]".into(),
                    _ => "add group = \"deadband\" (the consumer group) to [input]".into(),
                }),
            ));
        }
    }
    if let Some(f) = &input.format {
        if f != "json" {
            return Err(loc.key_error(
                "input",
                "format",
                format!("`{f}` is not supported"),
                Some("use format = \"json\"".into()),
            ));
        }
    }
    if output.topic.as_deref().is_none_or(str::is_empty) {
        return Err(loc.key_error(
            "output",
            "topic",
            "is required for kafka output".into(),
            Some("add topic = \"events\" to [output]".into()),
        ));
    }
    if kafka.checkpoint_interval_ms == 0 {
        return Err(loc.key_error(
            "kafka",
            "checkpoint_interval_ms",
            "must be at least 1".into(),
            Some("1000 (one second) is a good start".into()),
        ));
    }
    let pairs = kafka.property_pairs().map_err(|name| {
        loc.key_error(
            "kafka.properties",
            name.rsplit('.').next().unwrap_or(&name),
            format!("`{name}` must be a string, number or boolean"),
            None,
        )
    })?;
    for (name, value) in &pairs {
        if let Err(var) = crate::io::kafka::expand_env(value, |v| std::env::var(v).ok()) {
            return Err(loc.key_error(
                "kafka.properties",
                name,
                format!("references the environment variable `{var}`, which is not set"),
                Some(format!(
                    "export {var} before starting deadband, or write the value directly"
                )),
            ));
        }
    }
    if metrics.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(loc.key_error(
            "metrics",
            "listen",
            format!("`{}` is not an address", metrics.listen),
            Some("write host:port, e.g. listen = \"127.0.0.1:9464\"".into()),
        ));
    }
    Ok(())
}

/// Loss shape names for `[zone] well = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WellKind {
    Quadratic,
    #[default]
    DeadZone,
    SoftDeadZone,
    SquareWell,
    Gaussian,
    Reciprocal,
    Log,
    Huber,
    Hybrid,
}

/// `[zone]` as written (before resolving the well and the scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    #[serde(default)]
    well: WellKind,
    softness: Option<f64>,
    depth: Option<f64>,
    sharpness: Option<f64>,
    /// Length of gaussian/reciprocal/log wells in units of eps (their `scale`).
    width: Option<f64>,
    threshold: Option<f64>,
    knee: Option<f64>,
    #[serde(default = "default_floor")]
    floor: f64,
    scale: Option<toml::Table>,
    regimes: Option<Vec<RegimeSpec>>,
    regime_half_life: Option<f64>,
    regime_confirm: Option<u32>,
}

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
enum TimeKind {
    #[default]
    Index,
    Seconds,
}

/// `[fit]` as written; missing keys take `FitSpec::default()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFit {
    method: Option<Method>,
    order: Option<u8>,
    forgetting: Option<f64>,
    p0: Option<f64>,
    trace_max: Option<f64>,
    leak: Option<f64>,
    #[serde(default)]
    time: TimeKind,
    time_unit_s: Option<f64>,
}

/// `[signal]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    horizon: Option<f64>,
    enter: Option<f64>,
    exit: Option<f64>,
    saturate: Option<f64>,
    warmup: Option<u64>,
    sizing: Option<Sizing>,
    cost_bps: Option<f64>,
    band: Option<f64>,
    weight: Option<f64>,
    /// Annualise Sharpe with sqrt(periods_per_year) (e.g. 252 for daily bars); off by default.
    periods_per_year: Option<f64>,
    /// Put a floor under eps at the round-trip cost of a trade: (spread + commission + slippage) × price.
    #[serde(default)]
    zone_from_costs: bool,
    spread: Option<f64>,
    commission: Option<f64>,
    slippage: Option<f64>,
}

/// `[spc]` as written. Charts run on measurement streams only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpc {
    #[serde(default = "yes")]
    enabled: bool,
    target: Option<f64>,
    sigma: Option<f64>,
    baseline: Option<usize>,
    rules: Option<Vec<Rule>>,
    ewma: Option<EwmaSpec>,
    cusum: Option<CusumSpec>,
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
struct RawKeyOverride {
    zone: Option<Spanned<toml::Table>>,
    fit: Option<Spanned<toml::Table>>,
    signal: Option<Spanned<toml::Table>>,
    compensation: Option<Spanned<toml::Table>>,
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    input: InputConfig,
    #[serde(default)]
    zone: RawZone,
    #[serde(default)]
    fit: RawFit,
    #[serde(default)]
    signal: RawSignal,
    #[serde(default)]
    compensation: CompSpec,
    #[serde(default)]
    spc: RawSpc,
    #[serde(default)]
    output: OutputConfig,
    #[serde(default)]
    keys: BTreeMap<String, Spanned<RawKeyOverride>>,
    #[serde(default)]
    kafka: KafkaConfig,
    #[serde(default)]
    metrics: MetricsConfig,
}

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

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        at: None,
        message: format!("cannot read the configuration: {e}"),
        help: Some("check the path given to --config".into()),
    })?;
    parse(&src, path)
}

/// Parses and validates configuration text; `path` names it in errors and anchors relative
/// paths (e.g. a gauge study) to its folder.
pub fn parse(src: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let loc = Locator { src, file: &file };
    let raw: RawConfig = toml::from_str(src).map_err(|e| loc.toml_error(&e, None))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

    let base_zone = &raw.zone;
    let record = raw.input.record;
    let (defaults, periods_per_year) = resolve_key(
        &loc,
        &base_dir,
        record,
        base_zone,
        &raw.fit,
        &raw.signal,
        &raw.compensation,
        &raw.spc,
        None,
    )?;

    let mut overrides = HashMap::new();
    let mut patterns = Vec::new();
    for (name, ov) in &raw.keys {
        let span = ov.span();
        let pattern = match KeyPattern::parse(name) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                return Err(loc.at(
                    span,
                    format!("[keys.\"{name}\"]: not a valid key pattern: {e}"),
                    Some("use * and ? wildcards, or the exact key".into()),
                ))
            }
        };
        let ov = ov.get_ref();
        // Each section: the global table with this key's table merged over it, then parsed again.
        let section = |title: &str, base: toml::Value, o: &Option<Spanned<toml::Table>>| {
            let mut v = base;
            if let Some(t) = o {
                merge(&mut v, toml::Value::Table(t.get_ref().clone()));
            }
            let at = o.as_ref().map_or(span.clone(), |t| t.span());
            ((format!("[keys.\"{name}\".{title}]"), at), v)
        };
        let (c, v) = section("zone", to_value(base_zone), &ov.zone);
        let zone: RawZone = from_value(&loc, c, v)?;
        let (c, v) = section("fit", to_value(&raw.fit), &ov.fit);
        let fit: RawFit = from_value(&loc, c, v)?;
        let (c, v) = section("signal", to_value(&raw.signal), &ov.signal);
        let signal: RawSignal = from_value(&loc, c, v)?;
        let (c, v) = section(
            "compensation",
            to_value(&raw.compensation),
            &ov.compensation,
        );
        let comp: CompSpec = from_value(&loc, c, v)?;
        let (params, _) = resolve_key(
            &loc,
            &base_dir,
            record,
            &zone,
            &fit,
            &signal,
            &comp,
            &raw.spc,
            Some(name),
        )?;
        match pattern {
            Some(p) => patterns.push((p, Arc::new(params))),
            None => {
                overrides.insert(name.clone(), Arc::new(params));
            }
        }
    }

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
    check_kafka(&loc, &input, &raw.output, &raw.kafka, &raw.metrics)?;
    Ok(Config {
        file: path.to_path_buf(),
        input,
        output: raw.output,
        processor: ProcessorConfig {
            record,
            out_of_order: OutOfOrder::Drop,
            defaults: Arc::new(defaults),
            overrides,
            patterns,
        },
        periods_per_year,
        kafka: raw.kafka,
        metrics: raw.metrics,
    })
    .map(|mut c| {
        c.processor.out_of_order = c.input.out_of_order;
        c
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

fn to_value<T: Serialize>(v: &T) -> toml::Value {
    toml::Value::try_from(v).expect("config sections serialise to TOML")
}

fn from_value<T: for<'de> Deserialize<'de>>(
    loc: &Locator<'_>,
    (section, span): (String, Range<usize>),
    v: toml::Value,
) -> Result<T, ConfigError> {
    T::deserialize(v).map_err(|e| loc.toml_error(&e, Some((section, span))))
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Builds and checks one key's parameters (the defaults when `key` is `None`).
#[allow(clippy::too_many_arguments)]
fn resolve_key(
    loc: &Locator<'_>,
    base_dir: &Path,
    record: RecordKind,
    zone: &RawZone,
    fit: &RawFit,
    signal: &RawSignal,
    comp: &CompSpec,
    spc: &RawSpc,
    key: Option<&str>,
) -> Result<(KeyParams, Option<f64>), ConfigError> {
    let section = |s: &str| match key {
        Some(k) => format!("keys.\"{k}\".{s}"),
        None => s.to_string(),
    };
    let perr =
        |s: &str, e: ParamError| loc.key_error(&section(s), e.param, e.problem.clone(), None);

    let well = build_well(zone).map_err(|e| perr("zone", e))?;
    well.validate().map_err(|e| perr("zone", e))?;
    let scale = build_scale(loc, base_dir, zone, key)?;
    scale.validate().map_err(|e| perr("zone.scale", e))?;
    let regimes = match &zone.regimes {
        None => None,
        Some(list) => {
            let mut set = RegimeSet {
                regimes: list.clone(),
                ..RegimeSet::default()
            };
            if let Some(h) = zone.regime_half_life {
                set.long_half_life = h;
            }
            if let Some(c) = zone.regime_confirm {
                set.confirm = c;
            }
            set.validate().map_err(|e| perr("zone.regimes", e))?;
            Some(set)
        }
    };
    if !(zone.floor.is_finite() && zone.floor > 0.0) {
        return Err(perr(
            "zone",
            ParamError::new("floor", format!("must be > 0, got {}", zone.floor)),
        ));
    }

    let mut fs = FitSpec::default();
    if let Some(m) = fit.method {
        fs.method = m;
    }
    if let Some(o) = fit.order {
        fs.order = o;
    }
    if let Some(v) = fit.forgetting {
        fs.forgetting = v;
    }
    if let Some(v) = fit.p0 {
        fs.p0 = v;
    }
    if let Some(v) = fit.trace_max {
        fs.trace_max = v;
    }
    if let Some(v) = fit.leak {
        fs.leak = v;
    }
    fs.well = well;
    fs.validate().map_err(|e| perr("fit", e))?;
    let time = match fit.time {
        TimeKind::Index => TimeAxis::Index,
        TimeKind::Seconds => TimeAxis::Seconds {
            unit_s: fit.time_unit_s.unwrap_or(1.0),
        },
    };

    let mut trend = TrendSpec::default();
    let mut book = BookSpec::default();
    macro_rules! set {
        ($dst:expr, $src:expr) => {
            if let Some(v) = $src {
                $dst = v;
            }
        };
    }
    set!(trend.horizon, signal.horizon);
    set!(trend.enter, signal.enter);
    set!(trend.exit, signal.exit);
    set!(trend.saturate, signal.saturate);
    set!(trend.warmup, signal.warmup);
    set!(book.sizing, signal.sizing);
    set!(book.cost_bps, signal.cost_bps);
    set!(book.band, signal.band);
    set!(book.weight, signal.weight);
    trend.validate().map_err(|e| perr("signal", e))?;
    book.validate().map_err(|e| perr("signal", e))?;
    let cost_fraction = if signal.zone_from_costs {
        let parts = [signal.spread, signal.commission, signal.slippage];
        if parts.iter().all(Option::is_none) {
            return Err(loc.key_error(
                &section("signal"),
                "zone_from_costs",
                "needs at least one of spread, commission, slippage (fractions of price)".into(),
                Some("e.g. spread = 0.0002, commission = 0.0001".into()),
            ));
        }
        Some(parts.iter().flatten().sum::<f64>())
    } else {
        None
    };
    if let Some(p) = signal.periods_per_year {
        if !(p.is_finite() && p > 0.0) {
            return Err(perr(
                "signal",
                ParamError::new("periods_per_year", format!("must be > 0, got {p}")),
            ));
        }
    }
    comp.validate().map_err(|e| perr("compensation", e))?;

    let spc_spec = if spc.enabled && record == RecordKind::Measurement {
        let mut s = SpcSpec::default();
        s.target = spc.target;
        s.sigma = spc.sigma;
        if let Some(b) = spc.baseline {
            s.baseline = b;
        }
        if let Some(r) = &spc.rules {
            s.rules = r.clone();
        }
        s.ewma = spc.ewma;
        s.cusum = spc.cusum;
        s.validate().map_err(|e| perr("spc", e))?;
        Some(s)
    } else {
        None
    };

    let params = KeyParams {
        scale,
        regimes,
        floor: zone.floor,
        cost_fraction,
        time,
        fit: fs,
        trend,
        book,
        comp: *comp,
        spc: spc_spec,
    };
    params.check().map_err(|e| perr("fit", e))?;
    Ok((params, signal.periods_per_year))
}

fn build_well(z: &RawZone) -> Result<Well, ParamError> {
    let given: [(&'static str, Option<f64>); 6] = [
        ("softness", z.softness),
        ("depth", z.depth),
        ("sharpness", z.sharpness),
        ("width", z.width),
        ("threshold", z.threshold),
        ("knee", z.knee),
    ];
    let allowed: &[&str] = match z.well {
        WellKind::Quadratic | WellKind::DeadZone => &[],
        WellKind::SoftDeadZone => &["softness"],
        WellKind::SquareWell => &["depth", "sharpness"],
        WellKind::Gaussian | WellKind::Reciprocal | WellKind::Log => &["width"],
        WellKind::Huber => &["threshold"],
        WellKind::Hybrid => &["knee"],
    };
    for (name, v) in given {
        if v.is_some() && !allowed.contains(&name) {
            let which = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(ParamError::new(name, format!("does not apply to this well (its parameters: {which}); remove it or change `well`")));
        }
    }
    let d = |v: Option<f64>, default: f64| v.unwrap_or(default);
    Ok(match z.well {
        WellKind::Quadratic => Well::Quadratic,
        WellKind::DeadZone => Well::DeadZone,
        WellKind::SoftDeadZone => Well::SoftDeadZone {
            softness: d(z.softness, 0.1),
        },
        WellKind::SquareWell => Well::SquareWell {
            depth: d(z.depth, 1.0),
            sharpness: d(z.sharpness, 0.1),
        },
        WellKind::Gaussian => Well::Gaussian {
            scale: d(z.width, 1.0),
        },
        WellKind::Reciprocal => Well::Reciprocal {
            scale: d(z.width, 1.0),
        },
        WellKind::Log => Well::Log {
            scale: d(z.width, 1.0),
        },
        WellKind::Huber => Well::Huber {
            threshold: d(z.threshold, 1.345),
        },
        WellKind::Hybrid => Well::Hybrid {
            knee: d(z.knee, 3.0),
        },
    })
}

/// `[zone.scale]`; for `kind = "grr"` the sigma may come from a study file:
/// `study = "gauge.csv"` (relative to the config file), `method = "anova" | "range"`.
fn build_scale(
    loc: &Locator<'_>,
    base_dir: &Path,
    z: &RawZone,
    key: Option<&str>,
) -> Result<ScaleSpec, ConfigError> {
    let section = match key {
        Some(k) => format!("keys.\"{k}\".zone.scale"),
        None => "zone.scale".to_string(),
    };
    let Some(table) = &z.scale else {
        return Ok(ScaleSpec::default());
    };
    let mut t = table.clone();
    if t.get("kind").and_then(|v| v.as_str()) == Some("grr") {
        if let Some(study) = t.remove("study") {
            let method = match t.remove("method") {
                None => GrrMethod::Anova,
                Some(m) => GrrMethod::deserialize(m).map_err(|e| {
                    loc.key_error(
                        &section,
                        "method",
                        e.message().to_string(),
                        Some("use \"anova\" or \"range\"".into()),
                    )
                })?,
            };
            let Some(study) = study.as_str() else {
                return Err(loc.key_error(&section, "study", "must be a path string".into(), None));
            };
            if t.contains_key("sigma") {
                return Err(loc.key_error(
                    &section,
                    "sigma",
                    "is given together with `study`".into(),
                    Some("keep one: sigma = <sigma_GRR> or study = \"file.csv\"".into()),
                ));
            }
            let p = base_dir.join(study);
            let sigma = crate::run::grr::sigma_from_study(&p, method).map_err(|e| {
                loc.key_error(
                    &section,
                    "study",
                    format!("{e}"),
                    Some("fix the study file, or give sigma directly".into()),
                )
            })?;
            t.insert("sigma".into(), toml::Value::Float(sigma));
        }
    }
    ScaleSpec::deserialize(toml::Value::Table(t)).map_err(|e| {
        let (msg, help) = explain(e.message());
        let key_in_msg = backticked(&msg);
        match key_in_msg {
            Some(k) => loc.key_error(&section, &k, msg, help),
            None => loc.key_error(&section, "kind", msg, help),
        }
    })
}

/// Turns positions in the source into line:col and finds keys inside tables.
struct Locator<'a> {
    src: &'a str,
    file: &'a str,
}

impl Locator<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    fn at(&self, span: Range<usize>, message: String, help: Option<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            at: Some(self.line_col(span.start)),
            message,
            help,
        }
    }

    /// An error from the TOML parser or from deserialising a (merged) table.
    fn toml_error(&self, e: &toml::de::Error, ctx: Option<(String, Range<usize>)>) -> ConfigError {
        let (msg, help) = explain(e.message());
        match (e.span(), ctx) {
            (Some(span), None) => self.at(span, msg, help),
            (_, Some((section, span))) => {
                // Inside a merged table the parser's span is lost: find the key named in the
                // message within the table, else point at the table.
                let pos = backticked(&msg)
                    .and_then(|k| self.find_key_in(span.clone(), &k))
                    .unwrap_or(span.start);
                self.at(pos..pos, format!("{section}: {msg}"), help)
            }
            (None, None) => ConfigError {
                file: self.file.to_string(),
                at: None,
                message: msg,
                help,
            },
        }
    }

    /// An out-of-range value: points at `key = ...` in `[section]` (or at the section).
    fn key_error(
        &self,
        section: &str,
        key: &str,
        problem: String,
        help: Option<String>,
    ) -> ConfigError {
        let pos = self.find_key(section, key);
        let message = format!("[{section}] `{key}` {problem}");
        ConfigError {
            file: self.file.to_string(),
            at: pos.map(|p| self.line_col(p)),
            message,
            help,
        }
    }

    /// Byte offset of `key =` inside the table `[section]` (or `[a.b]` written as dotted keys
    /// `b.key` under `[a]`), if it is written there.
    fn find_key(&self, section: &str, key: &str) -> Option<usize> {
        let headers = [format!("[{section}]"), format!("[[{section}]]")];
        let mut offset = 0;
        let mut in_section = false;
        let mut section_start = None;
        for line in self.src.split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with('[') {
                let h = t.split('#').next().unwrap_or("").trim();
                in_section = headers.iter().any(|x| x == h);
                if in_section && section_start.is_none() {
                    section_start = Some(offset + (line.len() - t.len()));
                }
            } else if in_section && line_sets_key(t, key) {
                return Some(offset + (line.len() - t.len()));
            }
            offset += line.len();
        }
        section_start
    }

    fn find_key_in(&self, span: Range<usize>, key: &str) -> Option<usize> {
        let text = self.src.get(span.clone())?;
        let mut offset = span.start;
        for line in text.split_inclusive('\n') {
            let t = line.trim_start();
            if line_sets_key(t, key) {
                return Some(offset + (line.len() - t.len()));
            }
            offset += line.len();
        }
        None
    }
}

fn line_sets_key(trimmed: &str, key: &str) -> bool {
    let Some(rest) = trimmed.strip_prefix(key) else {
        return false;
    };
    rest.trim_start().starts_with('=')
}

/// First `name` in backticks in a serde message.
fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_string())
}

/// Adds the fix to serde's messages: for an unknown key or variant, the closest valid name.
fn explain(msg: &str) -> (String, Option<String>) {
    let msg = msg.trim().to_string();
    let unknown = msg.starts_with("unknown field") || msg.starts_with("unknown variant");
    if unknown {
        if let (Some(bad), Some(exp)) = (backticked(&msg), msg.find("expected")) {
            let names: Vec<String> = msg[exp..]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            let best = names
                .iter()
                .map(|n| (strsim::jaro_winkler(&bad, n), n))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|(s, _)| *s > 0.7);
            let help = match best {
                Some((_, n)) => format!("did you mean `{n}`? valid here: {}", names.join(", ")),
                None => format!("valid here: {}", names.join(", ")),
            };
            return (msg, Some(help));
        }
    }
    if msg.starts_with("missing field") {
        return (msg, Some("add it to this table".into()));
    }
    (msg, None)
}
