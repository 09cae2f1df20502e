//! `deadband gen`: synthetic market and sensor files, checked against the design's schema, the
//! row-order contract and the configured truths (volatility ratio, gauge sigma, tool wear).
//!
//! Statistical tolerances are 5 standard errors computed from the sample sizes at hand, so a
//! correct generator passes for any seed with overwhelming probability and a wrong scale,
//! sign or shift of the ground truth fails.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType};
use deadband::run::gen::{
    market_schema, sensor_schema, write, write_market, write_sensor, GenError, GenKind, GenOptions,
    MarketGen, MarketParams, Regime, SensorGen, SensorParams, TruthCounts, ROW_GROUP_ROWS,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;

/// 2024-01-02T00:00:00Z: 19724 days after 1970-01-01, in ns.
const JAN_2_2024_NS: i64 = 19_724 * 86_400 * 1_000_000_000;

/// A path in a per-process temp directory; the file is removed when the guard drops.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join("deadband-gen-test");
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir.join(format!("{}-{name}", std::process::id())))
}

fn read(
    path: &Path,
) -> (
    arrow::datatypes::SchemaRef,
    Arc<ParquetMetaData>,
    Vec<RecordBatch>,
) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let meta = builder.metadata().clone();
    let batches = builder.build().unwrap().map(|b| b.unwrap()).collect();
    (schema, meta, batches)
}

fn f64s(batches: &[RecordBatch], name: &str) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>();
            assert_eq!(col.null_count(), 0, "{name} has nulls");
            col.values().to_vec()
        })
        .collect()
}

fn strs(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(name).unwrap().as_string::<i32>();
            col.iter()
                .map(|s| s.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn tss(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b
                .column_by_name("ts")
                .unwrap()
                .as_primitive::<TimestampNanosecondType>();
            col.values().to_vec()
        })
        .collect()
}

fn names_and_types(schema: &arrow::datatypes::Schema) -> Vec<(String, DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, v)
}

/// Ordinary least-squares slope of y on x and its standard error for a known noise sigma.
fn ls_slope(x: &[f64], y: &[f64], sigma: f64) -> (f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    (sxy / sxx, sigma / sxx.sqrt())
}

// ---------------------------------------------------------------------------------------------
// Schema, layout, determinism
// ---------------------------------------------------------------------------------------------

#[test]
fn market_file_has_design_bar_columns_then_ground_truth() {
    let path = scratch("schema_market.parquet");
    write_market(&GenOptions::new(3, 500, 1), &path).unwrap();
    let (schema, meta, _) = read(&path);
    let f64t = DataType::Float64;
    let expected = vec![
        ("key".to_string(), DataType::Utf8),
        ("ts".into(), ts_type()),
        ("open".into(), f64t.clone()),
        ("high".into(), f64t.clone()),
        ("low".into(), f64t.clone()),
        ("close".into(), f64t.clone()),
        ("volume".into(), f64t.clone()),
        ("true_trend".into(), f64t.clone()),
        ("regime".into(), DataType::Utf8),
        ("jump".into(), f64t),
    ];
    assert_eq!(names_and_types(&schema), expected);
    assert_eq!(names_and_types(&market_schema()), expected);
    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert_eq!(c.compression(), Compression::SNAPPY);
        }
    }
}

#[test]
fn sensor_file_has_design_measurement_columns_then_ground_truth() {
    let path = scratch("schema_sensor.parquet");
    write_sensor(&GenOptions::new(4, 300, 1), &path).unwrap();
    let (schema, meta, _) = read(&path);
    let f64t = DataType::Float64;
    let expected = vec![
        ("key".to_string(), DataType::Utf8),
        ("ts".into(), ts_type()),
        ("value".into(), f64t.clone()),
        ("nominal".into(), f64t.clone()),
        ("lsl".into(), f64t.clone()),
        ("usl".into(), f64t.clone()),
        ("part".into(), DataType::Utf8),
        ("true_value".into(), f64t.clone()),
        ("true_drift".into(), f64t.clone()),
        ("tool".into(), DataType::Int64),
        ("outlier".into(), DataType::Boolean),
        ("sigma_grr".into(), f64t),
    ];
    assert_eq!(names_and_types(&schema), expected);
    assert_eq!(names_and_types(&sensor_schema()), expected);
    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert_eq!(c.compression(), Compression::SNAPPY);
        }
    }
}

