//! CSV source: the same data as Parquet and as CSV gives the same record sequence (merge order,
//! tie-breaking, both `ts` notations), bad values become rejected records, and errors name file,
//! line and column.
//!
//! Parquet inputs come from `deadband::run::gen`; the CSV files are written here from the records
//! read back from those Parquet files, so both sources see the same values.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, FixedOffset, SecondsFormat};

use deadband::io::csv::CsvSource;
use deadband::io::parquet::{ParquetSource, SourceError, SourceOptions};
use deadband::record::{Bar, Invalid, Measurement, Payload, RecordKind, Ts};
use deadband::run::gen::{write_market, write_sensor, GenOptions, DEFAULT_START_TS};

type Owned = (String, Ts, Payload);

fn drain_csv(src: &mut CsvSource) -> Vec<Owned> {
    let mut out = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        out.push((r.key.to_string(), r.ts, r.payload));
    }
    out
}

fn drain_pq(src: &mut ParquetSource) -> Vec<Owned> {
    let mut out = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        out.push((r.key.to_string(), r.ts, r.payload));
    }
    out
}

fn opts(sort: bool) -> SourceOptions {
    SourceOptions {
        batch_rows: 16,
        sort,
    }
}

fn csv_open(pattern: &Path, kind: RecordKind) -> Result<CsvSource, SourceError> {
    CsvSource::open(pattern.to_str().unwrap(), kind, opts(false))
}

fn read_all(path: &Path, kind: RecordKind) -> Vec<Owned> {
    drain_csv(&mut csv_open(path, kind).unwrap())
}

fn err_text<T>(r: Result<T, SourceError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// Drains until the first error and returns its text.
fn stream_err(src: &mut CsvSource) -> String {
    loop {
        match src.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("read to the end without error"),
            Err(e) => return e.to_string(),
        }
    }
}

/// How the `ts` column is written.
#[derive(Clone, Copy)]
enum TsText {
    Nanos,
    /// RFC 3339 in this offset from UTC (seconds east).
    Rfc3339(i32),
}

fn ts_text(ts: Ts, how: TsText) -> String {
    match how {
        TsText::Nanos => ts.to_string(),
        TsText::Rfc3339(east) => DateTime::from_timestamp_nanos(ts)
            .with_timezone(&FixedOffset::east_opt(east).unwrap())
            .to_rfc3339_opts(SecondsFormat::AutoSi, east == 0),
    }
}

