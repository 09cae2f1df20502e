//! The two-scale trend: a slow fit with a wide zone (the macro trend) gates the tactical trend.
//!
//! The seed's hierarchy: a wide zone ignores everything but the macro trend, a tight one sees
//! tactical moves. `[fit.macro]` adds a second fit per key on the same series, with its zone
//! `multiplier` × the tactical eps and its own `forgetting`; its trend uses the same
//! enter/exit hysteresis as [`Trend`], measured in macro eps. How the two combine
//! ([`Combine`]):
//!
//! * `filter` (default): the tactical direction when it agrees with the macro direction, flat
//!   otherwise — tactical moves are traded only with the macro trend, never against it;
//! * `macro`: the macro direction alone (with the tactical strength when they agree, else the
//!   macro one) — the slow scale by itself, for comparison.
//!
//! A trend event carries the scale whose change moved the combined direction (`macro` when both
//! changed on the same record).

use serde::{Deserialize, Serialize};

use crate::signal::trend::{Trend, TrendSpec};
use crate::zone::ParamError;

/// How the macro and tactical directions combine into the traded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    #[default]
    Filter,
    Macro,
}

/// Which scale moved a trend event's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendScale {
    Tactical,
    Macro,
}

impl TrendScale {
    pub fn as_str(self) -> &'static str {
        match self {
            TrendScale::Tactical => "tactical",
            TrendScale::Macro => "macro",
        }
    }

    /// The inverse of [`TrendScale::as_str`].
    pub fn parse(s: &str) -> Option<TrendScale> {
        match s {
            "tactical" => Some(TrendScale::Tactical),
            "macro" => Some(TrendScale::Macro),
            _ => None,
        }
    }
}

/// `[fit.macro]`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MacroSpec {
    /// Macro eps = multiplier × the tactical eps (after its floors). > 1 for a wider zone.
    pub multiplier: f64,
    /// Forgetting factor of the macro fit (closer to 1 than the tactical one: a longer memory).
    pub forgetting: f64,
    /// The macro trend's horizon, enter and exit (in macro eps), saturation and warm-up.
    pub trend: TrendSpec,
    pub combine: Combine,
}

impl MacroSpec {
    /// Defaults for a tactical `[signal]`: multiplier 3, forgetting 0.998, the same trend rule.
    pub fn with_trend(trend: TrendSpec) -> MacroSpec {
        MacroSpec {
            multiplier: 3.0,
            forgetting: 0.998,
            trend,
            combine: Combine::Filter,
        }
    }

    pub fn validate(&self) -> Result<(), ParamError> {
        if !(self.multiplier.is_finite() && self.multiplier > 0.0) {
            return Err(ParamError::new(
                "multiplier",
                format!("must be > 0, got {}", self.multiplier),
            ));
        }
        // The fit itself checks forgetting in (0, 1]; the trend its own rule.
        self.trend.validate()
    }
}

/// The combined direction of one record, and whether it changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    pub trend: Trend,
    /// `Some(scale)` when the combined direction changed on this record.
    pub changed: Option<TrendScale>,
}

/// Combines the tactical and macro trends after both were updated on a record; `prev` is the
/// combined trend of the record before, `macro_changed` whether the macro direction changed.
pub fn combine(
    how: Combine,
    tactical: Trend,
    macro_trend: Trend,
    prev: Trend,
    macro_changed: bool,
) -> Combined {
    let (direction, strength) = match how {
        Combine::Filter if tactical.direction == macro_trend.direction => {
            (tactical.direction, tactical.strength)
        }
        Combine::Filter => (0, 0.0),
        Combine::Macro if tactical.direction == macro_trend.direction => {
            (macro_trend.direction, tactical.strength)
        }
        Combine::Macro => (macro_trend.direction, macro_trend.strength),
    };
    let strength = if direction == 0 { 0.0 } else { strength };
    let changed = (direction != prev.direction).then_some(if macro_changed {
        TrendScale::Macro
    } else {
        TrendScale::Tactical
    });
    Combined {
        trend: Trend {
            direction,
            strength,
        },
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(direction: i8, strength: f64) -> Trend {
        Trend {
            direction,
            strength,
        }
    }

    #[test]
    fn filter_trades_tactical_moves_only_with_the_macro_trend() {
        let flat = t(0, 0.0);
        for (tac, mac, want) in [
            (t(1, 0.4), t(1, 0.9), t(1, 0.4)),
            (t(-1, 0.7), t(-1, 0.2), t(-1, 0.7)),
            (t(1, 0.4), t(-1, 0.9), flat),
            (t(-1, 0.4), t(0, 0.0), flat),
            (t(0, 0.0), t(1, 0.5), flat),
        ] {
            let c = combine(Combine::Filter, tac, mac, flat, false);
            assert_eq!(c.trend, want, "{tac:?} {mac:?}");
        }
    }

    #[test]
    fn macro_holds_the_slow_direction() {
        let flat = t(0, 0.0);
        let c = combine(Combine::Macro, t(-1, 0.3), t(1, 0.8), flat, true);
        assert_eq!(c.trend, t(1, 0.8));
        assert_eq!(c.changed, Some(TrendScale::Macro));
        let c = combine(Combine::Macro, t(1, 0.3), t(1, 0.8), t(1, 0.8), false);
        assert_eq!((c.trend, c.changed), (t(1, 0.3), None));
    }

    #[test]
    fn the_event_names_the_scale_that_moved() {
        let flat = t(0, 0.0);
        let c = combine(Combine::Filter, t(1, 0.5), t(1, 0.5), flat, false);
        assert_eq!(c.changed, Some(TrendScale::Tactical));
        let c = combine(Combine::Filter, t(1, 0.5), t(1, 0.5), flat, true);
        assert_eq!(c.changed, Some(TrendScale::Macro));
        let c = combine(Combine::Filter, t(1, 0.5), t(1, 0.5), t(1, 0.9), true);
        assert_eq!(c.changed, None, "same direction: no event");
    }
}
