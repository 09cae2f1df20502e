//! The only place that knows file formats and brokers.

pub mod study_csv;
