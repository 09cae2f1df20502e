//! Reads the shards' `shard.json` files and checks that they are one complete run: the same
//! shard count, every index once, the same settings (fingerprint) and record kind.

use std::path::{Path, PathBuf};

use crate::run::backtest::{Parts, PARTS_VERSION};
use crate::run::shard::Shard;

use super::MergeError;

/// One shard folder and its counts.
pub(super) struct ShardDir {
    pub(super) dir: PathBuf,
    pub(super) shard: Shard,
    pub(super) parts: Parts,
}

/// Reads `DIR/shard.json`.
fn read(dir: &Path) -> Result<ShardDir, MergeError> {
    let path = dir.join("shard.json");
    let text = std::fs::read_to_string(&path).map_err(|source| MergeError::ReadParts {
        path: path.clone(),
        source,
    })?;
    let parts: Parts = serde_json::from_str(&text).map_err(|e| MergeError::Refused {
        message: format!(
            "{}: not a shard.json this version of deadband reads ({e}); run the shard's backtest again with this version",
            path.display()
        ),
    })?;
    if parts.version != PARTS_VERSION {
        return Err(MergeError::Refused {
            message: format!(
                "{}: layout version {}, this deadband reads version {PARTS_VERSION}; run the shard's backtest again with this version",
                path.display(),
                parts.version
            ),
        });
    }
    Ok(ShardDir {
        dir: dir.to_path_buf(),
        shard: parts.shard.unwrap_or(Shard::WHOLE),
        parts,
    })
}

/// The shards of `dirs`, in index order, or why they are not one run's complete set.
pub(super) fn shards(dirs: &[PathBuf]) -> Result<Vec<ShardDir>, MergeError> {
    let mut shards = dirs
        .iter()
        .map(|d| read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let refuse = |message: String| Err(MergeError::Refused { message });
    let first = &shards[0];
    let (n, d0) = (first.shard.count, first.dir.display().to_string());
    for s in &shards[1..] {
        let d = s.dir.display();
        if s.shard.count != n {
            return refuse(format!(
                "{d0} is shard {} but {d} is shard {}: all shards of one run share N; run every shard with the same --shard I/N count",
                first.shard, s.shard
            ));
        }
        if s.parts.record != first.parts.record {
            return refuse(format!(
                "{d0} holds {:?} records but {d} holds {:?}: shards of different runs cannot be merged",
                first.parts.record, s.parts.record
            ));
        }
        if s.parts.fingerprint != first.parts.fingerprint {
            return refuse(format!(
                "{d0} and {d} were run with different settings (configuration fingerprints {} and {}); run every shard with the same configuration",
                first.parts.fingerprint, s.parts.fingerprint
            ));
        }
    }
    shards.sort_by_key(|s| s.shard.index);
    for w in shards.windows(2) {
        if w[0].shard.index == w[1].shard.index {
            return refuse(format!(
                "{} and {} are both shard {}: give each shard's folder once",
                w[0].dir.display(),
                w[1].dir.display(),
                w[0].shard
            ));
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|i| !shards.iter().any(|s| s.shard.index == *i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return refuse(format!(
            "shard {} missing: a merge needs all {n} shards; run `deadband backtest --shard` for {} and give their folders too",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        ));
    }
    Ok(shards)
}
