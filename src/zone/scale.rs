//! Zone width ("scale"): turns the record stream into eps(t) >= floor > 0 plus a volatility regime.
//!
//! A [`Scale`] is built from a [`ScaleSpec`] (one of ATR, gauge R&R sigma, fixed, EWMA vol), an
//! optional [`RegimeSet`] and a `floor`, and is fed one [`ScaleInput`] per record. Each update
//! returns a [`Zone`]:
//!
//! ```text
//! raw    = the kind's value in price (or measurement) units: ATR, sigma_GRR, eps, EWMA vol
//! eps    = max(floor, min(raw · multiplier · regime_multiplier, cap))   (cap: grr only)
//! ```
//!
//! Guarantees, on any input (checked by property tests): `eps` is finite and `eps >= floor > 0`;
//! `update` never allocates and never panics; the state is plain data (serde) so a snapshot can be
//! restored and continued with identical results.
//!
//! Garbage in: a record whose fields used by the kind are not finite (NaN, ±inf) is *ignored*:
//! the scale's state is left untouched and `update` returns the previous zone. The same holds
//! for a finite record whose arithmetic would overflow (|values| near `f64::MAX`). Callers are
//! expected to reject invalid records earlier; this only keeps one bad value from poisoning the
//! state forever. A non-finite or non-positive `tolerance` is treated as "not given".

use serde::{Deserialize, Serialize};

use super::ParamError;

// ---------------------------------------------------------------------------------------------
// ATR
// ---------------------------------------------------------------------------------------------

/// Warm-up convention of Wilder's ATR (the recursion after the seed is the same for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtrSeed {
    /// TA-Lib's convention: the true range is undefined at bar 0 (no previous close), the seed is
    /// the mean of TR_1..TR_n and the first value is at bar n (TA-Lib lookback = n).
    #[default]
    Talib,
    /// Wilder's / Tulip Indicators' convention: TR_0 = H_0 - L_0, the seed is the mean of
    /// TR_0..TR_{n-1} and the first value is at bar n-1.
    Wilder,
}

/// Wilder's Average True Range, streaming, O(1) per bar.
///
/// `TR_t = max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|)`; after the seed (the plain mean of
/// the first `period` true ranges, see [`AtrSeed`]), `ATR_t = (ATR_{t-1}·(n-1) + TR_t) / n`,
/// evaluated in that order so that the result equals TA-Lib's to round-off.
///
/// A close-only stream (open = high = low = close) gives `TR_t = |C_t - C_{t-1}|`.
/// If `high < low` the two are swapped (the range is never negative).
///
/// **Warm-up rule** ([`Atr::warmup_estimate`]): before the first ATR value, the estimate is the
/// mean of the true ranges seen so far, counting `H_0 - L_0` for bar 0 under both seeds. It is
/// `None` only before the first bar and may be 0 (flat bars); [`Scale`] then falls back to the floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    seed: AtrSeed,
    prev_close: Option<f64>,
    /// `H_0 - L_0`; enters the warm-up estimate (and, for the Wilder seed, the seed itself).
    first_range: f64,
    /// Sum and count of the true ranges that belong to the seed window.
    seed_sum: f64,
    seed_count: usize,
    value: Option<f64>,
}

impl Atr {
    /// A new ATR with `period >= 1` bars.
    pub fn new(period: usize, seed: AtrSeed) -> Result<Atr, ParamError> {
        if period == 0 {
            return Err(ParamError::new(
                "period",
                "must be at least 1 bar (1 gives the plain true range), got 0",
            ));
        }
        Ok(Atr {
            period,
            seed,
            prev_close: None,
            first_range: 0.0,
            seed_sum: 0.0,
            seed_count: 0,
            value: None,
        })
    }

    /// The period n.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The warm-up convention.
    pub fn seed(&self) -> AtrSeed {
        self.seed
    }

