//! Closed-loop runs of the strategy's measurement loop on generated sensor data, judged against
//! the generator's ground truth, and the backtest against the Shewhart baseline.

use deadband::run::gen::{GenOptions, SensorGen, SensorRow};
use deadband::signal::compensate::{CompSpec, Spec};
use deadband::signal::control::{Control, Part};
use deadband::zone::fit::{FitSpec, Fitter, Method};
use deadband::zone::spc::{CusumSpec, Rule, SpcSpec};

/// The residual chart of `config/sensor-grr.toml`: we1 + CUSUM, 25-part baseline.
fn chart_spec() -> SpcSpec {
    SpcSpec {
        baseline: 25,
        rules: vec![Rule::We1],
        cusum: Some(CusumSpec { k: 0.5, h: 5.0 }),
        ..SpcSpec::default()
    }
}

// ---------------------------------------------------------------------------------------------

/// Closed-loop results of one run.
#[derive(Debug, Default, Clone, Copy)]
struct Loop {
    parts: u64,
    /// Parts whose true (noise-free, compensated) value is outside the tolerance.
    true_oot: u64,
    measured_oot: u64,
    /// Measured out of tolerance on a part without a gross gauge error.
    measured_oot_clean: u64,
    compensations: u64,
    alarms: u64,
    gated: u64,
    steps: u64,
    tool_changes: u64,
}

fn fit_spec() -> FitSpec {
    FitSpec {
        method: Method::SmRls,
        order: 1,
        forgetting: 0.995,
        leak: 0.02,
        ..FitSpec::default()
    }
}

/// Runs the strategy's loop on `gen sensor` rows as the backtest does: the offsets a key's
/// compensations emit are added to its later measurements, and a tool change (ground truth)
/// clears the machine's wear offset (the new tool is touched off at nominal). `with_tool` says
/// whether the loop is shown the tool column. `shift(key, part)` adds a disturbance to the
/// measured value; `alarm(key, part)` is called for each SPC alarm.
fn closed_loop(
    rows: impl Iterator<Item = SensorRow>,
    keys: usize,
    with_tool: bool,
    shift: impl Fn(usize, u64) -> f64,
    mut alarm: impl FnMut(usize, u64),
) -> Loop {
    let spec = CompSpec::default();
    let mut fitters: Vec<Fitter> = (0..keys)
        .map(|_| Fitter::new(fit_spec()).unwrap())
        .collect();
    let mut controls: Vec<Control> = (0..keys)
        .map(|_| Control::new(Some(&chart_spec())).unwrap())
        .collect();
    let mut offsets = vec![0.0; keys];
    let mut tools = vec![0i64; keys];
    let mut seq = vec![0u64; keys];
    let mut r = Loop::default();
    for (i, row) in rows.enumerate() {
        let k = i % keys;
        if row.tool != tools[k] {
            tools[k] = row.tool;
            offsets[k] = 0.0;
            r.tool_changes += 1;
        }
        let part = Part {
            t: seq[k] as f64,
            y: row.value + offsets[k] + shift(k, seq[k]),
            eps: 3.0 * row.sigma_grr,
            sigma: Some(row.sigma_grr),
            tool: with_tool.then_some(row.tool as u32),
            spec: Some(Spec {
                nominal: row.nominal,
                lsl: row.lsl,
                usl: row.usl,
            }),
        };
        let out = controls[k].part(&spec, &mut fitters[k], &part, 10);
        let truth = row.true_value + offsets[k];
        let measured_oot = out.out_of_tolerance == Some(true);
        r.parts += 1;
        r.true_oot += u64::from(truth < row.lsl || truth > row.usl);
        r.measured_oot += u64::from(measured_oot);
        r.measured_oot_clean += u64::from(measured_oot && !row.outlier);
        if out.alarm.is_some() {
            r.alarms += 1;
            alarm(k, seq[k]);
        }
        if let Some(c) = out.compensation {
            offsets[k] += c.offset;
            r.compensations += 1;
        }
        seq[k] += 1;
    }
    for c in &controls {
        r.gated += c.gate.gated;
        r.steps += c.gate.steps;
    }
    r
}

