//! The Processor: keyed state plus the per-record chain validate -> scale -> fit -> signal -> events.
//!
//! Synchronous and deterministic; it knows nothing of where records come from nor how state is
//! stored. Every driver (the replay backtest, the Kafka daemon) calls the same
//! [`Processor::process`] through [`crate::flow`], which is why they emit the same events. For a
//! key already seen, processing allocates nothing unless it emits an event (events are pushed
//! into the caller's reused `Vec`).
//!
//! The processor remembers which keys an accepted record changed since the last
//! [`Processor::drain_changed`], so a checkpoint stores only those; it hands out and takes typed
//! state ([`KeyCore`]) — turning it into bytes is the IO layer's job (`io::state`).

mod chain;
mod params;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use chain::{Accepted, ControlSlot, KeyCore, MacroState};
pub use params::{KeyParamError, KeyParams, KeyPattern, OutOfOrder, ProcessorConfig, TimeAxis};

use crate::record::{Event, EventKind, Invalid, Record, Reject};
use crate::zone::ParamError;

/// Counts of records by result and events by kind.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub ok: u64,
    pub invalid: [u64; Invalid::ALL.len()],
    pub out_of_order: u64,
    pub duplicate: u64,
    /// Indexed by [`EventKind::index`].
    pub events: [u64; EventKind::ALL.len()],
}

impl Counters {
    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().sum()
    }

    /// Events emitted of one kind.
    pub fn events_of(&self, kind: EventKind) -> u64 {
        self.events[kind.index()]
    }

    /// Counts one record's result.
    pub fn count(&mut self, result: Result<(), Reject>) {
        match result {
            Ok(()) => self.ok += 1,
            Err(Reject::Invalid(i)) => self.invalid[i.index()] += 1,
            Err(Reject::OutOfOrder) => self.out_of_order += 1,
            Err(Reject::Duplicate) => self.duplicate += 1,
        }
    }
}

struct KeyState {
    name: Arc<str>,
    params: Arc<KeyParams>,
    core: KeyCore,
    /// Changed since the last `drain_changed` (listed in `Processor::changed`).
    changed: bool,
}

/// Where a key's state lives in one processor, remembered by a driver between records of that
/// key ([`Processor::process_hinted`]). The default is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyHint {
    slot: usize,
    /// The processor's generation when filled; 0 = never filled (generations start at 1).
    generation: u64,
}

