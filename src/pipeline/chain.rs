//! The per-record chain of one key: scale -> fit -> decisions (book or compensation + SPC) ->
//! trend -> events. Pure: no IO, no allocation for an existing key unless an event is emitted.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::record::{Event, EventBody, FitRow, Measurement, Payload, Record, Ts};
use crate::signal::book::{Book, BookStep};
use crate::signal::compensate::{Compensation, Compensator, Spec, Trigger};
use crate::signal::control::{Control, Part};
use crate::signal::scales::{self, TrendScale};
use crate::signal::trend::Trend;
use crate::zone::fit::{FitCounts, FitSpec, Fitter, Step};
use crate::zone::scale::{Scale, ScaleInput, ScaleSpec, Zone};
use crate::zone::spc::{Rule, Spc, SpcSpec};
use crate::zone::ParamError;

use super::params::{KeyParams, TimeAxis};

/// What an accepted record did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accepted {
    pub seq: u64,
    pub fit: FitRow,
    /// `y` minus the fit's prediction before this record (the residual the zone judges).
    pub residual: f64,
    /// Bars: the book's step on this record.
    pub book: BookStep,
    /// Measurements with known limits: whether the value seen is outside [lsl, usl].
    pub out_of_tolerance: Option<bool>,
}

/// The serialisable state of one key: what a checkpoint stores and a restore puts back
/// (the bytes are made in `io::state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCore {
    pub seq: u64,
    pub last_ts: Option<Ts>,
    pub first_ts: Option<Ts>,
    pub scale: Scale,
    pub fitter: Fitter,
    pub trend: Trend,
    pub book: Book,
    /// The Shewhart baseline's compensation state (the strategy's is in `control`).
    pub comp: Compensator,
    /// The Shewhart baseline's chart of the deviation from nominal (the strategy charts the
    /// residual of its fit, in `control`). Boxed: most keys have none, and a chart is large.
    pub spc: Option<Box<Spc>>,
    /// Measurements: records outside [lsl, usl] as seen by this processor.
    pub out_of_tolerance: u64,
    /// Measurements with ground truth: records whose true value (after the offsets applied)
    /// is outside [lsl, usl].
    #[serde(default)]
    pub truly_out_of_tolerance: u64,
    /// SPC rules that fired on the previous record (bit = rule index); alarms are edge-triggered.
    #[serde(default)]
    pub spc_firing: u8,
    /// The predictive strategy's measurement loop: gate, tool changes, residual chart,
    /// compensation (held only by keys that run it, see [`ControlSlot`]).
    #[serde(default)]
    pub control: ControlSlot,
    /// With `[fit.macro]`: the slow fit, its trend, and the combined (traded) trend; `trend`
    /// above is then the tactical one. Boxed: keys without a macro scale pay one pointer, not
    /// ~330 bytes (issue 10: memory per key). Serialises as the state itself.
    #[serde(default)]
    pub macro_scale: Option<Box<MacroState>>,
}

/// The macro scale of one key (see `signal::scales`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MacroState {
    pub fitter: Fitter,
    pub trend: Trend,
    pub combined: Trend,
}

/// A key's [`Control`], allocated only when something changes it: bars and the Shewhart baseline
/// never do, so their keys carry one pointer instead of the whole loop's state (issue 10: memory
/// per key). Reading an empty slot sees `Control::default()`; the first mutable access allocates
/// it. It serialises exactly as the `Control` it reads as, so snapshots are unchanged, and a
/// restored default `Control` leaves the slot empty.
#[derive(Clone, Default)]
pub struct ControlSlot(Option<Box<Control>>);

static NO_CONTROL: LazyLock<Control> = LazyLock::new(Control::default);

impl ControlSlot {
    fn new(c: Control) -> Self {
        if c == *NO_CONTROL {
            Self(None)
        } else {
            Self(Some(Box::new(c)))
        }
    }
}

impl Deref for ControlSlot {
    type Target = Control;

    fn deref(&self) -> &Control {
        self.0.as_deref().unwrap_or(&NO_CONTROL)
    }
}

