//! deadband: online dead-zone trend fitting for market and measurement streams.
//!
//! Layering (ARCHITECTURE.md says more): `zone` (the math) and `signal` (decisions) are pure;
//! `pipeline` composes them per key; `flow` is the seam every driver runs (source -> processor
//! -> sink, checkpoints); `io` implements sources, sinks and checkpoints for files and Kafka;
//! `run` composes them into commands. Nothing imports upwards: the core never sees `io` or `run`.

pub mod config;
pub mod error;
pub mod flow;
pub mod io;
pub mod metrics;
pub mod pipeline;
pub mod record;
pub mod run;
pub mod signal;
pub mod zone;
