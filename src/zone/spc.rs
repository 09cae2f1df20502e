//! Statistical process control on a measurement stream: Shewhart individuals / moving-range
//! limits, EWMA and tabular CUSUM charts, and Western Electric rules 1-4 — pure math, no IO.
//!
//! # How a chart runs on a stream
//!
//! [`Spc`] is the per-key chart driven by [`Spc::update`], one measurement at a time.
//!
//! * **Centre and sigma.** Either given (phase II: `target`, `sigma`), or estimated from the first
//!   `baseline` finite records (phase I): the centre is their mean and sigma is
//!   `MRbar / d2` with `d2 = 1.128` (average moving range of span 2). When only one of `target`
//!   and `sigma` is given, the other is estimated. After the baseline the centre and sigma are
//!   **frozen**: later records never move the limits. Baseline records are not charted and raise
//!   no alarm; the EWMA, CUSUM and rule windows start with the first record after the baseline.
//! * **Standardising.** Every chart works on `d = (x - centre) / sigma`. A baseline with no
//!   variation at all gives `sigma = 0`; then a record equal to the centre is `d = 0` and any
//!   other record is an extreme deviation, so it alarms (a process that never varied has changed).
//!   `|d|` is capped at [`D_MAX`] so that the state stays finite on any finite input.
//! * **Missing values.** A non-finite input (NaN, ±inf) is ignored: no state changes, no alarm,
//!   and it does not count towards the baseline.
//! * **Alarms are events.** Each update returns [`Alarms`], a fixed-capacity value with at most
//!   one [`Alarm`] per [`Rule`]; every alarm carries the statistic (in measurement units) and the
//!   limit it crossed. A rule fires on every record whose window satisfies it, so a sustained
//!   shift keeps firing (as a Shewhart chart marks every point beyond its limits).
//! * **CUSUM restart.** After a CUSUM alarm, the side that signalled restarts from zero, as
//!   Montgomery recommends after an out-of-control signal (*Introduction to Statistical Quality
//!   Control*, ch. 9, "The tabular cusum": search for the assignable cause, then reinitialise the
//!   cusum at zero). The EWMA statistic is not reset.
//! * **Allocation-free.** Updating allocates nothing: the rule windows live in one fixed ring of
//!   the last eight standardised values, and [`Alarms`] is an array indexed by rule.
//! * **Snapshots.** Every type here is serde-serialisable and all state is finite, so a chart
//!   restored from a snapshot continues exactly like an uninterrupted one.

use serde::{Deserialize, Serialize};

use super::ParamError;

/// `d2` for moving ranges of span 2: `E[range of 2 normal values] / sigma` (Montgomery,
/// *Introduction to Statistical Quality Control*, Appendix table of control-chart factors).
pub const D2: f64 = 1.128;
/// `D4` for span 2: the moving-range chart's upper limit is `D4 · MRbar` (same table).
pub const D4: f64 = 3.267;
/// Cap on `|x - centre| / sigma`. Far beyond any real alarm threshold; it only keeps the
/// state finite (and JSON-serialisable) when sigma is zero or the input is astronomically large.
pub const D_MAX: f64 = 1e100;

/// An alarm rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Western Electric rule 1: one point outside the 3-sigma control limits.
    We1,
    /// Western Electric rule 2: two out of three consecutive points beyond a 2-sigma limit,
    /// on the same side.
    We2,
    /// Western Electric rule 3: four out of five consecutive points at a distance of 1 sigma or
    /// beyond from the centre line, on the same side.
    We3,
    /// Western Electric rule 4: eight consecutive points on one side of the centre line.
    We4,
    /// EWMA statistic outside its (exact, time-varying) control limits.
    Ewma,
    /// Tabular CUSUM above its decision interval (either side).
    Cusum,
}

