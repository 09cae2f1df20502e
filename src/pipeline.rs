//! The Processor: keyed state and the per-record chain validate -> scale -> fit -> signal -> events.
//!
//! Synchronous and deterministic; it knows nothing of where records come from. Live (Kafka) and
//! replay (Parquet) drivers call the same [`Processor::process`], which is why they emit the same
//! events. For a key already seen, processing allocates nothing unless it emits an event
//! (events are pushed into the caller's reused `Vec`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::{Event, EventBody, FitRow, Invalid, Payload, Record, RecordKind, Ts};
use crate::signal::book::{Book, BookSpec, BookStep};
use crate::signal::compensate::{CompSpec, Compensator, Spec, Trigger};
use crate::signal::trend::{Trend, TrendSpec};
use crate::zone::fit::{FitSpec, Fitter};
use crate::zone::scale::{RegimeSet, Scale, ScaleInput, ScaleSpec};
use crate::zone::spc::{Rule, Spc, SpcSpec};
use crate::zone::ParamError;

/// The time axis of the fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "time")]
pub enum TimeAxis {
    /// t = the record's index within its key (bars, parts). The default: markets have gaps
    /// (nights, weekends) that a trend in record time ignores, and a part count is the natural
    /// clock of tool wear.
    #[default]
    Index,
    /// t = (ts − first ts of the key) / unit_s seconds.
    Seconds { unit_s: f64 },
}

/// What to do with a record older than its key's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutOfOrder {
    #[default]
    Drop,
    Accept,
}

/// Everything one key's chain needs; resolved from the config (defaults + `[keys."NAME"]`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyParams {
    pub scale: ScaleSpec,
    pub regimes: Option<RegimeSet>,
    /// eps never falls below this.
    pub floor: f64,
    /// When set, eps >= cost_fraction × close: moves smaller than the round-trip cost of a trade
    /// (spread + commission + slippage, as a fraction of price) are not worth acting on.
    pub cost_fraction: Option<f64>,
    pub time: TimeAxis,
    pub fit: FitSpec,
    pub trend: TrendSpec,
    pub book: BookSpec,
    pub comp: CompSpec,
    pub spc: Option<SpcSpec>,
}

impl KeyParams {
    /// Builds every component once, so that configuration errors surface before any record.
    pub fn check(&self) -> Result<(), ParamError> {
        KeyCore::new(self).map(|_| ())
    }
}

/// Processor-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    pub record: RecordKind,
    pub out_of_order: OutOfOrder,
    pub defaults: Arc<KeyParams>,
    /// Per-key settings by exact key name.
    pub overrides: HashMap<String, Arc<KeyParams>>,
    /// Per-key settings by glob pattern (`*/bore`, `SYM0?`), tried in order when no exact name
    /// matches.
    pub patterns: Vec<(KeyPattern, Arc<KeyParams>)>,
}

impl ProcessorConfig {
    /// The parameters of a key: its exact override, else the first matching pattern, else the
    /// defaults. Called once per key, when the key first appears.
    pub fn params_for(&self, key: &str) -> &Arc<KeyParams> {
        if let Some(p) = self.overrides.get(key) {
            return p;
        }
        self.patterns
            .iter()
            .find(|(pat, _)| pat.0.matches(key))
            .map_or(&self.defaults, |(_, p)| p)
    }

    /// Every distinct parameter set with the name it is configured under (`None` = defaults).
    fn all_params(&self) -> impl Iterator<Item = (Option<&str>, &Arc<KeyParams>)> {
        std::iter::once((None, &self.defaults))
            .chain(self.overrides.iter().map(|(k, p)| (Some(k.as_str()), p)))
            .chain(self.patterns.iter().map(|(k, p)| (Some(k.0.as_str()), p)))
    }
}

/// A `[keys."PATTERN"]` name containing glob characters (`*`, `?`, `[`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPattern(pub glob::Pattern);

impl KeyPattern {
    /// `Some` when `name` is a valid pattern with at least one glob character.
    pub fn parse(name: &str) -> Option<Result<KeyPattern, String>> {
        if !name.contains(['*', '?', '[']) {
            return None;
        }
        Some(
            glob::Pattern::new(name)
                .map(KeyPattern)
                .map_err(|e| e.to_string()),
        )
    }
}

/// A parameter out of range, in the defaults (`key = None`) or in one key's override.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{source}", key.as_ref().map(|k| format!("[keys.\"{k}\"]: ")).unwrap_or_default())]
pub struct KeyParamError {
    pub key: Option<String>,
    pub source: ParamError,
}

/// Why a record was not processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Invalid(Invalid),
    /// Older than the key's last record (and `out_of_order = "drop"`).
    OutOfOrder,
    /// Same key and timestamp as the key's last record.
    Duplicate,
}