/// A generation no processor has had (process-wide counter from 1).
fn fresh_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Keyed state plus the per-record chain.
///
/// Keys live in a dense `Vec` in first-seen order; a map from name to slot finds them. One
/// lookup per record (foldhash: a fast keyed hash, still seeded per process against collision
/// floods from untrusted Kafka keys), and the name's one allocation is shared by the map, the
/// state and every event.
pub struct Processor {
    cfg: Arc<ProcessorConfig>,
    index: foldhash::HashMap<Arc<str>, usize>,
    keys: Vec<KeyState>,
    /// Drawn from [`fresh_generation`] at creation and whenever a key's slot changes (`remove`):
    /// a [`KeyHint`] is trusted only with the generation it was filled under, so hints go stale
    /// on a removal and never fit another processor.
    generation: u64,
    /// Keys changed since the last `drain_changed`, each once, in first-change order.
    changed: Vec<Arc<str>>,
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
            index: Default::default(),
            keys: Vec::new(),
            generation: fresh_generation(),
            changed: Vec::new(),
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> &ProcessorConfig {
        &self.cfg
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a record that never reached [`Processor::process`] (it could not be decoded), so
    /// the counters cover every input record.
    pub fn count_undecodable(&mut self, reason: Invalid) {
        self.counters.count(Err(Reject::Invalid(reason)));
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The state of every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &KeyCore)> {
        self.keys.iter().map(|s| (&*s.name, &s.core))
    }

    pub fn key_state(&self, key: &str) -> Option<&KeyCore> {
        self.index.get(key).map(|&i| &self.keys[i].core)
    }

    /// The key's slot, the key created from its parameters on first sight (keys appear lazily).
    #[inline]
    fn slot(&mut self, key: &str) -> Result<usize, ParamError> {
        match self.index.get(key) {
            Some(&i) => Ok(i),
            None => self.create(key),
        }
    }

    #[cold]
    fn create(&mut self, key: &str) -> Result<usize, ParamError> {
        let params = self.cfg.params_for(key).clone();
        let core = KeyCore::new(&params)?;
        Ok(self.push(key, params, core))
    }

    /// Processes one record: pushes its events to `out` and says what happened.
    pub fn process(&mut self, rec: &Record<'_>, out: &mut Vec<Event>) -> Result<Accepted, Reject> {
        self.process_counted(rec, None, out)
    }

    /// [`Processor::process`] that remembers where the record's key lives in `hint`, so the next
    /// record of the same key skips the key lookup (with many keys the lookup's cache misses
    /// dominate). A hint belongs to one key: pass it only with that key's records (a driver
    /// keeps one per key it has numbered). A fresh `KeyHint::default()` is filled on first use;
    /// one made stale by [`Processor::remove`] is refilled. The results are those of `process`.
    pub fn process_hinted(
        &mut self,
        rec: &Record<'_>,
        hint: &mut KeyHint,
        out: &mut Vec<Event>,
    ) -> Result<Accepted, Reject> {
        self.process_counted(rec, Some(hint), out)
    }

    /// [`Processor::process_inner`], then the record's outcome and the events it emitted
    /// counted.
    #[inline]
    fn process_counted(
        &mut self,
        rec: &Record<'_>,
        hint: Option<&mut KeyHint>,
        out: &mut Vec<Event>,
    ) -> Result<Accepted, Reject> {
        let first = out.len();
        let result = self.process_inner(rec, hint, out);
        self.counters
            .count(result.as_ref().map(|_| ()).map_err(|r| *r));
        for e in &out[first..] {
            self.counters.events[e.body.kind().index()] += 1;
        }
        result
    }

    fn process_inner(
        &mut self,
        rec: &Record<'_>,
        hint: Option<&mut KeyHint>,
        out: &mut Vec<Event>,
    ) -> Result<Accepted, Reject> {
        if rec.kind() != self.cfg.record {
            return Err(Reject::Invalid(Invalid::WrongKind));
        }
        rec.validate().map_err(Reject::Invalid)?;
        let accept_late = self.cfg.out_of_order == OutOfOrder::Accept;
        // Parameters were checked in `new`, so creating a key cannot fail.
        let slot = match hint {
            Some(h) if h.generation == self.generation => {
                debug_assert_eq!(&*self.keys[h.slot].name, rec.key, "a hint of another key");
                h.slot
            }
            Some(h) => {
                let slot = self
                    .slot(rec.key)
                    .expect("key parameters validated at start");
                *h = KeyHint {
                    slot,
                    generation: self.generation,
                };
                slot
            }
            None => self
                .slot(rec.key)
                .expect("key parameters validated at start"),
        };
        let state = &mut self.keys[slot];
        if let Some(last) = state.core.last_ts {
            if rec.ts == last {
                return Err(Reject::Duplicate);
            }
            if rec.ts < last && !accept_late {
                return Err(Reject::OutOfOrder);
            }
        }
        if !state.changed {
            state.changed = true;
            self.changed.push(state.name.clone());
        }
        // The step comes last, so its ~140-byte answer is not held in a local while the
        // bookkeeping runs and then copied out (issue 10: −11 instructions per bar by callgrind);
        // the callers count the events it emitted.
        Ok(chain::step(
            &state.name,
            &state.params,
            &mut state.core,
            rec,
            out,
        ))
    }

    /// Hands every key changed since the last call to `f`, with its state, and forgets the
    /// changes. Stops at the first error (the keys not yet handed out stay changed).
    pub fn drain_changed<E>(
        &mut self,
        mut f: impl FnMut(&str, &KeyCore) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(name) = self.changed.last() {
            if let Some(&i) = self.index.get(&**name) {
                let s = &mut self.keys[i];
                f(name, &s.core)?;
                s.changed = false;
            }
            self.changed.pop();
        }
        Ok(())
    }

    /// How many keys changed since the last [`Processor::drain_changed`].
    pub fn changed_count(&self) -> usize {
        self.changed.len()
    }

    /// Replaces (or creates) a key's state, e.g. from a checkpoint.
    pub fn restore(&mut self, key: &str, core: KeyCore) {
        self.insert(key, core);
    }

    /// Puts `core` in the key's slot (a new slot for a new key); returns the slot.
    fn insert(&mut self, key: &str, core: KeyCore) -> usize {
        if let Some(&i) = self.index.get(key) {
            self.keys[i].core = core;
            return i;
        }
        let params = self.cfg.params_for(key).clone();
        self.push(key, params, core)
    }

    /// A new key's slot (the key is not indexed yet).
    fn push(&mut self, key: &str, params: Arc<KeyParams>, core: KeyCore) -> usize {
        let name: Arc<str> = Arc::from(key);
        let i = self.keys.len();
        self.keys.push(KeyState {
            name: name.clone(),
            params,
            core,
            changed: false,
        });
        self.index.insert(name, i);
        i
    }

    /// Forgets a key (e.g. its partition was revoked).
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(i) = self.index.remove(key) else {
            return false;
        };
        self.generation = fresh_generation();
        self.keys.swap_remove(i);
        if let Some(moved) = self.keys.get(i) {
            *self
                .index
                .get_mut(&*moved.name)
                .expect("every slot is indexed") = i;
        }
        true
    }
}