    /// Feeds one bar; returns the ATR, or `None` during warm-up. A bar with a non-finite field
    /// (or whose true range would overflow) is ignored and the previous value is returned.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        self.push(high, low, close);
        self.value
    }

    /// [`Atr::update`] that tells whether the bar was accepted.
    fn push(&mut self, high: f64, low: f64, close: f64) -> bool {
        if !(high.is_finite() && low.is_finite() && close.is_finite()) {
            return false;
        }
        let (hi, lo) = if high >= low {
            (high, low)
        } else {
            (low, high)
        };
        let range = hi - lo;
        let tr = match self.prev_close {
            None => range,
            Some(pc) => range.max((hi - pc).abs()).max((lo - pc).abs()),
        };
        if !tr.is_finite() {
            return false;
        }
        let n = self.period as f64;
        match self.value {
            Some(v) => {
                // Multiplying by 1/n keeps the division off the loop-carried dependency chain
                // (the reciprocal depends only on the period); TA-Lib divides, which differs by
                // at most one rounding (tests compare to 1e-12 relative).
                let next = (v * (n - 1.0) + tr) * (1.0 / n);
                if !next.is_finite() {
                    return false;
                }
                self.value = Some(next);
            }
            None => {
                let first = self.prev_close.is_none();
                // Under the TA-Lib seed bar 0 has no true range: it only sets the previous close.
                if !(first && self.seed == AtrSeed::Talib) {
                    let sum = self.seed_sum + tr;
                    if !sum.is_finite() {
                        return false;
                    }
                    self.seed_sum = sum;
                    self.seed_count += 1;
                    if self.seed_count >= self.period {
                        self.value = Some(self.seed_sum / n);
                    }
                }
                if first {
                    self.first_range = range;
                }
            }
        }
        self.prev_close = Some(close);
        true
    }

    /// The ATR once warm, `None` before.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The best current estimate of the ATR: the ATR once warm; during warm-up the mean of the
    /// true ranges seen so far (bar 0 counting as `H_0 - L_0`); `None` before the first bar.
    pub fn warmup_estimate(&self) -> Option<f64> {
        if self.value.is_some() {
            return self.value;
        }
        self.prev_close?;
        Some(match self.seed {
            AtrSeed::Wilder => self.seed_sum / self.seed_count.max(1) as f64,
            AtrSeed::Talib => (self.first_range + self.seed_sum) / (self.seed_count + 1) as f64,
        })
    }

    /// Whether the ATR has produced its first value.
    pub fn is_warm(&self) -> bool {
        self.value.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// EWMA
// ---------------------------------------------------------------------------------------------

/// Decay per record of an EWMA with the given half-life (in records): `0.5^(1/half_life)`.
fn decay(half_life: f64) -> f64 {
    0.5f64.powf(1.0 / half_life)
}

/// Exponentially weighted mean with weights `lambda^age`, normalised by the sum of the weights
/// (pandas `ewm(adjust=True)`): `sum_j lambda^(t-j) x_j / sum_j lambda^(t-j)`. Being a true
/// weighted mean from the first sample on, it needs no arbitrary starting value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ewma {
    lambda: f64,
    num: f64,
    den: f64,
}

impl Ewma {
    fn new(half_life: f64) -> Ewma {
        Ewma {
            lambda: decay(half_life),
            num: 0.0,
            den: 0.0,
        }
    }

    /// Adds a sample; returns false (and changes nothing) if the sums would overflow.
    fn push(&mut self, x: f64) -> bool {
        let num = self.lambda * self.num + x;
        let den = self.lambda * self.den + 1.0;
        if !(num.is_finite() && den.is_finite()) {
            return false;
        }
        self.num = num;
        self.den = den;
        true
    }

    fn mean(&self) -> Option<f64> {
        (self.den > 0.0).then(|| self.num / self.den)
    }
}

/// What [`EwmaVol`] averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolOf {
    /// EWMA of squared simple returns `r_t = (C_t - C_{t-1}) / |C_{t-1}|`; the vol is
    /// `sqrt(EWMA) · |C_t|`, i.e. converted to price units with the last close.
    SquaredReturns,
    /// EWMA of absolute changes `|C_t - C_{t-1}|`, already in price units.
    #[default]
    AbsDelta,
}