impl Reject {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reject::Invalid(i) => i.as_str(),
            Reject::OutOfOrder => "out_of_order",
            Reject::Duplicate => "duplicate",
        }
    }
}

/// What an accepted record did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accepted {
    pub seq: u64,
    pub fit: FitRow,
    /// Bars: the book's step on this record.
    pub book: BookStep,
    /// Measurements with known limits: whether the value seen is outside [lsl, usl].
    pub out_of_tolerance: Option<bool>,
}

/// Counts of records by result and events by kind.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub ok: u64,
    pub invalid: [u64; Invalid::ALL.len()],
    pub out_of_order: u64,
    pub duplicate: u64,
    pub trend: u64,
    pub rebalance: u64,
    pub tool_compensation: u64,
    pub spc_alarm: u64,
}

impl Counters {
    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().sum()
    }

    fn count_event(&mut self, body: &EventBody) {
        match body {
            EventBody::Trend { .. } => self.trend += 1,
            EventBody::Rebalance { .. } => self.rebalance += 1,
            EventBody::ToolCompensation { .. } => self.tool_compensation += 1,
            EventBody::SpcAlarm { .. } => self.spc_alarm += 1,
        }
    }
}

/// The serialisable state of one key (see `state.rs` for the snapshot encoding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCore {
    pub seq: u64,
    pub last_ts: Option<Ts>,
    pub first_ts: Option<Ts>,
    pub scale: Scale,
    pub fitter: Fitter,
    pub trend: Trend,
    pub book: Book,
    pub comp: Compensator,
    pub spc: Option<Spc>,
    /// Measurements: records outside [lsl, usl] as seen by this processor.
    pub out_of_tolerance: u64,
    /// SPC rules that fired on the previous record (bit = rule index); alarms are edge-triggered.
    #[serde(default)]
    pub spc_firing: u8,
}

impl KeyCore {
    fn new(p: &KeyParams) -> Result<Self, ParamError> {
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
            spc: p.spc.as_ref().map(Spc::new).transpose()?,
            out_of_tolerance: 0,
            spc_firing: 0,
        })
    }
}

struct KeyState {
    name: Arc<str>,
    params: Arc<KeyParams>,
    core: KeyCore,
}

/// Keyed state plus the per-record chain.
pub struct Processor {
    cfg: Arc<ProcessorConfig>,
    keys: HashMap<Box<str>, KeyState>,
    counters: Counters,
}

