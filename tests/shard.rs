//! Sharded backtests: `backtest --shard I/N` for every I, merged with `deadband merge`, equal one
//! unsharded run — for N = 1, 2, 3, on market bars (6 keys, plus 3 keys that join halfway, so
//! the key counts of the shards differ over time) and on sensor measurements.
//!
//! "Equal": the events and fit rows are the same rows (compared after sorting; the merged files
//! are sorted already), `periods.parquet` has the same timestamps and key counts, and
//! `summary.json` is the same — integers, strings and `per_key` exactly, other floats within
//! 1e-9 relative, because the merge adds per-shard and per-period float sums in another order
//! than one run does (the last bits may differ). `elapsed_s` and `rows_per_s` are timings, not compared.
//! Merge refuses a missing shard, a duplicate, mismatched N and different settings; bad
//! `--shard` values are usage errors; the shard hash is pinned to independently computed values.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use deadband::config::{parse, Config};
use deadband::io::parquet::{read_events, PeriodReader};
use deadband::record::Event;
use deadband::run::backtest::{self, BacktestOptions, Summary};
use deadband::run::gen::{self, GenKind, GenOptions};
use deadband::run::merge::{self, MergeError};
use deadband::run::shard::{shard_of, Shard};
use deadband::signal::periods::PeriodSums;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use proptest::prelude::*;
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deadband-shard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(file: &str, extra: &str) -> Config {
    let src = std::fs::read_to_string(file).unwrap() + extra;
    parse(&src, Path::new(file)).unwrap()
}

fn backtest(cfg: &Config, input: &str, out: &Path, shard: Option<Shard>) -> Summary {
    let opts = BacktestOptions {
        input: Some(input.to_string()),
        out: out.to_path_buf(),
        progress: false,
        report: true,
        shard,
        single_thread: false,
    };
    backtest::run(cfg, &opts).unwrap()
}

fn read_batches(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// `n` key names whose shards satisfy `want(shard of 2, shard of 3)`.
fn names(prefix: &str, n: usize, want: impl Fn(u32, u32) -> bool) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| want(shard_of(k, 2), shard_of(k, 3)))
        .take(n)
        .collect()
}

/// A generated market file with its keys renamed to `names` (in key order) and only the rows
/// `keep(row of its key, rows per key)` kept, written to `out`.
fn market_file(out: &Path, names: &[String], seed: u64, keep: impl Fn(usize, usize) -> bool) {
    let tmp = out.with_extension("gen");
    let rows = 1500;
    gen::write(
        GenKind::Market,
        &GenOptions::new(names.len(), rows, seed),
        &tmp,
    )
    .unwrap();
    let batches = read_batches(&tmp);
    let all = concat_batches(&batches[0].schema(), &batches).unwrap();
    let keys = all.column_by_name("key").unwrap().as_string::<i32>();
    let mut seen = std::collections::HashMap::new();
    let mut mask = Vec::new();
    let mut renamed = Vec::new();
    for k in keys.iter() {
        let k = k.unwrap();
        let n = seen.len();
        let (index, row) = {
            let e = seen.entry(k.to_string()).or_insert((n, 0usize));
            e.1 += 1;
            *e
        };
        mask.push(keep(row - 1, rows));
        renamed.push(names[index].clone());
    }
    let i = all.schema().index_of("key").unwrap();
    let mut cols = all.columns().to_vec();
    cols[i] = Arc::new(StringArray::from(renamed));
    let all = RecordBatch::try_new(all.schema(), cols).unwrap();
    let kept = filter_record_batch(&all, &BooleanArray::from(mask)).unwrap();
    let mut w = ArrowWriter::try_new(File::create(out).unwrap(), kept.schema(), None).unwrap();
    w.write(&kept).unwrap();
    w.close().unwrap();
    std::fs::remove_file(tmp).unwrap();
}