/// Exponentially weighted volatility of a close (or measurement) series, in price units.
///
/// The mean is the normalised weighted mean described on `Ewma` (weights `0.5^(age/half_life)`).
/// Nothing is known before the second record (value `None`). It is *warm* once it has seen
/// `ceil(half_life)` changes. For squared returns a change from a previous close of exactly 0 has
/// no return and is skipped (the close is still remembered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EwmaVol {
    of: VolOf,
    half_life: f64,
    ewma: Ewma,
    prev_close: Option<f64>,
    changes: u64,
}

impl EwmaVol {
    /// A new EWMA vol; `half_life` in records, finite and > 0.
    pub fn new(half_life: f64, of: VolOf) -> Result<EwmaVol, ParamError> {
        positive("half_life", half_life)?;
        Ok(EwmaVol {
            of,
            half_life,
            ewma: Ewma::new(half_life),
            prev_close: None,
            changes: 0,
        })
    }

    /// Feeds one close; returns false if the record was ignored (non-finite or overflowing).
    pub fn update(&mut self, close: f64) -> bool {
        if !close.is_finite() {
            return false;
        }
        if let Some(prev) = self.prev_close {
            let x = match self.of {
                VolOf::AbsDelta => Some((close - prev).abs()),
                VolOf::SquaredReturns if prev == 0.0 => None,
                VolOf::SquaredReturns => {
                    let r = (close - prev) / prev.abs();
                    Some(r * r)
                }
            };
            if let Some(x) = x {
                if !x.is_finite() || !self.ewma.push(x) {
                    return false;
                }
                self.changes = self.changes.saturating_add(1);
            }
        }
        self.prev_close = Some(close);
        true
    }

    /// The volatility in price units, `None` until a first change has been seen.
    pub fn value(&self) -> Option<f64> {
        let m = self.ewma.mean()?;
        Some(match self.of {
            VolOf::AbsDelta => m,
            VolOf::SquaredReturns => m.sqrt() * self.prev_close.map_or(0.0, f64::abs),
        })
    }

    /// Whether at least `ceil(half_life)` changes have been averaged.
    pub fn is_warm(&self) -> bool {
        self.changes > 0 && self.changes as f64 >= self.half_life.ceil()
    }
}

// ---------------------------------------------------------------------------------------------
// Regimes
// ---------------------------------------------------------------------------------------------

/// One volatility regime: ratios `r` with `previous.below <= r < below` belong to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeSpec {
    /// Name shown in outputs (e.g. `calm`, `normal`, `turbulent`).
    pub name: String,
    /// Exclusive upper bound of the ratio short vol / long vol; ascending over the set. The last
    /// may be `inf` (written `inf` in TOML, `"inf"` in JSON); a ratio at or above the last bound
    /// still belongs to the last regime.
    #[serde(with = "f64_or_inf")]
    pub below: f64,
    /// Factor applied to eps while this regime is active (default 1).
    #[serde(default = "one")]
    pub multiplier: f64,
}

/// A classifier of volatility regimes with hysteresis.
///
/// The ratio is `raw / long`, where `raw` is the scale's raw value (e.g. the ATR, or its warm-up
/// estimate) and `long` the normalised EWMA of `raw` with half-life `long_half_life` records,
/// updated with the current record before the ratio is taken (so the first ratio is 1; a ratio
/// with `long <= 0` is taken as 1). The regime starts as the one containing ratio 1 and only
/// *warm* raw values are fed to the classifier: during the scale's warm-up the regime stays put.
///
/// Hysteresis: the active regime changes only after `confirm` consecutive records whose ratio lies
/// outside it *on the same side* (all above, or all below it). It then switches to the regime of
/// the last of those records, so a fast move from calm to turbulent need not stop at normal.
/// A record inside the active regime, or on the other side, restarts the count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeSet {
    /// Regimes in ascending order of `below` (at most 256).
    #[serde(default = "default_regimes")]
    pub regimes: Vec<RegimeSpec>,
    /// Half-life, in records, of the long EWMA of the raw value (default 100).
    #[serde(default = "default_long_half_life")]
    pub long_half_life: f64,
    /// Consecutive records needed to change regime (>= 1; 1 switches at once; default 3).
    #[serde(default = "default_confirm")]
    pub confirm: u32,
}

