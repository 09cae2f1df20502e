//! The tuner's parameter space: dotted names checked against what may be tuned, values set on a
//! `toml::Value` of the configuration, and candidates built by grid or seeded random search.

use std::collections::BTreeMap;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fields that may be tuned, per section (also valid under `keys."NAME".<section>`).
const FIELDS: &[(&str, &[&str])] = &[
    ("zone", &["floor", "regime_half_life", "regime_confirm"]),
    (
        "zone.scale",
        &[
            "multiplier",
            "period",
            "half_life",
            "eps",
            "sigma",
            "cap_fraction",
        ],
    ),
    ("fit", &["forgetting", "leak", "order", "method", "p0"]),
    (
        "fit.macro",
        &["multiplier", "forgetting", "horizon", "enter", "exit"],
    ),
    (
        "signal",
        &["horizon", "enter", "exit", "saturate", "band", "warmup"],
    ),
    ("compensation", &["horizon", "guard", "cooldown"]),
];

/// Fields of one `[[zone.regimes]]` entry that may be tuned.
const REGIME_FIELDS: &[&str] = &["multiplier", "below"];

/// One candidate: a value for every name of the space, in the space's order.
pub type Candidate = Vec<(String, toml::Value)>;

/// Splits a dotted name into segments; a segment may be quoted (`keys."SYM.1".signal.enter`).
pub fn split(name: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for ch in name.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                if cur.is_empty() && !was_quoted {
                    return Err(format!("empty segment in `{name}`"));
                }
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unclosed quote in `{name}`"));
    }
    if cur.is_empty() && !was_quoted {
        return Err(format!("empty segment in `{name}`"));
    }
    out.push(cur);
    Ok(out)
}

/// The names that may be tuned in `doc`: every section field, each regime's fields by name.
pub fn valid_names(doc: &toml::Value) -> Vec<String> {
    let mut names = Vec::new();
    for (section, fields) in FIELDS {
        for f in *fields {
            names.push(format!("{section}.{f}"));
        }
    }
    if let Some(regimes) = doc
        .get("zone")
        .and_then(|z| z.get("regimes"))
        .and_then(|r| r.as_array())
    {
        for (i, r) in regimes.iter().enumerate() {
            let id = r
                .get("name")
                .and_then(|n| n.as_str())
                .map_or(i.to_string(), str::to_string);
            for f in REGIME_FIELDS {
                names.push(format!("zone.regimes.{id}.{f}"));
            }
        }
    }
    names
}

/// Whether `name` may be tuned in `doc` (also `keys."NAME".<section>.<field>` for a section field).
pub fn check_name(doc: &toml::Value, name: &str) -> Result<(), String> {
    let segs = split(name)?;
    let rest = match segs.first().map(String::as_str) {
        Some("keys") if segs.len() > 2 => &segs[2..],
        _ => &segs[..],
    };
    let joined = rest.join(".");
    let valid = valid_names(doc);
    let ok = if std::ptr::eq(rest, &segs[..]) {
        valid.contains(&joined)
    } else {
        FIELDS
            .iter()
            .any(|(s, fs)| fs.iter().any(|f| format!("{s}.{f}") == joined))
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` cannot be tuned; valid names: {} (and keys.\"NAME\".<section>.<field>)",
            valid.join(", ")
        ))
    }
}

/// Sets `name` to `value` in `doc`, creating missing tables; an array segment is an index or the
/// `name` of an element (`zone.regimes.calm.multiplier`).
pub fn set(doc: &mut toml::Value, name: &str, value: toml::Value) -> Result<(), String> {
    let segs = split(name)?;
    let (last, path) = segs.split_last().expect("split gives one segment at least");
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            toml::Value::Table(t) => t
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(Default::default())),
            toml::Value::Array(a) => {
                let at = match seg.parse::<usize>() {
                    Ok(i) if i < a.len() => i,
                    _ => a
                        .iter()
                        .position(|e| e.get("name").and_then(|n| n.as_str()) == Some(seg))
                        .ok_or_else(|| format!("`{name}`: no element `{seg}` in the array"))?,
                };
                &mut a[at]
            }
            _ => return Err(format!("`{name}`: `{seg}` is not a table")),
        };
    }
    match cur {
        toml::Value::Table(t) => {
            t.insert(last.clone(), value);
            Ok(())
        }
        _ => Err(format!("`{name}`: the parent of `{last}` is not a table")),
    }
}

/// Every combination of the space's values, the first name varying slowest.
pub fn grid(space: &BTreeMap<String, Vec<toml::Value>>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = vec![Vec::new()];
    for (name, values) in space {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for c in &out {
            for v in values {
                let mut c = c.clone();
                c.push((name.clone(), v.clone()));
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// `samples` distinct grid points drawn without replacement with ChaCha8 from `seed`, in draw
/// order (the whole grid when it is not larger).
pub fn random(
    space: &BTreeMap<String, Vec<toml::Value>>,
    samples: usize,
    seed: u64,
) -> Vec<Candidate> {
    let mut all = grid(space);
    if samples >= all.len() {
        return all;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Partial Fisher-Yates: the first `samples` slots end up a uniform draw.
    for i in 0..samples {
        let j = i + (rng.next_u64() % (all.len() - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(samples);
    all
}

/// The space used when `[tune.space]` is absent: zone width × entry threshold for bars.
pub fn default_space() -> BTreeMap<String, Vec<toml::Value>> {
    let f = |xs: &[f64]| xs.iter().map(|&x| toml::Value::Float(x)).collect();
    BTreeMap::from([
        (
            "zone.scale.multiplier".to_string(),
            f(&[0.5, 1.0, 1.5, 2.0, 3.0]),
        ),
        ("signal.enter".to_string(), f(&[0.5, 1.0, 1.5, 2.0, 3.0])),
    ])
}
