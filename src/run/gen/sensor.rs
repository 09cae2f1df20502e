//! The sensor generator: one measurement per part and machine feature, with tool wear, tool
//! changes, gauge noise and gross gauge errors as ground truth.

use std::sync::Arc;

use super::rng::{KeyRng, SENSOR_DOMAIN};
use super::{digits, GenError, GenOptions, SensorParams, PART_INTERVAL_NS};

/// Measured features per machine, in key (alphabetical) order: name, nominal, half tolerance
/// (mm), and the direction tool wear moves the value (a bore shrinks, a turned diameter and a
/// faced length grow).
const FEATURES: [(&str, f64, f64, f64); 3] = [
    ("bore", 12.0, 0.015, -1.0),
    ("diameter", 25.0, 0.025, 1.0),
    ("length", 120.0, 0.10, 1.0),
];

/// One measurement with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRow {
    /// Machine and feature, e.g. `M01/diameter`.
    pub key: Arc<str>,
    /// Time of the measurement, ns since the epoch (UTC); one part every 30 s.
    pub ts: i64,
    /// Measured value: `true_value` + gauge noise (+ a gross error on outliers).
    pub value: f64,
    /// Nominal size.
    pub nominal: f64,
    /// Lower spec limit.
    pub lsl: f64,
    /// Upper spec limit.
    pub usl: f64,
    /// Part serial, `P0000001` for the first part; counts per machine, so all features of a
    /// part share it and every machine's n-th part has the same serial and `ts`.
    pub part: String,
    /// Value without gauge noise or gross error.
    pub true_value: f64,
    /// Drift of `true_value` per part in the current tool life (the wear rate).
    pub true_drift: f64,
    /// Tool counter of this key: 0 for the first tool, +1 at each tool change.
    pub tool: i64,
    /// Whether `value` carries a gross gauge error.
    pub outlier: bool,
    /// Gauge noise sigma of this key, `(usl - lsl) * grr_fraction`.
    pub sigma_grr: f64,
}

struct SensorKey {
    name: Arc<str>,
    rng: KeyRng,
    nominal: f64,
    half_tol: f64,
    drift: f64,
    sigma_grr: f64,
    tool: i64,
    tool_left: u32,
    tool_used: u32,
    offset: f64,
}

/// Iterator over measurements, ordered by `ts` then key. Key `k` is machine `k / 3 + 1`,
/// feature `bore`, `diameter` or `length` by `k % 3`. Yields `keys * rows` rows.
pub struct SensorGen {
    params: SensorParams,
    keys: Vec<SensorKey>,
    start_ts: i64,
    rows: usize,
    step: usize,
    key: usize,
}

impl SensorGen {
    /// A generator for `opts`; fails if the options are invalid.
    pub fn new(opts: &GenOptions) -> Result<Self, GenError> {
        opts.validate()?;
        let p = opts.sensor.clone();
        let machines = opts.keys.div_ceil(FEATURES.len());
        let width = digits(machines).max(2);
        let keys = (0..opts.keys)
            .map(|k| {
                let (feature, nominal, half_tol, direction) = FEATURES[k % FEATURES.len()];
                let machine = k / FEATURES.len() + 1;
                let mut rng = KeyRng::new(opts.seed, SENSOR_DOMAIN, k);
                let wear = rng.between(p.wear_to_limit);
                let drift = direction * wear * half_tol / f64::from(p.tool_life.0);
                let mut key = SensorKey {
                    name: format!("M{machine:0width$}/{feature}").into(),
                    rng,
                    nominal,
                    half_tol,
                    drift,
                    sigma_grr: 2.0 * half_tol * p.grr_fraction,
                    tool: -1,
                    tool_left: 0,
                    tool_used: 0,
                    offset: 0.0,
                };
                key.new_tool(&p);
                key
            })
            .collect();
        Ok(SensorGen {
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

impl SensorKey {
    fn new_tool(&mut self, p: &SensorParams) {
        self.tool += 1;
        self.tool_left = self.rng.int_between(p.tool_life.0, p.tool_life.1);
        self.tool_used = 0;
        let m = p.max_offset * self.half_tol;
        self.offset = (p.offset_sd * self.half_tol * self.rng.normal()).clamp(-m, m);
    }
}

impl Iterator for SensorGen {
    type Item = SensorRow;

    fn next(&mut self) -> Option<SensorRow> {
        if self.step >= self.rows {
            return None;
        }
        let ts = self.start_ts + self.step as i64 * PART_INTERVAL_NS;
        let p = &self.params;
        let k = &mut self.keys[self.key];
        if k.tool_left == 0 {
            k.new_tool(p);
        }
        let true_value = k.nominal + k.offset + k.drift * f64::from(k.tool_used);
        k.tool_used += 1;
        k.tool_left -= 1;
        let noise = k.sigma_grr * k.rng.normal();
        let outlier = k.rng.chance(p.outlier_prob);
        let gross = if outlier {
            k.rng.sign() * k.rng.between(p.outlier_size) * k.sigma_grr
        } else {
            0.0
        };
        let row = SensorRow {
            key: Arc::clone(&k.name),
            ts,
            value: true_value + noise + gross,
            nominal: k.nominal,
            lsl: k.nominal - k.half_tol,
            usl: k.nominal + k.half_tol,
            part: format!("P{:07}", self.step + 1),
            true_value,
            true_drift: k.drift,
            tool: k.tool,
            outlier,
            sigma_grr: k.sigma_grr,
        };
        self.key += 1;
        if self.key == self.keys.len() {
            self.key = 0;
            self.step += 1;
        }
        Some(row)
    }
}