fn default_regimes() -> Vec<RegimeSpec> {
    let r = |name: &str, below: f64, multiplier: f64| RegimeSpec {
        name: name.to_string(),
        below,
        multiplier,
    };
    vec![
        r("calm", 0.8, 0.8),
        r("normal", 1.25, 1.0),
        r("turbulent", f64::INFINITY, 1.5),
    ]
}

fn default_long_half_life() -> f64 {
    100.0
}

fn default_confirm() -> u32 {
    3
}

impl Default for RegimeSet {
    /// `calm` (< 0.8, x0.8), `normal` (< 1.25, x1), `turbulent` (x1.5); long half-life 100
    /// records; confirm 3. A starting point, not a recommendation for any market.
    fn default() -> Self {
        RegimeSet {
            regimes: default_regimes(),
            long_half_life: default_long_half_life(),
            confirm: default_confirm(),
        }
    }
}

impl RegimeSet {
    /// Checks the set: 1..=256 regimes with non-empty unique names, bounds > 0 strictly
    /// ascending (only the last may be `inf`), multipliers finite > 0, `long_half_life` finite
    /// > 0, `confirm >= 1`.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.regimes.is_empty() || self.regimes.len() > 256 {
            return Err(ParamError::new(
                "regimes",
                format!(
                    "must list between 1 and 256 regimes, got {}",
                    self.regimes.len()
                ),
            ));
        }
        let last = self.regimes.len() - 1;
        let mut prev = 0.0;
        for (i, r) in self.regimes.iter().enumerate() {
            if r.name.is_empty() {
                return Err(ParamError::new("name", format!("of regime {i} is empty")));
            }
            if self.regimes[..i].iter().any(|o| o.name == r.name) {
                return Err(ParamError::new(
                    "name",
                    format!("`{}` is used by two regimes; names must be unique", r.name),
                ));
            }
            let b = r.below;
            let ok = b > prev && (b.is_finite() || (i == last && b == f64::INFINITY));
            if !ok {
                return Err(ParamError::new(
                    "below",
                    format!(
                        "of regime `{}` must be > {prev} (bounds ascend; only the last may be inf), got {b}",
                        r.name
                    ),
                ));
            }
            prev = b;
            positive("multiplier", r.multiplier)?;
        }
        positive("long_half_life", self.long_half_life)?;
        if self.confirm == 0 {
            return Err(ParamError::new(
                "confirm",
                "must be at least 1 record (1 switches at once), got 0",
            ));
        }
        Ok(())
    }

    /// Index of the regime a ratio falls in, without hysteresis.
    pub fn classify(&self, ratio: f64) -> u8 {
        let last = self.regimes.len().saturating_sub(1);
        let i = self
            .regimes
            .iter()
            .position(|r| ratio < r.below)
            .unwrap_or(last);
        i.min(255) as u8
    }
}

/// Running state of a [`RegimeSet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RegimeState {
    set: RegimeSet,
    long: Ewma,
    active: u8,
    /// Side of the pending streak: true = above the active regime.
    pending_up: bool,
    streak: u32,
}

impl RegimeState {
    fn new(set: &RegimeSet) -> RegimeState {
        RegimeState {
            set: set.clone(),
            long: Ewma::new(set.long_half_life),
            active: set.classify(1.0),
            pending_up: false,
            streak: 0,
        }
    }

    fn multiplier(&self) -> f64 {
        self.set
            .regimes
            .get(self.active as usize)
            .map_or(1.0, |r| r.multiplier)
    }

