//! The only place that knows file formats and brokers.

pub mod codec;
pub mod csv;
pub mod kafka;
pub mod parquet;
pub mod study_csv;
