//! `deadband tune`: walk-forward parameter tuning of the strategy and of its L2 baseline.
//!
//! Every candidate of `[tune.space]` is replayed once over the whole input (both cores). Per
//! fold, the strategy's parameters are those with the best train objective; the baseline is
//! tuned the same way over the same candidates (its thresholds are `enter × eps`, so the zone
//! scale is one of its signal parameters). Both chosen ones are scored on the test window only;
//! the totals stitch the test windows together. Bars only for now.

pub mod eval;
pub mod folds;
pub mod settings;
pub mod space;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::config::{Config, InputKind};
use crate::error::Failure;
use crate::record::RecordKind;
use crate::run::grr::StudyFiles;

use eval::{Period, Score};
use folds::{Fold, Window};
use settings::{Objective, Search, Settings};
use space::Candidate;

/// Why tuning could not run.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("{0}")]
    Config(String),
    #[error("input: {0}")]
    Input(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Failure for TuneError {
    fn is_user_error(&self) -> bool {
        matches!(self, TuneError::Config(_))
    }
}

/// What to tune.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub config: PathBuf,
    /// Overrides `[input] path`.
    pub input: Option<String>,
    pub out: PathBuf,
    /// Overrides `[tune] seed` (random search).
    pub seed: Option<u64>,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

/// One method's choice on one fold.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub params: BTreeMap<String, toml::Value>,
    pub train: Score,
    pub test: Score,
}

/// One fold of `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FoldResult {
    pub fold: usize,
    pub window: Fold,
    pub strategy: Choice,
    pub baseline: Choice,
}

