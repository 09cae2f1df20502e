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
//! This file holds the [`Scale`] itself, its configuration and its input; each kind and the
//! regime classifier live in their own files.
//!
//! Garbage in: a record whose fields used by the kind are not finite (NaN, ±inf) is *ignored*:
//! the scale's state is left untouched and `update` returns the previous zone. The same holds
//! for a finite record whose arithmetic would overflow (|values| near `f64::MAX`). Callers are
//! expected to reject invalid records earlier; this only keeps one bad value from poisoning the
//! state forever. A non-finite or non-positive `tolerance` is treated as "not given".

mod atr;
mod ewma_vol;
mod kernel;
mod regime;

use serde::{Deserialize, Serialize};

use super::ParamError;
use kernel::Kernel;
use regime::RegimeState;

pub use atr::{Atr, AtrSeed};
pub use ewma_vol::{EwmaVol, VolOf};
pub use regime::{RegimeSet, RegimeSpec};

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
        let kernel = self.kernel.raw();
        let (raw, _, _, warm) = kernel;
        let regime = match self.regimes.as_mut() {
            // Warm-up estimates (a single bar's range, a first change) would distort the long
            // EWMA for a long time, so only warm raw values are classified.
            Some(r) if warm => r.update(finite_or_max(raw)),
            Some(r) => r.active,
            None => 0,
        };
        self.current = self.zone_of(kernel, regime);
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
        self.zone_of(self.kernel.raw(), regime)
    }

    /// The zone from the kernel's read-out (`Kernel::raw`, taken once per update).
    #[inline]
    fn zone_of(&self, kernel: (f64, f64, Option<f64>, bool), regime: u8) -> Zone {
        let (raw, base, cap, warm) = kernel;
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
