//! Parquet source and sinks: k-way merge order, bounded memory, column and type handling, nulls,
//! error messages, and event / fit-row round trips checked with the plain arrow/parquet reader.
//!
//! Fixtures are written here with the plain `ArrowWriter` into temp dirs; the expected values are
//! computed in the tests from the same inputs (a stable sort, unit arithmetic), never taken from
//! the code under test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Float32Array, Float64Array,
    Int32Array, Int64Array, LargeStringArray, StringArray, StringViewArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int8Type, TimeUnit, UInt64Type};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use deadband::io::parquet::{
    read_events, EventWriter, FitWriter, ParquetSource, SourceError, SourceOptions,
};
use deadband::record::{
    Bar, Event, EventBody, FitRow, Invalid, Measurement, Payload, RecordKind, Ts,
};
use deadband::signal::scales::TrendScale;
use deadband::zone::spc::Rule;

/// Writes columns as one Parquet file with the plain arrow writer; `row_group` rows per group.
fn write_file(path: &Path, cols: Vec<(&str, ArrayRef)>, row_group: Option<usize>) {
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(row_group)
        .build();
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Bars with `high = close + 1`, `low = close - 1`, `open = close`: all valid when close > 1.
fn bar_cols(keys: Vec<String>, ts: Vec<i64>, close: Vec<f64>) -> Vec<(&'static str, ArrayRef)> {
    let hi: Vec<f64> = close.iter().map(|c| c + 1.0).collect();
    let lo: Vec<f64> = close.iter().map(|c| c - 1.0).collect();
    vec![
        ("key", Arc::new(StringArray::from(keys)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
        ),
        ("open", Arc::new(Float64Array::from(close.clone()))),
        ("high", Arc::new(Float64Array::from(hi))),
        ("low", Arc::new(Float64Array::from(lo))),
        ("close", Arc::new(Float64Array::from(close))),
    ]
}

/// A small deterministic generator, so fixtures differ between files without a rand crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Drains a source into owned (key, ts, payload) triples.
fn drain(src: &mut ParquetSource) -> Vec<(String, Ts, Payload)> {
    let mut out = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        out.push((r.key.to_string(), r.ts, r.payload));
    }
    out
}

fn opts(batch_rows: usize) -> SourceOptions {
    SourceOptions {
        batch_rows,
        sort: false,
    }
}

fn close_of(p: &Payload) -> f64 {
    match p {
        Payload::Bar(b) => b.close,
        Payload::Measurement(_) => panic!("expected a bar"),
    }
}

/// Drivers move sources and writers into worker threads.
#[test]
fn sources_and_writers_are_send() {
    fn send<T: Send>() {}
    send::<ParquetSource>();
    send::<EventWriter>();
    send::<FitWriter>();
}

#[test]
fn k_way_merge_equals_stable_sort_by_ts_file_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(7);
    // (ts, file, row, key, close) of every row, to sort independently.
    let mut all = Vec::new();
    for (file, n) in [(0usize, 57usize), (1, 103), (2, 31)] {
        let mut ts = 1_700_000_000_000_000_000i64;
        let (mut keys, mut tss, mut closes) = (vec![], vec![], vec![]);
        for row in 0..n {
            // Steps of 0..=2 µs: many ties within and across files.
            ts += (rng.next() % 3) as i64 * 1_000;
            let key = format!("k{}", rng.next() % 4);
            let close = 100.0 + (file * 1000 + row) as f64;
            all.push((ts, file, row, key.clone(), close));
            keys.push(key);
            tss.push(ts);
            closes.push(close);
        }
        // Small row groups so batches also end at row-group boundaries.
        write_file(
            &dir.path().join(format!("part-{file}.parquet")),
            bar_cols(keys, tss, closes),
            Some(20),
        );
    }
    all.sort_by_key(|&(ts, file, row, _, _)| (ts, file, row));
    let pattern = format!("{}/part-*.parquet", dir.path().display());
    for batch_rows in [1, 7, 1000] {
        let mut src = ParquetSource::open(&pattern, RecordKind::Bar, opts(batch_rows)).unwrap();
        assert_eq!(src.total_rows(), 191);
        let got = drain(&mut src);
        assert_eq!(got.len(), all.len());
        for (g, e) in got.iter().zip(&all) {
            assert_eq!(
                (g.0.as_str(), g.1, close_of(&g.2)),
                (e.3.as_str(), e.0, e.4)
            );
        }
        assert_eq!(src.rows_read(), 191);
        assert!(src.next_record().unwrap().is_none());
    }
}

