//! deadband command line: parse arguments, call a command, map its failure to an exit code
//! (0 ok, 2 a problem the user fixes, 1 runtime) through [`Failure`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use deadband::config::{Config, ConfigError, InputKind};
use deadband::error::{BadArgs, BoxFailure, Failure, Runtime};
use deadband::run::backtest::BacktestOptions;
use deadband::run::gen::{GenKind, GenOptions};
use deadband::run::grr::{GrrOptions, StudyFiles};
use deadband::run::produce::ProduceOptions;
use deadband::run::shard::Shard;
use deadband::zone::grr::GrrMethod;

#[derive(Parser)]
#[command(
    name = "deadband",
    version,
    about = "Online dead-zone trend fitting for market and measurement streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The embedded default: generate market and sensor data, backtest both, write the reports.
    Demo {
        /// Output folder (data, events, summaries, report.html).
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
    },
    /// Generate a synthetic stream with ground truth into a Parquet file.
    Gen(GenArgs),
    /// Replay Parquet files through the configured processor and an L2 baseline.
    Backtest {
        #[arg(long, value_name = "FILE.toml")]
        config: PathBuf,
        /// A Parquet file or glob; overrides [input] path.
        #[arg(long, value_name = "GLOB")]
        input: Option<String>,
        /// Output folder; overrides [output] path.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Skip report.html.
        #[arg(long)]
        no_report: bool,
        /// Keep only the keys of shard I of N (a stable hash of the key); merge the N shard
        /// folders with `deadband merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Run everything on one thread: by default the files are read on one helper thread
        /// and the baseline runs on another (same outputs; for one-core machines and profiling).
        #[arg(long)]
        single_thread: bool,
    },
    /// Merge the output folders of `backtest --shard I/N` (every I of one N) into one: events,
    /// fit rows, per-period series, summary.json (portfolio statistics recomputed) and report.
    Merge {
        /// Output folder.
        #[arg(value_name = "OUT")]
        out: PathBuf,
        /// The shard folders, in any order.
        #[arg(value_name = "DIR", required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// Skip report.html.
        #[arg(long)]
        no_report: bool,
    },
    /// Walk-forward tuning of the strategy and of its L2 baseline over `[tune.space]`;
    /// writes DIR/summary.json (out-of-sample only) and DIR/tuned.toml.
    Tune {
        #[arg(long, value_name = "FILE.toml")]
        config: PathBuf,
        /// A Parquet file or glob; overrides [input] path.
        #[arg(long, value_name = "GLOB")]
        input: Option<String>,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Seed of the random search; overrides [tune] seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check a configuration file: exit 0, or 2 with file:line:col and the fix.
    Validate {
        #[arg(long, value_name = "FILE.toml")]
        config: PathBuf,
    },
    /// Gauge R&R of a crossed study (long CSV with columns part, operator, value).
    Grr(GrrArgs),
    /// The Kafka daemon: consume records, produce events, checkpoint state (stops on SIGTERM).
    Run(RunArgs),
    /// Replay a Parquet file of bars or measurements into a Kafka topic as JSON.
    Produce(ProduceArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The TOML configuration ([input] and [output] kind = "kafka").
    #[arg(long, value_name = "FILE.toml")]
    config: PathBuf,
}

#[derive(clap::Args)]
struct ProduceArgs {
    /// Parquet file (or glob) of bars or measurements.
    #[arg(long, value_name = "FILE.parquet")]
    input: PathBuf,
    /// Destination topic.
    #[arg(long, value_name = "T")]
    topic: String,
    /// Records per second (default: as fast as the broker takes them).
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Bootstrap servers.
    #[arg(long, value_name = "B", default_value = "127.0.0.1:9092")]
    brokers: String,
}

#[derive(clap::Args)]
struct GenArgs {
    #[arg(value_enum)]
    kind: GenKindArg,
    /// Number of keys (symbols or machine features).
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Rows per key.
    #[arg(long, default_value_t = 10_000)]
    rows: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_name = "FILE.parquet")]
    out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GenKindArg {
    /// OHLC bars with regimes, trends, fat tails and spikes.
    Market,
    /// Measurements with tool wear, tool changes, gauge noise and outliers.
    Sensor,
}

#[derive(clap::Args)]
struct GrrArgs {
    /// Study CSV: header with columns part, operator, value (any order, others ignored);
    /// the trial of a row is its order within its part x operator cell.
    #[arg(long, value_name = "STUDY.csv")]
    input: PathBuf,
    /// Estimation method.
    #[arg(long, value_enum, default_value_t = MethodArg::Anova)]
    method: MethodArg,
    /// Tolerance (USL - LSL) for %tolerance on a 6-sigma study span.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    tolerance: Option<f64>,
    /// Pool the part x operator interaction into repeatability when its p-value >= A.
    #[arg(
        long,
        value_name = "A",
        default_value_t = 0.05,
        allow_negative_numbers = true
    )]
    interaction_alpha: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    /// Two-way ANOVA with interaction (pooled when not significant).
    Anova,
    /// AIAG average & range method.
    Range,
}

