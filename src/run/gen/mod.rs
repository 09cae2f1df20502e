//! Synthetic market bars and sensor measurements with ground truth, written to Parquet.
//!
//! Two generators feed demos, tests and benchmarks with data whose hidden state is known:
//!
//! * [`MarketGen`] — 1-minute OHLCV bars from a regime-switching process: a two-state Markov
//!   chain switches between calm and turbulent volatility, the drift is piecewise constant
//!   (including flat stretches), innovations are Student-t scaled to unit variance, and rare
//!   jumps add spikes. Ground truth: `true_trend`, `regime`, `jump`.
//! * [`SensorGen`] — one measurement per part every 30 s per machine feature, with linear tool
//!   wear, tool changes that reset the drift with a new small offset, Gaussian gauge noise of a
//!   known sigma (a fraction of the tolerance) and rare gross gauge errors. Ground truth:
//!   `true_value`, `true_drift`, `tool`, `outlier`, `sigma_grr`.
//!
//! [`write_market`] and [`write_sensor`] stream either generator into a Snappy-compressed Parquet
//! file in fixed-size record batches, so memory stays bounded whatever the row count.
//!
//! Choices made here:
//! * Rows are ordered by `ts`, then `key`; every key shares one time grid. Key names are
//!   zero-padded so that string order equals generation order (`SYM000`…; `SYM0000`… from 1001
//!   keys on).
//! * Each key draws from its own ChaCha8 stream (seed mixed through SplitMix64, stream = key
//!   index), so a key's series does not depend on how many keys are generated nor on the batch
//!   size. All samplers (normal, Student-t, geometric) are written in `rng.rs` on top of raw
//!   `u64`s, so the data depends only on ChaCha8 and this module, not on a distribution
//!   crate's version. Rows are identical for the same seed on the same platform; `ln`/`exp`
//!   come from the platform's libm, which may differ in the last bit elsewhere.
//! * A bar's `ts` is the start of its minute. Bars are continuous (24/7): a bar opens at the
//!   previous close, so `ln(close / open)` is exactly that bar's log return.
//! * Prices are not rounded to a tick size (rounding would break the exact ground truth);
//!   volume is rounded to whole units.
//! * The file is written to a temporary sibling and renamed into place when complete, so a
//!   reader never sees a half-written file.
//! * All columns are non-nullable: the generators never produce missing values.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

mod market;
mod options;
mod rng;
mod sensor;
mod write;

pub use market::{MarketGen, MarketRow, Regime};
pub use options::{GenOptions, MarketParams, SensorParams};
pub use sensor::{SensorGen, SensorRow};
pub use write::{market_schema, sensor_schema, write_market, write_sensor, ROW_GROUP_ROWS};

/// 2024-01-02T00:00:00Z in nanoseconds since the Unix epoch: the default first timestamp.
pub const DEFAULT_START_TS: i64 = 1_704_153_600_000_000_000;

/// Default rows per Arrow record batch handed to the Parquet writer.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// Spacing of market bars: one minute, in nanoseconds.
pub const BAR_INTERVAL_NS: i64 = 60_000_000_000;

/// Spacing of parts on every machine: 30 seconds, in nanoseconds.
pub const PART_INTERVAL_NS: i64 = 30_000_000_000;

/// Which stream to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenKind {
    /// OHLCV bars ([`MarketGen`]).
    Market,
    /// Measurements ([`SensorGen`]).
    Sensor,
}

impl GenKind {
    /// The CLI spelling: `market` or `sensor`.
    pub fn as_str(self) -> &'static str {
        match self {
            GenKind::Market => "market",
            GenKind::Sensor => "sensor",
        }
    }
}

impl fmt::Display for GenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GenKind {
    type Err = GenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "market" => Ok(GenKind::Market),
            "sensor" => Ok(GenKind::Sensor),
            other => Err(GenError::InvalidOptions {
                what: format!("unknown stream kind {other:?}; use `market` or `sensor`"),
            }),
        }
    }
}

/// Counts of hidden events in the generated data, for reports and sanity checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruthCounts {
    /// Market stream counts.
    Market {
        /// Rows in the turbulent regime.
        turbulent_rows: u64,
        /// Rows with a jump.
        jumps: u64,
    },
    /// Sensor stream counts.
    Sensor {
        /// Tool changes (summed over keys; the first tool of each key is not a change).
        tool_changes: u64,
        /// Measurements with a gross gauge error.
        outliers: u64,
    },
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSummary {
    /// Which stream.
    pub kind: GenKind,
    /// The file written.
    pub path: PathBuf,
    /// Number of keys.
    pub keys: usize,
    /// Rows per key.
    pub rows_per_key: usize,
    /// Total rows (`keys * rows_per_key`).
    pub rows: u64,
    /// Record batches written.
    pub batches: u64,
    /// First `ts` in the file (ns).
    pub first_ts: i64,
    /// Last `ts` in the file (ns).
    pub last_ts: i64,
    /// File size in bytes.
    pub bytes: u64,
    /// Hidden-event counts.
    pub truth: TruthCounts,
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} {} rows ({} keys x {}) to {} ({} bytes)",
            self.rows,
            self.kind,
            self.keys,
            self.rows_per_key,
            self.path.display(),
            self.bytes
        )?;
        match self.truth {
            TruthCounts::Market {
                turbulent_rows,
                jumps,
            } => write!(f, "; turbulent rows {turbulent_rows}, jumps {jumps}"),
            TruthCounts::Sensor {
                tool_changes,
                outliers,
            } => write!(f, "; tool changes {tool_changes}, outliers {outliers}"),
        }
    }
}

/// Errors of the generators. Each names what was wrong, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Sizes or parameters are out of range.
    #[error("invalid generator options: {what}")]
    InvalidOptions {
        /// What is wrong and how to fix it.
        what: String,
    },
    /// The output file could not be created.
    #[error("cannot create {}: {source}; check that the directory exists and is writable", path.display())]
    Create {
        /// The file that could not be created.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Parquet encoding or writing failed.
    #[error("writing Parquet to {} failed: {source}; check free disk space and permissions", path.display())]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The writer's error.
        source: ParquetError,
    },
    /// A record batch could not be assembled (a bug in the generator: please report it).
    #[error("building a record batch for {} failed: {source}; this is a bug, please report it", path.display())]
    Arrow {
        /// The file being written.
        path: PathBuf,
        /// Arrow's error.
        source: ArrowError,
    },
    /// The finished temporary file could not be moved into place.
    #[error("cannot move the finished file to {}: {source}; check permissions of the directory", path.display())]
    Finish {
        /// The destination.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Writes `kind` for `opts` to `path`: the entry point for `deadband gen market|sensor`.
pub fn write(kind: GenKind, opts: &GenOptions, path: &Path) -> Result<GenSummary, GenError> {
    match kind {
        GenKind::Market => write_market(opts, path),
        GenKind::Sensor => write_sensor(opts, path),
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}