impl Rule {
    /// All rules, in the order [`Alarms::iter`] yields them.
    pub const ALL: [Rule; 6] = [
        Rule::We1,
        Rule::We2,
        Rule::We3,
        Rule::We4,
        Rule::Ewma,
        Rule::Cusum,
    ];

    /// The rule's name in events and configuration (`we1`, ..., `ewma`, `cusum`).
    pub fn name(&self) -> &'static str {
        match self {
            Rule::We1 => "we1",
            Rule::We2 => "we2",
            Rule::We3 => "we3",
            Rule::We4 => "we4",
            Rule::Ewma => "ewma",
            Rule::Cusum => "cusum",
        }
    }

    fn index(self) -> usize {
        match self {
            Rule::We1 => 0,
            Rule::We2 => 1,
            Rule::We3 => 2,
            Rule::We4 => 3,
            Rule::Ewma => 4,
            Rule::Cusum => 5,
        }
    }
}

/// Which side of the centre line a signal is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Upper,
    Lower,
}

/// One alarm: the rule that fired, the statistic, and the limit it crossed.
///
/// Units are those of the measurement. For the Western Electric rules the statistic is the
/// measurement itself and the limit is the sigma line of the rule on the side that fired
/// (`centre ± 3σ`, `± 2σ`, `± 1σ`, and the centre line for rule 4). For EWMA it is `z_i` and the
/// UCL or LCL at that sample. For CUSUM it is the cumulative sum and the decision interval
/// `H = h·σ`; a lower-side alarm is reported negated (`-C⁻` against `-H`) so that, as for every
/// other rule, an alarm below the centre reads "statistic below a lower limit".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alarm {
    pub rule: Rule,
    pub statistic: f64,
    pub limit: f64,
}

/// The alarms of one update: at most one per rule, stored inline (no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Alarms {
    slots: [Option<Alarm>; 6],
}

impl Alarms {
    /// The alarms, in rule order (`we1` .. `we4`, `ewma`, `cusum`).
    pub fn iter(&self) -> impl Iterator<Item = Alarm> + '_ {
        self.slots.iter().flatten().copied()
    }

    /// Number of alarms (0 ..= 6).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// True when no rule fired.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.is_none())
    }

    /// The alarm of one rule, if it fired.
    pub fn get(&self, rule: Rule) -> Option<Alarm> {
        self.slots[rule.index()]
    }

    /// Record an alarm; a second alarm of the same rule replaces the first.
    pub fn push(&mut self, alarm: Alarm) {
        self.slots[alarm.rule.index()] = Some(alarm);
    }
}

/// `(x - centre) / sigma`, defined for `sigma = 0` and capped at ±[`D_MAX`].
fn standardise(x: f64, centre: f64, sigma: f64) -> f64 {
    let d = (x - centre) / sigma;
    if d.is_nan() {
        // 0/0: a record exactly at the centre of a zero-sigma chart. (x and centre are finite,
        // so inf/inf cannot occur: x - centre = ±inf only with a finite sigma.)
        0.0
    } else {
        d.clamp(-D_MAX, D_MAX)
    }
}

fn check_finite(param: &'static str, v: f64) -> Result<(), ParamError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(ParamError::new(
            param,
            format!("must be a finite number, got {v}"),
        ))
    }
}