/// Totals over the stitched test windows.
#[derive(Debug, Clone, Serialize)]
pub struct OutOfSample {
    pub strategy: Score,
    pub baseline: Score,
    /// 1 − strategy turnover / baseline turnover (null when the baseline did not trade).
    pub turnover_reduction: Option<f64>,
    /// Mean / sample std of per-period active returns (strategy − baseline).
    pub information_ratio: f64,
    /// Strategy net return − baseline net return.
    pub active_return: f64,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TuneSummary {
    pub input: String,
    pub objective: Objective,
    pub search: Search,
    pub seed: u64,
    pub candidates: usize,
    pub anchored: bool,
    pub folds: Vec<FoldResult>,
    pub out_of_sample: OutOfSample,
    /// The fold whose strategy parameters `tuned.toml` carries (the last, most recent one).
    pub tuned_from_fold: usize,
}

fn cfg_err(e: impl std::fmt::Display) -> TuneError {
    TuneError::Config(e.to_string())
}

/// Runs the tuner; writes `summary.json` and `tuned.toml` into `opts.out`.
pub fn run(opts: &TuneOptions) -> Result<TuneSummary, TuneError> {
    let text = std::fs::read_to_string(&opts.config)
        .map_err(|e| cfg_err(format!("cannot read {}: {e}", opts.config.display())))?;
    let base = crate::config::parse_with(&text, &opts.config, &StudyFiles).map_err(cfg_err)?;
    if base.processor.record != RecordKind::Bar {
        return Err(cfg_err(
            "deadband tune scores bars only for now (record = \"bar\")",
        ));
    }
    let doc: toml::Value = toml::from_str(&text).map_err(cfg_err)?;
    let mut settings = settings::parse(doc.get("tune")).map_err(cfg_err)?;
    if let Some(seed) = opts.seed {
        settings.seed = seed;
    }
    if settings.space.is_empty() {
        settings.space = space::default_space();
    }
    for name in settings.space.keys() {
        space::check_name(&doc, name).map_err(cfg_err)?;
    }
    let candidates = match settings.search {
        Search::Grid => space::grid(&settings.space),
        Search::Random => space::random(&settings.space, settings.samples, settings.seed),
    };
    let configs = candidates
        .iter()
        .map(|c| candidate_config(&doc, c, &opts.config))
        .collect::<Result<Vec<_>, _>>()?;
    let input = input_of(&base, opts)?;
    let series = replay_all(&configs, &input, opts.progress)?;
    let (first, last) = match (series[0].first(), series[0].last()) {
        (Some(a), Some(b)) => (a.ts, b.ts),
        _ => return Err(TuneError::Input(format!("no records in {}", input.pattern))),
    };
    if series.iter().any(|s| s.len() != series[0].len()) {
        return Err(TuneError::Input(
            "candidates accepted different records; cannot align their periods".into(),
        ));
    }
    let fold_list = folds::folds(&settings.folds, first, last).map_err(cfg_err)?;
    let ppy = base.periods_per_year;
    let mut results = Vec::new();
    let (mut s_test, mut b_test) = (Vec::new(), Vec::new());
    for (i, fold) in fold_list.iter().enumerate() {
        let b = choose(&series, fold.train, None, &settings, ppy);
        let s = choose(&series, fold.train, Some(b), &settings, ppy);
        let pick = |c: usize, strat: bool| {
            let side = if strat { strat_side } else { base_side };
            let mut train = eval::score(&series[c], fold.train, side, ppy);
            train.objective = objective(&series, fold.train, c, strat, b, &settings, ppy);
            let mut test = eval::score(&series[c], fold.test, side, ppy);
            test.objective = objective(&series, fold.test, c, strat, b, &settings, ppy);
            Choice {
                params: candidates[c].iter().cloned().collect(),
                train,
                test,
            }
        };
        results.push(FoldResult {
            fold: i,
            window: *fold,
            strategy: pick(s, true),
            baseline: pick(b, false),
        });
        s_test.extend(in_window(&series[s], fold.test).map(|p| (*p, p.strategy)));
        b_test.extend(in_window(&series[b], fold.test).map(|p| (*p, p.baseline)));
    }
    let total = |xs: &[(Period, eval::Side)]| {
        let mut sc = Score::default();
        for (_, x) in xs {
            sc.net_return += x.net;
            sc.turnover += x.turnover;
            sc.rebalances += x.trades;
        }
        sc.periods = xs.len();
        sc.sharpe = eval::ratio(xs.iter().map(|(p, x)| eval::ret(p, x)), ppy);
        sc
    };
    let (st, bt) = (total(&s_test), total(&b_test));
    let active = s_test
        .iter()
        .zip(&b_test)
        .map(|((p, s), (q, b))| eval::ret(p, s) - eval::ret(q, b));
    let oos = OutOfSample {
        turnover_reduction: (bt.turnover > 0.0).then(|| 1.0 - st.turnover / bt.turnover),
        information_ratio: eval::ratio(active, ppy),
        active_return: st.net_return - bt.net_return,
        strategy: st,
        baseline: bt,
    };
    let last_fold = results.len() - 1;
    let summary = TuneSummary {
        input: input.pattern.clone(),
        objective: settings.objective,
        search: settings.search,
        seed: settings.seed,
        candidates: candidates.len(),
        anchored: settings.folds.anchored,
        folds: results,
        out_of_sample: oos,
        tuned_from_fold: last_fold,
    };
    write_outputs(opts, &doc, &summary)?;
    Ok(summary)
}

fn strat_side(p: &Period) -> &eval::Side {
    &p.strategy
}

fn base_side(p: &Period) -> &eval::Side {
    &p.baseline
}

fn in_window(series: &[Period], w: Window) -> impl Iterator<Item = &Period> {
    series.iter().filter(move |p| w.contains(p.ts))
}

/// The objective of candidate `c` (strategy or baseline lane) on window `w`; the strategy's
/// information ratio is against baseline candidate `b`. The baseline's own information ratio
/// would be against itself, so it is tuned by net Sharpe under that objective.
fn objective(
    series: &[Vec<Period>],
    w: Window,
    c: usize,
    strat: bool,
    b: usize,
    s: &Settings,
    ppy: Option<f64>,
) -> f64 {
    let side = if strat { strat_side } else { base_side };
    match (s.objective, strat) {
        (Objective::NetReturn, _) => in_window(&series[c], w).map(|p| side(p).net).sum(),
        (Objective::NetSharpe, _) | (Objective::InformationRatio, false) => {
            eval::ratio(in_window(&series[c], w).map(|p| eval::ret(p, side(p))), ppy)
        }
        (Objective::InformationRatio, true) => eval::ratio(
            in_window(&series[c], w)
                .zip(in_window(&series[b], w))
                .map(|(p, q)| eval::ret(p, &p.strategy) - eval::ret(q, &q.baseline)),
            ppy,
        ),
    }
}

/// The candidate with the best train objective (the first on ties), skipping those above the
/// turnover caps unless all are (then the lowest turnover). `baseline = None` tunes the
/// baseline lane; `Some(b)` the strategy against baseline candidate `b`, whose train turnover
/// `max_turnover_ratio` is relative to.
fn choose(
    series: &[Vec<Period>],
    train: Window,
    baseline: Option<usize>,
    s: &Settings,
    ppy: Option<f64>,
) -> usize {
    let strat = baseline.is_some();
    let side = if strat { strat_side } else { base_side };
    let rate_of = |c: usize, side: fn(&Period) -> &eval::Side| {
        let (mut turn, mut n, mut keys) = (0.0, 0usize, 1usize);
        for p in in_window(&series[c], train) {
            turn += side(p).turnover;
            n += 1;
            keys = p.keys.max(1);
        }
        turn / (keys * n.max(1)) as f64
    };
    let rate = |c: usize| rate_of(c, side);
    let relative_cap = match (baseline, s.max_turnover_ratio) {
        (Some(b), Some(ratio)) => Some(ratio * rate_of(b, base_side)),
        _ => None,
    };
    let allowed: Vec<usize> = (0..series.len())
        .filter(|&c| {
            let r = rate(c);
            s.max_turnover.is_none_or(|m| r <= m) && relative_cap.is_none_or(|m| r <= m)
        })
        .collect();
    if allowed.is_empty() {
        return (0..series.len())
            .min_by(|&a, &b| rate(a).total_cmp(&rate(b)))
            .expect("at least one candidate");
    }
    let b = baseline.unwrap_or(0);
    let mut best: Option<(usize, f64)> = None;
    for &c in &allowed {
        let v = objective(series, train, c, strat, b, s, ppy);
        let v = if v.is_nan() { f64::NEG_INFINITY } else { v };
        if best.is_none_or(|(_, bv)| v > bv) {
            best = Some((c, v));
        }
    }
    best.expect("allowed is not empty").0
}

/// The configuration of one candidate: the file's text with the candidate's values set.
fn candidate_config(doc: &toml::Value, c: &Candidate, file: &Path) -> Result<Config, TuneError> {
    let mut d = doc.clone();
    for (name, v) in c {
        space::set(&mut d, name, v.clone()).map_err(cfg_err)?;
    }
    let text = toml::to_string(&d).map_err(cfg_err)?;
    crate::config::parse_with(&text, file, &StudyFiles).map_err(|e| {
        let vals: Vec<String> = c.iter().map(|(n, v)| format!("{n} = {v}")).collect();
        cfg_err(format!("candidate {}: {e}", vals.join(", ")))
    })
}

fn input_of(cfg: &Config, opts: &TuneOptions) -> Result<eval::Input, TuneError> {
    let pattern = match (&opts.input, &cfg.input.path) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) if cfg.input.kind != InputKind::Kafka => p.clone(),
        _ => {
            return Err(cfg_err(format!(
                "no input: give --input FILE_OR_GLOB or set [input] path in {}",
                cfg.file.display()
            )))
        }
    };
    Ok(eval::Input {
        format: crate::run::backtest::file_format(cfg.input.kind, &pattern),
        pattern,
        opts: crate::io::parquet::SourceOptions {
            batch_rows: cfg.input.batch_rows,
            sort: cfg.input.sort,
        },
    })
}