#[test]
fn memory_is_bounded_by_batch_rows_per_file() {
    let dir = tempfile::tempdir().unwrap();
    for file in 0..3i64 {
        let n = 10_000;
        let keys = (0..n).map(|i| format!("k{}", i % 5)).collect();
        // Files interleave: file f has ts = 3 i + f.
        let ts = (0..n).map(|i| 3 * i + file).collect();
        let close = (0..n).map(|i| 10.0 + i as f64).collect();
        write_file(
            &dir.path().join(format!("m{file}.parquet")),
            bar_cols(keys, ts, close),
            Some(4096),
        );
    }
    let pattern = format!("{}/*.parquet", dir.path().display());
    let mut src = ParquetSource::open(&pattern, RecordKind::Bar, opts(100)).unwrap();
    assert_eq!(src.total_rows(), 30_000);
    let mut max = src.buffered_rows();
    let mut n = 0u64;
    let mut last = i64::MIN;
    while let Some(r) = src.next_record().unwrap() {
        assert!(r.ts >= last);
        last = r.ts;
        n += 1;
        max = max.max(src.buffered_rows());
    }
    assert_eq!(n, 30_000);
    assert_eq!(src.rows_read(), 30_000);
    assert!(max <= 300, "buffered {max} rows");
    // Each of the three files holds a batch at the start.
    assert!(
        max > 200,
        "buffered only {max} rows: is the bound measured?"
    );
}

fn err_text<T>(r: Result<T, SourceError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_column_error_names_column_file_and_found_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_close.parquet");
    let mut cols = bar_cols(vec!["a".into()], vec![1], vec![5.0]);
    cols.retain(|(n, _)| *n != "close");
    write_file(&path, cols, None);
    let msg = err_text(ParquetSource::open(
        path.to_str().unwrap(),
        RecordKind::Bar,
        opts(10),
    ));
    assert!(msg.contains("`close`"), "{msg}");
    assert!(msg.contains("no_close.parquet"), "{msg}");
    for found in ["`key`", "`ts`", "`open`", "`high`", "`low`"] {
        assert!(msg.contains(found), "{msg}");
    }
    // Bars are not measurements: `value` is missing.
    let path = dir.path().join("bars.parquet");
    write_file(&path, bar_cols(vec!["a".into()], vec![1], vec![5.0]), None);
    let msg = err_text(ParquetSource::open(
        path.to_str().unwrap(),
        RecordKind::Measurement,
        opts(10),
    ));
    assert!(
        msg.contains("`value`") && msg.contains("measurement"),
        "{msg}"
    );
}

#[test]
fn wrong_type_error_names_column_file_found_and_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text_close.parquet");
    let mut cols = bar_cols(vec!["a".into()], vec![1], vec![5.0]);
    cols[5] = ("close", Arc::new(StringArray::from(vec!["5.0"])));
    write_file(&path, cols, None);
    let msg = err_text(ParquetSource::open(
        path.to_str().unwrap(),
        RecordKind::Bar,
        opts(10),
    ));
    assert!(msg.contains("`close`"), "{msg}");
    assert!(msg.contains("text_close.parquet"), "{msg}");
    assert!(msg.contains("Utf8"), "{msg}");
    assert!(msg.contains("Float64"), "{msg}");

    let path = dir.path().join("float_ts.parquet");
    let mut cols = bar_cols(vec!["a".into()], vec![1], vec![5.0]);
    cols[1] = ("ts", Arc::new(Float64Array::from(vec![1.0])));
    write_file(&path, cols, None);
    let msg = err_text(ParquetSource::open(
        path.to_str().unwrap(),
        RecordKind::Bar,
        opts(10),
    ));
    assert!(
        msg.contains("`ts`") && msg.contains("float_ts.parquet"),
        "{msg}"
    );
    assert!(
        msg.contains("Float64") && msg.contains("Timestamp"),
        "{msg}"
    );
}

#[test]
fn no_match_error_names_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = format!("{}/nothing-*.parquet", dir.path().display());
    let msg = err_text(ParquetSource::open(&pattern, RecordKind::Bar, opts(10)));
    assert!(msg.contains("no file matches"), "{msg}");
    assert!(msg.contains(&pattern), "{msg}");
}