fn check_sigma(param: &'static str, sigma: f64) -> Result<(), ParamError> {
    if sigma.is_finite() && sigma >= 0.0 {
        Ok(())
    } else {
        Err(ParamError::new(
            param,
            format!("must be a finite number >= 0, got {sigma}"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Shewhart individuals / moving range
// ---------------------------------------------------------------------------------------------

/// Phase-I estimator for an individuals chart: running mean and average moving range (span 2)
/// of the values pushed so far. Constant memory; non-finite values are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MovingRange {
    n: u64,
    mean: f64,
    prev: f64,
    mr_n: u64,
    mr_mean: f64,
}

/// Incremental mean that stays finite for any finite inputs (no overflowing sum).
fn mean_step(mean: f64, x: f64, n: u64) -> f64 {
    let n = n as f64;
    let delta = x - mean;
    let next = if delta.is_finite() {
        mean + delta / n
    } else {
        mean + (x / n - mean / n)
    };
    next.clamp(-f64::MAX, f64::MAX)
}

impl MovingRange {
    /// An empty estimator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one value (ignored if not finite).
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.n > 0 {
            let mr = (x - self.prev).abs().min(f64::MAX);
            self.mr_n += 1;
            self.mr_mean = mean_step(self.mr_mean, mr, self.mr_n);
        }
        self.n += 1;
        self.mean = mean_step(self.mean, x, self.n);
        self.prev = x;
    }

    /// Number of values pushed.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean of the values (None before the first).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Average moving range `MRbar` (None before the second value).
    pub fn mr_bar(&self) -> Option<f64> {
        (self.mr_n > 0).then_some(self.mr_mean)
    }

    /// Sigma estimate `MRbar / d2` (None before the second value).
    pub fn sigma(&self) -> Option<f64> {
        self.mr_bar().map(|r| r / D2)
    }

    /// The individuals / moving-range chart these values define (None before the second value).
    pub fn chart(&self) -> Option<IndividualsChart> {
        Some(IndividualsChart {
            centre: self.mean()?,
            mr_bar: self.mr_bar()?,
        })
    }
}

/// Frozen limits of a Shewhart individuals (I) chart and its moving-range (MR) chart, 3-sigma.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndividualsChart {
    /// Centre line of the I chart.
    pub centre: f64,
    /// Average moving range, the centre line of the MR chart.
    pub mr_bar: f64,
}

impl IndividualsChart {
    /// Phase-I chart of a finished baseline (None with fewer than two finite values).
    pub fn from_values(values: &[f64]) -> Option<Self> {
        let mut mr = MovingRange::new();
        values.iter().for_each(|&x| mr.push(x));
        mr.chart()
    }

    /// Phase-II chart from a known centre and sigma (`MRbar = d2 · sigma`).
    pub fn from_sigma(centre: f64, sigma: f64) -> Self {
        Self {
            centre,
            mr_bar: D2 * sigma,
        }
    }

    /// Process sigma, `MRbar / d2`.
    pub fn sigma(&self) -> f64 {
        self.mr_bar / D2
    }

    /// Upper control limit of the I chart, `centre + 3·MRbar/d2`.
    pub fn ucl(&self) -> f64 {
        self.centre + 3.0 * self.sigma()
    }

    /// Lower control limit of the I chart, `centre - 3·MRbar/d2`.
    pub fn lcl(&self) -> f64 {
        self.centre - 3.0 * self.sigma()
    }

    /// Upper control limit of the MR chart, `D4·MRbar`.
    pub fn mr_ucl(&self) -> f64 {
        D4 * self.mr_bar
    }

    /// Lower control limit of the MR chart (`D3 = 0` for span 2).
    pub fn mr_lcl(&self) -> f64 {
        0.0
    }
}

// ---------------------------------------------------------------------------------------------
// EWMA
// ---------------------------------------------------------------------------------------------

/// EWMA chart for individual values (Roberts 1959; Montgomery ISQC ch. 9):
/// `z_i = λ·x_i + (1-λ)·z_{i-1}`, `z_0 = centre`, with the exact time-varying limits
/// `centre ± L·σ·sqrt(λ/(2-λ)·(1-(1-λ)^{2i}))`. Signals when `z_i` is strictly outside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EwmaChart {
    lambda: f64,
    l: f64,
    centre: f64,
    sigma: f64,
    /// `(z_i - centre) / sigma`, kept standardised so that it stays finite.
    z: f64,
    i: u64,
}

/// One EWMA step: the statistic, the limits at this sample, and the side that signalled.
pub type EwmaStep = (f64, f64, f64, Option<Side>);

impl EwmaChart {
    /// `lambda` in (0, 1], `l > 0`, `sigma >= 0`, all finite.
    pub fn new(lambda: f64, l: f64, centre: f64, sigma: f64) -> Result<Self, ParamError> {
        if !(lambda.is_finite() && lambda > 0.0 && lambda <= 1.0) {
            return Err(ParamError::new(
                "lambda",
                format!("must be in (0, 1], got {lambda}"),
            ));
        }
        if !(l.is_finite() && l > 0.0) {
            return Err(ParamError::new("l", format!("must be > 0, got {l}")));
        }
        check_finite("centre", centre)?;
        check_sigma("sigma", sigma)?;
        Ok(Self {
            lambda,
            l,
            centre,
            sigma,
            z: 0.0,
            i: 0,
        })
    }

    /// Number of samples charted so far.
    pub fn samples(&self) -> u64 {
        self.i
    }

    /// Current statistic `z_i` (the centre before the first sample).
    pub fn z(&self) -> f64 {
        self.centre + self.sigma * self.z
    }

    /// Half-width of the limits at sample `i` (1-based) in sigma units.
    fn width(&self, i: u64) -> f64 {
        let decay = (1.0 - self.lambda).powf(2.0 * i as f64);
        self.l * (self.lambda / (2.0 - self.lambda) * (1.0 - decay)).sqrt()
    }

    /// Chart one value: returns `(z, lcl, ucl, signal)`. A non-finite `x` is ignored (the
    /// returned values are the current statistic and the limits of the last sample, no signal).
    pub fn update(&mut self, x: f64) -> EwmaStep {
        if !x.is_finite() {
            let w = self.sigma * self.width(self.i);
            return (self.z(), self.centre - w, self.centre + w, None);
        }
        self.update_std(standardise(x, self.centre, self.sigma))
    }

    fn update_std(&mut self, d: f64) -> EwmaStep {
        self.i = self.i.saturating_add(1);
        self.z = self.lambda * d + (1.0 - self.lambda) * self.z;
        let w = self.width(self.i);
        let signal = if self.z > w {
            Some(Side::Upper)
        } else if self.z < -w {
            Some(Side::Lower)
        } else {
            None
        };
        let half = self.sigma * w;
        (self.z(), self.centre - half, self.centre + half, signal)
    }
}

// ---------------------------------------------------------------------------------------------
// CUSUM
// ---------------------------------------------------------------------------------------------

/// Tabular (Page) CUSUM, Montgomery ISQC ch. 9:
/// `C⁺_i = max(0, x_i - (μ0 + K) + C⁺_{i-1})`, `C⁻_i = max(0, (μ0 - K) - x_i + C⁻_{i-1})`,
/// `K = k·σ`, `H = h·σ`; a side signals when its sum exceeds `H` (strictly) and then restarts
/// from zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    k: f64,
    h: f64,
    centre: f64,
    sigma: f64,
    /// Sums in sigma units (finite by construction).
    c_plus: f64,
    c_minus: f64,
}