/// Replays every candidate on two threads; results in candidate order.
fn replay_all(
    configs: &[Config],
    input: &eval::Input,
    progress: bool,
) -> Result<Vec<Vec<Period>>, TuneError> {
    let bar = if progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(configs.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} candidates  eta {eta}",
            )
            .expect("static template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = Mutex::new(0usize);
    // One slot per candidate, filled by whichever worker replays it.
    type Slot = Option<Result<Vec<Period>, TuneError>>;
    let out: Mutex<Vec<Slot>> = Mutex::new((0..configs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().expect("no panics hold the lock");
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= configs.len() {
                    break;
                }
                let r = eval::replay(&configs[i], input);
                out.lock().expect("no panics hold the lock")[i] = Some(r);
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    out.into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|r| r.expect("every candidate ran"))
        .collect()
}

/// Writes `summary.json` and `tuned.toml` (the file with the last fold's strategy parameters).
fn write_outputs(opts: &TuneOptions, doc: &toml::Value, s: &TuneSummary) -> Result<(), TuneError> {
    let write = |name: &str, text: String| {
        let path = opts.out.join(name);
        std::fs::write(&path, text).map_err(|source| TuneError::Write { path, source })
    };
    std::fs::create_dir_all(&opts.out).map_err(|source| TuneError::Write {
        path: opts.out.clone(),
        source,
    })?;
    let json = serde_json::to_string_pretty(s).expect("summary serialises");
    write("summary.json", json + "\n")?;
    let mut d = doc.clone();
    let chosen = &s.folds[s.tuned_from_fold].strategy.params;
    for (name, v) in chosen {
        space::set(&mut d, name, v.clone()).map_err(cfg_err)?;
    }
    let params: Vec<String> = chosen.iter().map(|(n, v)| format!("{n} = {v}")).collect();
    let text = format!(
        "# Tuned by `deadband tune --config {}`: the strategy parameters chosen on the train\n\
         # window of fold {} (the most recent): {}\n\n{}",
        opts.config.display(),
        s.tuned_from_fold,
        params.join(", "),
        toml::to_string(&d).map_err(cfg_err)?
    );
    write("tuned.toml", text)
}