fn sensor(seed: u64) -> (SensorGen, usize) {
    let opts = GenOptions::new(4, 6000, seed);
    (SensorGen::new(&opts).unwrap(), opts.keys)
}

fn run(seed: u64, with_tool: bool) -> Loop {
    let (rows, keys) = sensor(seed);
    closed_loop(rows, keys, with_tool, |_, _| 0.0, |_, _| {})
}

/// Five seeds, with and without the tool column: no part truly out of tolerance; the only parts
/// measured out are gross gauge errors; about 140 compensations on 24,000 parts (a tool's wear
/// of 1.5-6 half tolerances takes 2-4 of them). Measured: 132-145 with the column,
/// 132-143 without.
#[test]
fn the_closed_loop_keeps_every_part_in_tolerance_with_few_compensations() {
    for with_tool in [true, false] {
        for seed in 1..=5 {
            let r = run(seed, with_tool);
            let tag = format!("seed {seed}, tool column {with_tool}: {r:?}");
            assert_eq!(r.true_oot, 0, "{tag}");
            assert_eq!(r.measured_oot_clean, 0, "{tag}");
            assert!(r.compensations <= 170, "{tag}");
            assert!(r.tool_changes >= 50, "{tag}");
            if with_tool {
                assert_eq!(r.steps, 0, "{tag}");
            } else {
                // Most tool changes are seen as steps (the others are too small to matter).
                assert!(r.steps * 2 >= r.tool_changes, "{tag}");
            }
        }
    }
}

/// A single gross outlier neither triggers a compensation nor moves the fit: the loop with it
/// ends in exactly the state of the loop without it (the outlier is only counted).
#[test]
fn a_single_gross_outlier_changes_nothing_but_the_gate_count() {
    let opts = GenOptions {
        sensor: deadband::run::gen::SensorParams {
            outlier_prob: 0.0,
            ..Default::default()
        },
        ..GenOptions::new(1, 400, 11)
    };
    let clean: Vec<SensorRow> = SensorGen::new(&opts).unwrap().collect();
    let drive = |rows: &[SensorRow], gate: f64| {
        let spec = CompSpec {
            gate,
            ..CompSpec::default()
        };
        let mut fitter = Fitter::new(fit_spec()).unwrap();
        let mut control = Control::new(Some(&chart_spec())).unwrap();
        let mut offset = 0.0;
        let mut comps = Vec::new();
        let mut levels = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let part = Part {
                t: i as f64,
                y: row.value + offset,
                eps: 3.0 * row.sigma_grr,
                sigma: Some(row.sigma_grr),
                tool: Some(row.tool as u32),
                spec: Some(Spec {
                    nominal: row.nominal,
                    lsl: row.lsl,
                    usl: row.usl,
                }),
            };
            let out = control.part(&spec, &mut fitter, &part, 10);
            levels.push(out.fit.level);
            if let Some(c) = out.compensation {
                offset += c.offset;
                comps.push((i, c.offset));
            }
        }
        (fitter, control, comps, levels)
    };
    let (f0, _, k0, l0) = drive(&clean, 2.0);
    assert!(!k0.is_empty());
    let h = 0.5 * (clean[0].usl - clean[0].lsl);
    // One 30-sigma error, up or down, at several places of the tool's life.
    for at in [50usize, 137, 250, 333] {
        for sign in [1.0, -1.0] {
            let mut rows = clean.clone();
            rows[at].value += sign * 30.0 * rows[at].sigma_grr;
            let (f1, c1, k1, l1) = drive(&rows, 2.0);
            assert_eq!((c1.gate.gated, c1.gate.steps), (1, 0), "outlier at {at}");
            // The same compensations, on the same parts, by the same offsets but for the leak
            // step the gated part did not take (1e-3 of a half tolerance).
            assert_eq!(k1.len(), k0.len(), "outlier at {at}");
            for (a, b) in k0.iter().zip(&k1) {
                assert!(a.0 == b.0 && (a.1 - b.1).abs() < 1e-3 * h, "{a:?} {b:?}");
            }
            let sigma = rows[at].sigma_grr;
            // On the outlier's part the level differs from the clean run's only by what the
            // clean part itself did (at most the zone's 3 sigma)...
            assert!((l1[at] - l0[at]).abs() <= 3.0 * sigma);
            assert!((f1.level() - f0.level()).abs() < 1e-3 * h);
            assert!((f1.slope() - f0.slope()).abs() < 1e-5 * h);
            // ...while without the gate the outlier is fitted and drags the level by 27 sigma
            // (30 less the zone's 3) on that part.
            let (_, _, _, l2) = drive(&rows, 0.0);
            assert!((l2[at] - l0[at] - sign * 27.0 * sigma).abs() < 2.0 * sigma);
        }
    }
}

