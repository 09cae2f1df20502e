//! The market generator: 1-minute OHLCV bars from a regime-switching random walk, with the
//! hidden trend, regime and jumps as ground truth.

use std::sync::Arc;

use super::rng::{KeyRng, MARKET_DOMAIN};
use super::{digits, GenError, GenOptions, MarketParams, BAR_INTERVAL_NS};

/// Volatility regime of a market bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// The key's base volatility.
    Calm,
    /// Base volatility times [`MarketParams::turbulent_vol_ratio`].
    Turbulent,
}

impl Regime {
    /// The value in the `regime` column: `calm` or `turbulent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Calm => "calm",
            Regime::Turbulent => "turbulent",
        }
    }
}

/// One market bar with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketRow {
    /// Symbol, e.g. `SYM000`.
    pub key: Arc<str>,
    /// Start of the bar, ns since the epoch (UTC).
    pub ts: i64,
    /// Open: the previous bar's close (the key's start price for the first bar).
    pub open: f64,
    /// High: >= max(open, close).
    pub high: f64,
    /// Low: <= min(open, close), > 0.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Traded volume, whole units, >= 1.
    pub volume: f64,
    /// Drift of this bar in log-return units (0 in flat stretches).
    pub true_trend: f64,
    /// Volatility regime of this bar.
    pub regime: Regime,
    /// Jump added to this bar's log return (0 for most bars).
    pub jump: f64,
}

struct MarketKey {
    name: Arc<str>,
    rng: KeyRng,
    calm_vol: f64,
    mean_volume: f64,
    log_close: f64,
    regime: Regime,
    trend: f64,
    trend_left: u64,
}

/// Iterator over market bars, ordered by `ts` then key. Needs no file: use it in tests and
/// benches directly. Yields `keys * rows` rows.
pub struct MarketGen {
    params: MarketParams,
    keys: Vec<MarketKey>,
    start_ts: i64,
    rows: usize,
    step: usize,
    key: usize,
}

impl MarketGen {
    /// A generator for `opts`; fails if the options are invalid.
    pub fn new(opts: &GenOptions) -> Result<Self, GenError> {
        opts.validate()?;
        let p = opts.market.clone();
        let width = digits(opts.keys - 1).max(3);
        let p_turbulent = p.mean_turbulent_bars / (p.mean_calm_bars + p.mean_turbulent_bars);
        let keys = (0..opts.keys)
            .map(|k| {
                let mut rng = KeyRng::new(opts.seed, MARKET_DOMAIN, k);
                let calm_vol = rng.log_between(p.calm_vol);
                let start = rng.log_between(p.start_price);
                let mean_volume = rng.log_between(p.mean_volume);
                // Start in the chain's stationary distribution.
                let regime = if rng.chance(p_turbulent) {
                    Regime::Turbulent
                } else {
                    Regime::Calm
                };
                MarketKey {
                    name: format!("SYM{k:0width$}").into(),
                    rng,
                    calm_vol,
                    mean_volume,
                    log_close: start.ln(),
                    regime,
                    trend: 0.0,
                    trend_left: 0,
                }
            })
            .collect();
        Ok(MarketGen {
            params: p,
            keys,
            start_ts: opts.start_ts,
            rows: opts.rows,
            step: 0,
            key: 0,
        })
    }

    /// Total rows this generator yields.
    pub fn total_rows(&self) -> u64 {
        (self.keys.len() * self.rows) as u64
    }

    /// Key names in output order.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| &*k.name)
    }
}

impl Iterator for MarketGen {
    type Item = MarketRow;

    fn next(&mut self) -> Option<MarketRow> {
        if self.step >= self.rows {
            return None;
        }
        let ts = self.start_ts + self.step as i64 * BAR_INTERVAL_NS;
        let p = &self.params;
        let k = &mut self.keys[self.key];
        let rng = &mut k.rng;

        // Regime: from the second bar on, leave the current state with probability 1/mean.
        if self.step > 0 {
            let mean = match k.regime {
                Regime::Calm => p.mean_calm_bars,
                Regime::Turbulent => p.mean_turbulent_bars,
            };
            if rng.chance(1.0 / mean) {
                k.regime = match k.regime {
                    Regime::Calm => Regime::Turbulent,
                    Regime::Turbulent => Regime::Calm,
                };
            }
        }
        // Trend: a new segment when the current one is used up.
        if k.trend_left == 0 {
            k.trend_left = rng.duration(p.mean_trend_bars);
            k.trend = if rng.chance(p.flat_trend_prob) {
                0.0
            } else {
                rng.sign() * rng.between(p.trend_strength) * k.calm_vol
            };
        }
        k.trend_left -= 1;

        let vol = match k.regime {
            Regime::Calm => k.calm_vol,
            Regime::Turbulent => k.calm_vol * p.turbulent_vol_ratio,
        };
        let shock = rng.student_t_unit(p.tail_dof);
        let jump = if rng.chance(p.jump_prob) {
            rng.sign() * rng.between(p.jump_size) * k.calm_vol
        } else {
            0.0
        };
        let a = k.log_close;
        let b = a + k.trend + vol * shock + jump;
        // Extremes of a Brownian bridge from a to b with variance vol^2 over the bar: exact
        // marginal draws by inverting P(max > m) = exp(-2 (m - a)(m - b) / vol^2).
        let spread_hi = ((b - a).powi(2) - 2.0 * vol * vol * rng.uniform_pos().ln()).sqrt();
        let spread_lo = ((b - a).powi(2) - 2.0 * vol * vol * rng.uniform_pos().ln()).sqrt();
        let log_high = 0.5 * (a + b + spread_hi);
        let log_low = 0.5 * (a + b - spread_lo);
        // Volume grows with the size of the move and in turbulence.
        let activity = 1.0 + shock.abs() + if jump != 0.0 { 3.0 } else { 0.0 };
        let volume = (k.mean_volume * 0.5 * activity * (0.25 * rng.normal()).exp())
            .round()
            .max(1.0);
        k.log_close = b;

        let (open, close) = (a.exp(), b.exp());
        let row = MarketRow {
            key: Arc::clone(&k.name),
            ts,
            open,
            // exp is monotone, but guard the last bit so the invariants hold exactly.
            high: log_high.exp().max(open).max(close),
            low: log_low.exp().min(open).min(close),
            close,
            volume,
            true_trend: k.trend,
            regime: k.regime,
            jump,
        };
        self.key += 1;
        if self.key == self.keys.len() {
            self.key = 0;
            self.step += 1;
        }
        Some(row)
    }
}
