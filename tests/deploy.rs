//! deploy/ against the code it deploys:
//! (a) every metric the Grafana dashboard queries is one the daemon serves, with the label
//!     values the queries match on (the names are read from the dashboard JSON and from the
//!     exposition text of a `Metrics` that recorded one of everything);
//! (b) every TOML in deploy/ and config/, and the TOML inside the Kubernetes ConfigMaps, loads
//!     with the loader `deadband validate` uses.
//! scripts/deploy-check.sh checks the rest of deploy/ with external tools.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use deadband::metrics::Metrics;
use deadband::record::{EventKind, Invalid, Reject};
use deadband::run::grr::StudyFiles;

const DASHBOARD: &str = "deploy/grafana/dashboards/deadband.json";

// ---------------------------------------------------------------------------------------------
// What the daemon serves
// ---------------------------------------------------------------------------------------------

/// The exposition text, reduced to what a query can name: each sample name with the label sets
/// it was seen with, and each family's `# TYPE`.
#[derive(Debug, Default)]
struct Served {
    samples: BTreeMap<String, Vec<BTreeMap<String, String>>>,
    types: BTreeMap<String, String>,
}

impl Served {
    fn parse(text: &str) -> Served {
        let mut served = Served::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    panic!("malformed TYPE line: {line}");
                };
                served.types.insert(name.to_owned(), kind.to_owned());
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            } else {
                let (name, labels) = parse_sample(line);
                served.samples.entry(name).or_default().push(labels);
            }
        }
        served
    }

    /// Whether a query may name `name`: a sample name the daemon writes, or a histogram's (or
    /// summary's) `_bucket` / `_count` / `_sum` child of a family it declares. A `_bucket` must
    /// belong to a histogram whatever else is served.
    fn serves(&self, name: &str) -> bool {
        if let Some(base) = name.strip_suffix("_bucket") {
            return self.types.get(base).map(String::as_str) == Some("histogram");
        }
        if self.samples.contains_key(name) {
            return true;
        }
        ["_count", "_sum"].iter().any(|suffix| {
            name.strip_suffix(suffix).is_some_and(|base| {
                matches!(
                    self.types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                )
            })
        })
    }

    /// The label sets of the samples a query of `name` selects (a histogram's buckets for
    /// `_bucket`).
    fn label_sets(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples.get(name).into_iter().flatten().collect()
    }
}

/// Splits a sample line `name{a="x",b="y"} value` into its name and labels.
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>) {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..end].to_owned();
    let mut labels = BTreeMap::new();
    if line[end..].starts_with('{') {
        let mut chars = line[end + 1..].chars().peekable();
        loop {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            let key = key.trim_start_matches(',').trim().to_owned();
            assert_eq!(chars.next(), Some('"'), "label value not quoted in: {line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().unwrap_or('\\')),
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            match chars.peek() {
                Some(',') => {
                    chars.next();
                    if chars.peek() == Some(&'}') {
                        break;
                    }
                }
                Some('}') => break,
                other => panic!("unexpected {other:?} after a label in: {line}"),
            }
        }
    }
    (name, labels)
}

/// A `Metrics` that recorded one of everything, rendered: every family the daemon can serve
/// has a sample in it.
fn served_by_daemon() -> Served {
    let m = Metrics::new();
    m.record_in(Ok(()));
    m.record_in(Err(Reject::Invalid(Invalid::NotFinite)));
    m.record_in(Err(Reject::OutOfOrder));
    m.record_in(Err(Reject::Duplicate));
    for kind in EventKind::ALL {
        m.event_out(kind);
    }
    m.dlq("not_finite");
    m.set_lag("bars", 0, 12);
    m.set_lag("bars", 1, 0);
    m.set_keys(3);
    m.checkpoint(Duration::from_millis(4));
    m.latency(Duration::from_micros(25));
    m.set_ready(true);
    m.zone_record("SYM000", true, false, 0);
    m.zone_record("press3", false, true, 2);
    m.zone_event("press3", EventKind::ToolCompensation);
    m.zone_event("press3", EventKind::SpcAlarm);
    Served::parse(&m.render())
}

// ---------------------------------------------------------------------------------------------
// What the dashboard queries
// ---------------------------------------------------------------------------------------------

