//! Criterion benchmark of the Processor on in-memory bars: the per-record cost of the whole chain
//! (validate, key lookup, ATR, fit, trend, book) without any file IO.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deadband::config::parse;
use deadband::pipeline::Processor;
use deadband::record::{Bar, Payload, Record};
use deadband::run::gen::{GenOptions, MarketGen};

fn replay(c: &mut Criterion) {
    let rows: Vec<_> = MarketGen::new(&GenOptions::new(8, 12_500, 1))
        .unwrap()
        .collect();
    let src = std::fs::read_to_string("config/market-atr.toml").unwrap();
    let cfg = parse(&src, Path::new("config/market-atr.toml")).unwrap();
    let mut g = c.benchmark_group("processor");
    g.throughput(Throughput::Elements(rows.len() as u64));
    for (name, pc) in [
        ("sm_rls_atr_regimes", cfg.processor.clone()),
        ("l2_baseline", cfg.baseline()),
    ] {
        let pc = Arc::new(pc);
        g.bench_function(name, |b| {
            let mut out = Vec::with_capacity(64);
            b.iter(|| {
                let mut p = Processor::new(pc.clone()).unwrap();
                for r in &rows {
                    out.clear();
                    let bar = Bar {
                        open: r.open,
                        high: r.high,
                        low: r.low,
                        close: r.close,
                        volume: Some(r.volume),
                        true_trend: None,
                    };
                    let rec = Record {
                        key: &r.key,
                        ts: r.ts,
                        payload: Payload::Bar(bar),
                    };
                    let _ = black_box(p.process(&rec, &mut out));
                }
                p.counters().ok
            })
        });
    }
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
