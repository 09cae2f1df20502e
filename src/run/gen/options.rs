//! What to generate: sizes, seed, time origin and the parameters of both processes, with the
//! checks that reject values the generators cannot use.

use super::{GenError, BAR_INTERVAL_NS, DEFAULT_BATCH_ROWS, DEFAULT_START_TS, PART_INTERVAL_NS};

/// What to generate: size, seed, time origin, batch size and the model parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Number of keys (symbols, or machine features).
    pub keys: usize,
    /// Rows per key.
    pub rows: usize,
    /// Seed: the same seed gives the same rows, a different seed different rows.
    pub seed: u64,
    /// Timestamp of the first row, ns since the Unix epoch (default [`DEFAULT_START_TS`]).
    pub start_ts: i64,
    /// Rows per record batch when writing (default [`DEFAULT_BATCH_ROWS`]).
    pub batch_rows: usize,
    /// Parameters of the market process.
    pub market: MarketParams,
    /// Parameters of the sensor process.
    pub sensor: SensorParams,
}

impl GenOptions {
    /// Options with `keys` keys of `rows` rows each from `seed`, everything else default.
    pub fn new(keys: usize, rows: usize, seed: u64) -> Self {
        GenOptions {
            keys,
            rows,
            seed,
            ..GenOptions::default()
        }
    }

    /// Checks sizes and parameters; returns what is wrong and how to fix it.
    pub fn validate(&self) -> Result<(), GenError> {
        let bad = |what: String| Err(GenError::InvalidOptions { what });
        if self.keys == 0 {
            return bad("--keys must be at least 1".into());
        }
        if self.rows == 0 {
            return bad("--rows must be at least 1 (rows per key)".into());
        }
        if self.batch_rows == 0 {
            return bad("batch_rows must be at least 1".into());
        }
        if self.keys.checked_mul(self.rows).is_none() {
            return bad(format!(
                "{} keys x {} rows overflows the row count; use fewer rows",
                self.keys, self.rows
            ));
        }
        let step = BAR_INTERVAL_NS.max(PART_INTERVAL_NS);
        let span = i64::try_from(self.rows - 1)
            .ok()
            .and_then(|n| n.checked_mul(step))
            .and_then(|d| self.start_ts.checked_add(d));
        if span.is_none() {
            return bad(format!(
                "{} rows from start_ts {} run past the largest timestamp (year 2262); \
                 use fewer rows or an earlier start",
                self.rows, self.start_ts
            ));
        }
        self.market.validate()?;
        self.sensor.validate()
    }
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            keys: 4,
            rows: 10_000,
            seed: 0,
            start_ts: DEFAULT_START_TS,
            batch_rows: DEFAULT_BATCH_ROWS,
            market: MarketParams::default(),
            sensor: SensorParams::default(),
        }
    }
}

/// Parameters of the regime-switching market process. Volatilities are per 1-minute bar in
/// log-return units; ranges `(lo, hi)` are sampled once per key (or per segment / jump).
#[derive(Debug, Clone, PartialEq)]
pub struct MarketParams {
    /// Turbulent volatility as a multiple of the key's calm volatility (default 3).
    pub turbulent_vol_ratio: f64,
    /// Mean length of a calm spell in bars (geometric; default 2000).
    pub mean_calm_bars: f64,
    /// Mean length of a turbulent spell in bars (geometric; default 500). With the default
    /// calm length, about 20 % of bars are turbulent.
    pub mean_turbulent_bars: f64,
    /// Mean length of a trend segment in bars (geometric; default 720, half a day).
    pub mean_trend_bars: f64,
    /// Probability that a new trend segment is flat, drift exactly 0 (default 0.3).
    pub flat_trend_prob: f64,
    /// Range of |drift| per bar, as a multiple of the key's calm volatility (default
    /// 0.02..0.10); the sign is a coin flip.
    pub trend_strength: (f64, f64),
    /// Degrees of freedom of the Student-t innovations (integer, at least 3; default 5 —
    /// excess kurtosis 6 / (dof - 4) = 6). Innovations are scaled to unit variance.
    pub tail_dof: u32,
    /// Probability of a jump per bar and key (default 1/5000).
    pub jump_prob: f64,
    /// Range of |jump| in multiples of the calm volatility (default 8..20); sign a coin flip.
    pub jump_size: (f64, f64),
    /// Range of calm volatility per bar; each key draws log-uniformly (default 0.0004..0.0015,
    /// i.e. about 1.5 %..5.7 % per 24 h day).
    pub calm_vol: (f64, f64),
    /// Range of starting prices; each key draws log-uniformly (default 10..1000).
    pub start_price: (f64, f64),
    /// Range of mean volume per bar; each key draws log-uniformly (default 1e3..1e5).
    pub mean_volume: (f64, f64),
}

impl Default for MarketParams {
    fn default() -> Self {
        MarketParams {
            turbulent_vol_ratio: 3.0,
            mean_calm_bars: 2000.0,
            mean_turbulent_bars: 500.0,
            mean_trend_bars: 720.0,
            flat_trend_prob: 0.3,
            trend_strength: (0.02, 0.10),
            tail_dof: 5,
            jump_prob: 1.0 / 5000.0,
            jump_size: (8.0, 20.0),
            calm_vol: (0.0004, 0.0015),
            start_price: (10.0, 1000.0),
            mean_volume: (1e3, 1e5),
        }
    }
}