/// One CUSUM step: `C⁺`, `C⁻` (before any restart) and the side that signalled.
pub type CusumStep = (f64, f64, Option<Side>);

impl Cusum {
    /// `k >= 0`, `h > 0` (both in sigma units), `sigma >= 0`, all finite.
    pub fn new(k: f64, h: f64, centre: f64, sigma: f64) -> Result<Self, ParamError> {
        if !(k.is_finite() && k >= 0.0) {
            return Err(ParamError::new("k", format!("must be >= 0, got {k}")));
        }
        if !(h.is_finite() && h > 0.0) {
            return Err(ParamError::new("h", format!("must be > 0, got {h}")));
        }
        check_finite("centre", centre)?;
        check_sigma("sigma", sigma)?;
        Ok(Self {
            k,
            h,
            centre,
            sigma,
            c_plus: 0.0,
            c_minus: 0.0,
        })
    }

    /// Decision interval `H = h·σ` in measurement units.
    pub fn decision_interval(&self) -> f64 {
        self.h * self.sigma
    }

    /// Current sums `(C⁺, C⁻)` in measurement units.
    pub fn sums(&self) -> (f64, f64) {
        (self.sigma * self.c_plus, self.sigma * self.c_minus)
    }

    /// Chart one value: returns `(C⁺, C⁻, signal)` as computed for this sample; if a side
    /// signalled, its sum has already been restarted at zero for the next sample. A non-finite
    /// `x` is ignored (current sums, no signal).
    pub fn update(&mut self, x: f64) -> CusumStep {
        if !x.is_finite() {
            let (p, m) = self.sums();
            return (p, m, None);
        }
        self.update_std(standardise(x, self.centre, self.sigma))
    }

