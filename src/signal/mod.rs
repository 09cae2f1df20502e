//! Decisions from a fit — pure: trend direction (one scale or two), positions and costs, tool
//! compensation with its outlier gate and residual chart, performance (and its per-period sums,
//! which shards merge), active statistics against benchmarks, and scores against generated
//! ground truth.

pub mod active;
pub mod book;
pub mod chart;
pub mod compensate;
pub mod control;
pub mod gate;
pub mod perf;
pub mod periods;
pub mod scales;
pub mod trend;
pub mod truth;