    /// Feeds the raw value of one record; returns the active regime.
    fn update(&mut self, raw: f64) -> u8 {
        if !self.long.push(raw) {
            return self.active;
        }
        let ratio = match self.long.mean() {
            Some(long) if long > 0.0 => raw / long,
            _ => 1.0,
        };
        let target = self.set.classify(ratio);
        if target == self.active {
            self.streak = 0;
            return self.active;
        }
        let up = target > self.active;
        if self.streak > 0 && up == self.pending_up {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.pending_up = up;
            self.streak = 1;
        }
        if self.streak >= self.set.confirm {
            self.active = target;
            self.streak = 0;
        }
        self.active
    }
}

// ---------------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------------

/// Configuration of a scale (the `[scale]` table of the config; `kind` selects the variant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScaleSpec {
    /// eps = multiplier · Wilder ATR(period) of the bars.
    Atr {
        #[serde(default = "default_period")]
        period: usize,
        #[serde(default = "one")]
        multiplier: f64,
        #[serde(default)]
        seed: AtrSeed,
    },
    /// eps = multiplier · sigma_GRR (the measurement system's standard deviation, from a gauge R&R
    /// study), capped at `cap_fraction · (usl - lsl)` when a tolerance is known.
    Grr {
        sigma: f64,
        #[serde(default = "three")]
        multiplier: f64,
        #[serde(default)]
        cap_fraction: Option<f64>,
    },
    /// A constant eps.
    Fixed { eps: f64 },
    /// eps = multiplier · EWMA volatility of the closes (see [`EwmaVol`]), in price units.
    EwmaVol {
        half_life: f64,
        #[serde(default)]
        of: VolOf,
        #[serde(default = "one")]
        multiplier: f64,
    },
}

fn default_period() -> usize {
    14
}
fn one() -> f64 {
    1.0
}
fn three() -> f64 {
    3.0
}

impl Default for ScaleSpec {
    /// ATR(14), multiplier 1, TA-Lib seed.
    fn default() -> Self {
        ScaleSpec::Atr {
            period: default_period(),
            multiplier: one(),
            seed: AtrSeed::default(),
        }
    }
}

impl ScaleSpec {
    /// Checks the parameters: period >= 1; multipliers, `eps`, `half_life` and `cap_fraction`
    /// finite and > 0; `sigma` finite and >= 0 (0 = a perfect gauge: eps is then the floor).
    pub fn validate(&self) -> Result<(), ParamError> {
        match *self {
            ScaleSpec::Atr {
                period, multiplier, ..
            } => {
                if period == 0 {
                    return Err(ParamError::new("period", "must be at least 1 bar, got 0"));
                }
                positive("multiplier", multiplier)
            }
            ScaleSpec::Grr {
                sigma,
                multiplier,
                cap_fraction,
            } => {
                if !(sigma.is_finite() && sigma >= 0.0) {
                    return Err(ParamError::new(
                        "sigma",
                        format!(
                            "must be a finite number >= 0 (sigma_GRR from the study), got {sigma}"
                        ),
                    ));
                }
                positive("multiplier", multiplier)?;
                match cap_fraction {
                    Some(c) => positive("cap_fraction", c),
                    None => Ok(()),
                }
            }
            ScaleSpec::Fixed { eps } => positive("eps", eps),
            ScaleSpec::EwmaVol {
                half_life,
                multiplier,
                ..
            } => {
                positive("half_life", half_life)?;
                positive("multiplier", multiplier)
            }
        }
    }
}

fn positive(param: &'static str, v: f64) -> Result<(), ParamError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ParamError::new(
            param,
            format!("must be a finite number > 0, got {v}"),
        ))
    }
}

/// One record as a scale sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleInput {
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// `usl - lsl` when the record carries spec limits.
    pub tolerance: Option<f64>,
}