/// `None` as an empty field; `f64` Display is the shortest text that parses back exactly.
fn opt_text(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// Writes `records` as CSV with the columns in a shuffled order plus an ignored `note` column
/// that needs quoting.
fn write_csv(path: &Path, records: &[Owned], how: TsText) {
    let mut w = csv::Writer::from_path(path).unwrap();
    for (i, (key, ts, p)) in records.iter().enumerate() {
        let note = format!("row {i}, \"as is\"");
        let ts = ts_text(*ts, how);
        match p {
            Payload::Bar(b) => {
                if i == 0 {
                    w.write_record([
                        "close",
                        "ts",
                        "note",
                        "key",
                        "volume",
                        "low",
                        "open",
                        "high",
                        "true_trend",
                    ])
                    .unwrap();
                }
                w.write_record([
                    b.close.to_string(),
                    ts,
                    note,
                    key.clone(),
                    opt_text(b.volume),
                    b.low.to_string(),
                    b.open.to_string(),
                    b.high.to_string(),
                    opt_text(b.true_trend),
                ])
                .unwrap();
            }
            Payload::Measurement(m) => {
                if i == 0 {
                    w.write_record([
                        "usl",
                        "part",
                        "value",
                        "ts",
                        "lsl",
                        "key",
                        "nominal",
                        "tool",
                        "true_value",
                    ])
                    .unwrap();
                }
                w.write_record([
                    opt_text(m.usl),
                    format!("P{i}"),
                    m.value.to_string(),
                    ts,
                    opt_text(m.lsl),
                    key.clone(),
                    opt_text(m.nominal),
                    m.tool.map_or(String::new(), |t| t.to_string()),
                    opt_text(m.true_value),
                ])
                .unwrap();
            }
        }
    }
    w.flush().unwrap();
}

/// Generated Parquet files, each read back alone: (file stem, its records).
fn generated(dir: &Path, kind: RecordKind) -> Vec<(String, Vec<Owned>)> {
    // (keys, rows per key, seed, start offset): files 0 and 2 share the time grid (ties across
    // files), file 1 is shifted half a step (interleaving); several keys per ts give ties
    // within a file.
    let plan = [(3, 40, 1, 0), (2, 50, 2, 1), (1, 60, 3, 0)];
    let step = match kind {
        RecordKind::Bar => deadband::run::gen::BAR_INTERVAL_NS,
        RecordKind::Measurement => deadband::run::gen::PART_INTERVAL_NS,
    };
    let mut out = Vec::new();
    for (f, (keys, rows, seed, shift)) in plan.into_iter().enumerate() {
        let mut o = GenOptions::new(keys, rows, seed);
        o.start_ts = DEFAULT_START_TS + shift * step / 2;
        let stem = format!("part-{f}");
        let path = dir.join(format!("{stem}.parquet"));
        match kind {
            RecordKind::Bar => write_market(&o, &path).unwrap(),
            RecordKind::Measurement => write_sensor(&o, &path).unwrap(),
        };
        let mut src = ParquetSource::open(path.to_str().unwrap(), kind, opts(false)).unwrap();
        out.push((stem, drain_pq(&mut src)));
    }
    out
}

/// The merge order computed here: a stable sort of all rows by (ts, file, row).
fn expected_merge(files: &[(String, Vec<Owned>)]) -> Vec<Owned> {
    let mut all: Vec<(Ts, usize, usize, &Owned)> = files
        .iter()
        .enumerate()
        .flat_map(|(f, (_, recs))| recs.iter().enumerate().map(move |(i, r)| (r.1, f, i, r)))
        .collect();
    all.sort_by_key(|&(ts, f, i, _)| (ts, f, i));
    all.into_iter().map(|(_, _, _, r)| r.clone()).collect()
}

fn same_sequence_as_parquet(kind: RecordKind) {
    let dir = tempfile::tempdir().unwrap();
    let files = generated(dir.path(), kind);
    let want = expected_merge(&files);
    let pq_pattern = format!("{}/*.parquet", dir.path().display());
    let from_parquet = drain_pq(&mut ParquetSource::open(&pq_pattern, kind, opts(false)).unwrap());
    assert_eq!(from_parquet, want);
    // The data has the ties it is meant to have: files 0 and 2 share timestamps.
    let ts_of = |f: usize| {
        files[f]
            .1
            .iter()
            .map(|r| r.1)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        ts_of(0).intersection(&ts_of(2)).count() >= 40,
        "no ties across files"
    );
    assert!(ts_of(0).is_disjoint(&ts_of(1)), "file 1 should interleave");

    let offsets = [0, 5 * 3600 + 1800, -8 * 3600];
    for (name, how) in [("ns", None), ("rfc3339", Some(offsets))] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        for (f, (stem, recs)) in files.iter().enumerate() {
            let t = how.map_or(TsText::Nanos, |o| TsText::Rfc3339(o[f]));
            write_csv(&sub.join(format!("{stem}.csv")), recs, t);
        }
        // A directory pattern means its *.csv files, in path order.
        let mut src = CsvSource::open(sub.to_str().unwrap(), kind, opts(false)).unwrap();
        let names: Vec<String> = src
            .files()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["part-0.csv", "part-1.csv", "part-2.csv"]);
        let got = drain_csv(&mut src);
        assert_eq!(got.len(), want.len(), "{name}");
        assert_eq!(
            got, from_parquet,
            "{name}: CSV and Parquet sequences differ"
        );
        assert_eq!(src.rows_read(), want.len() as u64);
        assert_eq!(src.total_rows(), 0, "unknown for CSV");
        assert!(src.next_record().unwrap().is_none());
        // A glob gives the same.
        let glob = format!("{}/part-*.csv", sub.display());
        let again = drain_csv(&mut CsvSource::open(&glob, kind, opts(true)).unwrap());
        assert_eq!(again, from_parquet, "{name} (glob, sort on)");
    }
}

