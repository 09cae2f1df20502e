//! The replay backtester: files -> strategy and L2 baseline flows -> events, fit rows, summary, report.
//!
//! Both processors see the same records in the same order. Measurement runs simulate the closed
//! loop separately for each: an emitted tool offset is added to that key's later measurements
//! (a tool offset shifts every later part), so each method lives with its own decisions. When
//! the data carries a `tool` column, a change of its value is a new tool touched off at nominal:
//! the simulated machine's wear offset for that key goes back to zero for both methods, whether
//! or not the strategy is told of the change (`[compensation] tool_column`). With a
//! `true_value` column (generated data) the same offsets shift the truth, and parts truly out
//! of tolerance are counted beside those measured out.
//!
//! With `--shard I/N` only the records whose key falls in shard I (`run::shard::shard_of`)
//! reach the lanes, so a shard's outputs are those of a run over its keys alone. Every run also
//! writes what `deadband merge` needs: `periods.parquet` (per-period sums before division) and
//! `shard.json` (the raw counts behind the summary, see `parts`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::{Config, InputKind};
use crate::error::Failure;
use crate::flow::{drive, Discard, DriveOptions, FlowError, Prefetch, Source};
use crate::io::parquet::{SinkError, SourceError, SourceOptions};
use crate::io::replay::{FileFormat, FileSource, ParquetSink};
use crate::io::staging::Staging;
use crate::pipeline::KeyParamError;
use crate::record::Invalid;
use crate::run::shard::{self, Shard};
use crate::run::summary;

mod ahead;
mod lane;
mod parts;
mod replay;
mod results;

use lane::Lane;
pub use parts::{MethodCounts, Parts, PARTS_VERSION};
use replay::Replay;
pub(crate) use results::Thin;
pub use results::{Rejected, RunStats, Summary};

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("no input: give --input FILE_OR_GLOB or set [input] path in {config}")]
    NoInput { config: PathBuf },
    #[error("[input] kind = \"kafka\" in {config}: a backtest replays Parquet or CSV files; give --input FILE_OR_GLOB or use `deadband run` for Kafka")]
    NotParquet { config: PathBuf },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Flow(FlowError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("invalid parameters in {config}: {source}")]
    Params {
        config: PathBuf,
        source: KeyParamError,
    },
    #[error("cannot create the output folder {path}: {source}")]
    OutDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move the run's outputs into {path} (the previous run's files were left as they were): {source}")]
    Commit {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("summary of {path} with polars failed: {message}")]
    Summary { path: PathBuf, message: String },
    #[error(transparent)]
    Report(#[from] crate::run::report::ReportError),
}

impl BacktestError {
    /// Input or configuration problems (exit code 2) as opposed to runtime failures (1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            BacktestError::NoInput { .. }
                | BacktestError::NotParquet { .. }
                | BacktestError::Params { .. }
        ) || matches!(self, BacktestError::Source(e) if e.is_bad_input())
            || matches!(self, BacktestError::Flow(e) if e.is_user_error())
    }
}