impl From<MethodArg> for GrrMethod {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Anova => GrrMethod::Anova,
            MethodArg::Range => GrrMethod::Range,
        }
    }
}

fn main() -> ExitCode {
    // clap exits with 2 on bad arguments and 0 on --help/--version.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", message(&*err));
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), BoxFailure> {
    match cli.command {
        Command::Demo { out } => {
            let outcome = deadband::run::demo::run(&out)?;
            print!("{}", outcome.text());
            Ok(())
        }
        Command::Gen(a) => {
            let kind = match a.kind {
                GenKindArg::Market => GenKind::Market,
                GenKindArg::Sensor => GenKind::Sensor,
            };
            let opts = GenOptions::new(a.keys, a.rows, a.seed);
            let summary = deadband::run::gen::write(kind, &opts, &a.out)?;
            println!(
                "wrote {} rows ({} keys) to {}",
                summary.rows,
                a.keys,
                a.out.display()
            );
            Ok(())
        }
        Command::Backtest {
            config,
            input,
            out,
            no_report,
            shard,
            single_thread,
        } => {
            let cfg = load_config(&config)?;
            let out = out
                .or_else(|| cfg.output.path.as_ref().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("out"));
            let opts = BacktestOptions {
                input,
                out: out.clone(),
                progress: true,
                report: !no_report,
                shard,
                single_thread,
            };
            let summary = deadband::run::backtest::run(&cfg, &opts)?;
            print!("{}", deadband::run::demo::describe(&summary, &out));
            Ok(())
        }
        Command::Merge {
            out,
            dirs,
            no_report,
        } => {
            let summary = deadband::run::merge::run(&out, &dirs, !no_report)?;
            println!("merged {} shards", dirs.len());
            print!("{}", deadband::run::demo::describe(&summary, &out));
            Ok(())
        }
        Command::Tune {
            config,
            input,
            out,
            seed,
        } => {
            let opts = deadband::run::tune::TuneOptions {
                config,
                input,
                out: out.clone(),
                seed,
                progress: true,
            };
            let s = deadband::run::tune::run(&opts)?;
            let o = &s.out_of_sample;
            println!(
                "{} folds, {} candidates, out of sample: net return {:.4} vs baseline {:.4}, turnover {:.1} vs {:.1} (reduction {}), IR {:.3}",
                s.folds.len(),
                s.candidates,
                o.strategy.net_return,
                o.baseline.net_return,
                o.strategy.turnover,
                o.baseline.turnover,
                o.turnover_reduction
                    .map_or("n/a".to_string(), |r| format!("{:.1}%", 100.0 * r)),
                o.information_ratio
            );
            println!("wrote {}/summary.json and tuned.toml", out.display());
            Ok(())
        }
        Command::Validate { config } => {
            let cfg = load_config(&config)?;
            let overrides = cfg.processor.overrides.len() + cfg.processor.patterns.len();
            println!(
                "{}: ok ({:?} records, {} key overrides)",
                config.display(),
                cfg.processor.record,
                overrides
            );
            Ok(())
        }
        Command::Grr(a) => {
            let opts = GrrOptions {
                input: a.input,
                method: a.method.into(),
                tolerance: a.tolerance,
                interaction_alpha: a.interaction_alpha,
                json: a.json,
            };
            let stdout = std::io::stdout();
            deadband::run::grr::run(&opts, &mut stdout.lock())?;
            Ok(())
        }
        Command::Run(a) => {
            let cfg = load_config(&a.config)?;
            if cfg.input.kind != InputKind::Kafka {
                return Err(BadArgs(format!(
                    "{}: `deadband run` needs [input] kind = \"kafka\" (use `deadband backtest` for files)",
                    a.config.display()
                ))
                .into());
            }
            init_tracing();
            runtime()?.block_on(deadband::run::daemon::run(&cfg))?;
            Ok(())
        }
        Command::Produce(a) => {
            let opts = ProduceOptions {
                input: a.input,
                topic: a.topic.clone(),
                brokers: a.brokers,
                rate: a.rate,
                record: None,
                kafka: Default::default(),
            };
            let n = deadband::run::produce::run(&opts)?;
            println!("produced {n} records to {}", a.topic);
            Ok(())
        }
    }
}

/// The run configuration, with `[zone.scale] study` files read from disk.
fn load_config(path: &Path) -> Result<Config, ConfigError> {
    deadband::config::load_with(path, &StudyFiles)
}

fn runtime() -> Result<tokio::runtime::Runtime, Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Runtime(format!("cannot start the async runtime: {e}")))
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The error and its causes joined with ": ", leaving out a cause whose text the message
/// already contains (library errors embed their source in their own message).
fn message(err: &dyn Failure) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}
