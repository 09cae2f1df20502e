//! Volatility regimes: classifying the ratio of the scale's raw value to its long EWMA, with
//! hysteresis, into named regimes that widen or narrow eps.

use serde::{Deserialize, Serialize};

use super::ewma_vol::Ewma;
use super::{one, positive};
use crate::zone::ParamError;

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
pub(super) struct RegimeState {
    pub(super) set: RegimeSet,
    long: Ewma,
    pub(super) active: u8,
    /// Side of the pending streak: true = above the active regime.
    pending_up: bool,
    streak: u32,
}

impl RegimeState {
    pub(super) fn new(set: &RegimeSet) -> RegimeState {
        RegimeState {
            set: set.clone(),
            long: Ewma::new(set.long_half_life),
            active: set.classify(1.0),
            pending_up: false,
            streak: 0,
        }
    }

    pub(super) fn multiplier(&self) -> f64 {
        self.set
            .regimes
            .get(self.active as usize)
            .map_or(1.0, |r| r.multiplier)
    }

    /// Feeds the raw value of one record; returns the active regime.
    pub(super) fn update(&mut self, raw: f64) -> u8 {
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
