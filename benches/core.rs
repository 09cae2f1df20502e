//! Criterion benchmarks of the per-record core: one ATR update, one well weight, one fitter update,
//! and the daemon's JSON decode of one bar (what each Kafka record costs before the core sees it).
//!
//! Each iteration feeds the next value of a precomputed series, so the numbers include the
//! data-dependent branches (inside/outside the zone) in realistic proportions.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use deadband::io::codec::{decode, encode_record};
use deadband::record::{Bar, Payload, Record, RecordKind};
use deadband::zone::fit::{FitSpec, Fitter, Method};
use deadband::zone::scale::{Atr, AtrSeed};
use deadband::zone::well::Well;

/// A deterministic random walk with noise (xorshift; no RNG crate needed for a bench input).
fn series(n: usize) -> Vec<(f64, f64, f64)> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut c = 100.0;
    (0..n)
        .map(|_| {
            c += next();
            let h = c + next().abs();
            let l = c - next().abs();
            (h, l, c)
        })
        .collect()
}

fn atr(c: &mut Criterion) {
    let data = series(4096);
    c.bench_function("atr14_update", |b| {
        let mut atr = Atr::new(14, AtrSeed::Talib).unwrap();
        let mut i = 0;
        b.iter(|| {
            let (h, l, cl) = data[i & 4095];
            i += 1;
            black_box(atr.update(black_box(h), black_box(l), black_box(cl)))
        })
    });
}

fn wells(c: &mut Criterion) {
    let wells = [
        Well::Quadratic,
        Well::DeadZone,
        Well::SoftDeadZone { softness: 0.1 },
        Well::SquareWell {
            depth: 1.0,
            sharpness: 0.1,
        },
        Well::Gaussian { scale: 1.0 },
        Well::Reciprocal { scale: 1.0 },
        Well::Log { scale: 1.0 },
        Well::Huber { threshold: 1.345 },
        Well::Hybrid { knee: 3.0 },
    ];
    let rs: Vec<f64> = series(1024)
        .iter()
        .map(|&(h, l, _)| (h - l) * 3.0 - 1.0)
        .collect();
    let mut g = c.benchmark_group("well_weight");
    for w in wells {
        g.bench_function(w.name(), |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box(w.weight(black_box(rs[i & 1023]), 1.0))
            })
        });
    }
    g.finish();
}

fn fitters(c: &mut Criterion) {
    let data = series(4096);
    let mut g = c.benchmark_group("fit_update");
    for method in [Method::Rls, Method::SmRls] {
        for order in [1u8, 2] {
            let name = format!("{method:?}_order{order}").to_lowercase();
            g.bench_function(name, |b| {
                let spec = FitSpec {
                    method,
                    order,
                    ..FitSpec::default()
                };
                let mut f = Fitter::new(spec).unwrap();
                let mut t = 0.0;
                let mut i = 0;
                b.iter(|| {
                    let y = data[i & 4095].2;
                    i += 1;
                    t += 1.0;
                    black_box(f.update(t, black_box(y), 0.5))
                })
            });
        }
    }
    g.finish();
}

/// Bars as `deadband produce` writes them (integer-ns `ts`), each price passed through `price`.
fn bars_as_json(price: impl Fn(f64) -> f64) -> Vec<Vec<u8>> {
    series(1024)
        .iter()
        .enumerate()
        .map(|(i, &(h, l, cl))| {
            let key = format!("SYM{:04}", i % 64);
            let (high, low) = (price(h), price(l));
            let rec = Record {
                key: &key,
                ts: 1_700_000_000_000_000_000 + i as i64 * 60_000_000_000,
                payload: Payload::Bar(Bar {
                    open: price((high + low) / 2.0),
                    high,
                    low,
                    close: price(cl),
                    volume: Some(1000.0 + i as f64),
                    true_trend: None,
                }),
            };
            let mut buf = Vec::new();
            encode_record(&rec, &mut buf);
            buf
        })
        .collect()
}

/// JSON bars decoded: full-precision prices (`json_decode_bar`, most with 17 significant
/// digits), and the same prices on a 0.0001 tick as exchange feeds and gauges write them
/// (`json_decode_bar_ticks`: few digits, the scanner's exact float path, see `io::codec::scan`).
fn json_decode(c: &mut Criterion) {
    let tick = |v: f64| (v * 1e4).round() / 1e4;
    for (name, msgs) in [
        ("json_decode_bar", bars_as_json(|v| v)),
        ("json_decode_bar_ticks", bars_as_json(tick)),
    ] {
        assert!(msgs
            .iter()
            .all(|m| decode(m, RecordKind::Bar).is_ok_and(|w| w.record().validate().is_ok())));
        c.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box(decode(black_box(&msgs[i & 1023]), RecordKind::Bar).is_ok())
            })
        });
    }
}

criterion_group!(benches, atr, wells, fitters, json_decode);
criterion_main!(benches);
