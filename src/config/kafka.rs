//! The daemon's settings: `[kafka]` client properties and their `${NAME}` environment
//! references, `[metrics]`, the default topic names, and the checks that a Kafka run names
//! everything it needs.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Locator};
use super::schema::{InputConfig, InputKind, OutputConfig, OutputKind};

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
    /// Key groups (the key's prefix before its first `.`) with their own zone-health series;
    /// later groups count under `group="other"`. 1..=10000.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_listen(),
            max_groups: default_max_groups(),
        }
    }
}

fn default_max_groups() -> usize {
    crate::metrics::zone::DEFAULT_MAX_GROUPS
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

/// The changelog topic when `[output] changelog_topic` is not given.
pub fn default_changelog_topic(group: &str) -> String {
    format!("{group}-state")
}

/// The dead-letter topic when `[output] dlq_topic` is not given; mirrors the changelog
/// default.
pub fn default_dlq_topic(group: &str) -> String {
    format!("{group}-dlq")
}

/// Expands `${NAME}` references with `lookup`; `$` not followed by `{` is kept as is.
/// Returns the name of the first variable that `lookup` does not know.
pub fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            // An unterminated reference is kept literally.
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&lookup(name).ok_or_else(|| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Kafka input and Kafka output go together (the daemon), and each needs its names.
pub(super) fn check_kafka(
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
    if !(1..=10_000).contains(&metrics.max_groups) {
        return Err(loc.key_error(
            "metrics",
            "max_groups",
            format!("is {}; it must be 1..=10000", metrics.max_groups),
            Some("each group is a set of series kept for the life of the process: keep it small, e.g. max_groups = 100".into()),
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
    let topics: Vec<&String> = input
        .topic
        .iter()
        .chain(input.topics.iter().flatten())
        .collect();
    if topics.len() > 1 {
        // Each input partition keeps its state in the changelog partition of the same number,
        // with its resume position under one marker key: two topics would share both, mixing
        // keys of the same name and overwriting each other's position.
        let key = if input.topics.is_some() {
            "topics"
        } else {
            "topic"
        };
        return Err(loc.key_error(
            "input",
            key,
            format!(
                "reads {} topics; a daemon reads one (their partitions would share changelog \
                 partitions, keys of the same name and event ids)",
                topics.len()
            ),
            Some(format!(
                "run one daemon per topic, each with its own group, e.g. topic = \"{}\"",
                topics[0]
            )),
        ));
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
    check_dlq(loc, input, output)?;
    check_intervals(loc, kafka)?;
    let pairs = kafka.property_pairs().map_err(|name| {
        loc.key_error(
            "kafka.properties",
            name.rsplit('.').next().unwrap_or(&name),
            format!("`{name}` must be a string, number or boolean"),
            None,
        )
    })?;
    for (name, value) in &pairs {
        if let Err(var) = expand_env(value, |v| std::env::var(v).ok()) {
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

/// The dead-letter topic must be none the daemon reads or writes otherwise: as an input topic
/// each bad record would come back, be refused and be copied again, for ever; as the events or
/// changelog topic it would mix raw records into them.
fn check_dlq(
    loc: &Locator<'_>,
    input: &InputConfig,
    output: &OutputConfig,
) -> Result<(), ConfigError> {
    let group = input.group.as_deref().unwrap_or_default();
    let dlq = output
        .dlq_topic
        .clone()
        .unwrap_or_else(|| default_dlq_topic(group));
    let changelog = output
        .changelog_topic
        .clone()
        .unwrap_or_else(|| default_changelog_topic(group));
    let inputs = input.topic.iter().chain(input.topics.iter().flatten());
    let clash = if inputs.clone().any(|t| *t == dlq) {
        Some(
            "an input topic: each bad record would be read back and dead-lettered again, in a loop",
        )
    } else if output.topic.as_deref() == Some(dlq.as_str()) {
        Some("the events topic: raw bad records would be mixed into the events")
    } else if changelog == dlq {
        Some("the changelog topic: raw bad records would be restored as state")
    } else {
        None
    };
    let own = match default_dlq_topic(group) {
        d if d == dlq => format!("{group}-dead-letters"),
        d => d,
    };
    match clash {
        Some(why) => Err(loc.key_error(
            "output",
            "dlq_topic",
            match output.dlq_topic {
                Some(_) => format!("`{dlq}` is also {why}"),
                None => format!("`{dlq}` (the default for group `{group}`) is also {why}"),
            },
            Some(format!(
                "give the dead letters their own topic, e.g. dlq_topic = \"{own}\""
            )),
        )),
        None => Ok(()),
    }
}

/// The longest checkpoint interval and shutdown timeout: one day. Larger values would overflow
/// `Instant` arithmetic in the daemon (a panic at the first revoke) and are never meant.
pub const MAX_CHECKPOINT_INTERVAL_MS: u64 = 86_400_000;
pub const MAX_SHUTDOWN_TIMEOUT_S: u64 = 86_400;

/// `[kafka]` durations: at least 1 ms between checkpoints, at most a day for either.
fn check_intervals(loc: &Locator<'_>, kafka: &KafkaConfig) -> Result<(), ConfigError> {
    let ms = kafka.checkpoint_interval_ms;
    if ms == 0 || ms > MAX_CHECKPOINT_INTERVAL_MS {
        return Err(loc.key_error(
            "kafka",
            "checkpoint_interval_ms",
            format!(
                "must be at least 1 and at most {MAX_CHECKPOINT_INTERVAL_MS} (one day), got {ms}"
            ),
            Some("1000 (one second) is a good start".into()),
        ));
    }
    let s = kafka.shutdown_timeout_s;
    if s > MAX_SHUTDOWN_TIMEOUT_S {
        return Err(loc.key_error(
            "kafka",
            "shutdown_timeout_s",
            format!("must be at most {MAX_SHUTDOWN_TIMEOUT_S} (one day), got {s}"),
            Some("30 (seconds) is the default; raise it only as far as a shutdown may take".into()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        let env = |n: &str| (n == "USER").then(|| "alice".to_string());
        assert_eq!(expand_env("u=${USER}!", env).unwrap(), "u=alice!");
        assert_eq!(
            expand_env("$USER ${USER}${USER}", env).unwrap(),
            "$USER alicealice"
        );
        assert_eq!(expand_env("${NOPE}", env).unwrap_err(), "NOPE");
        assert_eq!(expand_env("${open", env).unwrap(), "${open");
    }
}
