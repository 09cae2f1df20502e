//! `deadband demo`: generate market and sensor data, backtest both with the shipped configs, report.
//!
//! The configs are embedded in the binary (`config/market-atr.toml`, `config/sensor-grr.toml`),
//! so the demo runs from any folder on a fresh clone, with no broker.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{parse, ConfigError};
use crate::run::backtest::{self, BacktestError, BacktestOptions, Summary};
use crate::run::gen::{self, GenError, GenKind, GenOptions};

const MARKET_TOML: &str = include_str!("../../config/market-atr.toml");
const SENSOR_TOML: &str = include_str!("../../config/sensor-grr.toml");

/// Sizes of the demo data: big enough for stable statistics, small enough for seconds.
const MARKET_KEYS: usize = 8;
const MARKET_ROWS: usize = 20_000;
const SENSOR_KEYS: usize = 6;
const SENSOR_ROWS: usize = 4_000;
const SEED: u64 = 7;

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("generating demo data: {0}")]
    Gen(#[from] GenError),
    #[error("embedded config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backtest(#[from] BacktestError),
}

/// Both runs' summaries and where their files are.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    pub market: Summary,
    pub market_out: PathBuf,
    pub sensor: Summary,
    pub sensor_out: PathBuf,
}

impl DemoOutcome {
    /// The text printed by `deadband demo`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        s.push_str("== market bars (config/market-atr.toml)\n");
        s.push_str(&describe(&self.market, &self.market_out));
        s.push_str("\n== machined features (config/sensor-grr.toml)\n");
        s.push_str(&describe(&self.sensor, &self.sensor_out));
        s
    }
}

/// A few lines on a backtest: strategy vs baseline, and where the report is.
pub fn describe(s: &Summary, out: &Path) -> String {
    let mut t = String::new();
    let (a, b) = (&s.strategy, &s.baseline);
    let _ = writeln!(
        t,
        "{} rows, {} keys in {:.2} s ({:.0} rows/s)",
        s.rows, s.keys, s.elapsed_s, s.rows_per_s
    );
    let rejected =
        s.rejected.invalid.values().sum::<u64>() + s.rejected.out_of_order + s.rejected.duplicate;
    if rejected > 0 {
        let _ = writeln!(t, "rejected records: {rejected} (see summary.json)");
    }
    let _ = writeln!(t, "{:<22}{:>14}{:>14}", "", "dead-zone fit", "L2 baseline");
    match s.record {
        crate::record::RecordKind::Bar => {
            let row = |t: &mut String, name: &str, x: f64, y: f64| {
                let _ = writeln!(t, "{name:<22}{x:>14.4}{y:>14.4}");
            };
            row(&mut t, "turnover", a.turnover, b.turnover);
            row(&mut t, "net return", a.net_return, b.net_return);
            row(&mut t, "costs", a.costs, b.costs);
            row(&mut t, "sharpe", a.sharpe, b.sharpe);
            row(&mut t, "max drawdown", a.max_drawdown, b.max_drawdown);
            row(&mut t, "update rate", a.update_rate, b.update_rate);
            if let Some(r) = s.turnover_reduction {
                let _ = writeln!(t, "turnover reduction vs baseline: {:.1} %", 100.0 * r);
            }
            if let Some(act) = &s.active {
                active_rows(&mut t, act, s.periods_per_year.is_some());
            }
            if let (Some(x), Some(y)) = (&a.trend_truth, &b.trend_truth) {
                truth_rows(&mut t, x, y);
            }
        }
        crate::record::RecordKind::Measurement => {
            let row = |t: &mut String, name: &str, x: Option<u64>, y: Option<u64>| {
                let _ = writeln!(t, "{name:<22}{:>14}{:>14}", x.unwrap_or(0), y.unwrap_or(0));
            };
            let _ = writeln!(t, "{:<22}{:>14}{:>14}", "", "(predictive)", "(Shewhart)");
            row(&mut t, "compensations", a.compensations, b.compensations);
            row(
                &mut t,
                "out of tolerance",
                a.out_of_tolerance,
                b.out_of_tolerance,
            );
            if a.truly_out_of_tolerance.is_some() {
                row(
                    &mut t,
                    "  truly (true_value)",
                    a.truly_out_of_tolerance,
                    b.truly_out_of_tolerance,
                );
            }
            row(&mut t, "spc alarms", a.spc_alarms, b.spc_alarms);
        }
    }
    let report = out.join("report.html");
    if report.exists() {
        let _ = writeln!(t, "report: {}", report.display());
    }
    let _ = writeln!(
        t,
        "events: {}  summary: {}",
        out.join("events.parquet").display(),
        out.join("summary.json").display()
    );
    t
}