#[test]
fn market_rows_are_on_one_minute_grid_sorted_by_ts_then_key_with_valid_ohlc() {
    let (keys, rows) = (5, 2_000);
    let mut opts = GenOptions::new(keys, rows, 7);
    opts.batch_rows = 777; // batch boundaries fall mid-timestamp
    let path = scratch("layout_market.parquet");
    let summary = write_market(&opts, &path).unwrap();
    let (_, _, b) = read(&path);
    let (key, ts) = (strs(&b, "key"), tss(&b));
    let (open, high, low, close, volume) = (
        f64s(&b, "open"),
        f64s(&b, "high"),
        f64s(&b, "low"),
        f64s(&b, "close"),
        f64s(&b, "volume"),
    );
    let regime = strs(&b, "regime");
    assert_eq!(key.len(), keys * rows);
    assert_eq!(summary.rows, (keys * rows) as u64);
    assert_eq!(summary.batches, (keys * rows).div_ceil(777) as u64);
    let names: Vec<String> = (0..keys).map(|k| format!("SYM{k:03}")).collect();
    for i in 0..key.len() {
        // Row i is key i % K at minute i / K: the same grid for every key.
        assert_eq!(key[i], names[i % keys], "row {i}");
        assert_eq!(ts[i], JAN_2_2024_NS + (i / keys) as i64 * 60_000_000_000);
        if i > 0 {
            assert!(
                (ts[i - 1], &key[i - 1]) < (ts[i], &key[i]),
                "not sorted at {i}"
            );
        }
        assert!(low[i] > 0.0, "row {i}");
        assert!(low[i] <= open[i].min(close[i]), "row {i}");
        assert!(high[i] >= open[i].max(close[i]), "row {i}");
        assert!(volume[i] >= 1.0 && volume[i].is_finite(), "row {i}");
        assert!(regime[i] == "calm" || regime[i] == "turbulent");
        if i >= keys {
            // Continuous market: a bar opens at the previous bar's close.
            assert_eq!(open[i], close[i - keys], "row {i}");
        }
    }
    assert_eq!(summary.first_ts, ts[0]);
    assert_eq!(summary.last_ts, *ts.last().unwrap());
    let turbulent = regime.iter().filter(|r| *r == "turbulent").count() as u64;
    let jumps = f64s(&b, "jump").iter().filter(|j| **j != 0.0).count() as u64;
    assert_eq!(
        summary.truth,
        TruthCounts::Market {
            turbulent_rows: turbulent,
            jumps
        }
    );
    // Keys get different price levels.
    let first_close: Vec<f64> = close[..keys].to_vec();
    for a in 0..keys {
        for c in a + 1..keys {
            assert_ne!(first_close[a], first_close[c]);
        }
    }
}

