//! `deadband merge OUT DIR...`: the output folders of `backtest --shard I/N` (all N) merged into
//! the folder one unsharded run would have written.
//!
//! What is recomputed, and how:
//! * `events.parquet` / `fit.parquet`: every shard's rows, sorted by `(ts, key, seq, kind, id)`
//!   (fit rows by `(ts, key)`) — a k-way merge by time, `io::parquet::combine_sorted`;
//! * `periods.parquet`: the shards' per-period sums added per timestamp, with the key count
//!   of each shard taken as of that timestamp (`signal::periods::AsOfMerge`);
//! * portfolio statistics (Sharpe, max drawdown, hit rate, active return, tracking error,
//!   information ratio) from that merged series, exactly as a backtest computes them — never
//!   from the shards' own statistics;
//! * sums (turnover, returns, costs, counts) added, ratios (dead-zone ratio, update rate,
//!   trend-truth scores) from the added raw counts of `shard.json` (`backtest::Parts`);
//! * `events_by_kind` and `per_key` counted again by polars from the merged files;
//! * `report.html`: the summary table and the equity, drawdown and turnover curves; no per-key
//!   charts, whose series (the baseline's fit, residuals, positions) are not in the files.
//!
//! Float sums come out in another order than in one run, so they may differ in the last bits.
//! `elapsed_s` is the shards' total (the work done, wherever it ran).

mod check;
mod series;

use std::path::{Path, PathBuf};

use crate::io::parquet::{combine_sorted, CombineError, SinkError, SourceError};
use crate::io::staging::Staging;
use crate::record::RecordKind;
use crate::run::backtest::{write_json, Summary};
use crate::run::report::ReportData;
use crate::run::{summary, table};

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot merge: {message}")]
    Refused { message: String },
    #[error(
        "cannot read {path}: {source}; give the output folders of `deadband backtest --shard I/N`"
    )]
    ReadParts {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Combine(#[from] CombineError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("summary of {path} with polars failed: {message}")]
    Summary { path: PathBuf, message: String },
    #[error("cannot write into {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Report(#[from] crate::run::report::ReportError),
}

impl MergeError {
    /// Problems with the folders given (exit code 2), as opposed to failures of the machine (1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            MergeError::Refused { .. } => true,
            MergeError::ReadParts { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            MergeError::Combine(e) => e.is_bad_input(),
            MergeError::Source(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// Merges the shard folders `dirs` into `out`; `report` writes `report.html`.
pub fn run(out: &Path, dirs: &[PathBuf], report: bool) -> Result<Summary, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Refused {
            message: "no shard folders given: `deadband merge OUT DIR...`".into(),
        });
    }
    let shards = check::shards(dirs)?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if let Some(s) = shards.iter().find(|s| same(&s.dir, out)) {
        return Err(MergeError::Refused {
            message: format!(
                "the output folder {} is shard {}'s folder; write the merge elsewhere",
                out.display(),
                s.shard
            ),
        });
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(write_err(out))?;
    let staging = Staging::begin(out).map_err(write_err(out))?;
    let dir = staging.dir();
    let files = |name: &str| -> Vec<PathBuf> { shards.iter().map(|s| s.dir.join(name)).collect() };

    let mut parts = shards[0].parts.clone();
    for s in &shards[1..] {
        parts.merge(&s.parts);
    }
    parts.shard = None;
    let inputs: Vec<&str> = shards.iter().map(|s| s.parts.input.as_str()).collect();
    if inputs.iter().any(|i| *i != inputs[0]) {
        let mut distinct = inputs.clone();
        distinct.dedup();
        parts.input = distinct.join(", ");
    }

    let events = dir.join("events.parquet");
    combine_sorted(&files("events.parquet"), &events)?;
    let fit = dir.join("fit.parquet");
    if parts.emit_fit {
        combine_sorted(&files("fit.parquet"), &fit)?;
    }
    let merged = series::merge(&files("periods.parquet"), &dir.join("periods.parquet"))?;

    let polars = |path: &Path| {
        let path = path.to_path_buf();
        move |message| MergeError::Summary { path, message }
    };
    let by_kind = summary::events_by_kind(&events).map_err(polars(&events))?;
    if by_kind != parts.events_by_kind {
        return Err(MergeError::Refused {
            message: format!(
                "the merged events ({by_kind:?}) are not the events the shards' shard.json files count ({:?}); a shard folder holds files of different runs — run those shards again",
                parts.events_by_kind
            ),
        });
    }
    let per_key = if parts.emit_fit {
        summary::fit_by_key(&fit).map_err(polars(&fit))?
    } else {
        Vec::new()
    };
    let ppy = parts.periods_per_year;
    let stats = &merged.stats;
    let summary = parts.summary(&stats.strategy, &stats.baseline, stats.active(ppy), per_key);
    let json = dir.join("shard.json");
    write_json(&json, &parts).map_err(write_err(&json))?;
    let json = dir.join("summary.json");
    write_json(&json, &summary).map_err(write_err(&json))?;
    if report {
        let bars = summary.record == RecordKind::Bar && !merged.curves.ts.is_empty();
        let mut notes = table::notes();
        notes.pop(); // the per-key chart note: this report has none
        notes.push(format!(
            "Merged from {} shards (`deadband merge`): the portfolio statistics and curves are recomputed from the merged per-period series. A merged report has no per-key charts: the series they draw are not in the shards' files; see each shard's own report.html.",
            shards.len()
        ));
        let data = ReportData {
            title: format!("deadband backtest — merged from {} shards", shards.len()),
            subtitle: table::subtitle(&summary),
            summary: table::summary_rows(&summary),
            equity: bars.then_some(merged.curves),
            keys: Vec::new(),
            notes,
        };
        crate::run::report::write(&dir.join("report.html"), &data)?;
    }
    staging.commit().map_err(write_err(out))?;
    Ok(summary)
}