/// In control (generated data, the tool column known), the residual chart alarms on well under
/// 1 % of the parts (measured: 0.30-0.50 %; gross outliers are gated, not charted).
#[test]
fn the_residual_chart_is_quiet_on_an_in_control_process() {
    for seed in 1..=5 {
        let r = run(seed, true);
        assert!(
            r.alarms * 1000 <= 6 * r.parts,
            "seed {seed}: {} alarms on {} parts",
            r.alarms,
            r.parts
        );
    }
}

/// Injects a sustained 1.5-sigma shift into one key, `at` parts into every tool life long enough
/// to hold it, for 40 parts; returns (caught, injected, median delay in parts).
fn shifts_caught(at: u64) -> (usize, usize, u64) {
    let (mut caught, mut injected, mut delays) = (0, 0, Vec::new());
    for seed in 1..=5 {
        let (rows, keys) = sensor(seed);
        let rows: Vec<SensorRow> = rows.collect();
        let key = (seed as usize) % keys;
        let sigma = rows[key].sigma_grr;
        // Tool lives of the key: (first part, length).
        let mut lives: Vec<(u64, u64)> = Vec::new();
        let mut tool = -1;
        for (p, row) in rows.iter().skip(key).step_by(keys).enumerate() {
            if row.tool != tool {
                tool = row.tool;
                lives.push((p as u64, 0));
            }
            lives.last_mut().expect("pushed").1 += 1;
        }
        let starts: Vec<u64> = lives
            .iter()
            .filter(|(_, n)| *n >= at + 90)
            .map(|(s, _)| s + at)
            .collect();
        let within = |p: u64| starts.iter().find(|&&s| p >= s && p < s + 40).copied();
        let mut first: std::collections::BTreeMap<u64, u64> = Default::default();
        closed_loop(
            rows.into_iter(),
            keys,
            true,
            |k, p| {
                if k == key && within(p).is_some() {
                    1.5 * sigma
                } else {
                    0.0
                }
            },
            |k, p| {
                if let (true, Some(s)) = (k == key, within(p)) {
                    first.entry(s).or_insert(p - s);
                }
            },
        );
        injected += starts.len();
        caught += first.len();
        delays.extend(first.values().copied());
    }
    delays.sort_unstable();
    (caught, injected, delays[delays.len() / 2])
}

/// A sustained 1.5-sigma shift of one key (inside the dead zone) is caught by the residual
/// chart (we1 + CUSUM). The fit's small leak makes it a least-squares fit over the tool's parts
/// so far, which absorbs a shift the faster the younger the tool: 150 parts into a tool life,
/// measured 58 of 63 caught within 40 parts (median delay 5); 60 parts in, 58 of 74.
#[test]
fn a_one_and_a_half_sigma_shift_is_caught() {
    let (caught, injected, median) = shifts_caught(150);
    assert!(injected >= 50, "{injected} injections");
    assert!(
        caught * 100 >= injected * 85,
        "caught {caught} of {injected}"
    );
    assert!(median <= 10, "median delay {median} parts");
    let (caught, injected, median) = shifts_caught(60);
    assert!(
        caught * 100 >= injected * 70,
        "young tools: caught {caught} of {injected}"
    );
    assert!(median <= 10, "young tools: median delay {median} parts");
}