impl ScaleInput {
    /// A bar (the open is not used by any scale).
    pub fn bar(high: f64, low: f64, close: f64) -> ScaleInput {
        ScaleInput {
            high,
            low,
            close,
            tolerance: None,
        }
    }

    /// A single value (a measurement, or a close-only stream): high = low = close = v.
    pub fn value(v: f64) -> ScaleInput {
        ScaleInput::bar(v, v, v)
    }

    /// The same record with a known tolerance `usl - lsl`.
    pub fn with_tolerance(self, tolerance: f64) -> ScaleInput {
        ScaleInput {
            tolerance: Some(tolerance),
            ..self
        }
    }
}

/// The zone after a record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// Half-width of the zone: finite, >= floor > 0.
    pub eps: f64,
    /// The kind's value before multipliers, regime, cap and floor (ATR or its warm-up estimate,
    /// sigma_GRR, the fixed eps, the EWMA vol; 0 while nothing is known).
    pub raw: f64,
    /// Index of the active regime in the [`RegimeSet`] (0 without regimes).
    pub regime: u8,
    /// Whether the scale is past its warm-up (always true for `grr` and `fixed`).
    pub warm: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kernel {
    Atr {
        atr: Atr,
        multiplier: f64,
    },
    Grr {
        sigma: f64,
        multiplier: f64,
        cap_fraction: Option<f64>,
        /// The last valid tolerance seen: spec limits, once known, hold until a record brings new ones.
        tolerance: Option<f64>,
    },
    Fixed {
        eps: f64,
    },
    EwmaVol {
        vol: EwmaVol,
        multiplier: f64,
    },
}

impl Kernel {
    /// Feeds a record; false if it was ignored.
    fn update(&mut self, input: &ScaleInput) -> bool {
        match self {
            Kernel::Atr { atr, .. } => atr.push(input.high, input.low, input.close),
            Kernel::Grr { tolerance, .. } => {
                if let Some(t) = input.tolerance {
                    if t.is_finite() && t > 0.0 {
                        *tolerance = Some(t);
                    }
                }
                true
            }
            Kernel::Fixed { .. } => true,
            Kernel::EwmaVol { vol, .. } => vol.update(input.close),
        }
    }

    /// (raw, eps before regime and floor, cap, warm)
    fn raw(&self) -> (f64, f64, Option<f64>, bool) {
        match self {
            Kernel::Atr { atr, multiplier } => {
                let raw = atr.warmup_estimate().unwrap_or(0.0);
                (raw, raw * multiplier, None, atr.is_warm())
            }
            Kernel::Grr {
                sigma,
                multiplier,
                cap_fraction,
                tolerance,
            } => {
                let cap = match (cap_fraction, tolerance) {
                    (Some(c), Some(t)) => Some(c * t),
                    _ => None,
                };
                (*sigma, sigma * multiplier, cap, true)
            }
            Kernel::Fixed { eps } => (*eps, *eps, None, true),
            Kernel::EwmaVol { vol, multiplier } => {
                let raw = vol.value().unwrap_or(0.0);
                (raw, raw * multiplier, None, vol.is_warm())
            }
        }
    }
}

/// A zone scale: kind + optional regimes + floor. See the module docs for the formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    kernel: Kernel,
    floor: f64,
    regimes: Option<RegimeState>,
    /// Records accepted so far.
    accepted: u64,
    current: Zone,
}