    fn update_std(&mut self, d: f64) -> CusumStep {
        self.c_plus = (d - self.k + self.c_plus).max(0.0);
        self.c_minus = (-d - self.k + self.c_minus).max(0.0);
        let (p, m) = self.sums();
        // With k >= 0 both sides cannot exceed h on the same sample (their sum before it was
        // at most 2h and falls by 2k); the larger one is reported should it ever happen.
        let signal = if self.c_plus > self.h && self.c_plus >= self.c_minus {
            self.c_plus = 0.0;
            Some(Side::Upper)
        } else if self.c_minus > self.h {
            self.c_minus = 0.0;
            Some(Side::Lower)
        } else {
            None
        };
        (p, m, signal)
    }
}

// ---------------------------------------------------------------------------------------------
// Western Electric rules
// ---------------------------------------------------------------------------------------------

/// Western Electric rules 1-4 on standardised values `z = (x - centre) / sigma`, as worded in
/// Montgomery & Runger, *Applied Statistics and Probability for Engineers* (3rd ed., 2003),
/// §16-5, after the *Western Electric Statistical Quality Control Handbook* (1956):
///
/// 1. one point plots outside 3-sigma control limits — `|z| > 3`;
/// 2. two out of three consecutive points plot beyond a 2-sigma limit — `z > 2` (or `< -2`);
/// 3. four out of five consecutive points plot at a distance of 1-sigma or beyond from the
///    centre line — `z >= 1` (or `<= -1`);
/// 4. eight consecutive points plot on one side of the centre line — all `z > 0` (or all
///    `< 0`); a point exactly on the centre line is on neither side and breaks the run.
///
/// "Rules 2 and 3 apply to one side of the centre line at a time" (same source). Choices where
/// the wording is silent: a point beyond 3σ also counts as beyond 2σ and 1σ; rules 2 and 3 fire
/// only on a point that is itself part of the pattern (so a pattern is reported when it is
/// completed, not again by the in-zone points after it); every rule is re-checked on every
/// point, so a continuing pattern keeps firing.
///
/// The windows are one ring of the last eight values (rule 4 needs 8, rule 3 needs 5, rule 2
/// needs 3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WesternElectric {
    ring: [f64; 8],
    /// Index of the slot the next value goes to.
    head: u8,
    /// Number of values held (<= 8).
    len: u8,
}

/// Which Western Electric rules fired on one point, and on which side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeSignal {
    pub we1: Option<Side>,
    pub we2: Option<Side>,
    pub we3: Option<Side>,
    pub we4: Option<Side>,
}

impl WeSignal {
    /// The side a rule fired on (None for `ewma`, `cusum`, or a rule that did not fire).
    pub fn get(&self, rule: Rule) -> Option<Side> {
        match rule {
            Rule::We1 => self.we1,
            Rule::We2 => self.we2,
            Rule::We3 => self.we3,
            Rule::We4 => self.we4,
            Rule::Ewma | Rule::Cusum => None,
        }
    }

