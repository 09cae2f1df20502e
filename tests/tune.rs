//! `deadband tune`: time folds, dotted-path settings and a small deterministic walk-forward run.

use std::path::Path;

use deadband::run::gen::{write_market, GenOptions};
use deadband::run::tune::folds::{folds, FoldSpec};
use deadband::run::tune::{space, TuneOptions};
use proptest::prelude::*;

proptest! {
    /// Folds are in time order, each train window ends where its test begins, tests do not
    /// overlap, and everything lies inside the span.
    #[test]
    fn folds_are_ordered_and_disjoint(
        n in 1usize..8,
        train in 0.05f64..0.8,
        anchored: bool,
        start in -1_000_000i64..1_000_000,
        len in 10_000i64..10_000_000,
    ) {
        let test = (1.0 - train) / n as f64;
        let spec = FoldSpec { folds: n, train, test, anchored };
        let fs = folds(&spec, start, start + len).unwrap();
        prop_assert_eq!(fs.len(), n);
        for (i, f) in fs.iter().enumerate() {
            prop_assert!(f.train.start >= start);
            prop_assert!(f.train.start < f.train.end);
            prop_assert_eq!(f.train.end, f.test.start);
            prop_assert!(f.test.start < f.test.end);
            prop_assert!(f.test.end <= start + len + 1);
            if anchored {
                prop_assert_eq!(f.train.start, start);
            }
            if i > 0 {
                prop_assert!(fs[i - 1].test.end <= f.test.start);
                prop_assert!(fs[i - 1].train.start <= f.train.start);
            }
        }
        prop_assert_eq!(fs[n - 1].test.end, start + len + 1);
    }
}

#[test]
fn folds_refuse_a_layout_longer_than_the_span() {
    let spec = FoldSpec {
        folds: 4,
        train: 0.5,
        test: 0.2,
        anchored: false,
    };
    assert!(folds(&spec, 0, 1000).unwrap_err().contains("exceeds"));
}

const CONFIG: &str = include_str!("../config/market-atr.toml");

#[test]
fn dotted_paths_set_the_right_values() {
    let mut doc: toml::Value = toml::from_str(CONFIG).unwrap();
    space::set(&mut doc, "zone.scale.multiplier", toml::Value::Float(2.5)).unwrap();
    space::set(&mut doc, "signal.enter", toml::Value::Float(1.5)).unwrap();
    space::set(&mut doc, "zone.regimes.turbulent.multiplier", 2.0.into()).unwrap();
    space::set(&mut doc, "keys.\"SYM000\".signal.band", 0.4.into()).unwrap();
    space::set(&mut doc, "fit.forgetting", 0.95.into()).unwrap();
    assert_eq!(doc["zone"]["scale"]["multiplier"].as_float(), Some(2.5));
    assert_eq!(doc["signal"]["enter"].as_float(), Some(1.5));
    assert_eq!(
        doc["zone"]["regimes"][2]["multiplier"].as_float(),
        Some(2.0)
    );
    assert_eq!(
        doc["zone"]["regimes"][1]["multiplier"].as_float(),
        Some(1.0)
    );
    assert_eq!(
        doc["keys"]["SYM000"]["signal"]["band"].as_float(),
        Some(0.4)
    );
    assert_eq!(
        doc["keys"]["SYM000"]["signal"]["cost_bps"].as_float(),
        Some(5.0)
    );
    assert_eq!(doc["fit"]["forgetting"].as_float(), Some(0.95));
    // The result is still a valid configuration with the values in place.
    let cfg =
        deadband::config::parse(&toml::to_string(&doc).unwrap(), Path::new("t.toml")).unwrap();
    assert_eq!(cfg.processor.defaults.fit.forgetting, 0.95);
}

#[test]
fn unknown_names_are_refused_with_the_valid_ones() {
    let doc: toml::Value = toml::from_str(CONFIG).unwrap();
    for ok in [
        "zone.scale.multiplier",
        "signal.enter",
        "signal.band",
        "fit.forgetting",
        "compensation.guard",
        "zone.regimes.calm.multiplier",
        "keys.\"SYM000\".signal.enter",
    ] {
        space::check_name(&doc, ok).unwrap();
    }
    for bad in [
        "signal.entr",
        "zone.multiplier",
        "zone.regimes.stormy.multiplier",
        "input.path",
        "keys.\"SYM000\".signal.nope",
    ] {
        let e = space::check_name(&doc, bad).unwrap_err();
        assert!(e.contains(bad), "{e}");
        assert!(
            e.contains("zone.scale.multiplier") && e.contains("signal.enter"),
            "{e}"
        );
    }
}

#[test]
fn grid_and_random_search_are_deterministic() {
    let sp = space::default_space();
    let g = space::grid(&sp);
    assert_eq!(g.len(), 25);
    let a = space::random(&sp, 7, 42);
    assert_eq!(a, space::random(&sp, 7, 42));
    assert_eq!(a.len(), 7);
    assert!(a.iter().all(|c| g.contains(c)));
    assert_ne!(a, space::random(&sp, 7, 43));
}

const SMALL_TUNE: &str = "[tune]\nfolds = 3\ntrain = 0.4\nsearch = \"random\"\nsamples = 6\n\n[tune.space]\n\"zone.scale.multiplier\" = [0.5, 1.0, 2.0]\n\"signal.enter\" = [0.5, 1.0, 2.0]\n";

fn tune(dir: &Path, data: &Path, out: &str) -> (String, deadband::run::tune::TuneSummary) {
    tune_with(dir, data, out, SMALL_TUNE)
}