#[test]
fn unsorted_file_is_an_error_unless_sort_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unsorted.parquet");
    let ts = vec![10, 20, 30, 15, 40, 15, 50];
    let n = ts.len();
    let close: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
    let keys = (0..n).map(|i| format!("k{i}")).collect();
    write_file(&path, bar_cols(keys, ts.clone(), close.clone()), None);
    let p = path.to_str().unwrap();

    // batch_rows = 3: the backwards row (index 3) is the first row of the second batch.
    let mut src = ParquetSource::open(p, RecordKind::Bar, opts(3)).unwrap();
    let err = loop {
        match src.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("unsorted file read without error"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains("unsorted.parquet"), "{err}");
    assert!(err.contains("row 3"), "{err}");
    assert!(
        err.contains("sort the file by ts or set `[input] sort = true`"),
        "{err}"
    );

    // sort = true: a stable sort of the rows by ts, computed here.
    let mut expected: Vec<(i64, usize)> = ts.iter().copied().zip(0..n).collect();
    expected.sort_by_key(|&(t, _)| t);
    let mut src = ParquetSource::open(
        p,
        RecordKind::Bar,
        SourceOptions {
            batch_rows: 2,
            sort: true,
        },
    )
    .unwrap();
    let got = drain(&mut src);
    let got: Vec<(i64, String)> = got.into_iter().map(|(k, t, _)| (t, k)).collect();
    let want: Vec<(i64, String)> = expected
        .iter()
        .map(|&(t, i)| (t, format!("k{i}")))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn sort_option_merges_a_sorted_and_an_unsorted_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = vec![5i64, 1, 3, 3, 9];
    let b = vec![2i64, 3, 4, 8];
    let mut rows = Vec::new();
    for (f, ts) in [(0usize, &a), (1, &b)] {
        let keys = (0..ts.len()).map(|i| format!("f{f}r{i}")).collect();
        let close = vec![10.0; ts.len()];
        write_file(
            &dir.path().join(format!("{f}.parquet")),
            bar_cols(keys, ts.clone(), close),
            None,
        );
        rows.extend(ts.iter().enumerate().map(|(i, &t)| (t, f, i)));
    }
    rows.sort_by_key(|&(t, f, i)| (t, f, i));
    let pattern = format!("{}/*.parquet", dir.path().display());
    let mut src = ParquetSource::open(
        &pattern,
        RecordKind::Bar,
        SourceOptions {
            batch_rows: 2,
            sort: true,
        },
    )
    .unwrap();
    let got: Vec<String> = drain(&mut src).into_iter().map(|r| r.0).collect();
    let want: Vec<String> = rows.iter().map(|(_, f, i)| format!("f{f}r{i}")).collect();
    assert_eq!(got, want);
}

#[test]
fn every_timestamp_unit_and_int64_give_the_same_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    // Whole seconds, so every unit represents them exactly.
    let secs: Vec<i64> = vec![0, 1, 1_600_000_000, 1_700_000_123];
    let want: Vec<i64> = secs.iter().map(|s| s * 1_000_000_000).collect();
    let ms: Vec<i64> = secs.iter().map(|s| s * 1_000).collect();
    let us: Vec<i64> = secs.iter().map(|s| s * 1_000_000).collect();
    let cases: Vec<(&str, ArrayRef)> = vec![
        ("s", Arc::new(TimestampSecondArray::from(secs.clone()))),
        (
            "s_tz",
            Arc::new(TimestampSecondArray::from(secs.clone()).with_timezone("UTC")),
        ),
        ("ms", Arc::new(TimestampMillisecondArray::from(ms.clone()))),
        (
            "ms_tz",
            Arc::new(TimestampMillisecondArray::from(ms).with_timezone("+01:00")),
        ),
        ("us", Arc::new(TimestampMicrosecondArray::from(us.clone()))),
        (
            "us_tz",
            Arc::new(TimestampMicrosecondArray::from(us).with_timezone("Europe/Berlin")),
        ),
        ("ns", Arc::new(TimestampNanosecondArray::from(want.clone()))),
        (
            "ns_tz",
            Arc::new(TimestampNanosecondArray::from(want.clone()).with_timezone("UTC")),
        ),
        ("int64", Arc::new(Int64Array::from(want.clone()))),
    ];
    for (name, ts) in cases {
        let path = dir.path().join(format!("{name}.parquet"));
        let mut cols = bar_cols(vec!["a".into(); 4], vec![0; 4], vec![5.0; 4]);
        cols[1] = ("ts", ts);
        write_file(&path, cols, None);
        let mut src =
            ParquetSource::open(path.to_str().unwrap(), RecordKind::Bar, opts(3)).unwrap();
        let got: Vec<i64> = drain(&mut src).into_iter().map(|r| r.1).collect();
        assert_eq!(got, want, "ts stored as {name}");
    }
}

