//! Issue 10, target 2: a whole replay against the bare decode of the same columns of the same
//! file, in one run.
//!
//! - `replay_file/decode`: arrow-rs reads the columns a bar replay reads (`key`, `ts`, OHLC,
//!   `volume`, `true_trend`) into Arrow arrays, 8192 rows per batch, single-threaded — the floor;
//! - `replay_file/backtest`: `deadband backtest --no-report` on that file with
//!   `benches/sm-rls-atr.toml` (strategy + L2 baseline, `emit_fit = false`): open, replay, write
//!   `events.parquet`, the polars cross-check and `summary.json` (the baseline lane on a second
//!   thread, the default);
//! - `replay_file/backtest_one_thread`: the same with `--single-thread` (both lanes on one
//!   thread), to show what the second thread buys.
//!
//! The file is generated once per run: `gen market --keys 4 --rows 250000 --seed 1` (1 M bars;
//! the 20 M would make one sample take half a minute). `DEADBAND_BENCH_ROWS` sets the
//! rows per key. `scripts/bench.sh` prints `backtest / decode`.

use std::fs::File;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deadband::config::parse;
use deadband::run::backtest::{self, BacktestOptions};
use deadband::run::gen::{write_market, GenOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

const KEYS: usize = 4;
const COLUMNS: [&str; 8] = [
    "key",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "true_trend",
];

fn decode(path: &Path) -> usize {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let roots: Vec<usize> = COLUMNS
        .iter()
        .map(|c| b.schema().index_of(c).unwrap())
        .collect();
    let mask = ProjectionMask::roots(b.parquet_schema(), roots);
    let reader = b
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .unwrap();
    let mut rows = 0;
    for batch in reader {
        let batch = black_box(batch.unwrap());
        rows += batch.num_rows();
    }
    rows
}

fn replay_file(c: &mut Criterion) {
    // `cargo test --all-targets` runs each bench once as a check (without `--bench`): a small file.
    let default = if std::env::args().any(|a| a == "--bench") {
        250_000
    } else {
        2_000
    };
    let rows_per_key: usize = std::env::var("DEADBAND_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("market.parquet");
    write_market(&GenOptions::new(KEYS, rows_per_key, 1), &input).unwrap();
    let rows = (KEYS * rows_per_key) as u64;
    let path = Path::new("benches/sm-rls-atr.toml");
    let cfg = parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    let opts = BacktestOptions {
        input: Some(input.to_str().unwrap().to_string()),
        out: dir.path().join("out"),
        progress: false,
        report: false,
        shard: None,
        single_thread: false,
    };

    let mut g = c.benchmark_group("replay_file");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows));
    g.bench_function("decode", |b| {
        b.iter(|| assert_eq!(decode(&input) as u64, rows));
    });
    g.bench_function("backtest", |b| {
        b.iter(|| assert_eq!(backtest::run(&cfg, &opts).unwrap().rows, rows));
    });
    let one = BacktestOptions {
        single_thread: true,
        ..opts.clone()
    };
    g.bench_function("backtest_one_thread", |b| {
        b.iter(|| assert_eq!(backtest::run(&cfg, &one).unwrap().rows, rows));
    });
    g.finish();
}

criterion_group!(benches, replay_file);
criterion_main!(benches);