#[test]
fn bars_from_csv_equal_bars_from_parquet_across_files() {
    same_sequence_as_parquet(RecordKind::Bar);
}

#[test]
fn measurements_from_csv_equal_measurements_from_parquet_across_files() {
    same_sequence_as_parquet(RecordKind::Measurement);
}

#[test]
fn csv_source_is_send() {
    fn send<T: Send>() {}
    send::<CsvSource>();
}

#[test]
fn timestamps_parse_as_utc_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ts.csv");
    // DEFAULT_START_TS is 2024-01-02T00:00:00Z.
    let t0 = DEFAULT_START_TS;
    let t2 = (t0 + 2_000_000_000).to_string();
    let rows = [
        ("2024-01-02T00:00:00Z", t0),
        ("2024-01-02T01:00:00.000000001+01:00", t0 + 1),
        ("2024-01-01T19:00:00.5-05:00", t0 + 500_000_000),
        ("2024-01-02 00:00:01.123456789z", t0 + 1_123_456_789),
        (t2.as_str(), t0 + 2_000_000_000),
        ("  2024-01-02T00:00:03+00:00 ", t0 + 3_000_000_000),
    ];
    let mut text = String::from("key,ts,value\n");
    for (ts, _) in rows {
        writeln!(text, "k,{ts},1.5").unwrap();
    }
    std::fs::write(&path, text).unwrap();
    let got: Vec<Ts> = read_all(&path, RecordKind::Measurement)
        .into_iter()
        .map(|r| r.1)
        .collect();
    let want: Vec<Ts> = rows.iter().map(|r| r.1).collect();
    assert_eq!(got, want);
}

#[test]
fn header_order_bom_spaces_quotes_and_extra_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.csv");
    std::fs::write(
        &path,
        "\u{feff} high , extra,close,key ,low,open, ts\n\
         12,x,11,\"a,b\",9,10,5\n\
         \n\
         13, y ,12, c ,10,11,6\n",
    )
    .unwrap();
    let got = read_all(&path, RecordKind::Bar);
    let bar = |open, high, low, close| {
        Payload::Bar(Bar {
            open,
            high,
            low,
            close,
            volume: None,
            true_trend: None,
        })
    };
    assert_eq!(
        got,
        vec![
            ("a,b".to_string(), 5, bar(10.0, 12.0, 9.0, 11.0)),
            ("c".to_string(), 6, bar(11.0, 13.0, 10.0, 12.0)),
        ]
    );
}

#[test]
fn bad_values_become_rejected_records_and_the_read_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "key,ts,open,high,low,close,volume\n\
         a,1,10,20,1,10,5\n\
         ,2,10,20,1,10,5\n\
         a,3,10,20,1,,5\n\
         a,4,10,20,1,ten,5\n\
         a,,10,20,1,10,5\n\
         a,yesterday,10,20,1,10,\n\
         a,7,10,20,1,10,\n\
         a,8,10,20,1,10,lots\n\
         a,9,10,20,1,10,5\n",
    )
    .unwrap();
    let mut src = csv_open(&path, RecordKind::Bar).unwrap();
    let mut got = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        let volume = match r.payload {
            Payload::Bar(b) => b.volume,
            Payload::Measurement(_) => panic!("expected a bar"),
        };
        got.push((r.key.to_string(), r.ts, r.y(), volume, r.validate()));
    }
    assert_eq!(got.len(), 9);
    // Empty key.
    assert_eq!(got[1].4, Err(Invalid::EmptyKey));
    // Empty and unparsable required numbers: NaN, rejected.
    for i in [2, 3] {
        assert!(got[i].2.is_nan(), "row {i}");
        assert_eq!(got[i].4, Err(Invalid::NotFinite), "row {i}");
    }
    // Empty and unparsable ts: all numbers NaN, the previous row's ts, rejected.
    for i in [4, 5] {
        assert_eq!(got[i].1, 4, "row {i}");
        assert!(got[i].2.is_nan(), "row {i}");
        assert_eq!(got[i].4, Err(Invalid::NotFinite), "row {i}");
    }
    assert_eq!(got[5].3, None, "an absent volume stays absent");
    // Empty optional number: absent, valid.
    assert_eq!((got[6].3, got[6].4), (None, Ok(())));
    // Unparsable optional number: NaN, rejected.
    assert!(got[7].3.unwrap().is_nan());
    assert_eq!(got[7].4, Err(Invalid::NotFinite));
    for i in [0, 6, 8] {
        assert_eq!(got[i].4, Ok(()), "row {i}");
    }
    let ts: Vec<Ts> = got.iter().map(|g| g.1).collect();
    assert_eq!(ts, [1, 2, 3, 4, 4, 4, 7, 8, 9]);
}