#[test]
fn sensor_rows_are_one_part_every_30s_sorted_by_ts_then_key() {
    let (keys, rows) = (7, 1_000);
    let mut opts = GenOptions::new(keys, rows, 3);
    opts.batch_rows = 1_000;
    let path = scratch("layout_sensor.parquet");
    let summary = write_sensor(&opts, &path).unwrap();
    let (_, _, b) = read(&path);
    let (key, ts, part) = (strs(&b, "key"), tss(&b), strs(&b, "part"));
    let (nominal, lsl, usl, sigma) = (
        f64s(&b, "nominal"),
        f64s(&b, "lsl"),
        f64s(&b, "usl"),
        f64s(&b, "sigma_grr"),
    );
    let names = [
        "M01/bore",
        "M01/diameter",
        "M01/length",
        "M02/bore",
        "M02/diameter",
        "M02/length",
        "M03/bore",
    ];
    assert_eq!(key.len(), keys * rows);
    for i in 0..key.len() {
        assert_eq!(key[i], names[i % keys], "row {i}");
        assert_eq!(ts[i], JAN_2_2024_NS + (i / keys) as i64 * 30_000_000_000);
        assert_eq!(part[i], format!("P{:07}", i / keys + 1));
        if i > 0 {
            assert!(
                (ts[i - 1], &key[i - 1]) < (ts[i], &key[i]),
                "not sorted at {i}"
            );
        }
        assert!(lsl[i] < nominal[i] && nominal[i] < usl[i]);
        // The configured gauge: sigma_GRR = tolerance / 60.
        let want = (usl[i] - lsl[i]) * SensorParams::default().grr_fraction;
        assert!((sigma[i] - want).abs() <= 1e-12 * want, "row {i}");
        assert!((sigma[i] * 60.0 - (usl[i] - lsl[i])).abs() < 1e-12);
        if i >= keys {
            assert_eq!(
                (nominal[i], lsl[i], usl[i]),
                (nominal[i - keys], lsl[i - keys], usl[i - keys])
            );
        }
    }
    let outliers = b
        .iter()
        .map(|x| {
            x.column_by_name("outlier")
                .unwrap()
                .as_boolean()
                .true_count() as u64
        })
        .sum();
    let tools = b.iter().flat_map(|x| {
        x.column_by_name("tool")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    });
    let tool_changes: u64 = tools.skip(keys * (rows - 1)).map(|t| t as u64).sum();
    assert_eq!(
        summary.truth,
        TruthCounts::Sensor {
            tool_changes,
            outliers
        }
    );
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_differs() {
    for kind in [GenKind::Market, GenKind::Sensor] {
        let opts = GenOptions::new(3, 3_000, 42);
        let (a, b, c) = (
            scratch(&format!("det_a_{kind}.parquet")),
            scratch(&format!("det_b_{kind}.parquet")),
            scratch(&format!("det_c_{kind}.parquet")),
        );
        write(kind, &opts, &a).unwrap();
        write(kind, &opts, &b).unwrap();
        write(kind, &GenOptions::new(3, 3_000, 43), &c).unwrap();
        let (ba, bb, bc) = (
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            std::fs::read(&c).unwrap(),
        );
        assert_eq!(ba, bb, "{kind}: same seed, different bytes");
        assert_ne!(ba, bc, "{kind}: seeds 42 and 43 give the same file");
        let col = if kind == GenKind::Market {
            "close"
        } else {
            "value"
        };
        let (x, z) = (f64s(&read(&a).2, col), f64s(&read(&c).2, col));
        let same = x.iter().zip(&z).filter(|(p, q)| p == q).count();
        assert!(
            same < x.len() / 100,
            "{kind}: seeds 42 and 43 share {same} values"
        );
    }
}

#[test]
fn batch_size_and_key_count_do_not_change_a_keys_series() {
    let small = GenOptions::new(2, 1_000, 9);
    let mut big = GenOptions::new(5, 1_000, 9);
    big.batch_rows = 333;
    let a: Vec<_> = MarketGen::new(&small).unwrap().collect();
    let b: Vec<_> = MarketGen::new(&big)
        .unwrap()
        .filter(|r| &*r.key == "SYM000" || &*r.key == "SYM001")
        .collect();
    assert_eq!(a, b);
    let a: Vec<_> = SensorGen::new(&small).unwrap().collect();
    let b: Vec<_> = SensorGen::new(&big)
        .unwrap()
        .filter(|r| r.key.starts_with("M01/") && &*r.key != "M01/length")
        .collect();
    assert_eq!(a, b);
}

#[test]
fn file_content_equals_the_iterator() {
    let mut opts = GenOptions::new(3, 1_500, 5);
    opts.batch_rows = 1_024;
    let path = scratch("iter_market.parquet");
    write_market(&opts, &path).unwrap();
    let b = read(&path).2;
    let rows: Vec<_> = MarketGen::new(&opts).unwrap().collect();
    let (close, trend, jump) = (f64s(&b, "close"), f64s(&b, "true_trend"), f64s(&b, "jump"));
    let regime = strs(&b, "regime");
    assert_eq!(rows.len(), close.len());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            (r.close, r.true_trend, r.jump),
            (close[i], trend[i], jump[i])
        );
        assert_eq!(r.regime.as_str(), regime[i]);
    }
    let path = scratch("iter_sensor.parquet");
    write_sensor(&opts, &path).unwrap();
    let b = read(&path).2;
    let rows: Vec<_> = SensorGen::new(&opts).unwrap().collect();
    let (value, truth) = (f64s(&b, "value"), f64s(&b, "true_value"));
    assert_eq!(rows.len(), value.len());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!((r.value, r.true_value), (value[i], truth[i]));
    }
}

