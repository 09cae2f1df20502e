//! Summaries computed by polars over the run's own Parquet outputs (lazy scans, bounded memory).
//!
//! These are a second count next to the processor's counters: a test checks that both agree, so
//! what a user later computes from the files matches what the summary says.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

/// Fit statistics of one key, from `fit.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyFitStats {
    pub key: String,
    pub rows: u64,
    /// Share of records whose residual was inside the zone.
    pub dead_zone_ratio: f64,
    /// Share of records that changed the fit.
    pub update_rate: f64,
    /// Mean zone half-width over the key's fit rows, the same bits in every run of the same
    /// file (see [`fit_by_key`]).
    pub mean_zone: f64,
}

fn scan(path: &Path) -> PolarsResult<LazyFrame> {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
}

/// Number of events of each kind in an events file.
pub fn events_by_kind(path: &Path) -> Result<BTreeMap<String, u64>, String> {
    let df = scan(path)
        .and_then(|lf| lf.group_by([col("kind")]).agg([len().alias("n")]).collect())
        .map_err(|e| e.to_string())?;
    let kinds = df
        .column("kind")
        .and_then(|c| c.str().cloned())
        .map_err(|e| e.to_string())?;
    let n = df
        .column("n")
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(|e| e.to_string())?;
    let n = n.u64().map_err(|e| e.to_string())?;
    Ok(kinds
        .iter()
        .zip(n.iter())
        .filter_map(|(k, n)| Some((k?.to_string(), n?)))
        .collect())
}

/// Dead-zone ratio, update rate and mean zone per key in a fit file, sorted by key.
///
/// The zone's mean is not polars' grouped mean: that adds partial sums in the order its threads
/// finish, so two runs of one file differed in the last bits (and polars drops a sort placed
/// before a mean, a mean being blind to order). Here each key's zones come back as a list, are
/// sorted and added in that order, so the mean is a function of the values alone: the same bits
/// in every run, and in a merge of shards as in one run. This holds the zone column in memory
/// (8 bytes per fit row) while the summary is made. The two ratios are means of 0/1 values,
/// exact sums in any order.
pub fn fit_by_key(path: &Path) -> Result<Vec<KeyFitStats>, String> {
    let df = scan(path)
        .and_then(|lf| {
            lf.group_by([col("key")])
                .agg([
                    len().alias("rows"),
                    col("inside").cast(DataType::Float64).mean().alias("inside"),
                    col("updated")
                        .cast(DataType::Float64)
                        .mean()
                        .alias("updated"),
                    col("zone")
                        .cast(DataType::Float64)
                        .implode(false)
                        .alias("zone"),
                ])
                .sort(["key"], SortMultipleOptions::default())
                .collect()
        })
        .map_err(|e| e.to_string())?;
    let get = |name: &str| -> Result<Vec<f64>, String> {
        let c = df
            .column(name)
            .and_then(|c| c.cast(&DataType::Float64))
            .map_err(|e| e.to_string())?;
        Ok(c.f64()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let lists = df
        .column("zone")
        .and_then(|c| c.list().cloned())
        .map_err(|e| e.to_string())?;
    let zone: Vec<f64> = lists
        .series_iter()
        .map(|list| match list {
            Some(values) => values.f64().map(sorted_mean),
            None => Ok(f64::NAN),
        })
        .collect::<PolarsResult<_>>()
        .map_err(|e| e.to_string())?;
    let (rows, inside, updated) = (get("rows")?, get("inside")?, get("updated")?);
    let keys = df
        .column("key")
        .and_then(|c| c.str().cloned())
        .map_err(|e| e.to_string())?;
    Ok(keys
        .iter()
        .enumerate()
        .map(|(i, k)| KeyFitStats {
            key: k.unwrap_or("").to_string(),
            rows: rows[i] as u64,
            dead_zone_ratio: inside[i],
            update_rate: updated[i],
            mean_zone: zone[i],
        })
        .collect())
}

/// The mean of the non-null values, added in ascending order (NaN without any).
fn sorted_mean(values: &Float64Chunked) -> f64 {
    let mut v: Vec<f64> = values.iter().flatten().collect();
    v.sort_unstable_by(f64::total_cmp);
    v.iter().sum::<f64>() / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(values: &[Option<f64>]) -> Float64Chunked {
        Float64Chunked::from_slice_options(PlSmallStr::from_static("zone"), values)
    }

    #[test]
    fn sorted_mean_is_the_mean_of_the_non_null_values() {
        let m = sorted_mean(&chunked(&[
            Some(4.0),
            None,
            Some(1.0),
            Some(2.5),
            Some(0.5),
        ]));
        assert_eq!(m, 2.0);
        assert!(sorted_mean(&chunked(&[None, None])).is_nan());
    }

    /// The property the summary relies on: the bits do not depend on the order of the rows.
    /// Values of very different magnitudes, where the order of addition changes the last bits.
    #[test]
    fn sorted_mean_does_not_depend_on_the_order_of_the_rows() {
        let mut values: Vec<Option<f64>> = (0..200)
            .map(|i| Some((i as f64 * 0.37).sin().abs() * 10f64.powi(i % 9 - 4)))
            .collect();
        let first = sorted_mean(&chunked(&values));
        let plain = |v: &[Option<f64>]| v.iter().flatten().sum::<f64>();
        let mut plain_sums = std::collections::BTreeSet::new();
        for step in [7, 13, 31, 101] {
            values.rotate_left(step);
            values.swap(0, step);
            assert_eq!(sorted_mean(&chunked(&values)).to_bits(), first.to_bits());
            plain_sums.insert(plain(&values).to_bits());
        }
        // The test would not notice an order-dependent mean if every order summed alike.
        assert!(
            plain_sums.len() > 1,
            "the orders tried all sum to the same bits"
        );
    }
}