/// The `tool` column names the tool (a field that is not a whole number from 0 to
/// 4294967295 leaves it absent); `true_value` is read as it is.
#[test]
fn measurements_read_the_tool_and_the_true_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(
        &path,
        "key,ts,value,tool,true_value\nb,1,1,0,0.5\nb,2,1,4000000000,\nb,3,1,-1,2\nb,4,1,1.5,3\nb,5,1,,4\n",
    )
    .unwrap();
    let got: Vec<(Option<u32>, Option<f64>)> = read_all(&path, RecordKind::Measurement)
        .into_iter()
        .map(|(_, _, p)| match p {
            Payload::Measurement(m) => (m.tool, m.true_value),
            Payload::Bar(_) => panic!("a bar"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some(0), Some(0.5)),
            (Some(4_000_000_000), None),
            (None, Some(2.0)),
            (None, Some(3.0)),
            (None, Some(4.0)),
        ]
    );
}

#[test]
fn measurements_keep_optional_limits_absent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(
        &path,
        "key,ts,value,part,lsl,usl\nbore,1,10.01,P1,9.9,10.1\nbore,2,9.98,P2,,\n",
    )
    .unwrap();
    let m = |value, lsl, usl| {
        Payload::Measurement(Measurement {
            value,
            nominal: None,
            lsl,
            usl,
            tool: None,
            true_value: None,
        })
    };
    assert_eq!(
        read_all(&path, RecordKind::Measurement),
        vec![
            ("bore".into(), 1, m(10.01, Some(9.9), Some(10.1))),
            ("bore".into(), 2, m(9.98, None, None)),
        ]
    );
}

#[test]
fn missing_and_duplicate_columns_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_close.csv");
    std::fs::write(&path, "key,ts,open,high,low\na,1,1,2,1\n").unwrap();
    let msg = err_text(csv_open(&path, RecordKind::Bar));
    for part in [
        "no_close.csv",
        "line 1",
        "`close`",
        "bar records",
        "`key`, `ts`, `open`, `high`, `low`",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }

    // A bar file read as measurements.
    let msg = err_text(csv_open(&path, RecordKind::Measurement));
    assert!(
        msg.contains("`value`") && msg.contains("record kind"),
        "{msg}"
    );

    let path = dir.path().join("twice.csv");
    std::fs::write(&path, "key,ts,value,ts\na,1,2,1\n").unwrap();
    let msg = err_text(csv_open(&path, RecordKind::Measurement));
    assert!(
        msg.contains("twice.csv") && msg.contains("line 1") && msg.contains("`ts`"),
        "{msg}"
    );

    let path = dir.path().join("empty.csv");
    std::fs::write(&path, "").unwrap();
    let msg = err_text(csv_open(&path, RecordKind::Measurement));
    assert!(msg.contains("empty.csv") && msg.contains("`key`"), "{msg}");
}

