//! deadband: online dead-zone trend fitting for market and measurement streams.
//!
//! Layering (see `design.md`): `zone` (the math) and `signal` (decisions) are pure and never
//! import `io` or `run`; `pipeline` composes them per key; drivers in `run` call the pipeline,
//! never the other way round.

pub mod config;
pub mod io;
pub mod metrics;
pub mod pipeline;
pub mod record;
pub mod run;
pub mod signal;
pub mod state;
pub mod zone;
