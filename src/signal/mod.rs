//! Decisions from a fit — pure: trend direction, positions and costs, tool compensation,
//! performance, and active statistics against benchmarks.

pub mod active;
pub mod book;
pub mod compensate;
pub mod perf;
pub mod trend;