impl DerefMut for ControlSlot {
    fn deref_mut(&mut self) -> &mut Control {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for ControlSlot {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for ControlSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for ControlSlot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ControlSlot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Control::deserialize(d).map(Self::new)
    }
}

impl KeyCore {
    pub(super) fn new(p: &KeyParams) -> Result<Self, ParamError> {
        p.trend.validate()?;
        p.book.validate()?;
        p.comp.validate()?;
        if let Some(c) = p.cost_fraction {
            if !(c.is_finite() && c >= 0.0) {
                return Err(ParamError::new(
                    "cost_fraction",
                    format!("must be >= 0, got {c}"),
                ));
            }
        }
        if let TimeAxis::Seconds { unit_s } = p.time {
            if !(unit_s.is_finite() && unit_s > 0.0) {
                return Err(ParamError::new(
                    "time_unit_s",
                    format!("must be > 0, got {unit_s}"),
                ));
            }
        }
        Ok(Self {
            seq: 0,
            last_ts: None,
            first_ts: None,
            scale: Scale::new(&p.scale, p.regimes.as_ref(), p.floor)?,
            fitter: Fitter::new(p.fit)?,
            trend: Trend::default(),
            book: Book::default(),
            comp: Compensator::default(),
            spc: match p.comp.trigger {
                // Deviations from nominal are charted, so the centre is 0 unless configured.
                Trigger::Shewhart => p
                    .spc
                    .as_ref()
                    .map(|s| {
                        Spc::new(&SpcSpec {
                            target: s.target.or(Some(0.0)),
                            ..s.clone()
                        })
                        .map(Box::new)
                    })
                    .transpose()?,
                Trigger::Predictive => None,
            },
            out_of_tolerance: 0,
            truly_out_of_tolerance: 0,
            spc_firing: 0,
            control: match p.comp.trigger {
                Trigger::Predictive => ControlSlot::new(Control::new(p.spc.as_ref())?),
                Trigger::Shewhart => ControlSlot::default(),
            },
            macro_scale: match &p.macro_scale {
                None => None,
                Some(m) => {
                    m.validate()?;
                    let spec = FitSpec {
                        forgetting: m.forgetting,
                        ..p.fit
                    };
                    Some(Box::new(MacroState {
                        fitter: Fitter::new(spec).map_err(|e| ParamError {
                            param: "macro.forgetting",
                            ..e
                        })?,
                        trend: Trend::default(),
                        combined: Trend::default(),
                    }))
                }
            },
        })
    }

