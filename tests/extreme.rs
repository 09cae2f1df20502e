//! Extreme but valid prices (issue 9, finding 1): a close of 1e-300 followed by 1e10 is finite
//! and positive, but the bar-to-bar return overflows. No NaN or infinity may reach events, the
//! key's checkpoint state or a backtest summary.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use deadband::config::parse;
use deadband::io::state;
use deadband::pipeline::Processor;
use deadband::record::{Bar, Payload, Record};
use deadband::run::backtest::{self, BacktestOptions};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

/// A trending series with one key jumping from 1e-300 to 1e10 in the middle.
fn closes(extreme: bool) -> Vec<f64> {
    (0..200)
        .map(|i| match i {
            100 if extreme => 1e-300,
            101 if extreme => 1e10,
            _ => 100.0 + i as f64 * 0.2 + (i as f64 * 0.7).sin(),
        })
        .collect()
}

fn bar(close: f64) -> Bar {
    Bar {
        open: close,
        high: close,
        low: close,
        close,
        volume: None,
        true_trend: None,
    }
}

/// Paths of nulls and non-finite numbers in a JSON value.
fn bad_numbers(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(format!("{path} = null")),
        Value::Number(n) if !n.as_f64().is_some_and(f64::is_finite) => {
            out.push(format!("{path} = {n}"))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| bad_numbers(x, &format!("{path}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| bad_numbers(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

const CFG: &str = r#"
[input]
path = "x"
[zone.scale]
kind = "atr"
period = 5
[fit]
method = "sm_rls"
forgetting = 0.98
[signal]
horizon = 5
warmup = 5
band = 0.1
"#;

#[test]
fn overflowing_return_leaves_events_and_state_finite() {
    let c = parse(CFG, Path::new("t.toml")).unwrap();
    let mut p = Processor::new(Arc::new(c.processor)).unwrap();
    let mut events = Vec::new();
    for (i, close) in closes(true).into_iter().enumerate() {
        let rec = Record {
            key: "X",
            ts: i as i64,
            payload: Payload::Bar(bar(close)),
        };
        p.process(&rec, &mut events).unwrap();
    }
    let mut bad = Vec::new();
    for e in &events {
        bad_numbers(&serde_json::to_value(e).unwrap(), &e.id(), &mut bad);
    }
    assert!(bad.is_empty(), "non-finite event fields: {bad:?}");
    let core = p.key_state("X").unwrap();
    assert!(
        core.book.exposure().is_finite(),
        "exposure {}",
        core.book.exposure()
    );
    assert!(core.book.gross.is_finite(), "gross {}", core.book.gross);
    let fp = state::fingerprint(p.config().params_for("X"));
    let back = state::decode(&state::encode(core, &fp), &fp).expect("the state restores");
    assert_eq!(&back, core, "the state round-trips unchanged");
}

fn write_bars(path: &Path, extreme: bool) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
    ]));
    let mut rows = Vec::new();
    for (i, (a, b)) in closes(false).into_iter().zip(closes(extreme)).enumerate() {
        rows.push(("A", i as i64 * 60_000_000_000, a));
        rows.push(("B", i as i64 * 60_000_000_000, b));
    }
    let col = |f: &dyn Fn(&(&str, i64, f64)) -> f64| {
        Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
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
            col(&|r| r.2),
            col(&|r| r.2),
            col(&|r| r.2),
            col(&|r| r.2),
        ],
    )
    .unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deadband-ext-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Nulls and non-finite numbers of a backtest's summary.json.
fn summary_bad(dir: &Path, extreme: bool) -> Vec<String> {
    let input = dir.join(format!("bars-{extreme}.parquet"));
    write_bars(&input, extreme);
    let src = std::fs::read_to_string("config/market-atr.toml").unwrap();
    let cfg = parse(&src, Path::new("config/market-atr.toml")).unwrap();
    let out = dir.join(format!("out-{extreme}"));
    let opts = BacktestOptions {
        input: Some(input.to_string_lossy().into_owned()),
        out: out.clone(),
        progress: false,
        report: false,
        shard: None,
        single_thread: false,
    };
    backtest::run(&cfg, &opts).unwrap();
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let mut bad = Vec::new();
    bad_numbers(&serde_json::from_str(&text).unwrap(), "", &mut bad);
    bad
}

#[test]
fn overflowing_return_leaves_the_backtest_summary_finite() {
    let dir = tmp("summary");
    // The same run without the jump shows the summary's legitimate nulls (undefined ratios).
    let normal = summary_bad(&dir, false);
    let added: Vec<String> = summary_bad(&dir, true)
        .into_iter()
        .filter(|b| !normal.contains(b))
        .collect();
    assert!(
        added.is_empty(),
        "the jump adds nulls or non-finite values: {added:?}"
    );
}
