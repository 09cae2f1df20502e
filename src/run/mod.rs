//! Drivers and command implementations that sit between the CLI and the pure core.

pub mod backtest;
pub mod collect;
pub mod daemon;
pub mod demo;
pub mod gen;
pub mod grr;
pub mod merge;
pub mod produce;
pub mod report;
pub mod shard;
pub mod summary;
pub mod table;
pub mod tune;