impl Scale {
    /// Builds a scale; `floor` must be finite and > 0. Validates the spec and the regimes.
    pub fn new(
        spec: &ScaleSpec,
        regimes: Option<&RegimeSet>,
        floor: f64,
    ) -> Result<Scale, ParamError> {
        spec.validate()?;
        positive("floor", floor)?;
        if let Some(set) = regimes {
            set.validate()?;
        }
        let kernel = match *spec {
            ScaleSpec::Atr {
                period,
                multiplier,
                seed,
            } => Kernel::Atr {
                atr: Atr::new(period, seed)?,
                multiplier,
            },
            ScaleSpec::Grr {
                sigma,
                multiplier,
                cap_fraction,
            } => Kernel::Grr {
                sigma,
                multiplier,
                cap_fraction,
                tolerance: None,
            },
            ScaleSpec::Fixed { eps } => Kernel::Fixed { eps },
            ScaleSpec::EwmaVol {
                half_life,
                of,
                multiplier,
            } => Kernel::EwmaVol {
                vol: EwmaVol::new(half_life, of)?,
                multiplier,
            },
        };
        let regimes = regimes.map(RegimeState::new);
        let mut scale = Scale {
            kernel,
            floor,
            regimes,
            accepted: 0,
            current: Zone {
                eps: floor,
                raw: 0.0,
                regime: 0,
                warm: false,
            },
        };
        let regime = scale.regimes.as_ref().map_or(0, |r| r.active);
        scale.current = scale.zone(regime);
        Ok(scale)
    }

    /// Feeds one record and returns the new zone. An ignored record (see the module docs) returns
    /// the previous zone and leaves the state unchanged. Never allocates, never panics.
    pub fn update(&mut self, input: ScaleInput) -> Zone {
        if !self.kernel.update(&input) {
            return self.current;
        }
        self.accepted = self.accepted.saturating_add(1);
        let (raw, _, _, warm) = self.kernel.raw();
        let regime = match self.regimes.as_mut() {
            // Warm-up estimates (a single bar's range, a first change) would distort the long
            // EWMA for a long time, so only warm raw values are classified.
            Some(r) if warm => r.update(finite_or_max(raw)),
            Some(r) => r.active,
            None => 0,
        };
        self.current = self.zone(regime);
        self.current
    }

    /// The zone after the last accepted record (before any record: the floor, or the fixed /
    /// grr eps, with the regime that contains ratio 1).
    pub fn current(&self) -> Zone {
        self.current
    }

    /// The configured floor.
    pub fn floor(&self) -> f64 {
        self.floor
    }

    /// Records accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Names of the configured regimes, in index order (empty without regimes).
    pub fn regime_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.regimes
            .iter()
            .flat_map(|r| r.set.regimes.iter().map(|s| s.name.as_str()))
    }

    /// Name of regime `index` (as in [`Zone::regime`]), `None` without regimes or out of range.
    pub fn regime_name(&self, index: u8) -> Option<&str> {
        self.regimes
            .as_ref()?
            .set
            .regimes
            .get(index as usize)
            .map(|s| s.name.as_str())
    }

    fn zone(&self, regime: u8) -> Zone {
        let (raw, base, cap, warm) = self.kernel.raw();
        let mult = self.regimes.as_ref().map_or(1.0, RegimeState::multiplier);
        let mut eps = base * mult;
        if let Some(cap) = cap {
            eps = eps.min(cap);
        }
        // The floor wins over everything (including the cap); NaN can only come from corrupted
        // state and also falls back to the floor.
        let eps = if eps >= self.floor {
            finite_or_max(eps)
        } else {
            self.floor
        };
        Zone {
            eps,
            raw: finite_or_max(raw),
            regime,
            warm,
        }
    }
}

/// Maps +inf to `f64::MAX` and NaN to 0 (only reachable with values near `f64::MAX`).
fn finite_or_max(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.min(f64::MAX)
    }
}

/// Serde for a bound that may be +-inf: written as a number, or as the string `"inf"`/`"-inf"`
/// (JSON has no infinity); read from a number, `"inf"`, `"+inf"`, `"infinity"`, `"-inf"` (any
/// case), or `null` (what JSON writers emit for infinity), which is read as `+inf`.
mod f64_or_inf {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "inf" } else { "-inf" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(Bound)
    }

    struct Bound;

    impl<'de> Visitor<'de> for Bound {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or \"inf\"")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v.to_ascii_lowercase().as_str() {
                "inf" | "+inf" | "infinity" | "+infinity" => Ok(f64::INFINITY),
                "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::INFINITY)
        }
        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::INFINITY)
        }
    }
}