impl Processor {
    /// Checks every key's parameters up front (defaults and each override).
    pub fn new(cfg: Arc<ProcessorConfig>) -> Result<Self, KeyParamError> {
        for (key, p) in cfg.all_params() {
            p.check().map_err(|source| KeyParamError {
                key: key.map(str::to_string),
                source,
            })?;
        }
        Ok(Self {
            cfg,
            keys: HashMap::new(),
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> &ProcessorConfig {
        &self.cfg
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The state of every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &KeyCore)> {
        self.keys.values().map(|s| (&*s.name, &s.core))
    }

    pub fn key_state(&self, key: &str) -> Option<&KeyCore> {
        self.keys.get(key).map(|s| &s.core)
    }

    /// The key's state, created from its parameters on first sight (keys appear lazily).
    fn state_mut(&mut self, key: &str) -> Result<&mut KeyState, ParamError> {
        if !self.keys.contains_key(key) {
            let params = self.cfg.params_for(key).clone();
            let core = KeyCore::new(&params)?;
            self.keys.insert(
                key.into(),
                KeyState {
                    name: Arc::from(key),
                    params,
                    core,
                },
            );
        }
        Ok(self.keys.get_mut(key).expect("inserted above"))
    }

    /// Processes one record: pushes its events to `out` and says what happened.
    pub fn process(&mut self, rec: &Record<'_>, out: &mut Vec<Event>) -> Result<Accepted, Reject> {
        let result = self.process_inner(rec, out);
        match &result {
            Ok(_) => self.counters.ok += 1,
            Err(Reject::Invalid(i)) => self.counters.invalid[i.index()] += 1,
            Err(Reject::OutOfOrder) => self.counters.out_of_order += 1,
            Err(Reject::Duplicate) => self.counters.duplicate += 1,
        }
        result
    }

    fn process_inner(
        &mut self,
        rec: &Record<'_>,
        out: &mut Vec<Event>,
    ) -> Result<Accepted, Reject> {
        if rec.kind() != self.cfg.record {
            return Err(Reject::Invalid(Invalid::WrongKind));
        }
        rec.validate().map_err(Reject::Invalid)?;
        let accept_late = self.cfg.out_of_order == OutOfOrder::Accept;
        // Parameters were checked in `new`, so creating a key cannot fail.
        let state = self
            .state_mut(rec.key)
            .expect("key parameters validated at start");
        let core = &mut state.core;
        if let Some(last) = core.last_ts {
            if rec.ts == last {
                return Err(Reject::Duplicate);
            }
            if rec.ts < last && !accept_late {
                return Err(Reject::OutOfOrder);
            }
        }
        let first_len = out.len();
        let accepted = step(state, rec, out);
        for e in &out[first_len..] {
            self.counters.count_event(&e.body);
        }
        Ok(accepted)
    }
}

/// The chain for one accepted record of one key.
#[inline]
fn step(state: &mut KeyState, rec: &Record<'_>, out: &mut Vec<Event>) -> Accepted {
    let p = &*state.params;
    let core = &mut state.core;
    let seq = core.seq;
    core.seq += 1;
    core.last_ts = Some(core.last_ts.map_or(rec.ts, |l| l.max(rec.ts)));
    let first_ts = *core.first_ts.get_or_insert(rec.ts);
    let t = match p.time {
        TimeAxis::Index => seq as f64,
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
    if let (Some(c), Payload::Bar(b)) = (p.cost_fraction, rec.payload) {
        eps = eps.max(c * b.close);
    }
    let fit = core.fitter.update(t, y, eps);
    let emit = |out: &mut Vec<Event>, body: EventBody| {
        out.push(Event {
            key: state.name.clone(),
            seq,
            ts: rec.ts,
            body,
        })
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
            core.comp.tick();
            let alarms = core
                .spc
                .as_mut()
                .map(|s| s.update(m.value))
                .unwrap_or_default();
            let mut beyond_3_sigma = false;
            let mut firing = 0u8;
            for a in alarms.iter() {
                beyond_3_sigma |= a.rule == Rule::We1;
                let bit = 1u8 << (a.rule as u8);
                firing |= bit;
                // Edge-triggered: a rule that keeps firing on consecutive parts raises one
                // alarm, not one per part.
                if core.spc_firing & bit != 0 {
                    continue;
                }
                emit(
                    out,
                    EventBody::SpcAlarm {
                        rule: a.rule,
                        statistic: a.statistic,
                        limit: a.limit,
                    },
                );
            }
            core.spc_firing = firing;
            if let Some(spec) = Spec::resolve(&p.comp, m.nominal, m.lsl, m.usl) {
                let oot = spec.out_of_tolerance(m.value);
                core.out_of_tolerance += u64::from(oot);
                out_of_tolerance = Some(oot);
                let warm = seq >= p.trend.warmup;
                let comp = match p.comp.trigger {
                    Trigger::Predictive if warm => core
                        .comp
                        .predictive(&p.comp, &spec, fit.level, fit.slope, eps, None, false),
                    Trigger::Shewhart if beyond_3_sigma => {
                        core.comp.shewhart(&p.comp, &spec, m.value)
                    }
                    _ => None,
                };
                if let Some(c) = comp {
                    // The offset moves every later part: move the fit with it.
                    core.fitter.shift_level(c.offset);
                    emit(
                        out,
                        EventBody::ToolCompensation {
                            offset: c.offset,
                            predicted: c.predicted,
                            zone: eps,
                        },
                    );
                }
            }
        }
    }

    if seq >= p.trend.warmup && core.trend.update(&p.trend, fit.slope, eps) {
        emit(
            out,
            EventBody::Trend {
                direction: core.trend.direction,
                strength: core.trend.strength,
                level: fit.level,
                slope: fit.slope,
                zone: eps,
            },
        );
    }
    if let Payload::Bar(_) = rec.payload {
        core.book
            .decide(p.book.target(core.trend.direction, core.trend.strength));
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
        book,
        out_of_tolerance,
    }
}

/// Snapshot/restore of one key's state (encoding in `state.rs`).
impl Processor {
    pub fn snapshot(&self, key: &str) -> Option<Vec<u8>> {
        self.keys.get(key).map(|s| crate::state::encode(&s.core))
    }

    /// Replaces (or creates) a key's state from a snapshot.
    pub fn restore(&mut self, key: &str, bytes: &[u8]) -> Result<(), crate::state::StateError> {
        let core = crate::state::decode(bytes)?;
        let params = self.cfg.params_for(key).clone();
        self.keys.insert(
            key.into(),
            KeyState {
                name: Arc::from(key),
                params,
                core,
            },
        );
        Ok(())
    }

    /// Forgets a key (e.g. its partition was revoked).
    pub fn remove(&mut self, key: &str) -> bool {
        self.keys.remove(key).is_some()
    }
}
