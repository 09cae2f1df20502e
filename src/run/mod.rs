//! Drivers and command implementations that sit between the CLI and the pure core.

pub mod daemon;
pub mod gen;
pub mod grr;
pub mod produce;
pub mod report;
