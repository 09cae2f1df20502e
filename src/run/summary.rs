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
    /// Mean zone half-width over the key's fit rows: polars' parallel mean, which can differ in
    /// the last bit between two runs of the same file (partial sums are combined in thread
    /// order).
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
                    col("zone").mean().alias("zone"),
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
    let keys = df
        .column("key")
        .and_then(|c| c.str().cloned())
        .map_err(|e| e.to_string())?;
    let (rows, inside, updated, zone) =
        (get("rows")?, get("inside")?, get("updated")?, get("zone")?);
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
