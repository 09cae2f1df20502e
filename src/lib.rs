//! deadband: online dead-zone trend fitting for market and measurement streams.
//!
//! Layering (see `design.md`): `zone` (the math) and `signal` (decisions) are pure and never
//! import `io` or `run`; drivers in `run` call the pure core, never the other way round.

pub mod io;
pub mod run;
pub mod zone;