/// Every query string of a dashboard: panel targets' `expr` and template variables' `query`
/// (a string, or an object with a `query` string), wherever they are nested.
fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                        ("query", serde_json::Value::String(s)) if s.contains('(') => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// One metric named in a query, with the label matchers of its selector (`{a="x", b=~"$v"}`)
/// as (label, operator, value).
#[derive(Debug, Clone, PartialEq)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

/// The `deadband_*` metrics a PromQL expression names, with their matchers.
fn selectors(expr: &str) -> Vec<Selector> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = expr[from..].find("deadband_") {
        let start = from + i;
        let before = expr[..start].chars().next_back();
        let len = expr[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(expr.len() - start);
        from = start + len;
        if before.is_some_and(is_ident) {
            continue;
        }
        let metric = expr[start..from].to_owned();
        let mut matchers = Vec::new();
        if expr[from..].starts_with('{') {
            let close = expr[from..]
                .find('}')
                .unwrap_or_else(|| panic!("unclosed selector in: {expr}"));
            for m in expr[from + 1..from + close].split(',') {
                let m = m.trim();
                if m.is_empty() {
                    continue;
                }
                let op_at = m
                    .find(['=', '!'])
                    .unwrap_or_else(|| panic!("bad matcher {m}"));
                let op_len = if m[op_at + 1..].starts_with(['=', '~']) {
                    2
                } else {
                    1
                };
                let value = m[op_at + op_len..].trim().trim_matches('"');
                matchers.push((
                    m[..op_at].trim().to_owned(),
                    m[op_at..op_at + op_len].to_owned(),
                    value.to_owned(),
                ));
            }
            from += close + 1;
        }
        out.push(Selector { metric, matchers });
    }
    out
}

/// Labels that Prometheus adds to every scraped series; a dashboard may match on them although
/// the daemon never writes them.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// What is wrong with `queries` against `served`: metrics it does not serve, label names its
/// samples never carry, and exact (`=`) label values none of its samples has.
fn problems(queries: &[String], served: &Served) -> Vec<String> {
    let mut out = Vec::new();
    for q in queries {
        for s in selectors(q) {
            if !served.serves(&s.metric) {
                out.push(format!("`{}` is not served (in `{q}`)", s.metric));
                continue;
            }
            let sets = served.label_sets(&s.metric);
            for (label, op, value) in &s.matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                if !sets.iter().any(|l| l.contains_key(label)) {
                    out.push(format!("`{}` has no label `{label}` (in `{q}`)", s.metric));
                } else if op == "=" && !sets.iter().any(|l| l.get(label) == Some(value)) {
                    out.push(format!(
                        "`{}` never has {label}=\"{value}\" (in `{q}`)",
                        s.metric
                    ));
                }
            }
        }
    }
    out
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

