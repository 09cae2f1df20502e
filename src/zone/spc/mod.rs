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
//!
//! This file holds the per-key [`Spc`] chart, the rules and alarms it reports, and the
//! standardisation every chart shares; each chart and the configuration live in their own files.

mod cusum;
mod ewma;
mod individuals;
mod spec;
mod western_electric;

use serde::{Deserialize, Serialize};

use super::ParamError;

pub use cusum::{Cusum, CusumStep};
pub use ewma::{EwmaChart, EwmaStep};
pub use individuals::{IndividualsChart, MovingRange, D2, D4};
pub use spec::{CusumSpec, EwmaSpec, SpcSpec};
pub use western_electric::{WeSignal, WesternElectric};

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