#[test]
fn extra_columns_are_ignored_and_other_layouts_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.parquet");
    let keys = ["x", "y", "x"];
    let dict: DictionaryArray<Int32Type> = keys.iter().copied().collect();
    write_file(
        &path,
        vec![
            (
                "note",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            ("key", Arc::new(dict)),
            ("open", Arc::new(Float32Array::from(vec![2.5f32, 3.0, 4.0]))),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ),
            ("high", Arc::new(Int32Array::from(vec![3, 4, 5]))),
            ("low", Arc::new(Int64Array::from(vec![2, 2, 3]))),
            ("close", Arc::new(Float64Array::from(vec![2.75, 3.5, 4.25]))),
            ("ts", Arc::new(Int64Array::from(vec![10, 20, 30]))),
            (
                "volume",
                Arc::new(Float64Array::from(vec![Some(7.0), None, Some(9.0)])),
            ),
            (
                "extra_num",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
            ),
        ],
        None,
    );
    let mut src = ParquetSource::open(path.to_str().unwrap(), RecordKind::Bar, opts(2)).unwrap();
    let got = drain(&mut src);
    let want = [
        ("x", 10, 2.5, 3.0, 2.0, 2.75, Some(7.0)),
        ("y", 20, 3.0, 4.0, 2.0, 3.5, None),
        ("x", 30, 4.0, 5.0, 3.0, 4.25, Some(9.0)),
    ];
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0);
        assert_eq!(g.1, w.1);
        assert_eq!(
            g.2,
            Payload::Bar(Bar {
                open: w.2,
                high: w.3,
                low: w.4,
                close: w.5,
                volume: w.6,
                true_trend: None,
            })
        );
    }

    // LargeUtf8 keys.
    let path = dir.path().join("large.parquet");
    let mut cols = bar_cols(vec!["a".into(), "b".into()], vec![1, 2], vec![5.0, 6.0]);
    cols[0] = ("key", Arc::new(LargeStringArray::from(vec!["p", "q"])));
    write_file(&path, cols, None);
    let mut src = ParquetSource::open(path.to_str().unwrap(), RecordKind::Bar, opts(2)).unwrap();
    let keys: Vec<String> = drain(&mut src).into_iter().map(|r| r.0).collect();
    assert_eq!(keys, ["p", "q"]);

    // Utf8View keys (arrow-rs keeps the view type through its embedded schema).
    let path = dir.path().join("view.parquet");
    let mut cols = bar_cols(vec!["a".into(), "b".into()], vec![1, 2], vec![5.0, 6.0]);
    let long = "a key longer than twelve bytes";
    cols[0] = ("key", Arc::new(StringViewArray::from(vec!["v", long])));
    write_file(&path, cols, None);
    let key_type = read_plain(&path)
        .schema()
        .field_with_name("key")
        .unwrap()
        .data_type()
        .clone();
    assert_eq!(key_type, DataType::Utf8View);
    let mut src = ParquetSource::open(path.to_str().unwrap(), RecordKind::Bar, opts(2)).unwrap();
    let keys: Vec<String> = drain(&mut src).into_iter().map(|r| r.0).collect();
    assert_eq!(keys, ["v", long]);
}