#[test]
fn dashboard_queries_only_metrics_the_daemon_serves() {
    let served = served_by_daemon();
    let queries = queries(&dashboard());
    let named: BTreeSet<String> = queries
        .iter()
        .flat_map(|q| selectors(q))
        .map(|s| s.metric)
        .collect();
    // Not vacuous: the dashboard's panels (throughput, lag, DLQ, latency, keys, checkpoints and
    // the zone's health) name at least these.
    for must in [
        "deadband_records_in_total",
        "deadband_consumer_lag",
        "deadband_dlq_total",
        "deadband_record_latency_seconds",
        "deadband_keys_in_state",
        "deadband_checkpoint_duration_seconds_bucket",
        "deadband_zone_records_total",
        "deadband_zone_updates_total",
        "deadband_zone_regime",
        "deadband_zone_compensations_total",
        "deadband_zone_spc_alarms_total",
    ] {
        assert!(named.contains(must), "the dashboard has no query of {must}");
    }
    let problems = problems(&queries, &served);
    assert!(
        problems.is_empty(),
        "{DASHBOARD} queries what the daemon does not serve:\n  {}\nserved: {:?}",
        problems.join("\n  "),
        served.samples.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_dashboard_check_catches_renamed_metrics_and_labels() {
    let served = served_by_daemon();
    let bad = |q: &str| problems(&[q.to_owned()], &served);
    assert!(bad("rate(deadband_records_in_total[1m])").is_empty());
    assert!(
        bad("histogram_quantile(0.9, rate(deadband_checkpoint_duration_seconds_bucket[1m]))")
            .is_empty()
    );
    assert!(bad(r#"deadband_zone_records_total{zone="inside", instance=~"$i"}"#).is_empty());
    // A renamed metric, a counter without its _total, buckets of a non-histogram, a label the
    // family lacks, and a label value it never has.
    assert_eq!(bad("rate(deadband_records_total[1m])").len(), 1);
    assert_eq!(bad("deadband_dlq").len(), 1);
    assert_eq!(bad("deadband_record_latency_seconds_bucket").len(), 1);
    assert_eq!(bad(r#"deadband_zone_regime{zone="inside"}"#).len(), 1);
    assert_eq!(
        bad(r#"deadband_record_latency_seconds{quantile="0.95"}"#).len(),
        1
    );
    assert_eq!(
        selectors(r#"a(deadband_x{k="v", j=~"$w"}) / mydeadband_y"#),
        vec![Selector {
            metric: "deadband_x".into(),
            matchers: vec![
                ("k".into(), "=".into(), "v".into()),
                ("j".into(), "=~".into(), "$w".into())
            ],
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

fn files_under(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ext.contains(&e))
        {
            out.push(path);
        }
    }
}

/// The block scalars of `*.toml` keys in a YAML manifest (`  name.toml: |` followed by lines
/// indented deeper), with their common indentation removed. Enough for our ConfigMaps; not a
/// YAML parser.
fn embedded_tomls(yaml: &str) -> Vec<(String, String)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let Some((key, style)) = trimmed.split_once(':') else {
            continue;
        };
        if !key.ends_with(".toml") || !matches!(style.trim(), "|" | "|-" | "|+") {
            continue;
        }
        let key_indent = indent(line);
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > key_indent)
            .copied()
            .collect();
        let depth = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent(l))
            .min()
            .unwrap_or(0);
        let text: Vec<&str> = body
            .iter()
            .map(|l| if l.len() >= depth { &l[depth..] } else { "" })
            .collect();
        out.push((key.to_owned(), text.join("\n") + "\n"));
    }
    out
}

#[test]
fn every_deploy_and_config_toml_loads() {
    // The daemon configs read SASL credentials as ${KAFKA_USER} / ${KAFKA_PASSWORD}, which the
    // loader requires to be set; deploy-check.sh sets the same placeholders.
    for var in ["KAFKA_USER", "KAFKA_PASSWORD"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "deploy-test");
        }
    }
    let mut tomls = Vec::new();
    files_under(Path::new("config"), &["toml"], &mut tomls);
    files_under(Path::new("deploy"), &["toml"], &mut tomls);
    tomls.sort();
    for path in &tomls {
        // As `deadband validate` reads it.
        deadband::config::load_with(path, &StudyFiles)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(
        tomls.len() >= 4,
        "expected config/*.toml and deploy/compose/deadband.toml, found {tomls:?}"
    );

    let mut manifests = Vec::new();
    files_under(Path::new("deploy/k8s"), &["yaml", "yml"], &mut manifests);
    let mut embedded = Vec::new();
    for path in &manifests {
        let yaml = std::fs::read_to_string(path).unwrap();
        for (key, text) in embedded_tomls(&yaml) {
            let name = path.join(&key);
            deadband::config::parse_with(&text, &name, &StudyFiles)
                .unwrap_or_else(|e| panic!("{}#{key}: {e}", path.display()));
            embedded.push(name);
        }
    }
    let names: Vec<String> = embedded.iter().map(|p| p.display().to_string()).collect();
    for must in [
        "daemon/configmap.yaml/deadband.toml",
        "backtest/configmap.yaml/backtest.toml",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(must)),
            "no {must} among the ConfigMaps' TOML: {names:?}"
        );
    }
}

#[test]
fn embedded_toml_is_cut_at_the_end_of_its_block() {
    let yaml = "data:\n  a.toml: |\n    [x]\n      y = 1\n\n    z = 2\n  other: 3\n";
    assert_eq!(
        embedded_tomls(yaml),
        vec![("a.toml".to_owned(), "[x]\n  y = 1\n\nz = 2\n".to_owned())]
    );
}
