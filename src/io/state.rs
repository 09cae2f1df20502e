//! Checkpoint bytes of one key's state: versioned JSON (changelog values). The processor hands
//! out and takes typed state; only this file knows its byte format.
//!
//! JSON because it is inspectable with any Kafka tool; serde_json's `float_roundtrip` makes
//! every f64 come back bit-for-bit, so a restored processor emits exactly what an uninterrupted
//! one would have. The envelope `{"v": 2, "state": ...}` lets a later version refuse or migrate
//! old snapshots instead of misreading them.

use serde::{Deserialize, Serialize};

use crate::pipeline::KeyCore;

/// The version written by this build. 2: fitter state is plain JSON numbers (1 wrote its floats
/// as decimal strings). 3: the predictive strategy's measurement state (gate, tool, residual
/// chart, compensation) lives in `control`; a version-2 snapshot would restore without it.
pub const STATE_VERSION: u32 = 3;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u32,
    state: &'a KeyCore,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    v: u32,
    state: KeyCore,
}

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state snapshot is not valid: {0} (was it written by another program or a newer deadband?)"
    )]
    Decode(#[from] serde_json::Error),
    #[error("state snapshot has version {found}, this build reads version {STATE_VERSION}; replay the input from the start or run the matching deadband version")]
    Version { found: u32 },
}

pub fn encode(core: &KeyCore) -> Vec<u8> {
    serde_json::to_vec(&EnvelopeOut {
        v: STATE_VERSION,
        state: core,
    })
    .expect("key state serialises to JSON")
}

pub fn decode(bytes: &[u8]) -> Result<KeyCore, StateError> {
    let env: EnvelopeIn = serde_json::from_slice(bytes)?;
    if env.v != STATE_VERSION {
        return Err(StateError::Version { found: env.v });
    }
    Ok(env.state)
}
