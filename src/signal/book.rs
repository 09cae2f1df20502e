//! Positions, costs, turnover, no-trade-band rebalancing and PnL of one key, without look-ahead.
//!
//! Model (per key, position in units of one notional):
//! * The position decided on record t (from the trend after t's close) is traded on record t+1,
//!   at t+1's close. So a decision never earns the return of the bar it was made on.
//! * Between trades the exposure drifts with the price: `e_t = e_{t-1}·(1 + r_t)`, with
//!   `r_t = close_t / close_{t-1} - 1` (units held are fixed). PnL of record t is `e_{t-1}·r_t`.
//! * The target exposure is `weight × direction` (`sizing = "sign"`) or
//!   `weight × direction × strength` (`sizing = "strength"`); `weight` defaults to 1 (equal
//!   weights). The book trades to the target only when `|target - e| > band` (the no-trade
//!   band), or when the target is flat and the book is not (exits are never skipped).
//! * A return that is not finite (a close of 1e-300 followed by 1e10 overflows) or larger than
//!   [`MAX_RETURN`] in size is taken as a data error: the bar contributes no PnL and does not drift
//!   the exposure, so the pending order re-bases the exposure to the target. No NaN or infinity
//!   reaches the exposure, the totals, the events or the key's saved state.
//! * One-way turnover of a trade is `|to - from|`; its cost is `turnover × cost_bps / 10⁴`.

use serde::{Deserialize, Serialize};

use crate::zone::ParamError;

/// Largest bar-to-bar return taken as a price move (a million-fold); see the module notes.
pub const MAX_RETURN: f64 = 1e6;

/// `close / prev - 1`, or `None` when it is not finite or beyond [`MAX_RETURN`].
#[inline]
pub fn bar_return(prev: f64, close: f64) -> Option<f64> {
    let r = close / prev - 1.0;
    (r.is_finite() && r.abs() <= MAX_RETURN).then_some(r)
}

/// How a trend becomes a target position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sizing {
    #[default]
    Sign,
    Strength,
}

/// Book parameters (`[signal]` table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookSpec {
    pub sizing: Sizing,
    /// Cost per unit of one-way turnover, in basis points of notional.
    pub cost_bps: f64,
    /// No-trade band, in position units: drift or signal changes smaller than this are not traded.
    pub band: f64,
    /// Target weight of this key (notional units); equal weights by default.
    pub weight: f64,
}

impl Default for BookSpec {
    fn default() -> Self {
        Self {
            sizing: Sizing::Sign,
            cost_bps: 1.0,
            band: 0.1,
            weight: 1.0,
        }
    }
}

impl BookSpec {
    pub fn validate(&self) -> Result<(), ParamError> {
        if !(self.cost_bps.is_finite() && self.cost_bps >= 0.0) {
            return Err(ParamError::new(
                "cost_bps",
                format!("must be >= 0, got {}", self.cost_bps),
            ));
        }
        if !(self.band.is_finite() && self.band >= 0.0) {
            return Err(ParamError::new(
                "band",
                format!("must be >= 0, got {}", self.band),
            ));
        }
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(ParamError::new(
                "weight",
                format!("must be >= 0, got {}", self.weight),
            ));
        }
        Ok(())
    }

    /// Target exposure for a trend.
    pub fn target(&self, direction: i8, strength: f64) -> f64 {
        let d = f64::from(direction);
        match self.sizing {
            Sizing::Sign => self.weight * d,
            Sizing::Strength => self.weight * d * strength,
        }
    }
}

/// A trade done on one record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub from: f64,
    pub to: f64,
    pub turnover: f64,
    pub cost: f64,
}

/// What one record did to the book.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BookStep {
    /// Price PnL of the exposure held into this record, in notional units.
    pub gross: f64,
    /// Cost of the trade done on this record (0 without trade).
    pub cost: f64,
    /// Exposure after this record.
    pub exposure: f64,
    pub trade: Option<Trade>,
}

/// The running book of one key, with its totals.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Book {
    exposure: f64,
    pending: Option<f64>,
    last_close: Option<f64>,
    pub turnover: f64,
    pub gross: f64,
    pub costs: f64,
    pub trades: u64,
}

impl Book {
    pub fn exposure(&self) -> f64 {
        self.exposure
    }

    /// Processes the close of a record: accrue PnL, then execute the order decided on the previous
    /// record. Call [`Book::decide`] afterwards with this record's trend.
    #[inline]
    pub fn on_close(&mut self, spec: &BookSpec, close: f64) -> BookStep {
        let mut step = BookStep::default();
        if let Some(r) = self.last_close.and_then(|prev| bar_return(prev, close)) {
            let gross = self.exposure * r;
            let drifted = self.exposure * (1.0 + r);
            if gross.is_finite() && drifted.is_finite() && (self.gross + gross).is_finite() {
                step.gross = gross;
                self.exposure = drifted;
            }
        }
        self.last_close = Some(close);
        if let Some(target) = self.pending.take() {
            let from = self.exposure;
            let gap = (target - from).abs();
            let must_exit = target == 0.0 && from != 0.0;
            if gap > spec.band || (must_exit && gap > 0.0) {
                let cost = gap * spec.cost_bps * 1e-4;
                self.exposure = target;
                self.turnover += gap;
                self.costs += cost;
                self.trades += 1;
                step.cost = cost;
                step.trade = Some(Trade {
                    from,
                    to: target,
                    turnover: gap,
                    cost,
                });
            }
        }
        self.gross += step.gross;
        step.exposure = self.exposure;
        step
    }

    /// Records the target decided on this record; it is traded on the next one.
    #[inline]
    pub fn decide(&mut self, target: f64) {
        self.pending = Some(target);
    }
}