#[test]
#[ignore = "prints the closed-loop figures for five seeds"]
fn closed_loop_figures() {
    for with_tool in [true, false] {
        for seed in 1..=5 {
            println!(
                "tool column {with_tool}, seed {seed}: {:?}",
                run(seed, with_tool)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The backtest against the Shewhart baseline (issue 8's measurement targets)
// ---------------------------------------------------------------------------------------------

/// Tool changes in the generator's ground truth: a new `tool` value of a key.
fn tool_changes(rows: SensorGen) -> u64 {
    let mut last = std::collections::HashMap::new();
    let mut n = 0;
    for r in rows {
        if last
            .insert(r.key.clone(), r.tool)
            .is_some_and(|t| t != r.tool)
        {
            n += 1;
        }
    }
    n
}

/// Issue 8's measurement target: `deadband backtest --config config/sensor-grr.toml` on `gen
/// sensor` data for five seeds, with and without the tool column — 0 parts truly out of
/// tolerance with at most half of the Shewhart baseline's compensations. Measured: 0 truly out
/// (Shewhart 5-18), 132-143 compensations (Shewhart 2,225-2,668), 4-13 parts measured out
/// (Shewhart 11-35, every one of the strategy's a gross gauge error). Margins: compensations
/// at most a tenth of Shewhart's (the target asks for a half), measured out of tolerance at
/// most Shewhart's. The figures are printed (`-- --nocapture`).
#[test]
fn the_backtest_keeps_parts_in_tolerance_with_a_tenth_of_shewharts_compensations() {
    use deadband::run::backtest::{self, BacktestOptions};
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("config/sensor-grr.toml").unwrap();
    assert!(text.contains("\ncooldown = 0"));
    for seed in 1..=5 {
        let input = dir.path().join(format!("s{seed}.parquet"));
        deadband::run::gen::write_sensor(&GenOptions::new(4, 6000, seed), &input).unwrap();
        for with_tool in [true, false] {
            let src = if with_tool {
                text.clone()
            } else {
                text.replace("\ncooldown = 0", "\ntool_column = false\ncooldown = 0")
            };
            let cfg = deadband::config::parse(&src, std::path::Path::new("config/sensor-grr.toml"))
                .unwrap();
            let opts = BacktestOptions {
                input: Some(input.to_string_lossy().into_owned()),
                out: dir.path().join(format!("out{seed}{with_tool}")),
                progress: false,
                report: false,
                shard: None,
                single_thread: false,
            };
            let s = backtest::run(&cfg, &opts).unwrap();
            let (a, b) = (&s.strategy, &s.baseline);
            let tag = format!("seed {seed}, tool column {with_tool}: {a:?} vs {b:?}");
            println!(
                "seed {seed}, tool column {with_tool}: truly out {:?} / {:?}, measured out {:?} / {:?}, compensations {:?} / {:?}, alarms {:?} / {:?}",
                a.truly_out_of_tolerance,
                b.truly_out_of_tolerance,
                a.out_of_tolerance,
                b.out_of_tolerance,
                a.compensations,
                b.compensations,
                a.spc_alarms,
                b.spc_alarms
            );
            assert_eq!(a.truly_out_of_tolerance, Some(0), "{tag}");
            assert!(b.truly_out_of_tolerance.unwrap() > 0, "{tag}");
            assert!(
                a.compensations.unwrap() * 10 <= b.compensations.unwrap(),
                "{tag}"
            );
            assert!(
                a.out_of_tolerance.unwrap() <= b.out_of_tolerance.unwrap(),
                "{tag}"
            );
            // Without the column, tool changes too small to be seen as steps are real shifts
            // of the residual, and alarm (measured 0.8-1.2 % of parts, 0.3-0.5 % with it).
            let per_mille = if with_tool { 6 } else { 15 };
            assert!(a.spc_alarms.unwrap() * 1000 <= per_mille * s.rows, "{tag}");
            let changes = tool_changes(sensor(seed).0);
            assert!(changes >= 50, "{tag}");
            assert_eq!(
                a.tool_changes,
                Some(if with_tool { changes } else { 0 }),
                "{tag}"
            );
        }
    }
}
