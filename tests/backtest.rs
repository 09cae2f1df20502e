//! End to end: gen -> backtest -> the files a user reads (events, fit, summary, report), checked
//! against independent truths: schema per design §2, a second count by kind, an independently
//! computed ATR, determinism, no look-ahead, and rejected-record counts.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use deadband::config::{parse, Config};
use deadband::io::parquet::read_events;
use deadband::record::EventBody;
use deadband::run::backtest::{self, BacktestOptions, Summary};
use deadband::run::gen::{self, GenKind, GenOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deadband-bt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn market_cfg(extra: &str) -> Config {
    let src = std::fs::read_to_string("config/market-atr.toml").unwrap() + extra;
    parse(&src, Path::new("config/market-atr.toml")).unwrap()
}

fn run(cfg: &Config, input: &Path, out: &Path) -> Summary {
    run_with(cfg, input, out, false, true)
}

fn run_with(cfg: &Config, input: &Path, out: &Path, single_thread: bool, report: bool) -> Summary {
    let opts = BacktestOptions {
        input: Some(input.to_string_lossy().into_owned()),
        out: out.to_path_buf(),
        progress: false,
        report,
        shard: None,
        single_thread,
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

#[test]
fn outputs_have_the_design_schema_and_agree_with_each_other() {
    let dir = tmp("schema");
    let input = dir.join("market.parquet");
    gen::write(GenKind::Market, &GenOptions::new(3, 3000, 11), &input).unwrap();
    let summary = run(&market_cfg(""), &input, &dir.join("out"));
    assert_eq!(summary.rows, 9000);
    assert_eq!(summary.keys, 3);

    let events = read_batches(&dir.join("out/events.parquet"));
    let schema = events[0].schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("id"), DataType::Utf8);
    assert_eq!(ty("key"), DataType::Utf8);
    assert_eq!(ty("kind"), DataType::Utf8);
    assert_eq!(
        ty("ts"),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert_eq!(ty("direction"), DataType::Int8);
    for f in [
        "strength",
        "level",
        "slope",
        "zone",
        "position_from",
        "position_to",
        "turnover",
        "cost",
    ] {
        assert_eq!(ty(f), DataType::Float64, "{f}");
    }
    let fit = read_batches(&dir.join("out/fit.parquet"));
    let fs = fit[0].schema();
    for (n, t) in [
        ("key", DataType::Utf8),
        ("y", DataType::Float64),
        ("level", DataType::Float64),
        ("zone", DataType::Float64),
        ("inside", DataType::Boolean),
        ("updated", DataType::Boolean),
        ("regime", DataType::Utf8),
    ] {
        assert_eq!(fs.field_with_name(n).unwrap().data_type(), &t, "{n}");
    }
    assert_eq!(fit.iter().map(RecordBatch::num_rows).sum::<usize>(), 9000);

    // summary.json: the documented fields, and polars' count by kind equals a count of the file.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap())
            .unwrap();
    for f in ["rows", "keys", "elapsed_s", "rows_per_s"] {
        assert!(json.get(f).is_some(), "summary.json lacks {f}");
    }
    for side in ["strategy", "baseline"] {
        for f in [
            "turnover",
            "rebalances",
            "gross_return",
            "costs",
            "net_return",
            "sharpe",
            "max_drawdown",
            "hit_rate",
            "dead_zone_ratio",
            "update_rate",
            "trend_events",
        ] {
            assert!(json[side].get(f).is_some(), "summary.json {side} lacks {f}");
        }
    }
    let evs = read_events(&dir.join("out/events.parquet")).unwrap();
    let trend = evs
        .iter()
        .filter(|e| matches!(e.body, EventBody::Trend { .. }))
        .count() as u64;
    let reb = evs
        .iter()
        .filter(|e| matches!(e.body, EventBody::Rebalance { .. }))
        .count() as u64;
    assert!(trend > 0 && reb > 0);
    assert_eq!(summary.events_by_kind.get("trend"), Some(&trend));
    assert_eq!(summary.events_by_kind.get("rebalance"), Some(&reb));
    assert_eq!(summary.strategy.trend_events, trend);
    assert_eq!(summary.strategy.rebalances, reb);
    let s = &summary.strategy;
    assert!((s.net_return - (s.gross_return - s.costs)).abs() < 1e-12);
    assert!(dir.join("out/report.html").exists());

    // Active statistics (bars): in summary.json, IR = active return / TE, and active returns
    // are linear: (strategy - hold) - (baseline - hold) = strategy - baseline.
    for vs in ["vs_baseline", "vs_buy_and_hold", "baseline_vs_buy_and_hold"] {
        for f in [
            "active_return",
            "tracking_error",
            "information_ratio",
            "periods",
        ] {
            assert!(
                json["active"][vs].get(f).is_some(),
                "summary.json active.{vs} lacks {f}"
            );
        }
    }
    let act = summary.active.expect("bars have active statistics");
    assert_eq!(
        act.vs_baseline.periods, 3000,
        "3 keys x 3000 rows on one clock"
    );
    for a in [
        act.vs_baseline,
        act.vs_buy_and_hold,
        act.baseline_vs_buy_and_hold,
    ] {
        let (te, ir) = (a.tracking_error.unwrap(), a.information_ratio.unwrap());
        assert!(te > 0.0 && (ir - a.active_return / te).abs() < 1e-12);
    }
    let d = act.vs_buy_and_hold.active_return - act.baseline_vs_buy_and_hold.active_return;
    assert!((d - act.vs_baseline.active_return).abs() < 1e-12);
}

#[test]
fn two_runs_give_identical_events() {
    let dir = tmp("determinism");
    let input = dir.join("market.parquet");
    gen::write(GenKind::Market, &GenOptions::new(2, 2000, 5), &input).unwrap();
    let cfg = market_cfg("");
    run(&cfg, &input, &dir.join("a"));
    run(&cfg, &input, &dir.join("b"));
    let a = read_events(&dir.join("a/events.parquet")).unwrap();
    let b = read_events(&dir.join("b/events.parquet")).unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

/// The baseline lane on its own thread (the default) and on the strategy's thread give the same
/// files byte for byte, the same report and summary but for the timings: bars and measurements
/// (the closed loop of tool offsets), over several of the helper's batches and a partial last
/// one. A run without the report (which then collects nothing for it) gives the same files and
/// summary too.
#[test]
fn the_baseline_thread_and_the_report_change_no_output() {
    let dir = tmp("threads");
    let sensor = deadband::config::load(Path::new("config/sensor-grr.toml")).unwrap();
    for (name, kind, cfg) in [
        ("market", GenKind::Market, market_cfg("")),
        ("sensor", GenKind::Sensor, sensor),
    ] {
        let input = dir.join(format!("{name}.parquet"));
        gen::write(kind, &GenOptions::new(3, 3001, 8), &input).unwrap();
        let two = dir.join(format!("{name}-two"));
        let one = dir.join(format!("{name}-one"));
        let bare = dir.join(format!("{name}-no-report"));
        let a = run_with(&cfg, &input, &two, false, true);
        let b = run_with(&cfg, &input, &one, true, true);
        let c = run_with(&cfg, &input, &bare, false, false);
        assert_eq!(a.rows, 9003);
        assert_same_outputs(&format!("{name}, one thread"), (&two, &a), (&one, &b));
        assert_same_outputs(&format!("{name}, no report"), (&two, &a), (&bare, &c));
        assert!(!bare.join("report.html").exists());
        // The report's equity curves take the baseline's equity record by record; only its
        // subtitle's rate differs.
        let report = |d: &Path| {
            let html = std::fs::read_to_string(d.join("report.html")).unwrap();
            let kept: Vec<&str> = html.lines().filter(|l| !l.contains("rows/s")).collect();
            kept.join("\n")
        };
        assert!(report(&two) == report(&one), "{name}: reports differ");
    }
}

/// Two runs' events, fit rows and periods are the same bytes, and their summaries the same but
/// for the timings.
fn assert_same_outputs(what: &str, (x, xs): (&Path, &Summary), (y, ys): (&Path, &Summary)) {
    for file in ["events.parquet", "fit.parquet", "periods.parquet"] {
        assert!(x.join(file).exists(), "{what}: no {file}");
        assert!(
            std::fs::read(x.join(file)).unwrap() == std::fs::read(y.join(file)).unwrap(),
            "{what}: {file} differs"
        );
    }
    let untimed = |s: &Summary| {
        let mut v = serde_json::to_value(s).unwrap();
        let o = v.as_object_mut().unwrap();
        assert!(o.remove("elapsed_s").is_some() && o.remove("rows_per_s").is_some());
        v
    };
    assert_eq!(untimed(xs), untimed(ys), "{what}: summaries differ");
}

/// Generation is a per-key stream, so a shorter file is a prefix of a longer one (checked here);
/// the records added after the short file's end must not change any earlier event.
#[test]
fn no_look_ahead_in_replay() {
    let dir = tmp("lookahead");
    let (short, long) = (dir.join("short.parquet"), dir.join("long.parquet"));
    gen::write(GenKind::Market, &GenOptions::new(2, 1500, 9), &short).unwrap();
    gen::write(GenKind::Market, &GenOptions::new(2, 6000, 9), &long).unwrap();
    let closes = |p: &Path| -> Vec<f64> {
        read_batches(p)
            .iter()
            .flat_map(|b| {
                let c = b
                    .column_by_name("close")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .unwrap()
                    .clone();
                c.values().to_vec()
            })
            .collect()
    };
    let (cs, cl) = (closes(&short), closes(&long));
    assert_eq!(
        cs[..],
        cl[..cs.len()],
        "the short file is a prefix of the long one"
    );
    let cfg = market_cfg("");
    run(&cfg, &short, &dir.join("s"));
    run(&cfg, &long, &dir.join("l"));
    let es = read_events(&dir.join("s/events.parquet")).unwrap();
    let el = read_events(&dir.join("l/events.parquet")).unwrap();
    // The short file ends at its last bar: every event up to there must be the same.
    let cut = es
        .iter()
        .map(|e| e.ts)
        .max()
        .unwrap()
        .max(1_704_153_600_000_000_000 + 1499 * 60_000_000_000);
    let upto: Vec<_> = el.iter().filter(|e| e.ts <= cut).cloned().collect();
    assert_eq!(es, upto);
    assert!(
        el.len() > es.len(),
        "the longer replay has later events, so the comparison is not vacuous"
    );
}

/// With multiplier 1 and no regimes, fit.parquet's zone is the TA-Lib ATR(14) of the bars,
/// computed here independently from the bars in the input file.
#[test]
fn fit_zone_is_the_atr() {
    let dir = tmp("atr");
    let input = dir.join("m.parquet");
    gen::write(GenKind::Market, &GenOptions::new(1, 800, 3), &input).unwrap();
    let src = "[input]\npath = \"x\"\n[zone.scale]\nkind = \"atr\"\nperiod = 14\nmultiplier = 1.0\nseed = \"talib\"\n[output]\nemit_fit = true\n";
    let cfg = parse(src, Path::new("atr.toml")).unwrap();
    run(&cfg, &input, &dir.join("out"));
    let col = |b: &RecordBatch, n: &str| {
        b.column_by_name(n)
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    let bars = read_batches(&input);
    let (mut h, mut l, mut c) = (vec![], vec![], vec![]);
    for b in &bars {
        h.extend(col(b, "high"));
        l.extend(col(b, "low"));
        c.extend(col(b, "close"));
    }
    let zone: Vec<f64> = read_batches(&dir.join("out/fit.parquet"))
        .iter()
        .flat_map(|b| col(b, "zone"))
        .collect();
    // TA-Lib: TR_i = max(H-L, |H-C_prev|, |L-C_prev|) for i >= 1; seed = mean(TR_1..TR_14) at bar
    // 14; then ATR_i = (13·ATR_{i-1} + TR_i)/14.
    let n = 14;
    let tr = |i: usize| {
        (h[i] - l[i])
            .max((h[i] - c[i - 1]).abs())
            .max((l[i] - c[i - 1]).abs())
    };
    let mut atr = (1..=n).map(tr).sum::<f64>() / n as f64;
    assert!(
        (zone[n] - atr).abs() <= 1e-9 * atr,
        "bar {n}: {} vs {atr}",
        zone[n]
    );
    assert_eq!(zone.len(), h.len(), "one fit row per bar");
    for (i, z) in zone.iter().enumerate().skip(n + 1) {
        atr = (atr * (n as f64 - 1.0) + tr(i)) / n as f64;
        assert!((z - atr).abs() <= 1e-9 * atr, "bar {i}: {z} vs {atr}");
    }
    assert!(
        zone[..n].iter().all(|z| z.is_finite() && *z > 0.0),
        "warm-up zone is never zero or NaN"
    );
}

/// A file with invalid rows and cross-file duplicates: each is counted by reason, good rows kept.
#[test]
fn bad_rows_are_counted_and_good_rows_processed() {
    let dir = tmp("bad");
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("open", DataType::Float64, true),
        Field::new("high", DataType::Float64, true),
        Field::new("low", DataType::Float64, true),
        Field::new("close", DataType::Float64, true),
    ]));
    // key, ts, open, high, low, close
    type Row<'a> = (Option<&'a str>, i64, f64, f64, f64, f64);
    let write = |name: &str, rows: &[Row]| {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(
                    TimestampNanosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.4).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.5).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(dir.join(name)).unwrap(), schema.clone(), None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    };
    let mut a = Vec::new();
    for i in 0..100i64 {
        let p = 100.0 + (i as f64 * 0.3).sin();
        a.push((Some("A"), i, p, p + 0.5, p - 0.5, p));
    }
    a[10].5 = f64::NAN; // not finite
    a[20].3 = a[20].4 - 1.0; // high < low
    a[30].5 = a[30].3 + 1.0; // close above high
    a[40].2 = -1.0; // negative open (and outside range: price check comes first)
    a[50].0 = None; // null key
    write("a.parquet", &a);
    // The second file repeats three of A's timestamps: duplicates.
    write(
        "b.parquet",
        &[
            (Some("A"), 60, 100.0, 100.5, 99.5, 100.0),
            (Some("A"), 61, 100.0, 100.5, 99.5, 100.0),
            (Some("A"), 62, 100.0, 100.5, 99.5, 100.0),
        ],
    );
    let cfg = parse("[input]\npath = \"x\"\n", Path::new("bad.toml")).unwrap();
    let s = run(&cfg, &dir.join("*.parquet"), &dir.join("out"));
    assert_eq!(s.rows, 103);
    assert_eq!(s.rejected.invalid.get("not_finite"), Some(&1));
    assert_eq!(s.rejected.invalid.get("high_below_low"), Some(&1));
    assert_eq!(
        s.rejected.invalid.get("open_or_close_outside_range"),
        Some(&1)
    );
    assert_eq!(s.rejected.invalid.get("non_positive_price"), Some(&1));
    assert_eq!(s.rejected.invalid.get("empty_key"), Some(&1));
    assert_eq!(s.rejected.duplicate, 3);
    assert_eq!(s.accepted, 103 - 8);
}

