//! `[input] kind = "csv"` end to end: a backtest over CSV files writes the same events and the
//! same strategy results as the same data in Parquet.

use std::path::Path;

use deadband::config::parse;
use deadband::io::parquet::{read_events, ParquetSource, SourceOptions};
use deadband::record::{Payload, RecordKind};
use deadband::run::backtest::{self, BacktestOptions, Summary};
use deadband::run::gen::{write_market, write_sensor, GenOptions};

/// Writes every record of `parquet` to `csv`, `ts` as RFC 3339 with nanoseconds (UTC) and the
/// numbers in Rust's shortest round-trip form, so the CSV carries exactly the same values.
fn parquet_to_csv(parquet: &Path, csv_path: &Path, kind: RecordKind) {
    let mut src = ParquetSource::open(parquet.to_str().unwrap(), kind, SourceOptions::default())
        .expect("open parquet");
    let mut w = csv::Writer::from_path(csv_path).unwrap();
    let header: &[&str] = match kind {
        RecordKind::Bar => &[
            "key",
            "ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "true_trend",
        ],
        RecordKind::Measurement => &[
            "key",
            "ts",
            "value",
            "nominal",
            "lsl",
            "usl",
            "tool",
            "true_value",
        ],
    };
    w.write_record(header).unwrap();
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    while let Some(r) = src.next_record().unwrap() {
        let ts = chrono::DateTime::from_timestamp_nanos(r.ts)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut row = vec![r.key.to_string(), ts];
        match r.payload {
            Payload::Bar(b) => row.extend([
                b.open.to_string(),
                b.high.to_string(),
                b.low.to_string(),
                b.close.to_string(),
                opt(b.volume),
                opt(b.true_trend),
            ]),
            Payload::Measurement(m) => row.extend([
                m.value.to_string(),
                opt(m.nominal),
                opt(m.lsl),
                opt(m.usl),
                m.tool.map(|t| t.to_string()).unwrap_or_default(),
                opt(m.true_value),
            ]),
        }
        w.write_record(&row).unwrap();
    }
    w.flush().unwrap();
}

fn run(config: &str, kind: &str, input: &Path, out: &Path) -> Summary {
    let src = std::fs::read_to_string(config).unwrap();
    assert!(
        src.contains("[input]\nkind = \"parquet\""),
        "{config}: [input] starts with kind"
    );
    let src = src.replacen(
        "[input]\nkind = \"parquet\"",
        &format!("[input]\nkind = \"{kind}\""),
        1,
    );
    let cfg = parse(&src, Path::new(config)).expect("config");
    let opts = BacktestOptions {
        input: Some(input.to_str().unwrap().to_string()),
        out: out.to_path_buf(),
        progress: false,
        report: false,
        shard: None,
        single_thread: false,
    };
    backtest::run(&cfg, &opts).expect("backtest")
}

fn same_as_parquet(config: &str, kind: RecordKind) {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("in.parquet");
    let csv_file = dir.path().join("in.csv");
    let opts = GenOptions::new(3, 1500, 11);
    match kind {
        RecordKind::Bar => write_market(&opts, &pq).map(|_| ()),
        RecordKind::Measurement => write_sensor(&opts, &pq).map(|_| ()),
    }
    .unwrap();
    parquet_to_csv(&pq, &csv_file, kind);
    let a = run(config, "parquet", &pq, &dir.path().join("a"));
    let b = run(config, "csv", &csv_file, &dir.path().join("b"));
    let ea = read_events(&dir.path().join("a/events.parquet")).unwrap();
    let eb = read_events(&dir.path().join("b/events.parquet")).unwrap();
    assert!(ea.len() > 10, "the data makes events: {}", ea.len());
    assert_eq!(
        ea, eb,
        "{config}: events differ between Parquet and CSV input"
    );
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.strategy, b.strategy);
    assert_eq!(a.baseline, b.baseline);
}

#[test]
fn market_backtest_from_csv_equals_parquet() {
    same_as_parquet("config/market-atr.toml", RecordKind::Bar);
}

#[test]
fn sensor_backtest_from_csv_equals_parquet() {
    same_as_parquet("config/sensor-grr.toml", RecordKind::Measurement);
}