/// Market input: 6 "dense" keys with a bar at every timestamp, and 3 "sparse" keys that join
/// halfway and then have a bar at every third timestamp only. The names are chosen so that, for
/// 2 and for 3 shards, one shard holds only sparse keys: at most timestamps it has no period
/// of its own, and the merged key count must come from its count *as of* that time.
fn market_input(dir: &Path) -> String {
    let dense = names("D", 6, |two, three| two == 0 && three != 2);
    let sparse = names("S", 3, |two, three| two == 1 && three == 2);
    market_file(&dir.join("a.parquet"), &dense, 21, |_, _| true);
    market_file(&dir.join("b.parquet"), &sparse, 22, |row, rows| {
        row >= rows / 2 && row % 3 == 0
    });
    format!("{}/*.parquet", dir.display())
}

fn sorted_events(path: &Path) -> Vec<Event> {
    let mut ev = read_events(path).unwrap();
    ev.sort_by(|a, b| (a.ts, &a.key, a.seq, a.id()).cmp(&(b.ts, &b.key, b.seq, b.id())));
    ev
}

fn periods(path: &Path) -> Vec<PeriodSums> {
    let mut r = PeriodReader::open(path).unwrap();
    std::iter::from_fn(|| r.next_period().unwrap()).collect()
}

/// Rows of a fit file as (ts, key, row text) sorted, for an exact comparison.
fn fit_rows(path: &Path) -> Vec<(i64, String, String)> {
    let mut rows = Vec::new();
    for b in read_batches(path) {
        let ts = b.column_by_name("ts").unwrap();
        let ts = ts.as_primitive::<TimestampNanosecondType>();
        let key = b.column_by_name("key").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            // Every column but `ts` (its UTC zone needs chrono-tz to print), which is compared
            // as a number.
            let text: Vec<String> = b
                .columns()
                .iter()
                .filter(|c| c.data_type() != ts.data_type())
                .map(|c| arrow::util::display::array_value_to_string(c, i).unwrap())
                .collect();
            rows.push((ts.value(i), key.value(i).to_string(), text.join("|")));
        }
    }
    rows
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Asserts two JSON values equal: numbers that are not both integers within 1e-9 relative.
fn assert_json_eq(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut kx: Vec<_> = x.keys().collect();
            let mut ky: Vec<_> = y.keys().collect();
            kx.sort();
            ky.sort();
            assert_eq!(kx, ky, "fields of {at}");
            for k in kx {
                if k == "elapsed_s" || k == "rows_per_s" {
                    continue;
                }
                assert_json_eq(&x[k], &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "length of {at}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_json_eq(p, q, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if !(x.is_f64() || y.is_f64()) => {
            assert_eq!(x, y, "{at}")
        }
        (Value::Number(x), Value::Number(y)) => {
            let (p, q) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(close(p, q), "{at}: {p} vs {q}");
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Runs N shards and merges them; compares with the unsharded run in `whole`.
fn check_merge_equals_whole(cfg: &Config, input: &str, dir: &Path, whole: &Path, n: u32) {
    let dirs: Vec<PathBuf> = (0..n)
        .map(|i| {
            let d = dir.join(format!("shard{i}of{n}"));
            let s = backtest(cfg, input, &d, Some(Shard { index: i, count: n }));
            assert_eq!(s.shard, Some(Shard { index: i, count: n }));
            d
        })
        .collect();
    let out = dir.join(format!("merged{n}"));
    let merged = merge::run(&out, &dirs, true).unwrap();
    let one: Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("summary.json")).unwrap())
            .unwrap();
    let got: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        got.get("shard").is_none(),
        "a merged summary is not a shard"
    );
    assert_json_eq(&got, &one, &format!("summary (N = {n})"));
    // Counted again by polars from the merged fit file, each key's mean zone added in sorted
    // order: the same bits as one run's, whatever the shards.
    assert_eq!(got["per_key"], one["per_key"], "per_key (N = {n})");
    assert!(merged.rows > 0 && merged.shard.is_none());

    let events = read_events(&out.join("events.parquet")).unwrap();
    let whole_events = sorted_events(&whole.join("events.parquet"));
    assert!(!whole_events.is_empty());
    assert_eq!(
        events, whole_events,
        "events (N = {n}), the merged file in sorted order"
    );
    let (a, b) = (
        fit_rows(&out.join("fit.parquet")),
        fit_rows(&whole.join("fit.parquet")),
    );
    let mut sorted_b = b.clone();
    sorted_b.sort();
    assert_eq!(a, sorted_b, "fit rows (N = {n})");

    let (p, q) = (
        periods(&out.join("periods.parquet")),
        periods(&whole.join("periods.parquet")),
    );
    assert_eq!(p.len(), q.len(), "periods (N = {n})");
    for (x, y) in p.iter().zip(&q) {
        assert_eq!((x.ts, x.keys), (y.ts, y.keys), "period keys (N = {n})");
        assert!(close(x.strategy, y.strategy) && close(x.baseline, y.baseline));
        assert_eq!(x.active.is_some(), y.active.is_some());
    }

    // Every key in exactly one shard: the one its hash names.
    let mut seen = std::collections::BTreeMap::new();
    for (i, d) in dirs.iter().enumerate() {
        for (_, key, _) in fit_rows(&d.join("fit.parquet")) {
            assert_eq!(shard_of(&key, n), i as u32, "{key}");
            if let Some(j) = seen.insert(key.clone(), i) {
                assert_eq!(j, i, "{key} in shards {j} and {i}");
            }
        }
    }
    let all: std::collections::BTreeSet<_> = b.into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        seen.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        all
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("no per-key charts"),
        "the merged report says so"
    );
}