#[test]
fn large_files_are_split_into_bounded_row_groups() {
    let opts = GenOptions::new(2, 300_000, 11);
    let path = scratch("rowgroups.parquet");
    let summary = write_market(&opts, &path).unwrap();
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
        .unwrap()
        .metadata()
        .clone();
    let total: i64 = meta.row_groups().iter().map(|rg| rg.num_rows()).sum();
    assert_eq!(total, 600_000);
    assert_eq!(meta.num_row_groups(), 600_000usize.div_ceil(ROW_GROUP_ROWS));
    assert!(meta
        .row_groups()
        .iter()
        .all(|rg| rg.num_rows() as usize <= ROW_GROUP_ROWS));
    assert_eq!(summary.batches, 600_000usize.div_ceil(65_536) as u64);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
}

// ---------------------------------------------------------------------------------------------
// Market ground truth
// ---------------------------------------------------------------------------------------------

struct KeySeries {
    /// Log return minus jump: drift + vol * innovation.
    ret: Vec<f64>,
    trend: Vec<f64>,
    turbulent: Vec<bool>,
    jump: Vec<f64>,
}

fn market_series(keys: usize, rows: usize, seed: u64) -> Vec<KeySeries> {
    let mut out: Vec<KeySeries> = (0..keys)
        .map(|_| KeySeries {
            ret: Vec::with_capacity(rows),
            trend: Vec::with_capacity(rows),
            turbulent: Vec::with_capacity(rows),
            jump: Vec::with_capacity(rows),
        })
        .collect();
    for (i, r) in MarketGen::new(&GenOptions::new(keys, rows, seed))
        .unwrap()
        .enumerate()
    {
        let s = &mut out[i % keys];
        s.ret.push((r.close / r.open).ln() - r.jump);
        s.trend.push(r.true_trend);
        s.turbulent.push(r.regime == Regime::Turbulent);
        s.jump.push(r.jump);
    }
    out
}

/// Sd of the calm-regime innovations: the key's base volatility.
fn calm_sd(s: &KeySeries) -> f64 {
    let x: Vec<f64> = (0..s.ret.len())
        .filter(|&i| !s.turbulent[i])
        .map(|i| s.ret[i] - s.trend[i])
        .collect();
    mean_var(&x).1.sqrt()
}

#[test]
fn turbulent_volatility_is_the_configured_multiple_of_calm() {
    let p = MarketParams::default();
    let dof = f64::from(p.tail_dof);
    // Kurtosis of a Student-t: 3 + 6 / (dof - 4). The sd of a sample sd has relative
    // standard error sqrt((kurtosis - 1) / (4 n)).
    let kurtosis = 3.0 + 6.0 / (dof - 4.0);
    for (k, s) in market_series(4, 100_000, 21).iter().enumerate() {
        let pick = |turb: bool| -> Vec<f64> {
            (0..s.ret.len())
                .filter(|&i| s.turbulent[i] == turb)
                .map(|i| s.ret[i] - s.trend[i])
                .collect()
        };
        let (calm, turb) = (pick(false), pick(true));
        assert!(
            turb.len() > 5_000,
            "key {k}: only {} turbulent rows",
            turb.len()
        );
        let ratio = (mean_var(&turb).1 / mean_var(&calm).1).sqrt();
        let rel_se =
            ((kurtosis - 1.0) / 4.0 * (1.0 / calm.len() as f64 + 1.0 / turb.len() as f64)).sqrt();
        let tol = 5.0 * rel_se * p.turbulent_vol_ratio;
        assert!(
            (ratio - p.turbulent_vol_ratio).abs() < tol,
            "key {k}: vol ratio {ratio:.3}, configured {} +- {tol:.3}",
            p.turbulent_vol_ratio
        );
    }
}