/// Runs `deadband tune` on `data` with market-atr.toml and the given `[tune]` tables.
fn tune_with(
    dir: &Path,
    data: &Path,
    out: &str,
    tune: &str,
) -> (String, deadband::run::tune::TuneSummary) {
    let cfg = dir.join(format!("{out}.toml"));
    std::fs::write(&cfg, format!("{CONFIG}\n{tune}")).unwrap();
    let opts = TuneOptions {
        config: cfg,
        input: Some(data.display().to_string()),
        out: dir.join(out),
        seed: Some(7),
        progress: false,
    };
    let s = deadband::run::tune::run(&opts).unwrap();
    let json = std::fs::read_to_string(dir.join(out).join("summary.json")).unwrap();
    (json, s)
}

#[test]
fn a_small_run_is_deterministic_and_writes_a_valid_tuned_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m.parquet");
    write_market(&GenOptions::new(4, 1500, 3), &data).unwrap();
    let (a, s) = tune(dir.path(), &data, "a");
    let (b, _) = tune(dir.path(), &data, "b");
    assert_eq!(a, b, "same seed, same summary");
    assert_eq!(s.folds.len(), 3);
    assert_eq!(s.candidates, 6);
    for f in &s.folds {
        assert!(f.window.train.end <= f.window.test.start);
        assert!(f.strategy.test.periods > 0);
    }
    let tuned_path = dir.path().join("a").join("tuned.toml");
    let tuned = std::fs::read_to_string(&tuned_path).unwrap();
    assert!(tuned.contains("fold 2"), "{tuned}");
    let cfg = deadband::config::parse(&tuned, &tuned_path).unwrap();
    let chosen = &s.folds[2].strategy.params;
    let enter = chosen["signal.enter"].as_float().unwrap();
    assert_eq!(cfg.processor.defaults.trend.enter, enter);
}

/// `max_turnover_ratio` caps the strategy's train turnover at that fraction of the tuned
/// baseline's in the same window (the baseline itself is free), and the cap is what changes
/// the choice: without it the same grid picks a strategy trading above it on some fold.
#[test]
fn the_relative_turnover_cap_holds_on_every_train_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m.parquet");
    write_market(&GenOptions::new(4, 3000, 2), &data).unwrap();
    let grid = "folds = 3\ntrain = 0.4\n\n[tune.space]\n\"zone.scale.multiplier\" = [0.5, 1.0, 3.0, 8.0]\n\"signal.enter\" = [0.5, 1.0, 3.0]\n\"signal.horizon\" = [10, 100]\n";
    let (_, free) = tune_with(dir.path(), &data, "free", &format!("[tune]\n{grid}"));
    let (_, capped) = tune_with(
        dir.path(),
        &data,
        "capped",
        &format!("[tune]\nmax_turnover_ratio = 0.4\n{grid}"),
    );
    let over = |f: &deadband::run::tune::FoldResult| {
        f.strategy.train.turnover > 0.4 * f.baseline.train.turnover
    };
    for (a, b) in free.folds.iter().zip(&capped.folds) {
        assert_eq!(
            a.baseline.params, b.baseline.params,
            "the baseline is never capped"
        );
        assert!(
            !over(b),
            "fold {}: strategy train turnover {} above 0.4 x baseline {}",
            b.fold,
            b.strategy.train.turnover,
            b.baseline.train.turnover
        );
    }
    assert!(
        free.folds.iter().any(over),
        "the uncapped choice should trade above the cap somewhere, or the test shows nothing"
    );
}

/// Issue 8's market target, measured on ten generated markets (`gen market --keys 4 --rows
/// 5000 --seed 1..=10`) with `config/market-tune-budget.toml`: walk-forward, out of sample only,
/// the L2 baseline tuned freely on the same folds and grid. Asserted with margins below what
/// was measured (README "Does the zone pay? Markets"): turnover at least 60 % below the
/// baseline's on every seed (measured 66.5–96.8 %), the summed net return above the baseline's
/// (measured 2.35 vs 1.43), and the full target (that turnover, at least the baseline's net
/// return, IR > 0) on at least 7 of the 10 seeds (measured 8: seed 3 ties, seed 9 loses).
#[test]
fn with_a_turnover_budget_the_zone_trades_far_less_than_tuned_l2_out_of_sample() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/market-tune-budget.toml"
    );
    let (mut met, mut net_zone, mut net_l2) = (0, 0.0, 0.0);
    for seed in 1..=10u64 {
        let data = dir.path().join(format!("m{seed}.parquet"));
        write_market(&GenOptions::new(4, 5000, seed), &data).unwrap();
        let opts = TuneOptions {
            config: config.into(),
            input: Some(data.display().to_string()),
            out: dir.path().join(format!("t{seed}")),
            seed: None,
            progress: false,
        };
        let oos = deadband::run::tune::run(&opts).unwrap().out_of_sample;
        let reduction = oos.turnover_reduction.expect("the baseline trades");
        let (zone, l2) = (oos.strategy.net_return, oos.baseline.net_return);
        eprintln!(
            "seed {seed}: net {zone:.4} vs {l2:.4}, turnover reduction {:.1} %, IR {:.4}",
            100.0 * reduction,
            oos.information_ratio
        );
        assert!(
            reduction >= 0.6,
            "seed {seed}: turnover reduction {reduction}"
        );
        net_zone += zone;
        net_l2 += l2;
        if zone >= l2 && oos.information_ratio > 0.0 {
            met += 1;
        }
    }
    assert!(
        net_zone > net_l2,
        "summed net return {net_zone} vs L2 {net_l2}"
    );
    assert!(met >= 7, "the full target held on {met} of 10 seeds");
}