impl MarketParams {
    fn validate(&self) -> Result<(), GenError> {
        let mut problems = Vec::new();
        if !(self.turbulent_vol_ratio.is_finite() && self.turbulent_vol_ratio > 0.0) {
            problems.push("turbulent_vol_ratio must be > 0".to_string());
        }
        for (name, v) in [
            ("mean_calm_bars", self.mean_calm_bars),
            ("mean_turbulent_bars", self.mean_turbulent_bars),
            ("mean_trend_bars", self.mean_trend_bars),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                problems.push(format!("{name} must be >= 1 bar"));
            }
        }
        for (name, p) in [
            ("flat_trend_prob", self.flat_trend_prob),
            ("jump_prob", self.jump_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                problems.push(format!("{name} must be within 0..=1"));
            }
        }
        if self.tail_dof < 3 {
            problems.push("tail_dof must be >= 3 (finite variance)".into());
        }
        check_range(&mut problems, "trend_strength", self.trend_strength, false);
        check_range(&mut problems, "jump_size", self.jump_size, false);
        check_range(&mut problems, "calm_vol", self.calm_vol, true);
        check_range(&mut problems, "start_price", self.start_price, true);
        check_range(&mut problems, "mean_volume", self.mean_volume, true);
        into_result(problems, "market")
    }
}

/// Parameters of the machining process. Lengths are in the feature's unit (mm); `h` below is
/// the half tolerance `(usl - lsl) / 2`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorParams {
    /// Gauge noise sigma as a fraction of the full tolerance `usl - lsl` (default 1/60, so the
    /// gauge uses 10 % of the tolerance at 6 sigma — an acceptable gauge by the AIAG rule).
    pub grr_fraction: f64,
    /// Range of tool life in parts, uniform integer (default 200..=600).
    pub tool_life: (u32, u32),
    /// Wear over the *shortest* tool life, in units of `h`, drawn per key (default 1.5..2.0).
    /// Above `1 + max_offset` the uncompensated drift always leaves the spec before the tool
    /// change.
    pub wear_to_limit: (f64, f64),
    /// Sd of the offset a new tool starts with, in units of `h` (default 0.1).
    pub offset_sd: f64,
    /// Largest |offset| of a new tool, in units of `h`; offsets are clipped (default 0.25).
    pub max_offset: f64,
    /// Probability of a gross gauge error per measurement (default 1/1000).
    pub outlier_prob: f64,
    /// Range of |gross error| in multiples of sigma_grr (default 10..40); sign a coin flip.
    pub outlier_size: (f64, f64),
}

impl Default for SensorParams {
    fn default() -> Self {
        SensorParams {
            grr_fraction: 1.0 / 60.0,
            tool_life: (200, 600),
            wear_to_limit: (1.5, 2.0),
            offset_sd: 0.1,
            max_offset: 0.25,
            outlier_prob: 1.0 / 1000.0,
            outlier_size: (10.0, 40.0),
        }
    }
}

impl SensorParams {
    fn validate(&self) -> Result<(), GenError> {
        let mut problems = Vec::new();
        if !(self.grr_fraction.is_finite() && self.grr_fraction > 0.0) {
            problems.push("grr_fraction must be > 0".to_string());
        }
        if self.tool_life.0 < 1 || self.tool_life.0 > self.tool_life.1 {
            problems.push("tool_life must satisfy 1 <= lo <= hi".into());
        }
        check_range(&mut problems, "wear_to_limit", self.wear_to_limit, false);
        check_range(&mut problems, "outlier_size", self.outlier_size, false);
        if !(self.offset_sd.is_finite() && self.offset_sd >= 0.0) {
            problems.push("offset_sd must be >= 0".into());
        }
        if !(self.max_offset.is_finite() && self.max_offset >= 0.0) {
            problems.push("max_offset must be >= 0".into());
        }
        if !(0.0..=1.0).contains(&self.outlier_prob) {
            problems.push("outlier_prob must be within 0..=1".into());
        }
        into_result(problems, "sensor")
    }
}

/// Requires a finite range `lo <= hi` with `lo >= 0`, or `lo > 0` when `positive`.
fn check_range(problems: &mut Vec<String>, name: &str, (lo, hi): (f64, f64), positive: bool) {
    let lo_ok = if positive { lo > 0.0 } else { lo >= 0.0 };
    if !(lo.is_finite() && hi.is_finite() && lo_ok && lo <= hi) {
        let bound = if positive { "lo > 0" } else { "lo >= 0" };
        problems.push(format!(
            "{name} must be a finite range (lo, hi) with {bound} and lo <= hi"
        ));
    }
}

fn into_result(problems: Vec<String>, which: &str) -> Result<(), GenError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GenError::InvalidOptions {
            what: format!("{which} parameters: {}", problems.join("; ")),
        })
    }
}