#[test]
fn regime_spells_have_the_configured_mean_lengths() {
    let p = MarketParams::default();
    let mut spells: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for s in market_series(4, 100_000, 22) {
        // Complete spells only: drop the first and the last, which are cut by the sample.
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=s.turbulent.len() {
            if i == s.turbulent.len() || s.turbulent[i] != s.turbulent[start] {
                runs.push((s.turbulent[start], (i - start) as f64));
                start = i;
            }
        }
        for &(turb, len) in &runs[1..runs.len() - 1] {
            spells[usize::from(turb)].push(len);
        }
    }
    // Spell lengths are geometric: sd ~ mean, so the mean of n spells has se ~ mean / sqrt(n).
    for (turb, want) in [(0, p.mean_calm_bars), (1, p.mean_turbulent_bars)] {
        let n = spells[turb].len() as f64;
        assert!(n > 30.0, "too few spells: {n}");
        let mean = spells[turb].iter().sum::<f64>() / n;
        let tol = 5.0 * want / n.sqrt();
        assert!(
            (mean - want).abs() < tol,
            "regime {turb}: mean spell {mean:.0} bars, configured {want} +- {tol:.0}"
        );
    }
}

#[test]
fn innovations_are_fat_tailed() {
    // A Student-t with 5 dof has kurtosis 9, a normal 3. The sample kurtosis of a t5 is
    // skewed upwards, so a lower bound well under 9 is safe and still rejects normal noise.
    for s in market_series(2, 100_000, 23) {
        let x: Vec<f64> = (0..s.ret.len())
            .filter(|&i| !s.turbulent[i])
            .map(|i| s.ret[i] - s.trend[i])
            .collect();
        let (m, v) = mean_var(&x);
        let k = x.iter().map(|a| (a - m).powi(4)).sum::<f64>() / x.len() as f64 / (v * v);
        assert!(k > 6.0, "kurtosis {k:.2}");
    }
}

#[test]
fn true_trend_is_the_drift_of_the_returns() {
    let p = MarketParams::default();
    let series = market_series(4, 100_000, 24);
    // Regress returns on true_trend through the origin; with the right column the slope is 1.
    // Heteroskedasticity-robust (HC0) se, since volatility switches with the regime.
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for s in &series {
        for i in 0..s.ret.len() {
            sxx += s.trend[i] * s.trend[i];
            sxy += s.trend[i] * s.ret[i];
        }
    }
    let beta = sxy / sxx;
    let mut meat = 0.0;
    for s in &series {
        for i in 0..s.ret.len() {
            let e = s.ret[i] - beta * s.trend[i];
            meat += (s.trend[i] * e).powi(2);
        }
    }
    let se = meat.sqrt() / sxx;
    assert!((beta - 1.0).abs() < 5.0 * se, "slope {beta:.3} +- {se:.3}");
    assert!(se < 0.2, "test too weak: se {se:.3}");

    let mut flat = 0usize;
    let mut total = 0usize;
    for s in &series {
        let base = calm_sd(s);
        let mut segments = 1;
        for i in 0..s.trend.len() {
            total += 1;
            if s.trend[i] == 0.0 {
                flat += 1;
            } else {
                // |drift| within the configured range of multiples of calm vol (the calm sd is
                // estimated from ~80k rows: within 2 %).
                let m = s.trend[i].abs() / base;
                assert!(
                    m > p.trend_strength.0 * 0.97 && m < p.trend_strength.1 * 1.03,
                    "drift {m:.4} x calm vol"
                );
            }
            if i > 0 && s.trend[i] != s.trend[i - 1] {
                segments += 1;
            }
        }
        // Piecewise constant: about rows / mean_trend_bars segments (Poisson count; adjacent
        // flat segments merge, so allow fewer).
        let want = s.trend.len() as f64 / p.mean_trend_bars;
        let n = segments as f64;
        assert!(
            n < want + 5.0 * want.sqrt() && n > 0.6 * want - 5.0 * want.sqrt(),
            "{segments} trend segments, expected about {want:.0}"
        );
    }
    // Share of flat bars ~ flat_trend_prob. Segments have geometric lengths (sd ~ mean), so
    // the se of the length-weighted share is about sqrt(2 p (1 - p) / segments).
    let share = flat as f64 / total as f64;
    let segments = total as f64 / p.mean_trend_bars;
    let se = (2.0 * p.flat_trend_prob * (1.0 - p.flat_trend_prob) / segments).sqrt();
    assert!(
        (share - p.flat_trend_prob).abs() < 5.0 * se,
        "flat share {share:.3}"
    );
}