/// Active return, tracking error and information ratio: the strategy against the L2 baseline
/// and against buy-and-hold, and the baseline against buy-and-hold for comparison.
fn active_rows(t: &mut String, a: &crate::signal::active::ActiveReport, annual: bool) {
    // Per-period active returns and tracking errors are small: scientific notation.
    let e = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3e}"));
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    let per = if annual { "annualised" } else { "per period" };
    let _ = writeln!(
        t,
        "{:<22}{:>14}{:>14}{:>14}",
        format!("active ({per})"),
        "vs L2",
        "vs buy&hold",
        "L2 vs b&h"
    );
    let stats = [
        &a.vs_baseline,
        &a.vs_buy_and_hold,
        &a.baseline_vs_buy_and_hold,
    ];
    let rows: [(&str, [Option<f64>; 3]); 3] = [
        ("active return", stats.map(|s| Some(s.active_return))),
        ("tracking error", stats.map(|s| s.tracking_error)),
        ("information ratio", stats.map(|s| s.information_ratio)),
    ];
    for (i, (name, v)) in rows.into_iter().enumerate() {
        let g = if i < 2 { e } else { f };
        let _ = writeln!(t, "{name:<22}{:>14}{:>14}{:>14}", g(v[0]), g(v[1]), g(v[2]));
    }
}

/// The trend signals of both methods scored against `true_trend` (generated data).
fn truth_rows(
    t: &mut String,
    a: &crate::signal::truth::TruthReport,
    b: &crate::signal::truth::TruthReport,
) {
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.1}"));
    let _ = writeln!(
        t,
        "{:<22}{:>14}{:>14}",
        "vs true_trend", "dead-zone fit", "L2 baseline"
    );
    let rows: [(&str, String, String); 5] = [
        (
            "direction accuracy",
            format!("{:.4}", a.direction_accuracy),
            format!("{:.4}", b.direction_accuracy),
        ),
        (
            "changes detected",
            format!("{}/{}", a.detected, a.regime_changes),
            format!("{}/{}", b.detected, b.regime_changes),
        ),
        ("delay mean (bars)", f(a.delay_mean), f(b.delay_mean)),
        ("delay median (bars)", f(a.delay_median), f(b.delay_median)),
        (
            "false flips/1000 bars",
            format!("{:.2}", a.false_flips_per_1000),
            format!("{:.2}", b.false_flips_per_1000),
        ),
    ];
    for (name, x, y) in rows {
        let _ = writeln!(t, "{name:<22}{x:>14}{y:>14}");
    }
}

/// Runs the demo into `out` (`out/data`, `out/market`, `out/sensor`).
pub fn run(out: &Path) -> Result<DemoOutcome, DemoError> {
    let data = out.join("data");
    std::fs::create_dir_all(&data).map_err(|source| BacktestError::OutDir {
        path: data.clone(),
        source,
    })?;
    let market_file = data.join("market.parquet");
    let sensor_file = data.join("sensor.parquet");
    gen::write(
        GenKind::Market,
        &GenOptions::new(MARKET_KEYS, MARKET_ROWS, SEED),
        &market_file,
    )?;
    gen::write(
        GenKind::Sensor,
        &GenOptions::new(SENSOR_KEYS, SENSOR_ROWS, SEED),
        &sensor_file,
    )?;

    let market_cfg = parse(MARKET_TOML, Path::new("config/market-atr.toml"))?;
    let sensor_cfg = parse(SENSOR_TOML, Path::new("config/sensor-grr.toml"))?;
    let market_out = out.join("market");
    let sensor_out = out.join("sensor");
    let opts = |input: &Path, out: &Path| BacktestOptions {
        input: Some(input.to_string_lossy().into_owned()),
        out: out.to_path_buf(),
        progress: true,
        report: true,
        shard: None,
        single_thread: false,
    };
    let market = backtest::run(&market_cfg, &opts(&market_file, &market_out))?;
    let sensor = backtest::run(&sensor_cfg, &opts(&sensor_file, &sensor_out))?;
    Ok(DemoOutcome {
        market,
        market_out,
        sensor,
        sensor_out,
    })
}
