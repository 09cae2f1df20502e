//! Issue 10, target 4: a million keys × 3 bars through one processor — the rate, and the heap a
//! key costs.
//!
//! - `million_keys/process_3_bars` times `Processor::process` over the rows of `gen market --keys
//!   1000000 --rows 3` (in memory, `benches/sm-rls-atr.toml`), a fresh processor per iteration
//!   (dropping it is not timed): most rows create a key, so this is the cost of a key's life.
//! - Before timing, the same run is measured by a counting global allocator: the heap held per
//!   key once every key exists (live bytes / keys) and the allocations per key. It prints one
//!   line `million_keys: ... bytes_per_key=N ...`, which `scripts/bench.sh` reads.
//!   (The allocator's own per-block overhead is not counted; RSS is a little higher.)
//! - `million_keys/checkpoint` encodes every key's snapshot as the daemon's checkpoint does for
//!   the changelog (`io::state::encode` under the key's parameter fingerprint), and
//!   `million_keys/restore` decodes them into a fresh processor as a restore does. The broker
//!   round trip is not in them: that is tansu's or Kafka's speed, not ours. One line
//!   `million_keys: snapshot_bytes=N` gives the changelog's size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::mem::size_of;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deadband::config::parse;
use deadband::io::state::{self, Fingerprints};
use deadband::pipeline::{ControlSlot, KeyCore, Processor};
use deadband::record::{Bar, Payload, Record};
use deadband::run::gen::{GenOptions, MarketGen};
use deadband::signal::book::Book;
use deadband::signal::compensate::Compensator;
use deadband::signal::control::Control;
use deadband::signal::trend::Trend;
use deadband::zone::fit::Fitter;
use deadband::zone::scale::Scale;
use deadband::zone::spc::Spc;

/// The system allocator, counting live bytes and allocations.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BARS: usize = 3;

/// A million keys under `cargo bench`; a few under `cargo test --all-targets`, which runs each
/// bench once as a check (without `--bench`).
fn key_count() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        1_000
    }
}

/// One generated bar, compact (the key is an index into the key names).
struct Row {
    key: u32,
    ts: i64,
    bar: Bar,
}

fn run(p: &mut Processor, names: &[Arc<str>], rows: &[Row]) {
    let mut out = Vec::with_capacity(16);
    for r in rows {
        out.clear();
        let rec = Record {
            key: &names[r.key as usize],
            ts: r.ts,
            payload: Payload::Bar(r.bar),
        };
        black_box(p.process(&rec, &mut out)).ok();
    }
}

fn million_keys(c: &mut Criterion) {
    let keys = key_count();
    let mut names = Vec::with_capacity(keys);
    let rows: Vec<Row> = MarketGen::new(&GenOptions::new(keys, BARS, 1))
        .unwrap()
        .enumerate()
        .map(|(i, r)| {
            // Rows come ordered by ts then key: the first `keys` rows name every key once.
            if i < keys {
                names.push(r.key.clone());
            } else {
                assert!(Arc::ptr_eq(&names[i % keys], &r.key), "rows in key order");
            }
            Row {
                key: (i % keys) as u32,
                ts: r.ts,
                bar: Bar {
                    open: r.open,
                    high: r.high,
                    low: r.low,
                    close: r.close,
                    volume: Some(r.volume),
                    true_trend: Some(r.true_trend),
                },
            }
        })
        .collect();
    let path = Path::new("benches/sm-rls-atr.toml");
    let cfg = Arc::new(
        parse(&std::fs::read_to_string(path).unwrap(), path)
            .unwrap()
            .processor,
    );

    // Memory: live heap and allocations caused by holding every key.
    let (live0, allocs0) = (LIVE.load(Relaxed), ALLOCS.load(Relaxed));
    let mut p = Processor::new(cfg.clone()).unwrap();
    run(&mut p, &names, &rows);
    let (live1, allocs1) = (LIVE.load(Relaxed), ALLOCS.load(Relaxed));
    assert_eq!(p.key_count(), keys);
    assert_eq!(p.counters().ok, (keys * BARS) as u64);
    drop(p);
    println!(
        "million_keys: keys={keys} bytes_per_key={} allocs_per_key={:.2} size_of_KeyCore={}",
        (live1 - live0) / keys,
        (allocs1 - allocs0) as f64 / keys as f64,
        size_of::<KeyCore>(),
    );
    println!(
        "million_keys: KeyCore parts in bytes: scale={} fitter={} trend={} book={} comp={} \
         spc={} (a chart, boxed: {}) control={} (the measurement loop, boxed on first use: {})",
        size_of::<Scale>(),
        size_of::<Fitter>(),
        size_of::<Trend>(),
        size_of::<Book>(),
        size_of::<Compensator>(),
        size_of::<Option<Box<Spc>>>(),
        size_of::<Spc>(),
        size_of::<ControlSlot>(),
        size_of::<Control>(),
    );

    let mut g = c.benchmark_group("million_keys");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("process_3_bars", |b| {
        b.iter_with_large_drop(|| {
            let mut p = Processor::new(cfg.clone()).unwrap();
            run(&mut p, &names, &rows);
            p
        })
    });

    // Checkpoint and restore of every key (the snapshots, without the broker).
    let mut full = Processor::new(cfg.clone()).unwrap();
    run(&mut full, &names, &rows);
    let checkpoint = |p: &Processor| {
        let mut fp = Fingerprints::new(cfg.clone());
        p.keys()
            .map(|(k, core)| (k.to_string(), state::encode(core, fp.of(k))))
            .collect::<Vec<_>>()
    };
    let snapshots = checkpoint(&full);
    println!(
        "million_keys: snapshot_bytes={} ({} keys)",
        snapshots
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>(),
        snapshots.len()
    );
    g.throughput(Throughput::Elements(keys as u64));
    g.bench_function("checkpoint", |b| {
        b.iter_with_large_drop(|| checkpoint(&full))
    });
    g.bench_function("restore", |b| {
        b.iter_with_large_drop(|| {
            let mut p = Processor::new(cfg.clone()).unwrap();
            let mut fp = Fingerprints::new(cfg.clone());
            for (k, bytes) in &snapshots {
                let core = state::decode(bytes, fp.of(k)).expect("own snapshot");
                p.restore(k, core);
            }
            assert_eq!(p.key_count(), keys);
            p
        })
    });
    g.finish();
}

criterion_group!(benches, million_keys);
criterion_main!(benches);
