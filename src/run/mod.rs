//! Drivers and command implementations that sit between the CLI and the pure core.

pub mod gen;
pub mod grr;
pub mod report;
