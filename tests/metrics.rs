//! Tests of the daemon's metrics: the exposition passes a strict text-format parser and holds
//! exactly what was recorded, latency quantiles agree with nearest-rank quantiles of the input,
//! instances are independent, and the HTTP endpoints answer, report readiness and stop.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use deadband::io::http::serve;
use deadband::metrics::Metrics;
use deadband::record::{EventKind, Invalid, Reject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// A strict parser for the Prometheus text exposition format (version 0.0.4).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug)]
struct Family {
    kind: Option<String>,
    help: Option<String>,
    samples: Vec<Sample>,
}

#[derive(Debug, Default)]
struct Exposition {
    families: BTreeMap<String, Family>,
}

impl Exposition {
    fn kind(&self, family: &str) -> Option<&str> {
        self.families.get(family)?.kind.as_deref()
    }

    fn help(&self, family: &str) -> Option<&str> {
        self.families.get(family)?.help.as_deref()
    }

    /// The value of the sample `name` whose label set is exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// All samples named `name`, as (labels, value).
    fn series(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == name)
            .map(|s| (s.labels.clone(), s.value))
            .collect()
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// `NaN`, `+Inf`, `-Inf`, or a decimal float such as `-1.5e-3`.
fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => return Ok(f64::NAN),
        "+Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return Err(format!("bad value {s:?}"));
    }
    s.parse::<f64>()
        .map_err(|e| format!("bad value {s:?}: {e}"))
}