#[test]
fn nulls_become_invalid_records_and_neighbours_stay_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.parquet");
    let n = 6;
    let close: Vec<Option<f64>> = vec![
        Some(10.0),
        Some(11.0),
        None,
        Some(13.0),
        Some(14.0),
        Some(15.0),
    ];
    let some = |v: Vec<f64>| Float64Array::from(v.into_iter().map(Some).collect::<Vec<_>>());
    write_file(
        &path,
        vec![
            (
                "key",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("a"),
                    Some("a"),
                    Some("a"),
                    Some("a"),
                ])) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(2),
                    Some(3),
                    None,
                    Some(5),
                    Some(6),
                ])),
            ),
            (
                "open",
                Arc::new(some(vec![10.0, 11.0, 12.0, 13.0, 14.0, 15.0])),
            ),
            ("high", Arc::new(some(vec![20.0; n]))),
            ("low", Arc::new(some(vec![1.0; n]))),
            ("close", Arc::new(Float64Array::from(close))),
            (
                "volume",
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    None,
                    Some(1.0),
                ])),
            ),
        ],
        None,
    );
    let mut src = ParquetSource::open(path.to_str().unwrap(), RecordKind::Bar, opts(4)).unwrap();
    let mut got = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        got.push((r.key.to_string(), r.ts, r.y(), r.validate()));
    }
    assert_eq!(got.len(), n);
    // Row 1: null key -> empty key -> rejected.
    assert_eq!(got[1].0, "");
    assert_eq!(got[1].3, Err(Invalid::EmptyKey));
    // Row 2: null close -> NaN -> rejected.
    assert!(got[2].2.is_nan());
    assert_eq!(got[2].3, Err(Invalid::NotFinite));
    // Row 3: null ts -> rejected, keeps its place (the previous ts).
    assert_eq!(got[3].1, 3);
    assert_eq!(got[3].3, Err(Invalid::NotFinite));
    // Row 4: null optional volume is simply absent: valid.
    for i in [0, 4, 5] {
        assert_eq!(got[i].0, "a");
        assert_eq!(got[i].3, Ok(()), "row {i}");
    }
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        [1, 2, 3, 3, 5, 6]
    );
    assert_eq!(got[0].2, 10.0);
    assert_eq!(got[5].2, 15.0);
}

#[test]
fn measurements_read_optional_limits_and_ignore_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meas.parquet");
    write_file(
        &path,
        vec![
            (
                "key",
                Arc::new(StringArray::from(vec!["bore", "bore"])) as ArrayRef,
            ),
            ("ts", Arc::new(Int64Array::from(vec![1, 2]))),
            ("value", Arc::new(Float64Array::from(vec![10.01, 9.98]))),
            ("part", Arc::new(StringArray::from(vec!["P1", "P2"]))),
            ("lsl", Arc::new(Float64Array::from(vec![Some(9.9), None]))),
            ("usl", Arc::new(Float64Array::from(vec![Some(10.1), None]))),
        ],
        None,
    );
    let mut src =
        ParquetSource::open(path.to_str().unwrap(), RecordKind::Measurement, opts(8)).unwrap();
    let got = drain(&mut src);
    assert_eq!(
        got,
        vec![
            (
                "bore".to_string(),
                1,
                Payload::Measurement(Measurement {
                    value: 10.01,
                    nominal: None,
                    lsl: Some(9.9),
                    usl: Some(10.1),
                    tool: None,
                    true_value: None,
                })
            ),
            (
                "bore".to_string(),
                2,
                Payload::Measurement(Measurement {
                    value: 9.98,
                    nominal: None,
                    lsl: None,
                    usl: None,
                    tool: None,
                    true_value: None,
                })
            ),
        ]
    );
}

/// `tool` of any integer type is the tool id (negative, fractional or null values are
/// absent); `true_value` is read as the ground truth.
#[test]
fn measurements_read_the_tool_and_the_true_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meas.parquet");
    write_file(
        &path,
        vec![
            (
                "key",
                Arc::new(StringArray::from(vec!["bore"; 4])) as ArrayRef,
            ),
            ("ts", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            ("value", Arc::new(Float64Array::from(vec![10.0; 4]))),
            (
                "tool",
                Arc::new(Int64Array::from(vec![
                    Some(0),
                    Some(4_000_000_000),
                    Some(-1),
                    None,
                ])),
            ),
            (
                "true_value",
                Arc::new(Float64Array::from(vec![
                    Some(9.5),
                    None,
                    Some(10.5),
                    Some(1.0),
                ])),
            ),
        ],
        None,
    );
    let mut src =
        ParquetSource::open(path.to_str().unwrap(), RecordKind::Measurement, opts(8)).unwrap();
    let got: Vec<(Option<u32>, Option<f64>)> = drain(&mut src)
        .into_iter()
        .map(|(_, _, p)| match p {
            Payload::Measurement(m) => (m.tool, m.true_value),
            Payload::Bar(_) => panic!("a bar"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some(0), Some(9.5)),
            (Some(4_000_000_000), None),
            (None, Some(10.5)),
            (None, Some(1.0))
        ]
    );
}

