//! Issue 10, target 5: what a small backtest pays before its first record and after its last,
//! as whole processes of the release binary, against the process floor in the same run.
//!
//! - `startup/version`: `deadband --version` — exec, dynamic linking, argument parsing: the floor;
//! - `startup/validate`: `deadband validate --config` of `benches/sm-rls-atr.toml` — the config loader;
//! - `startup/backtest_no_report`: `backtest --no-report` of 2 keys × 200 generated bars — opening
//!   the file, the replay, writing the outputs, the polars cross-check of the summary;
//! - `startup/backtest_report`: the same with the HTML report.
//!
//! With 400 rows the replay itself is a few microseconds, so each time minus the floor is fixed
//! cost. `scripts/bench.sh` prints the backtest's time and its excess over the floor.

use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{criterion_group, criterion_main, Criterion};
use deadband::run::gen::{write_market, GenOptions};

const BIN: &str = env!("CARGO_BIN_EXE_deadband");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sm-rls-atr.toml");

/// Runs the binary with `args` and checks that it succeeded.
fn run(args: &[&str]) {
    let status = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the release binary runs");
    assert!(status.success(), "deadband {args:?} failed: {status}");
}

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("small.parquet");
    write_market(&GenOptions::new(2, 200, 1), &data).unwrap();
    let path = |p: &Path| p.display().to_string();
    let (data, out) = (path(&data), path(&dir.path().join("out")));

    let mut g = c.benchmark_group("startup");
    g.sample_size(20);
    g.bench_function("version", |b| b.iter(|| run(&["--version"])));
    g.bench_function("validate", |b| {
        b.iter(|| run(&["validate", "--config", CONFIG]))
    });
    let backtest = [
        "backtest", "--config", CONFIG, "--input", &data, "--out", &out,
    ];
    g.bench_function("backtest_no_report", |b| {
        b.iter(|| run(&[&backtest[..], &["--no-report"]].concat()))
    });
    g.bench_function("backtest_report", |b| b.iter(|| run(&backtest)));
    g.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