/// Closed loop on generated tool wear: compensation must reduce out-of-tolerance parts compared
/// with no compensation at all (counted directly from the raw file).
#[test]
fn sensor_backtest_compensates_tool_wear() {
    let dir = tmp("sensor");
    let input = dir.join("s.parquet");
    gen::write(GenKind::Sensor, &GenOptions::new(3, 2000, 4), &input).unwrap();
    let cfg = deadband::config::load(Path::new("config/sensor-grr.toml")).unwrap();
    let s = run(&cfg, &input, &dir.join("out"));
    let mut raw_oot = 0u64;
    for b in read_batches(&input) {
        let f = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .clone()
        };
        let (v, lo, hi) = (f("value"), f("lsl"), f("usl"));
        raw_oot += (0..b.num_rows())
            .filter(|&i| v.value(i) < lo.value(i) || v.value(i) > hi.value(i))
            .count() as u64;
    }
    let comps = s.strategy.compensations.unwrap();
    let oot = s.strategy.out_of_tolerance.unwrap();
    assert!(comps > 0, "tool wear needs compensations");
    assert!(
        oot * 4 < raw_oot,
        "closed loop {oot} vs uncompensated {raw_oot}"
    );
    assert!(s.baseline.compensations.unwrap() > 0);
    assert!(s.strategy.spc_alarms.is_some());
    assert!(s.active.is_none(), "active statistics are for bars");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deadband"))
}

#[test]
fn cli_validate_and_errors_exit_codes() {
    let ok = bin()
        .args(["validate", "--config", "config/market-atr.toml"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = tmp("cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[input]\npath = \"x\"\n[fit]\nmethd = \"rls\"\n").unwrap();
    let out = bin()
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4:1") && err.contains("did you mean `method`"),
        "{err}"
    );
    // A missing input column is a bad input (2) naming the column and the file.
    let input = dir.join("sensor.parquet");
    gen::write(GenKind::Sensor, &GenOptions::new(1, 10, 1), &input).unwrap();
    let out = bin()
        .args(["backtest", "--config", "config/market-atr.toml", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(dir.join("o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open") && err.contains("sensor.parquet"),
        "{err}"
    );
}

#[test]
fn demo_runs_and_points_at_the_reports() {
    let dir = tmp("demo");
    let out = bin().args(["demo", "--out"]).arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("turnover reduction vs baseline"), "{text}");
    assert!(
        text.contains(&dir.join("market/report.html").display().to_string()),
        "{text}"
    );
    assert!(dir.join("sensor/report.html").exists());
}