#[test]
fn a_directory_pattern_reads_its_parquet_files() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        &dir.path().join("b.parquet"),
        bar_cols(vec!["b".into()], vec![1], vec![5.0]),
        None,
    );
    write_file(
        &dir.path().join("a.parquet"),
        bar_cols(vec!["a".into()], vec![1], vec![5.0]),
        None,
    );
    std::fs::write(dir.path().join("notes.txt"), "not parquet").unwrap();
    let mut src =
        ParquetSource::open(dir.path().to_str().unwrap(), RecordKind::Bar, opts(8)).unwrap();
    let names: Vec<PathBuf> = src.files().map(|p| p.file_name().unwrap().into()).collect();
    assert_eq!(
        names,
        [PathBuf::from("a.parquet"), PathBuf::from("b.parquet")]
    );
    // Tie at ts 1: the earlier file (by path) first.
    let keys: Vec<String> = drain(&mut src).into_iter().map(|r| r.0).collect();
    assert_eq!(keys, ["a", "b"]);
}

/// Events of every kind; the set repeats so the writer flushes several batches.
fn sample_events(n: usize) -> Vec<Event> {
    let keys: Vec<Arc<str>> = vec![Arc::from("AAPL"), Arc::from("bore/Ø")];
    let rules = [
        Rule::We1,
        Rule::We2,
        Rule::We3,
        Rule::We4,
        Rule::Ewma,
        Rule::Cusum,
    ];
    (0..n)
        .map(|i| {
            let x = i as f64;
            let body = match i % 5 {
                0 => EventBody::Trend {
                    direction: [-1, 0, 1][i % 3],
                    strength: (i % 10) as f64 / 10.0,
                    level: 100.0 + x,
                    slope: -0.5 * x,
                    zone: 0.25,
                    scale: [None, Some(TrendScale::Tactical), Some(TrendScale::Macro)][i % 3],
                },
                1 => EventBody::Rebalance {
                    position_from: 0.5,
                    position_to: -1.0 + x,
                    turnover: (x - 1.5).abs(),
                    cost: 1e-4 * x,
                },
                2 => EventBody::ToolCompensation {
                    offset: -0.003 * x,
                    predicted: 0.004,
                    zone: 0.01 + x,
                },
                3 => EventBody::SpcAlarm {
                    rule: rules[i % rules.len()],
                    statistic: 3.5 + x,
                    limit: 3.0,
                },
                _ => EventBody::ToolChange { tool: i as u32 },
            };
            Event {
                key: keys[i % 2].clone(),
                seq: i as u64,
                ts: 1_700_000_000_000_000_000 + i as i64,
                body,
            }
        })
        .collect()
}