#[test]
fn jumps_are_rare_and_large() {
    let p = MarketParams::default();
    let series = market_series(4, 100_000, 25);
    let mut count = 0usize;
    for s in &series {
        let base = calm_sd(s);
        for &j in s.jump.iter().filter(|j| **j != 0.0) {
            count += 1;
            let m = j.abs() / base;
            assert!(
                m > p.jump_size.0 * 0.97 && m < p.jump_size.1 * 1.03,
                "jump of {m:.1} calm sd"
            );
        }
    }
    let want = 400_000.0 * p.jump_prob;
    assert!(
        (count as f64 - want).abs() < 5.0 * want.sqrt(),
        "{count} jumps, expected about {want}"
    );
}

// ---------------------------------------------------------------------------------------------
// Sensor ground truth
// ---------------------------------------------------------------------------------------------

#[test]
fn gauge_noise_has_sigma_grr_and_outliers_are_gross_and_rare() {
    let p = SensorParams::default();
    let (keys, rows) = (6, 50_000);
    let mut dev: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut sigma = BTreeMap::new();
    let mut outliers = 0usize;
    for r in SensorGen::new(&GenOptions::new(keys, rows, 31)).unwrap() {
        let d = r.value - r.true_value;
        let z = d / r.sigma_grr;
        if r.outlier {
            outliers += 1;
            // Gross errors start at outlier_size.0 sigma; noise adds a few sigma at most.
            assert!(z.abs() > p.outlier_size.0 - 6.0, "outlier at {z:.1} sigma");
        } else {
            // P(|N(0,1)| > 6) ~ 2e-9: never among 300k draws.
            assert!(z.abs() < 6.0, "{}: plain noise at {z:.1} sigma", r.key);
            dev.entry(r.key.to_string()).or_default().push(d);
        }
        sigma.insert(r.key.to_string(), r.sigma_grr);
    }
    for (key, d) in &dev {
        let (m, v) = mean_var(d);
        let (s, n) = (sigma[key], d.len() as f64);
        // Normal noise: se of the sd is s / sqrt(2 n), se of the mean s / sqrt(n).
        assert!(
            (v.sqrt() - s).abs() < 5.0 * s / (2.0 * n).sqrt(),
            "{key}: sd {} vs sigma_grr {s}",
            v.sqrt()
        );
        assert!(m.abs() < 5.0 * s / n.sqrt(), "{key}: noise mean {m}");
    }
    let n = (keys * rows) as f64;
    let want = n * p.outlier_prob;
    assert!(
        (outliers as f64 - want).abs() < 5.0 * want.sqrt(),
        "{outliers} outliers, expected about {want}"
    );
}

