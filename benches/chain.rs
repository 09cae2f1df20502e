//! Issue 10, target 1: the processor's whole chain per bar against its cheapest part, measured in
//! one run so that their ratio holds on a shared, noisy machine.
//!
//! - `chain/atr_only`: one Wilder ATR(14) update (the floor of any bar's work);
//! - `chain/sm_rls_fit_only`: one `sm_rls` order-1 update with the ATR's zone (the fit alone);
//! - `chain/sm_rls_atr`: one bar of an existing key through `Processor::process` with
//!   `benches/sm-rls-atr.toml` — validate, key lookup, ATR, fit, trend, book, events.
//! - `chain/sm_rls_atr_hinted`: the same through `Processor::process_hinted`, the key's slot
//!   remembered in a `KeyHint` — what the backtest's lanes do (their source numbers the keys),
//!   so the chain without the key lookup.
//!
//! Every iteration takes the next bar of the same generated series (8 keys interleaved, as a
//! replay sees them), so data-dependent branches come in realistic proportions. The bars' times
//! are renumbered to keep increasing, so the processor never rejects a bar when the series
//! wraps around. `scripts/bench.sh` prints `sm_rls_atr / atr_only`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use deadband::config::parse;
use deadband::pipeline::{KeyHint, Processor};
use deadband::record::{Bar, Payload, Record};
use deadband::run::gen::{GenOptions, MarketGen};
use deadband::zone::fit::{Fitter, Method};
use deadband::zone::scale::{Atr, AtrSeed};

/// Bars in the cycled series (a power of two: the index is masked).
const N: usize = 1 << 14;
const KEYS: usize = 8;

fn chain(c: &mut Criterion) {
    let rows: Vec<_> = MarketGen::new(&GenOptions::new(KEYS, N / KEYS, 1))
        .unwrap()
        .collect();
    let path = Path::new("benches/sm-rls-atr.toml");
    let cfg = parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    let mut g = c.benchmark_group("chain");

    g.bench_function("atr_only", |b| {
        let mut atr = Atr::new(14, AtrSeed::Talib).unwrap();
        let mut i = 0;
        b.iter(|| {
            let r = &rows[i & (N - 1)];
            i += 1;
            black_box(atr.update(black_box(r.high), black_box(r.low), black_box(r.close)))
        })
    });

    g.bench_function("sm_rls_fit_only", |b| {
        // The spec the processor runs (sm_rls, order 1, forgetting 0.98).
        let spec = cfg.processor.defaults.fit;
        assert_eq!((spec.method, spec.order), (Method::SmRls, 1));
        let mut fit = Fitter::new(spec).unwrap();
        let mut atr = Atr::new(14, AtrSeed::Talib).unwrap();
        // The zone each bar would see (precomputed: only the fit is timed).
        let eps: Vec<f64> = rows
            .iter()
            .map(|r| atr.update(r.high, r.low, r.close).unwrap_or(1.0))
            .collect();
        let mut t = 0.0;
        let mut i = 0;
        b.iter(|| {
            let k = i & (N - 1);
            i += 1;
            t += 1.0;
            black_box(fit.update(t, black_box(rows[k].close), eps[k]))
        })
    });

    // Each row's key as a number (the hint's index), found before timing.
    let mut names: Vec<&str> = Vec::new();
    let key_of: Vec<usize> = rows
        .iter()
        .map(|r| match names.iter().position(|k| *k == &*r.key) {
            Some(k) => k,
            None => {
                names.push(&r.key);
                names.len() - 1
            }
        })
        .collect();
    for hinted in [false, true] {
        let name = if hinted {
            "sm_rls_atr_hinted"
        } else {
            "sm_rls_atr"
        };
        g.bench_function(name, |b| {
            let mut p = Processor::new(Arc::new(cfg.processor.clone())).unwrap();
            let mut hints = vec![KeyHint::default(); names.len()];
            let mut out = Vec::with_capacity(16);
            let mut i = 0usize;
            let mut step = |p: &mut Processor, out: &mut Vec<_>, i: usize| {
                let r = &rows[i & (N - 1)];
                out.clear();
                let rec = Record {
                    key: &r.key,
                    // Strictly increasing across wrap-arounds, the same spacing as the data.
                    ts: r.ts + (i / N) as i64 * (rows[N - 1].ts - rows[0].ts + 1),
                    payload: Payload::Bar(Bar {
                        open: r.open,
                        high: r.high,
                        low: r.low,
                        close: r.close,
                        volume: Some(r.volume),
                        true_trend: None,
                    }),
                };
                if hinted {
                    let hint = &mut hints[key_of[i & (N - 1)]];
                    black_box(p.process_hinted(&rec, hint, out)).ok();
                } else {
                    black_box(p.process(&rec, out)).ok();
                }
            };
            // Every key exists before timing starts (the target is for existing keys).
            while i < N {
                step(&mut p, &mut out, i);
                i += 1;
            }
            b.iter(|| {
                step(&mut p, &mut out, i);
                i += 1;
            });
            assert_eq!(p.counters().ok, i as u64, "every bar accepted");
        });
    }
    g.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