    /// True when no rule fired.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl WesternElectric {
    /// Empty windows.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `back`-th most recent value (0 = newest). Caller ensures `back < len`.
    fn recent(&self, back: usize) -> f64 {
        self.ring[(usize::from(self.head) + 8 - 1 - back) % 8]
    }

    /// How many of the last `n` values satisfy `pred` (fewer values held count as failing).
    fn count_last(&self, n: usize, pred: impl Fn(f64) -> bool) -> usize {
        (0..n.min(usize::from(self.len)))
            .filter(|&b| pred(self.recent(b)))
            .count()
    }

    /// Add one standardised value and report the rules it completes. NaN is ignored (no
    /// signal, windows unchanged); ±inf is treated as an extreme value.
    pub fn update(&mut self, z: f64) -> WeSignal {
        if z.is_nan() {
            return WeSignal::default();
        }
        let z = z.clamp(-D_MAX, D_MAX);
        self.ring[usize::from(self.head)] = z;
        self.head = (self.head + 1) % 8;
        self.len = (self.len + 1).min(8);

        let side = |up: bool| if up { Side::Upper } else { Side::Lower };
        let mut s = WeSignal::default();
        if z.abs() > 3.0 {
            s.we1 = Some(side(z > 0.0));
        }
        if z > 2.0 && self.count_last(3, |v| v > 2.0) >= 2 {
            s.we2 = Some(Side::Upper);
        } else if z < -2.0 && self.count_last(3, |v| v < -2.0) >= 2 {
            s.we2 = Some(Side::Lower);
        }
        if z >= 1.0 && self.count_last(5, |v| v >= 1.0) >= 4 {
            s.we3 = Some(Side::Upper);
        } else if z <= -1.0 && self.count_last(5, |v| v <= -1.0) >= 4 {
            s.we3 = Some(Side::Lower);
        }
        if self.count_last(8, |v| v > 0.0) == 8 {
            s.we4 = Some(Side::Upper);
        } else if self.count_last(8, |v| v < 0.0) == 8 {
            s.we4 = Some(Side::Lower);
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and the per-key chart
// ---------------------------------------------------------------------------------------------

/// EWMA parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwmaSpec {
    /// Smoothing constant λ in (0, 1] (default 0.2).
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Width of the limits in EWMA standard deviations, L > 0 (default 3).
    #[serde(default = "default_l")]
    pub l: f64,
}

/// CUSUM parameters, in sigma units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CusumSpec {
    /// Reference value k >= 0 (default 0.5: tuned to a 1-sigma shift).
    #[serde(default = "default_k")]
    pub k: f64,
    /// Decision interval h > 0 (default 5).
    #[serde(default = "default_h")]
    pub h: f64,
}

fn default_lambda() -> f64 {
    0.2
}
fn default_l() -> f64 {
    3.0
}
fn default_k() -> f64 {
    0.5
}
fn default_h() -> f64 {
    5.0
}
fn default_baseline() -> usize {
    20
}
fn default_rules() -> Vec<Rule> {
    vec![Rule::We1, Rule::We2, Rule::We3, Rule::We4]
}

impl Default for EwmaSpec {
    fn default() -> Self {
        Self {
            lambda: default_lambda(),
            l: default_l(),
        }
    }
}

impl Default for CusumSpec {
    fn default() -> Self {
        Self {
            k: default_k(),
            h: default_h(),
        }
    }
}

/// Configuration of one SPC chart (applied per key).
///
/// The EWMA chart runs when `ewma` is set or `rules` lists `ewma` (then with default
/// parameters); likewise for CUSUM. `rules` selects the Western Electric rules that raise alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpcSpec {
    /// Known centre (phase II). Estimated from the baseline when absent.
    #[serde(default)]
    pub target: Option<f64>,
    /// Known process sigma (phase II). Estimated as `MRbar / 1.128` when absent.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Number of leading records used to estimate what is not given (default 20). Ignored
    /// when both `target` and `sigma` are given.
    #[serde(default = "default_baseline")]
    pub baseline: usize,
    /// Rules that raise alarms (default `we1`..`we4`).
    #[serde(default = "default_rules")]
    pub rules: Vec<Rule>,
    /// EWMA chart parameters.
    #[serde(default)]
    pub ewma: Option<EwmaSpec>,
    /// CUSUM parameters.
    #[serde(default)]
    pub cusum: Option<CusumSpec>,
}