/// Reads a quoted label value starting after the opening quote; returns it and the rest after
/// the closing quote. Only `\\`, `\"` and `\n` are valid escapes.
fn parse_label_value(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                other => return Err(format!("bad escape \\{other:?} in label value")),
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let name = &s[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let rest = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let (value, rest) = parse_label_value(rest)?;
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} given twice"));
        }
        s = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.starts_with('}') => rest,
            None => return Err(format!("expected ',' or '}}' after label {name}")),
        };
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ', '\t']).ok_or("sample without value")?;
    let name = &line[..end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let (labels, rest) = match line[end..].strip_prefix('{') {
        Some(r) => parse_labels(r)?,
        None => (BTreeMap::new(), &line[end..]),
    };
    if !rest.starts_with([' ', '\t']) {
        return Err("no blank between series and value".into());
    }
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value = parse_value(fields.next().ok_or("missing value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The family a sample belongs to: its own typed name, or for `_bucket`, `_sum`, `_count` the
/// histogram or summary it extends. Exactly one must fit.
fn family_of(exp: &Exposition, sample: &str) -> Result<String, String> {
    let own = exp
        .kind(sample)
        .filter(|k| !matches!(*k, "histogram"))
        .map(|_| sample.to_string());
    let mut base = None;
    for (suffix, kinds) in [
        ("_bucket", &["histogram"][..]),
        ("_sum", &["histogram", "summary"][..]),
        ("_count", &["histogram", "summary"][..]),
    ] {
        if let Some(b) = sample.strip_suffix(suffix) {
            if exp.kind(b).is_some_and(|k| kinds.contains(&k)) {
                base = Some(b.to_string());
            }
        }
    }
    match (own, base) {
        (Some(o), None) => Ok(o),
        (None, Some(b)) => Ok(b),
        (Some(_), Some(_)) => Err(format!("{sample} is ambiguous")),
        (None, None) => Err(format!("{sample} has no TYPE line before it")),
    }
}

/// Type-specific rules once every line is read.
fn check_family(name: &str, f: &Family) -> Result<(), String> {
    match f.kind.as_deref() {
        Some("counter") => {
            for s in &f.samples {
                if s.value.is_nan() || s.value < 0.0 {
                    return Err(format!("counter {name} has value {}", s.value));
                }
            }
        }
        Some("histogram") => {
            // Per label set without `le`: buckets cumulative, +Inf present and equal to _count.
            type Labels = Vec<(String, String)>;
            // (le, cumulative count) per label set
            let mut buckets: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            let mut counts = BTreeMap::new();
            for s in &f.samples {
                let mut rest = s.labels.clone();
                if s.name.ends_with("_bucket") {
                    let le = rest.remove("le").ok_or("bucket without le")?;
                    let le = parse_value(&le)?;
                    buckets
                        .entry(rest.into_iter().collect())
                        .or_default()
                        .push((le, s.value));
                } else if s.name.ends_with("_count") {
                    counts.insert(rest.into_iter().collect::<Vec<_>>(), s.value);
                }
            }
            for (labels, mut bs) in buckets {
                bs.sort_by(|a, b| a.0.total_cmp(&b.0));
                if bs.windows(2).any(|w| w[1].1 < w[0].1) {
                    return Err(format!("{name} buckets are not cumulative"));
                }
                let last = bs.last().expect("at least one bucket");
                if last.0 != f64::INFINITY || counts.get(&labels) != Some(&last.1) {
                    return Err(format!(
                        "{name}: +Inf bucket missing or differs from _count"
                    ));
                }
            }
        }
        Some(_) => {}
        None => return Err(format!("{name} has no TYPE")),
    }
    Ok(())
}

fn parse(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    if text.is_empty() {
        return Ok(exp);
    }
    let body = text
        .strip_suffix('\n')
        .ok_or("the last line does not end with a newline")?;
    let mut current: Option<String> = None;
    let mut closed: HashSet<String> = HashSet::new();
    let mut seen: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    for (n, line) in body.split('\n').enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start_matches([' ', '\t']).splitn(3, ' ');
            let keyword = parts.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // a plain comment
            }
            let name = parts.next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let rest = parts.next().unwrap_or("");
            if closed.contains(name) {
                return Err(at(format!("{keyword} after the samples of {name}")));
            }
            let family = exp
                .families
                .entry(name.to_string())
                .or_insert_with(|| Family {
                    kind: None,
                    help: None,
                    samples: vec![],
                });
            if keyword == "HELP" {
                let mut help = String::new();
                let mut chars = rest.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('\\') => help.push('\\'),
                            Some('n') => help.push('\n'),
                            other => return Err(at(format!("bad escape \\{other:?} in HELP"))),
                        },
                        c => help.push(c),
                    }
                }
                if family.help.replace(help).is_some() {
                    return Err(at("second HELP".into()));
                }
            } else {
                if !matches!(
                    rest,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(at(format!("unknown type {rest:?}")));
                }
                if !family.samples.is_empty() || family.kind.is_some() {
                    return Err(at("TYPE after samples or twice".into()));
                }
                family.kind = Some(rest.to_string());
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&exp, &sample.name).map_err(at)?;
        if current.as_deref() != Some(family.as_str()) {
            if closed.contains(&family) {
                return Err(at(format!("samples of {family} are not in one group")));
            }
            if let Some(previous) = current.replace(family.clone()) {
                closed.insert(previous);
            }
        }
        if !seen.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at("the same series twice".into()));
        }
        exp.families
            .get_mut(&family)
            .expect("family_of found it")
            .samples
            .push(sample);
    }
    for (name, family) in &exp.families {
        check_family(name, family)?;
    }
    Ok(exp)
}

fn parse_ok(text: &str) -> Exposition {
    parse(text).unwrap_or_else(|e| panic!("exposition does not parse: {e}\n---\n{text}---"))
}

