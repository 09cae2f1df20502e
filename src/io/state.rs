//! Checkpoint bytes of one key's state: versioned JSON (changelog values). The processor hands
//! out and takes typed state; only this file knows its byte format.
//!
//! JSON because it is inspectable with any Kafka tool; serde_json's `float_roundtrip` makes
//! every f64 come back bit-for-bit, so a restored processor emits exactly what an uninterrupted
//! one would have. The envelope `{"v": 4, "p": "<params fingerprint>", "state": ...}` lets a later version refuse or migrate
//! old snapshots instead of misreading them.

use serde::{Deserialize, Serialize};

use crate::pipeline::{KeyCore, KeyParams};

/// The version written by this build. 2: fitter state is plain JSON numbers (1 wrote its floats
/// as decimal strings). 3: the predictive strategy's measurement state (gate, tool, residual
/// chart, compensation) lives in `control`; a version-2 snapshot would restore without it.
/// 4: the envelope carries the fingerprint of the key's parameters (`p`).
pub const STATE_VERSION: u32 = 4;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u32,
    p: &'a str,
    state: &'a KeyCore,
}

/// The version alone: a snapshot of another version is refused by its number, not by whatever
/// field its layout happens to break first.
#[derive(Deserialize)]
struct Version {
    v: u32,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    v: u32,
    p: String,
    state: KeyCore,
}

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state snapshot is not valid: {0} (was it written by another program or a newer deadband?)"
    )]
    Decode(#[from] serde_json::Error),
    #[error("state snapshot has version {found}, this build reads version {STATE_VERSION}; replay the input from the start (a new [input] group and [output] changelog_topic) or run the matching deadband version")]
    Version { found: u32 },
    #[error("the key's parameters changed since its state was saved (fingerprint {saved}, now {now}): a restored fit, zone and chart would silently keep the old settings. Restore the previous configuration, or rebuild the state from the input under the new one (a new [input] group and [output] changelog_topic)")]
    ParamsChanged { saved: String, now: String },
}

/// A stable fingerprint of one key's resolved parameters: the first 16 hex digits of the
/// BLAKE3 hash of their `Debug` text (field names and shortest round-trip floats, so any
/// change of a setting changes it). Computed once per parameter set, not per record.
pub fn fingerprint(params: &KeyParams) -> String {
    let text = format!("{params:?}");
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

/// The snapshot of one key's state under the parameters fingerprinted `params`.
pub fn encode(core: &KeyCore, params: &str) -> Vec<u8> {
    serde_json::to_vec(&EnvelopeOut {
        v: STATE_VERSION,
        p: params,
        state: core,
    })
    .expect("key state serialises to JSON")
}

/// The state in `bytes`, if it was saved by this snapshot version under the parameters
/// fingerprinted `params`.
///
/// One parse in the common case (a restore of a million keys parses a million snapshots); the
/// version alone is read only when the whole envelope does not parse, so that a snapshot of
/// another layout is still refused by its version number.
pub fn decode(bytes: &[u8], params: &str) -> Result<KeyCore, StateError> {
    let env: EnvelopeIn = match serde_json::from_slice(bytes) {
        Ok(env) => env,
        Err(e) => {
            return Err(match serde_json::from_slice::<Version>(bytes) {
                Ok(Version { v }) if v != STATE_VERSION => StateError::Version { found: v },
                _ => StateError::Decode(e),
            })
        }
    };
    if env.v != STATE_VERSION {
        return Err(StateError::Version { found: env.v });
    }
    if env.p != params {
        return Err(StateError::ParamsChanged {
            saved: env.p,
            now: params.to_string(),
        });
    }
    Ok(env.state)
}

/// The changelog key of a partition's position marker (see `Checkpoint::store_position`): the
/// empty key, which no record can have (an empty key is refused as `empty_key`).
pub const POSITION_KEY: &str = "";

#[derive(Serialize, Deserialize)]
struct PositionEnvelope {
    v: u32,
    position: u64,
}

/// The marker saying the partition's stored states reflect every record before `next`.
pub fn encode_position(next: u64) -> Vec<u8> {
    serde_json::to_vec(&PositionEnvelope {
        v: STATE_VERSION,
        position: next,
    })
    .expect("a position serialises to JSON")
}

/// The position in a marker written by [`encode_position`].
pub fn decode_position(bytes: &[u8]) -> Result<u64, StateError> {
    let Version { v } = serde_json::from_slice(bytes)?;
    if v != STATE_VERSION {
        return Err(StateError::Version { found: v });
    }
    let env: PositionEnvelope = serde_json::from_slice(bytes)?;
    Ok(env.position)
}

/// The fingerprints of a processor configuration's parameter sets, each computed once (a key's
/// set is found as the processor finds it: exact override, pattern, defaults).
pub struct Fingerprints {
    cfg: std::sync::Arc<crate::pipeline::ProcessorConfig>,
    /// By the address of the shared parameter set, which `cfg` keeps alive.
    by_set: std::collections::HashMap<usize, String>,
}

impl Fingerprints {
    pub fn new(cfg: std::sync::Arc<crate::pipeline::ProcessorConfig>) -> Self {
        Self {
            cfg,
            by_set: std::collections::HashMap::new(),
        }
    }

    /// The fingerprint of `key`'s parameters.
    pub fn of(&mut self, key: &str) -> &str {
        let params = self.cfg.params_for(key);
        let addr = std::sync::Arc::as_ptr(params) as usize;
        self.by_set
            .entry(addr)
            .or_insert_with(|| fingerprint(params))
    }
}