    /// Fit counts over every tool of the key.
    pub fn fit_counts(&self) -> FitCounts {
        self.control.counts(&self.fitter)
    }
}

/// The chain for one accepted record of one key.
#[inline]
pub(super) fn step(
    name: &Arc<str>,
    p: &KeyParams,
    core: &mut KeyCore,
    rec: &Record<'_>,
    out: &mut Vec<Event>,
) -> Accepted {
    let seq = core.seq;
    core.seq += 1;
    core.last_ts = Some(core.last_ts.map_or(rec.ts, |l| l.max(rec.ts)));
    let first_ts = *core.first_ts.get_or_insert(rec.ts);
    let t = match p.time {
        // Through i64: the same value below 2^63 records, and x86-64 converts a signed integer
        // in one instruction (an unsigned one takes five).
        TimeAxis::Index => seq as i64 as f64,
        TimeAxis::Seconds { unit_s } => (rec.ts - first_ts) as f64 * 1e-9 / unit_s,
    };
    let y = rec.y();
    let input = match rec.payload {
        Payload::Bar(b) => ScaleInput::bar(b.high, b.low, b.close),
        Payload::Measurement(m) => match (m.lsl.or(p.comp.lsl), m.usl.or(p.comp.usl)) {
            (Some(l), Some(u)) => ScaleInput::value(m.value).with_tolerance(u - l),
            _ => ScaleInput::value(m.value),
        },
    };
    let zone = core.scale.update(input);
    let mut eps = zone.eps;
    if let (Some(c), Payload::Bar(b)) = (p.cost_fraction, &rec.payload) {
        eps = eps.max(c * b.close);
    }
    let emit = |out: &mut Vec<Event>, body: EventBody| {
        out.push(Event {
            key: name.clone(),
            seq,
            ts: rec.ts,
            body,
        })
    };
    let fit = match rec.payload {
        Payload::Measurement(m) if p.comp.trigger == Trigger::Predictive => {
            predictive(p, core, &m, t, eps, &zone, &mut |b| emit(out, b))
        }
        _ => core.fitter.update(t, y, eps),
    };

    let mut book = BookStep::default();
    let mut out_of_tolerance = None;
    match rec.payload {
        Payload::Bar(b) => {
            book = core.book.on_close(&p.book, b.close);
            if let Some(tr) = book.trade {
                emit(
                    out,
                    EventBody::Rebalance {
                        position_from: tr.from,
                        position_to: tr.to,
                        turnover: tr.turnover,
                        cost: tr.cost,
                    },
                );
            }
        }
        Payload::Measurement(m) => {
            let spec = Spec::resolve(&p.comp, m.nominal, m.lsl, m.usl);
            if let Some(s) = spec {
                let oot = s.out_of_tolerance(m.value);
                core.out_of_tolerance += u64::from(oot);
                core.truly_out_of_tolerance +=
                    u64::from(m.true_value.is_some_and(|v| s.out_of_tolerance(v)));
                out_of_tolerance = Some(oot);
            }
            if p.comp.trigger == Trigger::Shewhart {
                if let Some(c) = shewhart(p, core, &m, spec, &mut |b| emit(out, b)) {
                    // The offset moves every later part: move the fit with it.
                    core.fitter.shift_level(c.offset);
                    emit(out, compensation(c, eps));
                }
            }
        }
    }

    let warm = seq >= p.trend.warmup;
    let tactical_changed = warm && core.trend.update(&p.trend, fit.slope, eps);
    // The traded trend: the tactical one, or with `[fit.macro]` the two scales combined.
    let (traded, changed) = match (&p.macro_scale, &mut core.macro_scale) {
        (Some(spec), Some(m)) => {
            let wide = eps * spec.multiplier;
            let slow = m.fitter.update(t, y, wide);
            let macro_changed = warm && m.trend.update(&spec.trend, slow.slope, wide);
            let c = scales::combine(spec.combine, core.trend, m.trend, m.combined, macro_changed);
            m.combined = c.trend;
            (c.trend, c.changed)
        }
        _ => (core.trend, tactical_changed.then_some(TrendScale::Tactical)),
    };
    if let Some(scale) = changed {
        emit(
            out,
            EventBody::Trend {
                direction: traded.direction,
                strength: traded.strength,
                level: fit.level,
                slope: fit.slope,
                zone: eps,
                scale: p.macro_scale.is_some().then_some(scale),
            },
        );
    }
    if let Payload::Bar(_) = rec.payload {
        core.book
            .decide(p.book.target(traded.direction, traded.strength));
    }

    Accepted {
        seq,
        fit: FitRow {
            ts: rec.ts,
            y,
            level: fit.level,
            slope: fit.slope,
            zone: eps,
            inside: fit.inside,
            updated: fit.updated,
            regime: zone.regime,
        },
        residual: fit.residual,
        book,
        out_of_tolerance,
    }
}

fn compensation(c: Compensation, eps: f64) -> EventBody {
    EventBody::ToolCompensation {
        offset: c.offset,
        predicted: c.predicted,
        zone: eps,
    }
}

/// The strategy on one measurement: the loop of [`Control`] (tool change, gate, fit, residual
/// chart, compensation); returns the fit's step.
fn predictive(
    p: &KeyParams,
    core: &mut KeyCore,
    m: &Measurement,
    t: f64,
    eps: f64,
    zone: &Zone,
    emit: &mut dyn FnMut(EventBody),
) -> Step {
    let part = Part {
        t,
        y: m.value,
        eps,
        // A gauge study's sigma_GRR is the zone's raw scale.
        sigma: matches!(p.scale, ScaleSpec::Grr { .. }).then_some(zone.raw),
        tool: m.tool,
        spec: Spec::resolve(&p.comp, m.nominal, m.lsl, m.usl),
    };
    let o = core
        .control
        .part(&p.comp, &mut core.fitter, &part, p.trend.warmup);
    if let Some(tool) = o.tool_change {
        emit(EventBody::ToolChange { tool });
    }
    if let Some(a) = o.alarm {
        emit(EventBody::SpcAlarm {
            rule: a.rule,
            statistic: a.statistic,
            limit: a.limit,
        });
    }
    if let Some(c) = o.compensation {
        emit(compensation(c, eps));
    }
    o.fit
}

/// The Shewhart baseline on one measurement: an individuals chart of the deviation from nominal
/// (edge-triggered alarms per rule); a point beyond 3 sigma re-centres on nominal.
fn shewhart(
    p: &KeyParams,
    core: &mut KeyCore,
    m: &Measurement,
    spec: Option<Spec>,
    emit: &mut dyn FnMut(EventBody),
) -> Option<Compensation> {
    core.comp.tick();
    let x = m.value - spec.map_or(0.0, |s| s.nominal);
    let alarms = core.spc.as_mut().map(|s| s.update(x)).unwrap_or_default();
    let mut beyond_3_sigma = false;
    let mut firing = 0u8;
    for a in alarms.iter() {
        beyond_3_sigma |= a.rule == Rule::We1;
        let bit = 1u8 << (a.rule as u8);
        firing |= bit;
        // Edge-triggered: a rule that keeps firing on consecutive parts raises one alarm, not
        // one per part.
        if core.spc_firing & bit != 0 {
            continue;
        }
        emit(EventBody::SpcAlarm {
            rule: a.rule,
            statistic: a.statistic,
            limit: a.limit,
        });
    }
    core.spc_firing = firing;
    match (spec, beyond_3_sigma) {
        (Some(s), true) => core.comp.shewhart(&p.comp, &s, m.value),
        _ => None,
    }
}