// The parser must reject what it is there to catch, or the tests below prove nothing.
#[test]
fn parser_accepts_valid_text_and_rejects_malformed_text() {
    let good = "# a comment\n\
        # HELP x_total Things, with a \\\\ and a\\nnewline.\n\
        # TYPE x_total counter\n\
        x_total{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"line\\nfeed\",} 3 1700000000000\n\
        x_total 0\n\
        \n\
        # TYPE g gauge\n\
        g NaN\n\
        g{k=\"v\"} -1.5e-3\n\
        # TYPE h histogram\n\
        h_bucket{le=\"0.5\"} 1\n\
        h_bucket{le=\"+Inf\"} 2\n\
        h_sum 1.25\n\
        h_count 2\n\
        # TYPE s summary\n\
        s{quantile=\"0.5\"} .5\n\
        s_sum 3\n\
        s_count 4\n";
    let exp = parse_ok(good);
    assert_eq!(
        exp.help("x_total"),
        Some("Things, with a \\ and a\nnewline.")
    );
    assert_eq!(
        exp.value(
            "x_total",
            &[("a", "q\"uote"), ("b", "back\\slash"), ("c", "line\nfeed")]
        ),
        Some(3.0)
    );
    assert!(exp.value("g", &[]).unwrap().is_nan());
    assert_eq!(exp.value("g", &[("k", "v")]), Some(-1.5e-3));
    assert_eq!(exp.value("h_count", &[]), Some(2.0));
    assert_eq!(exp.value("s", &[("quantile", "0.5")]), Some(0.5));

    let bad = [
        ("# TYPE a gauge\na 1", "no final newline"),
        ("a 1\n", "no TYPE"),
        ("# TYPE a gauge\na inf\n", "Rust's infinity spelling"),
        ("# TYPE a gauge\na 1x\n", "garbage value"),
        ("# TYPE a gauge\na\n", "missing value"),
        ("# TYPE a gauge\na{k=\"v\\t\"} 1\n", "unknown escape"),
        ("# TYPE a gauge\na{k=\"v} 1\n", "unterminated value"),
        ("# TYPE a gauge\na{k=v} 1\n", "unquoted value"),
        ("# TYPE a gauge\na{k=\"1\",k=\"2\"} 1\n", "label twice"),
        ("# TYPE a gauge\na{1k=\"v\"} 1\n", "bad label name"),
        ("# TYPE a gauge\na 1\na 2\n", "duplicate series"),
        ("# TYPE a gauge\n# TYPE a gauge\na 1\n", "TYPE twice"),
        (
            "# TYPE a gauge\na 1\n# TYPE a gauge\n",
            "TYPE after samples",
        ),
        ("# TYPE a nonsense\na 1\n", "unknown type"),
        (
            "# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n",
            "HELP twice",
        ),
        (
            "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{k=\"v\"} 2\n",
            "split group",
        ),
        ("# TYPE a counter\na -1\n", "negative counter"),
        ("# TYPE a gauge\na 1 2 3\n", "extra fields"),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
            "buckets decrease",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
            "no +Inf bucket",
        ),
        (
            "# TYPE h histogram\nh 1\n",
            "histogram sample without suffix",
        ),
    ];
    for (text, why) in bad {
        assert!(parse(text).is_err(), "accepted ({why}): {text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Exposition content.
// ---------------------------------------------------------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn assert_series(exp: &Exposition, name: &str, want: &[(&[(&str, &str)], f64)]) {
    let got: BTreeMap<_, _> = exp
        .series(name)
        .into_iter()
        .map(|(l, v)| (l, v.to_bits()))
        .collect();
    let want: BTreeMap<_, _> = want.iter().map(|(l, v)| (labels(l), v.to_bits())).collect();
    assert_eq!(got, want, "series of {name}");
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

#[test]
fn exposition_holds_exactly_what_was_recorded() {
    let m = Metrics::new();
    for _ in 0..7 {
        m.record_in(Ok(()));
    }
    m.record_in(Err(Reject::Invalid(Invalid::NotFinite)));
    m.record_in(Err(Reject::Invalid(Invalid::NotFinite)));
    m.record_in(Err(Reject::Invalid(Invalid::Malformed)));
    m.record_in(Err(Reject::OutOfOrder));
    m.record_in(Err(Reject::Duplicate));
    m.record_in(Err(Reject::Duplicate));
    for _ in 0..3 {
        m.event_out(EventKind::Trend);
    }
    m.event_out(EventKind::Rebalance);
    m.dlq("decode");
    m.dlq("not_finite");
    m.dlq("not_finite");
    m.set_lag("bars", 0, 42);
    m.set_lag("bars", 7, 1_000_000);
    m.set_lag("bars", 0, 40); // a later value replaces the earlier one
    m.set_keys(12);
    let checkpoints = [0.002, 0.03, 2.0];
    for s in checkpoints {
        m.checkpoint(Duration::from_secs_f64(s));
    }
    m.set_ready(true);

    let text = m.render();
    let exp = parse_ok(&text);

    for (family, kind) in [
        ("deadband_records_in_total", "counter"),
        ("deadband_events_out_total", "counter"),
        ("deadband_dlq_total", "counter"),
        ("deadband_consumer_lag", "gauge"),
        ("deadband_keys_in_state", "gauge"),
        ("deadband_checkpoints_total", "counter"),
        ("deadband_checkpoint_duration_seconds", "histogram"),
        ("deadband_record_latency_seconds", "gauge"),
        ("deadband_record_latency_seconds_count", "counter"),
        ("deadband_record_latency_seconds_sum", "gauge"),
        ("deadband_ready", "gauge"),
    ] {
        assert_eq!(exp.kind(family), Some(kind), "TYPE of {family}\n{text}");
        assert!(
            exp.help(family).is_some_and(|h| !h.is_empty()),
            "HELP of {family}"
        );
    }
    assert_eq!(exp.families.len(), 11, "no other families:\n{text}");

    assert_series(
        &exp,
        "deadband_records_in_total",
        &[
            (&[("result", "ok")], 7.0),
            (&[("result", "invalid")], 0.0),
            (&[("result", "invalid"), ("reason", "not_finite")], 2.0),
            (&[("result", "invalid"), ("reason", "malformed_json")], 1.0),
            (&[("result", "out_of_order")], 1.0),
            (&[("result", "duplicate")], 2.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_events_out_total",
        &[
            (&[("kind", "trend")], 3.0),
            (&[("kind", "rebalance")], 1.0),
            (&[("kind", "tool_compensation")], 0.0),
            (&[("kind", "spc_alarm")], 0.0),
            (&[("kind", "tool_change")], 0.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_dlq_total",
        &[
            (&[("reason", "decode")], 1.0),
            (&[("reason", "not_finite")], 2.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_consumer_lag",
        &[
            (&[("topic", "bars"), ("partition", "0")], 40.0),
            (&[("topic", "bars"), ("partition", "7")], 1e6),
        ],
    );
    assert_series(&exp, "deadband_keys_in_state", &[(&[], 12.0)]);
    assert_series(&exp, "deadband_ready", &[(&[], 1.0)]);
    assert_series(&exp, "deadband_checkpoints_total", &[(&[], 3.0)]);

    // Checkpoint histogram: every bucket counts the durations at or below its bound.
    let name = "deadband_checkpoint_duration_seconds";
    assert_eq!(exp.value(&format!("{name}_count"), &[]), Some(3.0));
    let sum = exp.value(&format!("{name}_sum"), &[]).unwrap();
    assert!(close(sum, 2.032, 1e-12), "sum {sum}");
    let buckets = exp.series(&format!("{name}_bucket"));
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf");
    for (l, count) in buckets {
        let le = parse_value(&l["le"]).unwrap();
        let want = checkpoints.iter().filter(|&&s| s <= le).count() as f64;
        assert_eq!(count, want, "bucket le={le}");
    }

    // Nothing timed yet: quantiles are NaN, totals zero.
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        let v = exp.value("deadband_record_latency_seconds", &[("quantile", q)]);
        assert!(v.is_some_and(f64::is_nan), "quantile {q}: {v:?}");
    }
    assert_eq!(
        exp.value("deadband_record_latency_seconds_count", &[]),
        Some(0.0)
    );
    assert_eq!(
        exp.value("deadband_record_latency_seconds_sum", &[]),
        Some(0.0)
    );
}

#[test]
fn fresh_metrics_show_zeroed_series_and_not_ready() {
    let exp = parse_ok(&Metrics::new().render());
    assert_series(
        &exp,
        "deadband_records_in_total",
        &[
            (&[("result", "ok")], 0.0),
            (&[("result", "invalid")], 0.0),
            (&[("result", "out_of_order")], 0.0),
            (&[("result", "duplicate")], 0.0),
        ],
    );
    assert_series(&exp, "deadband_ready", &[(&[], 0.0)]);
    assert_series(&exp, "deadband_keys_in_state", &[(&[], 0.0)]);
    assert_series(&exp, "deadband_checkpoints_total", &[(&[], 0.0)]);
    assert!(exp.series("deadband_consumer_lag").is_empty());
}

#[test]
fn zone_health_is_counted_per_key_group_with_a_cap() {
    let m = Metrics::new();
    m.set_max_groups(2);
    assert_eq!(deadband::metrics::key_group("press3.bore_dia"), "press3");
    assert_eq!(deadband::metrics::key_group("AAPL"), "AAPL");
    // group press3: 3 records, 2 inside the zone, 1 moved the fit; latest regime 2.
    m.zone_record("press3", true, false, 0);
    m.zone_record("press3", true, false, 1);
    m.zone_record("press3", false, true, 2);
    m.zone_event("press3", EventKind::ToolCompensation);
    m.zone_event("press3", EventKind::SpcAlarm);
    m.zone_event("press3", EventKind::SpcAlarm);
    m.zone_event("press3", EventKind::Trend); // not a zone-health count
    m.zone_record("AAPL", false, true, 0);
    // Past the cap of 2 groups: counted under "other".
    m.zone_record("MSFT", true, false, 1);
    m.zone_record("IBM", false, false, 0);
    m.zone_event("IBM", EventKind::ToolCompensation);

    let exp = parse_ok(&m.render());
    assert_eq!(exp.kind("deadband_zone_records_total"), Some("counter"));
    assert_eq!(exp.kind("deadband_zone_regime"), Some("gauge"));
    assert_series(
        &exp,
        "deadband_zone_records_total",
        &[
            (&[("group", "press3"), ("zone", "inside")], 2.0),
            (&[("group", "press3"), ("zone", "outside")], 1.0),
            (&[("group", "AAPL"), ("zone", "inside")], 0.0),
            (&[("group", "AAPL"), ("zone", "outside")], 1.0),
            (&[("group", "other"), ("zone", "inside")], 1.0),
            (&[("group", "other"), ("zone", "outside")], 1.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_zone_updates_total",
        &[
            (&[("group", "press3")], 1.0),
            (&[("group", "AAPL")], 1.0),
            (&[("group", "other")], 0.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_zone_regime",
        &[
            (&[("group", "press3")], 2.0),
            (&[("group", "AAPL")], 0.0),
            (&[("group", "other")], 0.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_zone_compensations_total",
        &[
            (&[("group", "press3")], 1.0),
            (&[("group", "AAPL")], 0.0),
            (&[("group", "other")], 1.0),
        ],
    );
    assert_series(
        &exp,
        "deadband_zone_spc_alarms_total",
        &[
            (&[("group", "press3")], 2.0),
            (&[("group", "AAPL")], 0.0),
            (&[("group", "other")], 0.0),
        ],
    );
}

#[test]
fn revoked_partition_lag_series_disappears() {
    let m = Metrics::new();
    m.set_lag("bars", 0, 5);
    m.set_lag("bars", 1, 6);
    m.set_lag("sensors", 2, 7);
    m.remove_partition("bars", 0);
    m.remove_partition("bars", 9); // never assigned: ignored
    m.remove_partition("nope", 0);
    let exp = parse_ok(&m.render());
    assert_series(
        &exp,
        "deadband_consumer_lag",
        &[
            (&[("topic", "bars"), ("partition", "1")], 6.0),
            (&[("topic", "sensors"), ("partition", "2")], 7.0),
        ],
    );

    m.remove_partition("bars", 1);
    m.remove_partition("sensors", 2);
    let exp = parse_ok(&m.render());
    assert!(exp.series("deadband_consumer_lag").is_empty());
    assert!(exp.kind("deadband_consumer_lag").is_none());

    // A partition assigned again reports again.
    m.set_lag("bars", 0, 3);
    let exp = parse_ok(&m.render());
    assert_series(
        &exp,
        "deadband_consumer_lag",
        &[(&[("topic", "bars"), ("partition", "0")], 3.0)],
    );
}

#[test]
fn label_values_come_back_unchanged() {
    let kinds = [
        "quote\"d",
        "back\\slash",
        "escaped\\\"quote",
        "two\\\\backslashes",
        "new\nline",
        "trailing\\",
        "ünïcode ✓",
    ];
    let m = Metrics::new();
    for k in kinds {
        m.dlq(k);
    }
    let text = m.render();
    let exp = parse_ok(&text);
    let got: BTreeSet<String> = exp
        .series("deadband_dlq_total")
        .into_iter()
        .map(|(l, v)| {
            assert_eq!(v, 1.0);
            l["reason"].clone()
        })
        .collect();
    let want: BTreeSet<String> = kinds.iter().map(|k| k.to_string()).collect();
    assert_eq!(got, want, "\n{text}");
}

#[test]
fn instances_do_not_share_counts() {
    let a = Metrics::new();
    let b = Metrics::new();
    for _ in 0..5 {
        a.record_in(Ok(()));
    }
    b.record_in(Ok(()));
    a.event_out(EventKind::Trend);
    a.set_lag("bars", 0, 9);
    b.latency(Duration::from_millis(1));
    a.set_ready(true);

    let ea = parse_ok(&a.render());
    let eb = parse_ok(&b.render());
    let ok = [("result", "ok")];
    assert_eq!(ea.value("deadband_records_in_total", &ok), Some(5.0));
    assert_eq!(eb.value("deadband_records_in_total", &ok), Some(1.0));
    assert_eq!(
        eb.value("deadband_events_out_total", &[("kind", "trend")]),
        Some(0.0)
    );
    assert_eq!(
        ea.value("deadband_events_out_total", &[("kind", "trend")]),
        Some(1.0)
    );
    assert!(eb.series("deadband_consumer_lag").is_empty());
    assert_eq!(
        ea.value("deadband_record_latency_seconds_count", &[]),
        Some(0.0)
    );
    assert_eq!(
        eb.value("deadband_record_latency_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(ea.value("deadband_ready", &[]), Some(1.0));
    assert_eq!(eb.value("deadband_ready", &[]), Some(0.0));
}

// ---------------------------------------------------------------------------------------------
// Latency quantiles.
// ---------------------------------------------------------------------------------------------

const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// Nearest-rank quantile: the smallest value with at least q * n values at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn quantile(exp: &Exposition, q: &str) -> f64 {
    exp.value("deadband_record_latency_seconds", &[("quantile", q)])
        .unwrap_or_else(|| panic!("no quantile {q}"))
}

#[test]
fn latency_quantiles_agree_with_nearest_rank_within_three_digits() {
    // 1..=1000 µs in a scrambled order (337 is coprime with 1000, so this is a permutation).
    let micros: Vec<u64> = (0..1000u64).map(|i| (i * 337) % 1000 + 1).collect();
    let m = Metrics::new();
    for &us in &micros {
        m.latency(Duration::from_micros(us));
    }
    let mut sorted: Vec<f64> = micros.iter().map(|&us| us as f64 * 1e-6).collect();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted.first(), Some(&1e-6));
    assert_eq!(sorted.last(), Some(&1e-3));

    let exp = parse_ok(&m.render());
    for ((q, label), want_us) in QUANTILES.into_iter().zip([500.0, 900.0, 990.0, 999.0]) {
        let truth = nearest_rank(&sorted, q);
        assert!(
            close(truth, want_us * 1e-6, 1e-12),
            "truth p{label} = {truth}"
        );
        let got = quantile(&exp, label);
        // 3 significant digits: within 0.1 % of the exact quantile.
        assert!(
            close(got, truth, 1e-3),
            "p{label}: got {got}, truth {truth}"
        );
    }
    assert_eq!(
        exp.value("deadband_record_latency_seconds_count", &[]),
        Some(1000.0)
    );
    let sum = exp
        .value("deadband_record_latency_seconds_sum", &[])
        .unwrap();
    assert!(close(sum, 0.5005, 1e-12), "sum {sum}"); // 1000 * 1001 / 2 µs
}

#[test]
fn latency_window_keeps_recent_records_and_forgets_old_ones() {
    // Default window (60 s): renders in quick succession keep everything recorded.
    let m = Metrics::new();
    for _ in 0..100 {
        m.latency(Duration::from_millis(1));
    }
    let _ = m.render();
    for _ in 0..900 {
        m.latency(Duration::from_micros(5));
    }
    let exp = parse_ok(&m.render());
    assert!(close(quantile(&exp, "0.5"), 5e-6, 1e-3));
    assert!(
        close(quantile(&exp, "0.999"), 1e-3, 1e-3),
        "1 ms records still count"
    );

    // Zero window: each render starts a new window, so a render reports the records since the
    // render before the last one.
    let m = Metrics::with_latency_window(Duration::ZERO);
    for _ in 0..100 {
        m.latency(Duration::from_millis(1));
    }
    let exp = parse_ok(&m.render());
    assert!(close(quantile(&exp, "0.5"), 1e-3, 1e-3));
    for _ in 0..100 {
        m.latency(Duration::from_micros(5));
    }
    let exp = parse_ok(&m.render());
    assert!(
        close(quantile(&exp, "0.999"), 5e-6, 1e-3),
        "the 1 ms window is forgotten"
    );
    assert_eq!(
        exp.value("deadband_record_latency_seconds_count", &[]),
        Some(200.0),
        "the count covers all records"
    );
    let exp = parse_ok(&m.render());
    assert!(
        quantile(&exp, "0.5").is_nan(),
        "no record in the last window"
    );
}

#[test]
fn huge_latencies_saturate_at_sixty_seconds() {
    let m = Metrics::new();
    m.latency(Duration::MAX);
    m.latency(Duration::from_secs(3600));
    m.latency(Duration::ZERO);
    let exp = parse_ok(&m.render());
    assert!(close(quantile(&exp, "0.999"), 60.0, 1e-3));
    assert_eq!(
        exp.value("deadband_record_latency_seconds_count", &[]),
        Some(3.0)
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------------------------

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection, `Connection: close`, within 5 s.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("receive");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("no answer within 5 s");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_string(),
    };
    assert!(
        response.header("transfer-encoding").is_none(),
        "not chunked"
    );
    if let Some(len) = response.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), response.body.len());
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_answer_report_readiness_and_stop_on_shutdown() {
    let m = Metrics::new();
    for _ in 0..3 {
        m.record_in(Ok(()));
    }
    m.event_out(EventKind::Trend);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = serve("127.0.0.1:0".parse().unwrap(), m.clone(), async move {
        let _ = stopped.await;
    })
    .await
    .expect("bind");
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the bound port is returned");

    let r = request(addr, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("text/plain; version=0.0.4"),
        "content-type {ct}"
    );
    let exp = parse_ok(&r.body);
    assert_eq!(
        exp.value("deadband_records_in_total", &[("result", "ok")]),
        Some(3.0)
    );
    assert_eq!(
        exp.value("deadband_events_out_total", &[("kind", "trend")]),
        Some(1.0)
    );

    let r = request(addr, "GET", "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));

    assert_eq!(request(addr, "GET", "/readyz").await.status, 503);
    m.set_ready(true);
    assert_eq!(request(addr, "GET", "/readyz").await.status, 200);
    m.set_ready(false);
    assert_eq!(request(addr, "GET", "/readyz").await.status, 503);

    assert_eq!(request(addr, "GET", "/nope").await.status, 404);
    assert_eq!(request(addr, "POST", "/metrics").await.status, 405);

    // Later counts show up on the next scrape: the handler renders live state.
    m.record_in(Ok(()));
    let exp = parse_ok(&request(addr, "GET", "/metrics").await.body);
    assert_eq!(
        exp.value("deadband_records_in_total", &[("result", "ok")]),
        Some(4.0)
    );

    // A fatal error turns liveness and readiness off, with the first reason.
    m.set_ready(true);
    m.set_unhealthy("partition worker in/0 panicked: boom");
    m.set_unhealthy("a later, secondary failure");
    let r = request(addr, "GET", "/healthz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("in/0 panicked: boom"), "{}", r.body);
    assert_eq!(request(addr, "GET", "/readyz").await.status, 503);
    let exp = parse_ok(&request(addr, "GET", "/metrics").await.body);
    assert_eq!(exp.value("deadband_ready", &[]), Some(0.0));

    stop.send(()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting 5 s after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn serve_reports_an_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve(addr, Metrics::new(), std::future::pending())
        .await
        .expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}