#[test]
fn market_shards_merged_equal_one_run() {
    let dir = tmp("market");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let input = market_input(&data);
    let cfg = config("config/market-atr.toml", "");
    let whole = dir.join("whole");
    let s = backtest(&cfg, &input, &whole, None);
    assert_eq!(s.keys, 9);
    assert!(s.shard.is_none());
    assert!(s.strategy.trend_truth.is_some() && s.active.is_some());
    // The late keys join halfway: the key counts of the periods grow from 6 to 9.
    let p = periods(&whole.join("periods.parquet"));
    assert_eq!((p[0].keys, p[p.len() - 1].keys), (6, 9));
    for n in 1..=3 {
        check_merge_equals_whole(&cfg, &input, &dir, &whole, n);
    }
    // The sparse-only shards really were absent from most timestamps.
    for sparse in ["shard1of2", "shard2of3"] {
        let own = periods(&dir.join(sparse).join("periods.parquet")).len();
        assert!(
            0 < own && own < p.len() / 4,
            "{sparse}: {own} of {}",
            p.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sensor_shards_merged_equal_one_run() {
    let dir = tmp("sensor");
    let input = dir.join("sensor.parquet");
    gen::write(GenKind::Sensor, &GenOptions::new(6, 1200, 8), &input).unwrap();
    let input = input.to_string_lossy().into_owned();
    let cfg = config("config/sensor-grr.toml", "");
    let whole = dir.join("whole");
    let s = backtest(&cfg, &input, &whole, None);
    assert!(s.strategy.compensations.unwrap() > 0 && s.active.is_none());
    for n in 1..=3 {
        check_merge_equals_whole(&cfg, &input, &dir, &whole, n);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn refused(out: &Path, dirs: &[PathBuf], want: &str) {
    match merge::run(out, dirs, false) {
        Err(e @ MergeError::Refused { .. }) => {
            assert!(e.is_bad_input());
            assert!(e.to_string().contains(want), "{e}");
        }
        other => panic!("expected a refusal containing {want:?}, got {other:?}"),
    }
}

#[test]
fn merge_refuses_incomplete_or_mixed_shards() {
    let dir = tmp("refuse");
    let input = dir.join("m.parquet");
    gen::write(GenKind::Market, &GenOptions::new(4, 300, 3), &input).unwrap();
    let input = input.to_string_lossy().into_owned();
    let cfg = config("config/market-atr.toml", "");
    let run = |i, n| {
        let d = dir.join(format!("s{i}of{n}"));
        backtest(&cfg, &input, &d, Some(Shard { index: i, count: n }));
        d
    };
    let (a, b, c) = (run(0, 3), run(1, 3), run(2, 3));
    let out = dir.join("out");
    refused(&out, &[a.clone(), c.clone()], "shard 1/3 missing");
    refused(&out, &[a.clone(), b.clone(), b.clone()], "both shard 1/3");
    refused(&out, &[a.clone(), b.clone(), run(1, 2)], "share N");
    let mut other = cfg.clone();
    other.periods_per_year = Some(252.0);
    let d = dir.join("other");
    backtest(&other, &input, &d, Some(Shard { index: 2, count: 3 }));
    refused(&out, &[a.clone(), b.clone(), d], "different settings");
    let missing = merge::run(&out, &[a.clone(), b.clone(), dir.join("nothing")], false);
    assert!(
        matches!(&missing, Err(e @ MergeError::ReadParts { .. }) if e.is_bad_input()),
        "{missing:?}"
    );
    assert!(
        !out.join("summary.json").exists(),
        "a refused merge writes nothing"
    );
    // Through the CLI: exit 2 with the reason.
    let cli = Command::new(env!("CARGO_BIN_EXE_deadband"))
        .arg("merge")
        .arg(&out)
        .args([&a, &c])
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cli.stderr).contains("missing"));
    merge::run(&out, &[c, a, b], false).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_shard_arguments_are_usage_errors() {
    for bad in ["3/3", "1/0", "x/2", "2", "1/-2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_deadband"))
            .args([
                "backtest",
                "--config",
                "config/market-atr.toml",
                "--shard",
                bad,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("I/N") && err.contains("0 <= I < N"),
            "{bad}: {err}"
        );
    }
}

/// Known values of the shard hash. Computed independently with Python's `blake3` package
/// (PyPI `blake3` 1.0.11, bindings of the reference implementation):
/// `v = int.from_bytes(blake3.blake3(key.encode()).digest()[:8], "little")`, then `v % n`.
/// The empty key's digest begins af1349b9f5f9a1a6, the published BLAKE3 hash of "".
#[test]
fn shard_hash_is_pinned() {
    // (key, v % 2, v % 3, v % 4, v % 7)
    let known = [
        ("SYM000", [0, 1, 2, 1]),   // v = 17618816343221037778
        ("SYM001", [0, 0, 2, 5]),   // v = 16163451468180404190
        ("SYM005", [0, 1, 2, 4]),   // v = 15814005787520950174
        ("M01/bore", [0, 2, 2, 4]), // v = 18036489311391760346
        ("", [1, 1, 3, 1]),         // v = 12007152915317330863
        ("é", [0, 0, 2, 0]),        // v = 1490104528390639686
        ("key-with-a-long-name-0123456789", [1, 1, 1, 4]), // v = 3885412068811042165
    ];
    for (key, want) in known {
        let got = [2, 3, 4, 7].map(|n| shard_of(key, n));
        assert_eq!(got, want, "{key:?}");
        assert_eq!(shard_of(key, 1), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The shards of any key set partition it: each key is kept by exactly one shard.
    #[test]
    fn shards_partition_any_key_set(
        keys in prop::collection::btree_set(".{0,12}", 0..60),
        n in 1u32..9,
    ) {
        let mut counts = vec![0usize; n as usize];
        for k in &keys {
            let owners: Vec<u32> = (0..n)
                .filter(|&i| Shard { index: i, count: n }.keeps(Some(k)))
                .collect();
            prop_assert_eq!(owners.len(), 1, "{:?}", k);
            prop_assert_eq!(owners[0], shard_of(k, n));
            counts[owners[0] as usize] += 1;
        }
        prop_assert_eq!(counts.iter().sum::<usize>(), keys.len());
    }
}