impl Default for SpcSpec {
    fn default() -> Self {
        Self {
            target: None,
            sigma: None,
            baseline: default_baseline(),
            rules: default_rules(),
            ewma: None,
            cusum: None,
        }
    }
}

impl SpcSpec {
    fn ewma_params(&self) -> Option<EwmaSpec> {
        self.ewma
            .or_else(|| self.rules.contains(&Rule::Ewma).then(EwmaSpec::default))
    }

    fn cusum_params(&self) -> Option<CusumSpec> {
        self.cusum
            .or_else(|| self.rules.contains(&Rule::Cusum).then(CusumSpec::default))
    }

    /// Check every parameter; the error names the parameter and the fix.
    pub fn validate(&self) -> Result<(), ParamError> {
        if let Some(t) = self.target {
            check_finite("target", t)?;
        }
        if let Some(s) = self.sigma {
            if !(s.is_finite() && s > 0.0) {
                return Err(ParamError::new(
                    "sigma",
                    format!("must be a finite number > 0, got {s}"),
                ));
            }
        }
        let needed = match (self.target, self.sigma) {
            (Some(_), Some(_)) => 0,
            (None, Some(_)) => 1,
            (_, None) => 2,
        };
        if self.baseline < needed {
            return Err(ParamError::new(
                "baseline",
                format!(
                    "must be at least {needed} to estimate {} (got {}); give `target` and \
                     `sigma` or lengthen the baseline",
                    if self.sigma.is_none() {
                        "sigma from moving ranges"
                    } else {
                        "the centre"
                    },
                    self.baseline
                ),
            ));
        }
        if let Some(e) = self.ewma_params() {
            EwmaChart::new(e.lambda, e.l, 0.0, 1.0).map_err(|err| {
                ParamError::new(
                    if err.param == "lambda" {
                        "ewma.lambda"
                    } else {
                        "ewma.l"
                    },
                    err.problem,
                )
            })?;
        }
        if let Some(c) = self.cusum_params() {
            Cusum::new(c.k, c.h, 0.0, 1.0).map_err(|err| {
                ParamError::new(
                    if err.param == "k" {
                        "cusum.k"
                    } else {
                        "cusum.h"
                    },
                    err.problem,
                )
            })?;
        }
        let any_we = self.rules.iter().any(|r| r.index() < 4);
        if !any_we && self.ewma_params().is_none() && self.cusum_params().is_none() {
            return Err(ParamError::new(
                "rules",
                "is empty and neither `ewma` nor `cusum` is set, so the chart could never \
                 alarm; list at least one rule",
            ));
        }
        Ok(())
    }
}

/// Centre and sigma once known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Frozen {
    centre: f64,
    sigma: f64,
}

/// A per-key SPC chart over a measurement stream (see the module docs for the life cycle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spc {
    spec: SpcSpec,
    /// Which of we1..we4 raise alarms.
    we_on: [bool; 4],
    baseline: MovingRange,
    frozen: Option<Frozen>,
    we: WesternElectric,
    ewma: Option<EwmaChart>,
    cusum: Option<Cusum>,
}

