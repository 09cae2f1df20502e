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

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::{Config, InputKind};
use crate::error::Failure;
use crate::flow::{drive, Discard, DriveOptions, FlowError, Item, Source, Stage};
use crate::io::parquet::{SinkError, SourceError, SourceOptions};
use crate::io::replay::{FileFormat, FileSource, ParquetSink};
use crate::io::staging::Staging;
use crate::pipeline::KeyParamError;
use crate::record::{Invalid, Payload, RecordKind};
use crate::run::summary;
use crate::signal::active::ActiveBook;

mod lane;
mod results;

use lane::{stats, Lane};
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
/// `summary.json` and `report.html` into `opts.out`.
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
    let mut source = FileSource::open(
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
    let mut replay = Replay {
        strategy: Lane::new(cfg.processor.clone(), &cfg.file, sink)?,
        baseline: Lane::new(cfg.baseline(), &cfg.file, Discard)?,
        charts: crate::run::collect::Charts::new(cfg.output.report_keys),
        bar: progress_bar(opts.progress, source.total_hint()),
        rows: 0,
        active: ActiveBook::default(),
        slots: Default::default(),
    };
    drive(&mut source, &mut replay, DriveOptions::default()).map_err(BacktestError::Flow)?;
    let Replay {
        strategy,
        baseline,
        charts,
        bar,
        rows,
        active,
        ..
    } = replay;
    bar.finish_and_clear();
    let strategy_truth = strategy.truth_report();
    let baseline_truth = baseline.truth_report();
    let (processor, sink, _) = strategy.flow.into_parts();
    sink.finish()?;

    let counters = *processor.counters();
    let keys = processor.key_count();
    let key_stats = charts.key_stats(&processor);
    let active = (record == RecordKind::Bar).then(|| active.finish(keys, cfg.periods_per_year));
    let strategy_stats = RunStats {
        trend_truth: strategy_truth,
        ..stats(
            &processor,
            strategy.portfolio,
            record,
            cfg.periods_per_year,
            strategy.truth,
        )
    };
    let baseline_stats = RunStats {
        trend_truth: baseline_truth,
        ..stats(
            baseline.flow.processor(),
            baseline.portfolio,
            record,
            cfg.periods_per_year,
            baseline.truth,
        )
    };
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
    let turnover_reduction = (record == RecordKind::Bar && baseline_stats.turnover > 0.0)
        .then(|| 1.0 - strategy_stats.turnover / baseline_stats.turnover);
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
    let summary = Summary {
        rows,
        keys,
        elapsed_s: elapsed,
        rows_per_s: if elapsed > 0.0 {
            rows as f64 / elapsed
        } else {
            0.0
        },
        record,
        input: pattern,
        accepted: counters.ok,
        rejected,
        strategy: strategy_stats,
        baseline: baseline_stats,
        turnover_reduction,
        active,
        events_by_kind,
        per_key,
        periods_per_year: cfg.periods_per_year,
    };
    let summary_path = out.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    std::fs::write(&summary_path, json + "\n").map_err(|source| BacktestError::Write {
        path: summary_path,
        source,
    })?;
    if opts.report {
        let data = charts.into_report(cfg, &summary, key_stats);
        crate::run::report::write(&out.join("report.html"), &data)?;
    }
    staging.commit().map_err(|source| BacktestError::Commit {
        path: opts.out.clone(),
        source,
    })?;
    Ok(summary)
}

/// The backtest's stage: each record goes through the strategy and the baseline lane, and the
/// report collects what both did.
struct Replay {
    strategy: Lane<ParquetSink>,
    baseline: Lane<Discard>,
    charts: crate::run::collect::Charts,
    bar: indicatif::ProgressBar,
    rows: u64,
    active: ActiveBook,
    /// Key name -> slot (see [`Replay::slot`]).
    slots: foldhash::HashMap<Box<str>, usize>,
}

impl Replay {
    /// The key's slot: 0, 1, 2, … in first-seen order. One lookup per record serves both lanes'
    /// side tables, the active book and the charts.
    fn slot(&mut self, key: &str) -> usize {
        if let Some(&s) = self.slots.get(key) {
            return s;
        }
        let s = self.slots.len();
        self.slots.insert(key.into(), s);
        s
    }
}

impl Stage for Replay {
    fn submit(&mut self, item: Item<'_>) -> Result<(), FlowError> {
        self.rows += 1;
        if self.rows % 65_536 == 0 {
            self.bar.set_position(self.rows);
        }
        let slot = match &item.record {
            Ok(rec) => Some(self.slot(rec.key)),
            Err(_) => None,
        };
        let acc = self.strategy.step(&item, slot)?;
        let base = self.baseline.step(&item, slot)?;
        let (Ok(rec), Some(slot)) = (&item.record, slot) else {
            return Ok(());
        };
        if let (Payload::Bar(bar), Some(a)) = (rec.payload, &acc) {
            let b = base.as_ref().map_or(0.0, |b| b.book.gross - b.book.cost);
            let keys = self.strategy.flow.processor().key_count();
            let net = a.book.gross - a.book.cost;
            self.active.add_slot(slot, rec.ts, bar.close, net, b, keys);
        }
        self.charts.record(
            rec,
            slot,
            acc.as_ref(),
            base.as_ref(),
            self.strategy.flow.last_events(),
            self.strategy.portfolio.perf.equity(),
            self.baseline.portfolio.perf.equity(),
            self.strategy.flow.processor(),
        );
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), FlowError> {
        self.strategy.flow.checkpoint()?;
        self.baseline.flow.checkpoint()
    }
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