#[test]
fn tool_wear_is_linear_per_tool_life_and_leaves_spec_before_the_change() {
    let p = SensorParams::default();
    let (keys, rows) = (6, 30_000);
    // (key, tool) -> (part number, value, true_value, outlier) in part order
    type Life = Vec<(f64, f64, f64, bool)>;
    let mut lives: BTreeMap<(String, i64), Life> = BTreeMap::new();
    let mut spec = BTreeMap::new();
    let mut drift = BTreeMap::new();
    let mut sigma = BTreeMap::new();
    for (i, r) in SensorGen::new(&GenOptions::new(keys, rows, 32))
        .unwrap()
        .enumerate()
    {
        let part = (i / keys) as f64;
        lives.entry((r.key.to_string(), r.tool)).or_default().push((
            part,
            r.value,
            r.true_value,
            r.outlier,
        ));
        spec.insert(r.key.to_string(), (r.nominal, r.lsl, r.usl));
        drift.insert((r.key.to_string(), r.tool), r.true_drift);
        sigma.insert(r.key.to_string(), r.sigma_grr);
    }
    let last_tool: BTreeMap<String, i64> = lives.keys().map(|(k, t)| (k.clone(), *t)).collect();
    let mut complete = 0;
    for ((key, tool), life) in &lives {
        let (nominal, lsl, usl) = spec[key];
        let h = (usl - lsl) / 2.0;
        let d = drift[&(key.clone(), *tool)];
        // Wear direction per feature: a bore shrinks, a diameter or a length grows.
        assert_eq!(d < 0.0, key.ends_with("/bore"), "{key}: drift {d}");
        // Configured wear: wear_to_limit half tolerances over the shortest tool life.
        let w = d.abs() * f64::from(p.tool_life.0) / h;
        let (lo, hi) = p.wear_to_limit;
        assert!(
            w > lo * (1.0 - 1e-12) && w < hi * (1.0 + 1e-12),
            "{key}: wear {w}"
        );
        // A new tool starts near nominal: offset within max_offset half tolerances.
        assert!((life[0].2 - nominal).abs() <= p.max_offset * h * (1.0 + 1e-9));

        if life.len() > 2 {
            // true_value is exactly linear in the part number with slope true_drift.
            let x: Vec<f64> = life.iter().map(|r| r.0).collect();
            let t: Vec<f64> = life.iter().map(|r| r.2).collect();
            let (slope, _) = ls_slope(&x, &t, 0.0);
            assert!((slope - d).abs() <= 1e-9 * d.abs(), "{key} tool {tool}");
            // The measured values recover the drift within the least-squares se.
            let clean: Vec<_> = life.iter().filter(|r| !r.3).collect();
            let x: Vec<f64> = clean.iter().map(|r| r.0).collect();
            let y: Vec<f64> = clean.iter().map(|r| r.1).collect();
            let (slope, se) = ls_slope(&x, &y, sigma[key]);
            assert!(
                (slope - d).abs() < 5.0 * se,
                "{key} tool {tool}: measured slope {slope} vs {d} +- {se}"
            );
        }
        if *tool < last_tool[key] {
            complete += 1;
            let n = life.len() as u32;
            assert!(n >= p.tool_life.0 && n <= p.tool_life.1, "{key}: life {n}");
            // Uncompensated, the process leaves the spec before the tool is changed.
            assert!(
                life.iter().any(|r| r.2 < lsl || r.2 > usl),
                "{key} tool {tool} stays in spec"
            );
        }
    }
    // Mean tool life (200..=600 uniform) is 400 parts.
    let want = (keys * rows) as f64 / 400.0;
    assert!(
        complete as f64 > 0.8 * want - keys as f64,
        "{complete} complete tool lives"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn errors_name_the_problem_and_the_fix() {
    let missing = scratch("no/such/dir/out.parquet");
    let err = write_market(&GenOptions::new(1, 10, 0), &missing).unwrap_err();
    assert!(matches!(err, GenError::Create { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&*missing.to_string_lossy()), "{msg}");
    assert!(msg.contains("directory exists"), "{msg}");

    // The destination is a directory: the data is written to a temp file, the final move
    // fails, and the temp file is cleaned up.
    let dir = std::env::temp_dir()
        .join("deadband-gen-test")
        .join(format!("{}-a-dir.parquet", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = write_sensor(&GenOptions::new(1, 10, 0), &dir).unwrap_err();
    assert!(matches!(err, GenError::Finish { .. }), "{err:?}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("a-dir.parquet.partial"))
        .collect();
    std::fs::remove_dir(&dir).unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let err = write_sensor(&GenOptions::new(0, 10, 0), &scratch("x.parquet")).unwrap_err();
    assert!(err.to_string().contains("--keys"), "{err}");
    let err = MarketGen::new(&GenOptions::new(2, 0, 0)).err().unwrap();
    assert!(err.to_string().contains("--rows"), "{err}");
    let mut opts = GenOptions::new(1, 10, 0);
    opts.market.jump_prob = 2.0;
    assert!(MarketGen::new(&opts)
        .err()
        .unwrap()
        .to_string()
        .contains("jump_prob"));
    let err = MarketGen::new(&GenOptions::new(1, usize::MAX / 2, 0))
        .err()
        .unwrap();
    assert!(err.to_string().contains("2262"), "{err}");

    assert_eq!("market".parse::<GenKind>().unwrap(), GenKind::Market);
    assert_eq!("sensor".parse::<GenKind>().unwrap(), GenKind::Sensor);
    let err = "bars".parse::<GenKind>().unwrap_err().to_string();
    assert!(err.contains("market") && err.contains("sensor"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Speed (not a test of speed: run with --ignored --nocapture to print rows/s)
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore]
fn print_write_speed_for_one_million_rows() {
    for kind in [GenKind::Market, GenKind::Sensor] {
        let path = scratch(&format!("speed_{kind}.parquet"));
        let start = std::time::Instant::now();
        let s = write(kind, &GenOptions::new(10, 100_000, 1), &path).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{kind}: {} rows in {secs:.2} s = {:.0} rows/s, {} bytes",
            s.rows,
            s.rows as f64 / secs,
            s.bytes
        );
    }
}
