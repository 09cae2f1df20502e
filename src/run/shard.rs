//! Which shard of a sharded backtest a key belongs to (a stable hash), the `--shard I/N`
//! argument, and the fingerprint of the settings that every shard of one run must share.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The shard of `key` among `count` shards: the first 8 bytes of BLAKE3(key) read as a
/// little-endian u64, modulo `count`. Depends on the key's UTF-8 bytes only, so it is the
/// same on every platform and in every version (pinned by a test).
pub fn shard_of(key: &str, count: u32) -> u32 {
    let hash = blake3::hash(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(first) % u64::from(count.max(1))) as u32
}

/// Shard `index` of `count` (`summary.json`: `"shard": {"index": I, "count": N}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole input: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether this shard keeps the record of `key`; a record without a key (it could not be
    /// decoded) belongs to shard 0, so each one is counted exactly once over the shards.
    pub fn keeps(&self, key: Option<&str>) -> bool {
        match key {
            Some(k) => self.count <= 1 || shard_of(k, self.count) == self.index,
            None => self.index == 0,
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N` with 0 ≤ I < N and N ≥ 1; the error says what to write instead.
    fn from_str(s: &str) -> Result<Shard, String> {
        let form = "write I/N with 0 <= I < N, e.g. 0/4 for the first of four shards";
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form I/N; {form}"))?;
        let num = |part: &str, what: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("the {what} `{part}` in `{s}` is not a whole number; {form}"))
        };
        let (index, count) = (num(i, "shard index")?, num(n, "shard count")?);
        if count == 0 {
            return Err(format!("the shard count in `{s}` is 0; {form}"));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the count {count} (shards are numbered 0..{}); {form}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

/// The first 16 hex digits of BLAKE3 over the settings that decide a backtest's results: the
/// record kind, the out-of-order policy, every key's resolved parameters (defaults, exact
/// overrides in name order, patterns in their order; their `Debug` text, as the state
/// snapshots fingerprint them), `periods_per_year` and `emit_fit`. Paths, the Kafka and
/// metrics tables and the report's settings are left out: shards run on other machines may
/// name their files differently.
pub fn fingerprint(cfg: &Config) -> String {
    let p = &cfg.processor;
    let mut text = format!(
        "record={:?}\nout_of_order={:?}\nperiods_per_year={:?}\nemit_fit={}\ndefaults={:?}\n",
        p.record, p.out_of_order, cfg.periods_per_year, cfg.output.emit_fit, p.defaults
    );
    let mut names: Vec<_> = p.overrides.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, params) in names {
        text.push_str(&format!("key {name:?}={params:?}\n"));
    }
    for (pattern, params) in &p.patterns {
        text.push_str(&format!("pattern {:?}={params:?}\n", pattern.0.as_str()));
    }
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}
