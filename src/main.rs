//! deadband command line: parse arguments, call a driver, map errors to exit codes (0 ok, 2 bad input, 1 runtime).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use deadband::io::study_csv::StudyCsvError;
use deadband::run::grr::{GrrOptions, GrrRunError};
use deadband::zone::grr::{GrrMethod, StudyError};
use deadband::zone::ParamError;

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
    /// Gauge R&R of a crossed study (long CSV with columns part, operator, value).
    Grr(GrrArgs),
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
            eprintln!("error: {}", message(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
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
    }
}

/// The error and its causes joined with ": ", leaving out a cause whose text the message
/// already contains (library errors embed their source in their own message).
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// 2 when any error in the chain is a user-fixable input or argument problem, else 1.
/// New subcommands add their input-error types here.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<GrrRunError>() {
            return if e.is_bad_input() { 2 } else { 1 };
        }
        if cause.is::<StudyCsvError>() || cause.is::<StudyError>() || cause.is::<ParamError>() {
            return 2;
        }
    }
    1
}
