//! The IO layer: file formats (Parquet, CSV, JSON), the Kafka clients, checkpoint bytes and the
//! HTTP metrics server. The core (`zone`, `signal`, `pipeline`) never imports it.

pub mod codec;
pub mod csv;
pub mod http;
pub mod kafka;
pub mod parquet;
pub mod replay;
pub mod staging;
pub mod state;
pub mod study_csv;