impl Failure for BacktestError {
    fn is_user_error(&self) -> bool {
        self.is_bad_input()
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Overrides `[input] path`.
    pub input: Option<String>,
    /// Output folder; overrides `[output] path`.
    pub out: PathBuf,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
    /// Write `report.html`.
    pub report: bool,
    /// `--shard I/N`: keep only the keys of shard I of N.
    pub shard: Option<Shard>,
    /// `--single-thread`: read the files and run the baseline lane on the strategy's thread
    /// instead of two helper threads. The outputs are identical (for one-core machines,
    /// profiling, and the test that checks that identity).
    pub single_thread: bool,
}

/// The format of a replay's files: `[input] kind`, or — for a Kafka config replayed with
/// `--input` — the pattern's extension (`.csv` means CSV, anything else Parquet).
pub(crate) fn file_format(kind: InputKind, pattern: &str) -> FileFormat {
    match kind {
        InputKind::Csv => FileFormat::Csv,
        InputKind::Parquet => FileFormat::Parquet,
        InputKind::Kafka if pattern.to_ascii_lowercase().ends_with(".csv") => FileFormat::Csv,
        InputKind::Kafka => FileFormat::Parquet,
    }
}

/// Replays the configured input; writes `events.parquet`, `fit.parquet` (when `emit_fit`),
/// `periods.parquet`, `shard.json`, `summary.json` and `report.html` into `opts.out`.
pub fn run(cfg: &Config, opts: &BacktestOptions) -> Result<Summary, BacktestError> {
    let pattern = match (&opts.input, &cfg.input.path) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) if cfg.input.kind != InputKind::Kafka => p.clone(),
        (None, Some(_)) => {
            return Err(BacktestError::NotParquet {
                config: cfg.file.clone(),
            })
        }
        (None, None) => {
            return Err(BacktestError::NoInput {
                config: cfg.file.clone(),
            })
        }
    };
    let started = Instant::now();
    let record = cfg.processor.record;
    let source = FileSource::open(
        file_format(cfg.input.kind, &pattern),
        &pattern,
        record,
        SourceOptions {
            batch_rows: cfg.input.batch_rows,
            sort: cfg.input.sort,
        },
    )?;
    let out_dir = |source| BacktestError::OutDir {
        path: opts.out.clone(),
        source,
    };
    std::fs::create_dir_all(&opts.out).map_err(out_dir)?;
    // Every output is written into a staging folder and moved into place only when the whole
    // run succeeded: a failure leaves the previous run's outputs whole.
    let staging = Staging::begin(&opts.out).map_err(out_dir)?;
    let out = staging.dir();
    let events_path = out.join("events.parquet");
    let fit_path = out.join("fit.parquet");
    let sink = ParquetSink::create(out, cfg.output.emit_fit)?;
    let mut replay = Replay::new(
        Lane::new(cfg.processor.clone(), &cfg.file, sink)?,
        Lane::new(cfg.baseline(), &cfg.file, Discard)?,
        !opts.single_thread,
        // Only the report reads what the collector keeps: without one, nothing is collected.
        opts.report
            .then(|| crate::run::collect::Charts::new(cfg.output.report_keys)),
        progress_bar(opts.progress, source.total_hint()),
        opts.shard,
        out,
    )?;
    // With two threads the files are also read on a third, ahead of the replay: decoding
    // overlaps the lanes (the OS shares the two cores between the three).
    let mut source: Box<dyn Source> = if opts.single_thread {
        Box::new(source)
    } else {
        Box::new(Prefetch::start(source, ahead::BATCH))
    };
    drive(&mut *source, &mut replay, DriveOptions::default()).map_err(BacktestError::Flow)?;
    let Replay {
        strategy,
        baseline,
        charts,
        bar,
        rows,
        active,
        periods,
        mut period_file,
        ..
    } = replay;
    let baseline = baseline.expect("the final checkpoint brought the baseline lane back");
    bar.finish_and_clear();
    if let Some(last) = periods.finish() {
        period_file.write(&last)?;
    }
    period_file.finish()?;
    let strategy_counts = MethodCounts::of(
        strategy.flow.processor(),
        strategy.truth,
        strategy.truth_score(),
    );
    let baseline_counts = MethodCounts::of(
        baseline.flow.processor(),
        baseline.truth,
        baseline.truth_score(),
    );
    let strategy_perf = strategy.portfolio.finish();
    let baseline_perf = baseline.portfolio.finish();
    let (processor, sink, _) = strategy.flow.into_parts();
    sink.finish()?;

    let counters = *processor.counters();
    let key_stats = charts.as_ref().map(|c| c.key_stats(&processor));
    let elapsed = started.elapsed().as_secs_f64();
    let mut rejected = Rejected {
        out_of_order: counters.out_of_order,
        duplicate: counters.duplicate,
        ..Rejected::default()
    };
    for i in Invalid::ALL {
        let n = counters.invalid[i.index()];
        if n > 0 {
            rejected.invalid.insert(i.as_str().to_string(), n);
        }
    }
    let events_by_kind =
        summary::events_by_kind(&events_path).map_err(|message| BacktestError::Summary {
            path: events_path.clone(),
            message,
        })?;
    let per_key = if cfg.output.emit_fit {
        summary::fit_by_key(&fit_path).map_err(|message| BacktestError::Summary {
            path: fit_path.clone(),
            message,
        })?
    } else {
        Vec::new()
    };
    let parts = Parts {
        version: PARTS_VERSION,
        shard: opts.shard,
        fingerprint: shard::fingerprint(cfg),
        record,
        input: pattern,
        emit_fit: cfg.output.emit_fit,
        periods_per_year: cfg.periods_per_year,
        rows,
        keys: processor.key_count() as u64,
        accepted: counters.ok,
        elapsed_s: elapsed,
        rejected,
        strategy: strategy_counts,
        baseline: baseline_counts,
        events_by_kind,
    };
    let active = active.finish(cfg.periods_per_year);
    let summary = parts.summary(&strategy_perf, &baseline_perf, active, per_key);
    let write = |name: &str, result: std::io::Result<()>| {
        result.map_err(|source| BacktestError::Write {
            path: out.join(name),
            source,
        })
    };
    write("shard.json", write_json(&out.join("shard.json"), &parts))?;
    write(
        "summary.json",
        write_json(&out.join("summary.json"), &summary),
    )?;
    if let (Some(charts), Some(key_stats)) = (charts, key_stats) {
        let data = charts.into_report(cfg, &summary, key_stats);
        crate::run::report::write(&out.join("report.html"), &data)?;
    }
    staging.commit().map_err(|source| BacktestError::Commit {
        path: opts.out.clone(),
        source,
    })?;
    Ok(summary)
}

/// Writes `value` as pretty JSON and a newline.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(value).expect("plain data serialises");
    std::fs::write(path, json + "\n")
}

fn progress_bar(wanted: bool, total: u64) -> indicatif::ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    if total == 0 {
        // The row count is unknown (CSV): a spinner with the count and rate.
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} rows  {per_sec}")
                .expect("static template"),
        );
        return bar;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} rows  {per_sec}  eta {eta}",
        )
        .expect("static template"),
    );
    bar
}