#[test]
fn malformed_lines_and_missing_files_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.csv");
    std::fs::write(&path, "key,ts,value\na,1,2\na,2\na,3,4\n").unwrap();
    let mut src = csv_open(&path, RecordKind::Measurement).unwrap();
    let msg = stream_err(&mut src);
    assert!(msg.contains("short.csv") && msg.contains("line 3"), "{msg}");

    let path = dir.path().join("latin1.csv");
    std::fs::write(&path, b"key,ts,value\na,1,2\n\xe9t\xe9,2,3\n").unwrap();
    let mut src = csv_open(&path, RecordKind::Measurement).unwrap();
    let msg = stream_err(&mut src);
    assert!(
        msg.contains("latin1.csv") && msg.contains("line 3") && msg.contains("UTF-8"),
        "{msg}"
    );

    let msg = err_text(csv_open(&dir.path().join("none*.csv"), RecordKind::Bar));
    assert!(msg.contains("none*.csv") && msg.contains("*.csv"), "{msg}");
}

#[test]
fn unsorted_file_is_an_error_naming_line_unless_sort_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let a = [5i64, 1, 3, 3, 9];
    let b = [2i64, 3, 4, 8];
    let mut rows = Vec::new();
    for (f, ts) in [(0usize, &a[..]), (1, &b[..])] {
        let mut text = String::from("key,ts,value\n");
        for (i, t) in ts.iter().enumerate() {
            writeln!(text, "f{f}r{i},{t},1").unwrap();
            rows.push((*t, f, i));
        }
        std::fs::write(dir.path().join(format!("{f}.csv")), text).unwrap();
    }
    let pattern = dir.path().join("*.csv");
    let mut src = csv_open(&pattern, RecordKind::Measurement).unwrap();
    let msg = stream_err(&mut src);
    // Row 1 of 0.csv (ts 1 after 5) is on line 3.
    for part in ["0.csv", "line 3", "column `ts`", "[input] sort = true"] {
        assert!(msg.contains(part), "{part}: {msg}");
    }

    rows.sort_by_key(|&(t, f, i)| (t, f, i));
    let want: Vec<String> = rows.iter().map(|(_, f, i)| format!("f{f}r{i}")).collect();
    let mut src = CsvSource::open(
        pattern.to_str().unwrap(),
        RecordKind::Measurement,
        opts(true),
    )
    .unwrap();
    // The unsorted file is held in memory, the sorted one streams.
    assert_eq!(src.buffered_rows(), a.len() + 1);
    let got: Vec<String> = drain_csv(&mut src).into_iter().map(|r| r.0).collect();
    assert_eq!(got, want);
}

/// Read throughput of `next_record` over ~1M bars in one CSV file. Prints records/s; run with
/// `cargo test --release --test csv_io -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_one_million_bars() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1_000_000usize;
    let t0 = 1_700_000_000_000_000_000i64;
    for (name, rfc) in [("ns.csv", false), ("rfc3339.csv", true)] {
        let path = dir.path().join(name);
        let mut text = String::from("key,ts,open,high,low,close,volume\n");
        for i in 0..n {
            let ts = t0 + i as i64 * 1_000_000_000;
            let ts = if rfc {
                ts_text(ts, TsText::Rfc3339(0))
            } else {
                ts.to_string()
            };
            let c = 100.0 + (i % 1000) as f64 * 0.01;
            writeln!(
                text,
                "SYM{:03},{ts},{c},{},{},{c},1000",
                i % 100,
                c + 1.0,
                c - 1.0
            )
            .unwrap();
        }
        std::fs::write(&path, text).unwrap();
        let t = std::time::Instant::now();
        let mut src = csv_open(&path, RecordKind::Bar).unwrap();
        let mut sum = 0.0;
        while let Some(r) = src.next_record().unwrap() {
            sum += r.y();
        }
        let s = t.elapsed().as_secs_f64();
        assert_eq!(src.rows_read(), n as u64);
        println!(
            "{name}: read {n} bars in {s:.3} s = {:.0} records/s (checksum {sum:.1})",
            n as f64 / s
        );
    }
}