fn read_plain(path: &Path) -> RecordBatch {
    let f = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn events_round_trip_with_exact_schema_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    let events = sample_events(20_000);
    let mut w = EventWriter::create(&path).unwrap();
    for e in &events {
        w.write(e).unwrap();
    }
    assert!(!path.exists(), "final name exists before finish");
    assert!(dir.path().join("events.parquet.tmp").exists());
    assert_eq!(w.finish().unwrap(), events.len() as u64);
    assert!(path.exists());
    assert!(!dir.path().join("events.parquet.tmp").exists());

    let b = read_plain(&path);
    let ts_utc = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let want_types: Vec<(&str, DataType)> = vec![
        ("id", DataType::Utf8),
        ("key", DataType::Utf8),
        ("seq", DataType::UInt64),
        ("ts", ts_utc),
        ("kind", DataType::Utf8),
        ("direction", DataType::Int8),
        ("strength", DataType::Float64),
        ("level", DataType::Float64),
        ("slope", DataType::Float64),
        ("zone", DataType::Float64),
        ("position_from", DataType::Float64),
        ("position_to", DataType::Float64),
        ("turnover", DataType::Float64),
        ("cost", DataType::Float64),
        ("offset", DataType::Float64),
        ("predicted", DataType::Float64),
        ("statistic", DataType::Float64),
        ("limit", DataType::Float64),
        ("rule", DataType::Utf8),
        ("tool", DataType::UInt32),
        ("scale", DataType::Utf8),
    ];
    let schema = b.schema();
    let got_types: Vec<(&str, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(got_types, want_types);
    assert_eq!(b.num_rows(), events.len());

    let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
    let f = |n: &str| {
        b.column_by_name(n)
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone()
    };
    let (id, key, kind, rule) = (s("id"), s("key"), s("kind"), s("rule"));
    let scale = s("scale");
    let seq = b
        .column_by_name("seq")
        .unwrap()
        .as_primitive::<UInt64Type>()
        .clone();
    let ts = b
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap()
        .clone();
    let dir_col = b
        .column_by_name("direction")
        .unwrap()
        .as_primitive::<Int8Type>()
        .clone();
    let names = [
        "strength",
        "level",
        "slope",
        "zone",
        "position_from",
        "position_to",
        "turnover",
        "cost",
        "offset",
        "predicted",
        "statistic",
        "limit",
    ];
    let floats: Vec<Float64Array> = names.iter().map(|n| f(n)).collect();
    let tool_col = b
        .column_by_name("tool")
        .unwrap()
        .as_primitive::<arrow::datatypes::UInt32Type>()
        .clone();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(key.value(i), &*e.key);
        assert_eq!(seq.value(i), e.seq);
        assert_eq!(ts.value(i), e.ts);
        // The design's id format, spelled out here.
        let (kind_name, want_id) = match e.body {
            EventBody::Trend { .. } => ("trend", format!("{}:{}:trend", e.key, e.seq)),
            EventBody::Rebalance { .. } => ("rebalance", format!("{}:{}:rebalance", e.key, e.seq)),
            EventBody::ToolCompensation { .. } => (
                "tool_compensation",
                format!("{}:{}:tool_compensation", e.key, e.seq),
            ),
            EventBody::SpcAlarm { rule, .. } => (
                "spc_alarm",
                format!("{}:{}:spc_alarm:{}", e.key, e.seq, rule.name()),
            ),
            EventBody::ToolChange { .. } => {
                ("tool_change", format!("{}:{}:tool_change", e.key, e.seq))
            }
        };
        assert_eq!(kind.value(i), kind_name);
        assert_eq!(id.value(i), want_id);
        // Expected per-kind values, by column name; every other column must be null.
        let mut want: Vec<(&str, f64)> = Vec::new();
        let mut want_dir = None;
        let mut want_rule = None;
        let mut want_tool = None;
        let mut want_scale = None;
        match e.body {
            EventBody::Trend {
                direction,
                strength,
                level,
                slope,
                zone,
                scale,
            } => {
                want_dir = Some(direction);
                want_scale = scale.map(TrendScale::as_str);
                want.extend([
                    ("strength", strength),
                    ("level", level),
                    ("slope", slope),
                    ("zone", zone),
                ]);
            }
            EventBody::Rebalance {
                position_from,
                position_to,
                turnover,
                cost,
            } => want.extend([
                ("position_from", position_from),
                ("position_to", position_to),
                ("turnover", turnover),
                ("cost", cost),
            ]),
            EventBody::ToolCompensation {
                offset,
                predicted,
                zone,
            } => want.extend([("offset", offset), ("predicted", predicted), ("zone", zone)]),
            EventBody::SpcAlarm {
                rule,
                statistic,
                limit,
            } => {
                want_rule = Some(rule.name());
                want.extend([("statistic", statistic), ("limit", limit)]);
            }
            EventBody::ToolChange { tool } => want_tool = Some(tool),
        }
        for (name, col) in names.iter().zip(&floats) {
            match want.iter().find(|(n, _)| n == name) {
                Some(&(_, v)) => {
                    assert!(col.is_valid(i), "row {i} {name}");
                    assert_eq!(col.value(i).to_bits(), v.to_bits(), "row {i} {name}");
                }
                None => assert!(col.is_null(i), "row {i} {name} should be null"),
            }
        }
        assert_eq!(dir_col.is_valid(i).then(|| dir_col.value(i)), want_dir);
        assert_eq!(rule.is_valid(i).then(|| rule.value(i)), want_rule);
        assert_eq!(tool_col.is_valid(i).then(|| tool_col.value(i)), want_tool);
        assert_eq!(scale.is_valid(i).then(|| scale.value(i)), want_scale);
    }

    assert_eq!(read_events(&path).unwrap(), events);
}

