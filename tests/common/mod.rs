//! Helpers shared by integration tests (each test file includes what it needs with `mod common;`).

pub mod broker;
pub mod http;
