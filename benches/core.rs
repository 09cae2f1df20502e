//! Criterion benchmarks of the per-record core: one ATR update, one well weight, one fitter update.

use criterion::{criterion_group, criterion_main, Criterion};

fn placeholder(_c: &mut Criterion) {}

criterion_group!(benches, placeholder);
criterion_main!(benches);