#[test]
fn fit_rows_round_trip_with_exact_schema_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fit.parquet");
    let regimes = ["calm", "normal", "stressed"];
    let rows: Vec<(String, FitRow, &str)> = (0..10_000)
        .map(|i| {
            let x = i as f64;
            let row = FitRow {
                ts: 1_000_000 * i as i64,
                y: 100.0 + x.sin(),
                level: 100.0 + 0.1 * x,
                slope: 0.1,
                zone: 0.5 + 0.001 * x,
                inside: i % 3 != 0,
                updated: i % 5 == 0,
                regime: (i % 3) as u8,
            };
            (format!("k{}", i % 7), row, regimes[i % 3])
        })
        .collect();
    let mut w = FitWriter::create(&path).unwrap();
    for (k, r, g) in &rows {
        w.write(k, r, g).unwrap();
    }
    assert!(!path.exists());
    assert_eq!(w.finish().unwrap(), rows.len() as u64);

    let b = read_plain(&path);
    let ts_utc = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = b.schema();
    let got_types: Vec<(&str, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(
        got_types,
        vec![
            ("key", DataType::Utf8),
            ("ts", ts_utc),
            ("y", DataType::Float64),
            ("level", DataType::Float64),
            ("slope", DataType::Float64),
            ("zone", DataType::Float64),
            ("inside", DataType::Boolean),
            ("updated", DataType::Boolean),
            ("regime", DataType::Utf8),
        ]
    );
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    let f = |n: &str| col(n).as_primitive::<Float64Type>().clone();
    let (key, regime) = (col("key"), col("regime"));
    let (key, regime) = (key.as_string::<i32>(), regime.as_string::<i32>());
    let ts = col("ts");
    let ts = ts
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap();
    let (y, level, slope, zone) = (f("y"), f("level"), f("slope"), f("zone"));
    let (inside, updated) = (col("inside"), col("updated"));
    let (inside, updated) = (inside.as_boolean(), updated.as_boolean());
    assert_eq!(b.num_rows(), rows.len());
    for (i, (k, r, g)) in rows.iter().enumerate() {
        assert_eq!(key.value(i), k);
        assert_eq!(ts.value(i), r.ts);
        assert_eq!(y.value(i).to_bits(), r.y.to_bits());
        assert_eq!(level.value(i).to_bits(), r.level.to_bits());
        assert_eq!(slope.value(i).to_bits(), r.slope.to_bits());
        assert_eq!(zone.value(i).to_bits(), r.zone.to_bits());
        assert_eq!(inside.value(i), r.inside);
        assert_eq!(updated.value(i), r.updated);
        assert_eq!(regime.value(i), *g);
    }
}

#[test]
fn a_writer_dropped_without_finish_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    let mut w = EventWriter::create(&path).unwrap();
    for e in sample_events(10) {
        w.write(&e).unwrap();
    }
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let msg = match EventWriter::create(&dir.path().join("missing/events.parquet")) {
        Ok(_) => panic!("created a file in a missing directory"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains("missing/events.parquet") && msg.contains("directory"),
        "{msg}"
    );
}

#[test]
fn read_events_rejects_an_unknown_kind_naming_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.parquet");
    write_file(
        &path,
        vec![
            (
                "key",
                Arc::new(StringArray::from(vec!["a", "a"])) as ArrayRef,
            ),
            ("seq", Arc::new(Int64Array::from(vec![0, 1]))),
            ("ts", Arc::new(Int64Array::from(vec![5, 6]))),
            (
                "kind",
                Arc::new(StringArray::from(vec!["spc_alarm", "bogus"])),
            ),
            ("rule", Arc::new(StringArray::from(vec![Some("we2"), None]))),
            (
                "statistic",
                Arc::new(Float64Array::from(vec![Some(2.5), None])),
            ),
            ("limit", Arc::new(Float64Array::from(vec![Some(2.0), None]))),
        ],
        None,
    );
    let msg = err_text(read_events(&path));
    assert!(
        msg.contains("odd.parquet") && msg.contains("row 1") && msg.contains("`bogus`"),
        "{msg}"
    );
}

/// Read throughput of `next_record` over ~1M bars in one file. Prints records/s; run with
/// `cargo test --release --test parquet_io -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_one_million_bars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.parquet");
    let n = 1_000_000usize;
    let keys = (0..n).map(|i| format!("SYM{:03}", i % 100)).collect();
    let ts = (0..n as i64)
        .map(|i| 1_700_000_000_000_000_000 + i * 1_000_000_000)
        .collect();
    let close = (0..n).map(|i| 100.0 + (i % 1000) as f64 * 0.01).collect();
    write_file(&path, bar_cols(keys, ts, close), None);
    let t = std::time::Instant::now();
    let mut src = ParquetSource::open(
        path.to_str().unwrap(),
        RecordKind::Bar,
        SourceOptions::default(),
    )
    .unwrap();
    let mut sum = 0.0;
    let mut key_bytes = 0usize;
    while let Some(r) = src.next_record().unwrap() {
        sum += r.y();
        key_bytes += r.key.len();
    }
    let s = t.elapsed().as_secs_f64();
    assert_eq!(src.rows_read(), n as u64);
    println!(
        "read {n} bars in {s:.3} s = {:.0} records/s (checksum {sum:.1}, {key_bytes} key bytes)",
        n as f64 / s
    );
}