impl Spc {
    /// A chart for `spec` (validated). With `target` and `sigma` both given it is in phase II
    /// at once; otherwise it first collects `baseline` records.
    pub fn new(spec: &SpcSpec) -> Result<Spc, ParamError> {
        spec.validate()?;
        let mut we_on = [false; 4];
        for r in &spec.rules {
            if let Some(slot) = we_on.get_mut(r.index()) {
                *slot = true;
            }
        }
        let mut spc = Spc {
            spec: spec.clone(),
            we_on,
            baseline: MovingRange::new(),
            frozen: None,
            we: WesternElectric::new(),
            ewma: None,
            cusum: None,
        };
        if let (Some(c), Some(s)) = (spec.target, spec.sigma) {
            spc.freeze(c, s);
        }
        Ok(spc)
    }

    fn freeze(&mut self, centre: f64, sigma: f64) {
        self.frozen = Some(Frozen { centre, sigma });
        // Parameters were validated in `new`, and centre/sigma are finite with sigma >= 0.
        self.ewma = self
            .spec
            .ewma_params()
            .and_then(|e| EwmaChart::new(e.lambda, e.l, centre, sigma).ok());
        self.cusum = self
            .spec
            .cusum_params()
            .and_then(|c| Cusum::new(c.k, c.h, centre, sigma).ok());
    }

    /// The centre line (None while the baseline is being collected).
    pub fn centre(&self) -> Option<f64> {
        self.frozen.map(|f| f.centre)
    }

    /// The process sigma (None while the baseline is being collected).
    pub fn sigma(&self) -> Option<f64> {
        self.frozen.map(|f| f.sigma)
    }

    /// The frozen 3-sigma individuals / moving-range limits (None during the baseline).
    pub fn individuals(&self) -> Option<IndividualsChart> {
        self.frozen
            .map(|f| IndividualsChart::from_sigma(f.centre, f.sigma))
    }

    /// The configuration this chart runs.
    pub fn spec(&self) -> &SpcSpec {
        &self.spec
    }

    /// Chart one measurement and return the alarms it raises. Non-finite values are ignored;
    /// baseline records raise nothing.
    pub fn update(&mut self, x: f64) -> Alarms {
        let mut alarms = Alarms::default();
        if !x.is_finite() {
            return alarms;
        }
        let Some(f) = self.frozen else {
            self.baseline.push(x);
            if self.baseline.count() >= self.spec.baseline as u64 {
                let centre = self.spec.target.or(self.baseline.mean());
                let sigma = self.spec.sigma.or(self.baseline.sigma());
                if let (Some(c), Some(s)) = (centre, sigma) {
                    self.freeze(c, s);
                }
            }
            return alarms;
        };

        let d = standardise(x, f.centre, f.sigma);
        let we = self.we.update(d);
        let lines = [3.0, 2.0, 1.0, 0.0];
        for (i, rule) in [Rule::We1, Rule::We2, Rule::We3, Rule::We4]
            .into_iter()
            .enumerate()
        {
            if let (true, Some(side)) = (self.we_on[i], we.get(rule)) {
                let offset = lines[i] * f.sigma;
                let limit = match side {
                    Side::Upper => f.centre + offset,
                    Side::Lower => f.centre - offset,
                };
                alarms.push(Alarm {
                    rule,
                    statistic: x,
                    limit,
                });
            }
        }
        if let Some(ewma) = &mut self.ewma {
            let (z, lcl, ucl, signal) = ewma.update_std(d);
            if let Some(side) = signal {
                let limit = if side == Side::Upper { ucl } else { lcl };
                alarms.push(Alarm {
                    rule: Rule::Ewma,
                    statistic: z,
                    limit,
                });
            }
        }
        if let Some(cusum) = &mut self.cusum {
            let h = cusum.decision_interval();
            let (p, m, signal) = cusum.update_std(d);
            match signal {
                Some(Side::Upper) => alarms.push(Alarm {
                    rule: Rule::Cusum,
                    statistic: p,
                    limit: h,
                }),
                Some(Side::Lower) => alarms.push(Alarm {
                    rule: Rule::Cusum,
                    statistic: -m,
                    limit: -h,
                }),
                None => {}
            }
        }
        alarms
    }
}
