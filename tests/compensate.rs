//! Predictive compensation, outlier gate, step detection and the residual chart: closed forms for
//! the derived guard, horizon and aim, hand-built sequences for the gate and the chart, and tool
//! changes through the Processor (closed-loop runs on generated data: tests/closed_loop.rs).

use deadband::signal::chart::{ResidualChart, QUIET};
use deadband::signal::compensate::{CompSpec, Compensator, Spec};
use deadband::signal::gate::{Gate, GateParams, ToolWatch, Verdict};
use deadband::zone::spc::{CusumSpec, Rule, SpcSpec};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

const PART: Spec = Spec {
    nominal: 25.0,
    lsl: 24.975,
    usl: 25.025,
};

// ---------------------------------------------------------------------------------------------
// Derived guard, horizon and aim
// ---------------------------------------------------------------------------------------------

#[test]
fn derived_guard_and_horizon_follow_the_closed_form() {
    let spec = CompSpec::default();
    let (eps, sigma) = (0.0025, 0.000833);
    // guard = eps + 3 sigma; horizon = eps / |slope| (the fit's reaction time in parts).
    let p = spec.plan(&PART, eps, Some(sigma), -0.0002);
    assert!(close(p.guard, eps + 3.0 * sigma));
    assert!(close(p.horizon, 12.5));
    assert!(close(p.low, 24.975 + p.guard) && close(p.high, 25.025 - p.guard));
    // Without a gauge sigma, eps / 3 stands in for it: guard = 2 eps.
    assert!(close(spec.plan(&PART, eps, None, 0.0).guard, 2.0 * eps));
    // A slope too small to wear eps within horizon_max parts: the horizon is horizon_max.
    assert!(close(spec.plan(&PART, eps, None, 1e-6).horizon, 100.0));
    assert!(close(spec.plan(&PART, eps, None, 0.0).horizon, 100.0));
    // A fast wear: never less than the next part.
    assert!(close(spec.plan(&PART, eps, None, 0.01).horizon, 1.0));
    // The derived guard leaves half of the half tolerance at least.
    assert!(close(spec.plan(&PART, 0.02, None, 0.0).guard, 0.0125));
    // Configured values win, and a configured sigma wins over the zone's.
    let set = CompSpec {
        guard: Some(0.004),
        horizon: Some(5.0),
        ..spec
    };
    let p = set.plan(&PART, eps, Some(sigma), 0.001);
    assert!(close(p.guard, 0.004) && close(p.horizon, 5.0));
    let own = CompSpec {
        sigma: Some(0.0001),
        ..spec
    };
    assert!(close(
        own.plan(&PART, eps, Some(sigma), 0.0).guard,
        eps + 0.0003
    ));
}

#[test]
fn the_target_aims_past_nominal_against_the_wear() {
    let spec = CompSpec::default();
    let eps = 0.0025;
    // Growing diameter: set low, at the far guarded limit when the wear reaches that far.
    let b = 0.0002;
    let p = spec.plan(&PART, eps, None, b);
    let t = spec.target(&PART, &p, b);
    assert!(close(t, p.low), "{t} vs {}", p.low);
    // Shrinking bore: set high.
    let p = spec.plan(&PART, eps, None, -b);
    assert!(close(spec.target(&PART, &p, -b), p.high));
    // A barely significant slope aims only as far as it wears in horizon_max parts.
    let b = 1e-5;
    let p = spec.plan(&PART, eps, None, b);
    assert!(close(spec.target(&PART, &p, b), 25.0 - b * 100.0));
    // No slope, or aim = 0: nominal.
    let p = spec.plan(&PART, eps, None, 0.0);
    assert!(close(spec.target(&PART, &p, 0.0), 25.0));
    let centre = CompSpec { aim: 0.0, ..spec };
    let p = centre.plan(&PART, eps, None, 0.0002);
    assert!(close(centre.target(&PART, &p, 0.0002), 25.0));
    // A fixed long horizon: the target's own prediction stays inside the guarded band, and
    // when the wear over the horizon is wider than the band, nominal is all that is left.
    let long = CompSpec {
        horizon: Some(50.0),
        ..spec
    };
    let b = 0.0002;
    let p = long.plan(&PART, eps, None, b);
    let t = long.target(&PART, &p, b);
    assert!(close(t, p.low) && t + b * p.horizon <= p.high);
    let b = 0.001;
    let p = long.plan(&PART, eps, None, b);
    assert!(b * p.horizon > p.high - p.low);
    assert!(close(long.target(&PART, &p, b), 25.0));
}

#[test]
fn compensation_fires_when_the_level_or_its_prediction_leaves_the_band() {
    let spec = CompSpec {
        cooldown: 3,
        ..CompSpec::default()
    };
    let (eps, b) = (0.0025, 0.0002);
    let p = spec.plan(&PART, eps, None, b);
    let mut c = Compensator::default();
    c.tick();
    // Prediction exactly on the guarded limit: no.
    let level = p.high - b * p.horizon;
    assert!(c
        .predictive(&spec, &PART, level, b, eps, None, false)
        .is_none());
    c.tick();
    let level = level + 1e-6;
    let k = c
        .predictive(&spec, &PART, level, b, eps, None, false)
        .expect("fires");
    assert!(close(k.offset, p.low - level), "re-set at the far limit");
    assert!(close(k.predicted, level + b * p.horizon - 25.0));
    assert!(close(c.applied, k.offset) && c.count == 1);
    // The level itself below the band with a slope that would bring it back: still fires
    // (after the cooldown), and re-centres on the low side's target for that slope.
    for _ in 0..2 {
        c.tick();
        assert!(c
            .predictive(&spec, &PART, p.low - 1e-4, b, eps, None, false)
            .is_none());
    }
    c.tick();
    assert!(c
        .predictive(&spec, &PART, p.low - 1e-4, b, eps, None, false)
        .is_some());
    // A forced decision skips the cooldown; a restart clears the applied offset.
    assert!(c
        .predictive(&spec, &PART, p.high + 1e-4, b, eps, None, true)
        .is_some());
    c.restart();
    assert!(c.applied == 0.0 && c.parts == 0 && c.count == 3);
}

// ---------------------------------------------------------------------------------------------
// Gate, steps, tool column
// ---------------------------------------------------------------------------------------------

#[test]
fn the_gate_counts_single_outliers_and_turns_runs_into_steps() {
    let p = GateParams {
        k: 2.0,
        m: 3,
        detect_steps: true,
    };
    let eps = 1.0;
    let mut g = Gate::default();
    assert_eq!(g.judge(&p, 1.9, eps, false), Verdict::Fit);
    assert_eq!(g.judge(&p, 10.0, eps, false), Verdict::Gated);
    assert_eq!(g.judge(&p, 0.5, eps, false), Verdict::Fit);
    // Beyond on alternating sides is no step.
    for r in [5.0, -5.0, 5.0, -5.0] {
        assert_eq!(g.judge(&p, r, eps, false), Verdict::Gated);
    }
    assert_eq!(g.gated, 5);
    // Three in a row on one side: a step of their mean residual.
    assert_eq!(g.judge(&p, 0.0, eps, false), Verdict::Fit);
    assert_eq!(g.judge(&p, 3.0, eps, false), Verdict::Gated);
    assert_eq!(g.judge(&p, 4.0, eps, false), Verdict::Gated);
    assert_eq!(g.judge(&p, 5.0, eps, false), Verdict::Step { shift: 4.0 });
    assert_eq!((g.gated, g.steps), (7, 1));
    // Three parts outside the tolerance, however close to the prediction: a step of size 0.
    assert_eq!(g.judge(&p, 0.1, eps, true), Verdict::Fit);
    assert_eq!(g.judge(&p, 0.1, eps, true), Verdict::Fit);
    assert_eq!(g.judge(&p, 0.1, eps, true), Verdict::Step { shift: 0.0 });
    // A restart forgets a pending run.
    assert_eq!(g.judge(&p, 3.0, eps, false), Verdict::Gated);
    assert_eq!(g.judge(&p, 3.0, eps, false), Verdict::Gated);
    g.restart();
    assert_eq!(g.judge(&p, 3.0, eps, false), Verdict::Gated);
    // Without step detection the m-th part of a run is fitted (the fit must follow real moves).
    let off = GateParams {
        detect_steps: false,
        ..p
    };
    let mut g = Gate::default();
    let v: Vec<_> = (0..4).map(|_| g.judge(&off, 3.0, eps, true)).collect();
    assert_eq!(
        v,
        [Verdict::Gated, Verdict::Gated, Verdict::Fit, Verdict::Gated]
    );
    // k = 0: no gate.
    let none = GateParams { k: 0.0, ..p };
    assert_eq!(Gate::default().judge(&none, 1e9, eps, false), Verdict::Fit);
}

#[test]
fn a_tool_change_is_a_new_value_of_the_tool_column() {
    let mut w = ToolWatch::default();
    let seen: Vec<bool> = [None, Some(3), Some(3), None, Some(4), Some(4), Some(3)]
        .into_iter()
        .map(|t| w.changed(t))
        .collect();
    assert_eq!(seen, [false, false, false, false, true, false, true]);
    assert_eq!(w.changes, 2);
}

// ---------------------------------------------------------------------------------------------
// Residual chart
// ---------------------------------------------------------------------------------------------

fn chart_spec() -> SpcSpec {
    SpcSpec {
        baseline: 25,
        rules: vec![Rule::We1],
        cusum: Some(CusumSpec { k: 0.5, h: 5.0 }),
        ..SpcSpec::default()
    }
}

/// Alternating ±1: moving range 2, so the baseline's sigma is 2 / 1.128.
fn alternating(n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
}

#[test]
fn the_residual_chart_raises_one_alarm_per_excursion() {
    let mut c = ResidualChart::new(&chart_spec()).unwrap();
    for r in alternating(25) {
        assert!(c.update(r, None).alarm.is_none());
    }
    let sigma = 2.0 / 1.128;
    assert!(close(c.spc().sigma().unwrap(), sigma));
    assert_eq!(c.spc().centre(), Some(0.0), "a residual is centred on 0");
    // Three points beyond 3 sigma within the quiet window: one alarm.
    let big = 3.5 * sigma;
    let mut alarms = Vec::new();
    for r in [big, 0.0, big, 0.0, 0.0, -big] {
        alarms.extend(c.update(r, None).alarm);
    }
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].rule, Rule::We1);
    // QUIET quiet parts end the excursion; the next point beyond raises a new alarm.
    for r in alternating(QUIET as usize) {
        assert!(c.update(r * 0.1, None).alarm.is_none());
    }
    assert!(c.update(big, None).alarm.is_some());
    assert_eq!(c.alarms, 2);
    // A restart re-estimates the limits from the new tool's residuals.
    c.restart();
    assert!(c.spc().sigma().is_none());
    for r in alternating(25) {
        c.update(3.0 * r, None);
    }
    assert!(close(c.spc().sigma().unwrap(), 3.0 * sigma));
}

#[test]
fn the_residual_chart_never_uses_less_than_the_gauge_sigma() {
    let mut c = ResidualChart::new(&chart_spec()).unwrap();
    for r in alternating(25) {
        c.update(0.1 * r, Some(1.0));
    }
    assert_eq!(c.spc().sigma(), Some(1.0));
    // 2.9 is inside 3 gauge sigmas (it would be far outside 3 x 0.177).
    assert!(c.update(2.9, Some(1.0)).firing.get(Rule::We1).is_none());
    assert!(c.update(3.1, Some(1.0)).firing.get(Rule::We1).is_some());
    // After a restart the baseline is estimated again (and kept when above the floor).
    c.restart();
    for r in alternating(25) {
        c.update(2.0 * r, Some(1.0));
    }
    assert!(close(c.spc().sigma().unwrap(), 4.0 / 1.128));
}

// ---------------------------------------------------------------------------------------------
// Through the Processor
// ---------------------------------------------------------------------------------------------

const SENSOR: &str = r#"
[input]
path = "x"
record = "measurement"
[zone.scale]
kind = "grr"
sigma = 0.001
[fit]
leak = 0.02
[signal]
warmup = 10
[spc]
rules = ["we1"]
baseline = 25
"#;

/// The closed-loop state of [`feed`]: the offset applied so far and the noise generator.
struct Plant {
    offset: f64,
    rng: u64,
}

/// Parts that wear by +0.0005 per part (±0.02 tolerance, gauge sigma 0.001 as the noise of a
/// fixed pseudo-random sequence), with a new tool every 150 parts that starts again at nominal,
/// fed to `p` in closed loop; pushes the events to `out`.
fn feed(
    p: &mut deadband::pipeline::Processor,
    parts: std::ops::Range<u32>,
    plant: &mut Plant,
    out: &mut Vec<deadband::record::Event>,
) {
    use deadband::record::{EventBody, Measurement, Payload, Record};
    for i in parts {
        if i % 150 == 0 {
            plant.offset = 0.0; // the new tool is touched off at nominal
        }
        let s = &mut plant.rng;
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        let noise = ((*s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.002 * 3f64.sqrt();
        let m = Measurement {
            value: 10.0 + 0.0005 * f64::from(i % 150) + plant.offset + noise,
            nominal: Some(10.0),
            lsl: Some(9.98),
            usl: Some(10.02),
            tool: Some(i / 150),
            true_value: None,
        };
        let before = out.len();
        p.process(
            &Record {
                key: "M1/d",
                ts: i64::from(i),
                payload: Payload::Measurement(m),
            },
            out,
        )
        .unwrap();
        for e in &out[before..] {
            if let EventBody::ToolCompensation { offset: o, .. } = e.body {
                plant.offset += o;
            }
        }
    }
}

fn sensor_processor(extra: &str) -> deadband::pipeline::Processor {
    let cfg = deadband::config::parse(&format!("{SENSOR}{extra}"), std::path::Path::new("t.toml"))
        .unwrap();
    deadband::pipeline::Processor::new(std::sync::Arc::new(cfg.processor)).unwrap()
}

/// 600 parts of [`feed`] through a fresh processor.
fn processor_loop(extra: &str) -> (Vec<deadband::record::Event>, deadband::pipeline::Processor) {
    let mut p = sensor_processor(extra);
    let mut out = Vec::new();
    let mut plant = Plant {
        offset: 0.0,
        rng: 7,
    };
    feed(&mut p, 0..600, &mut plant, &mut out);
    (out, p)
}

/// A key's measurement state (gate, tool, residual chart, compensation, fit) survives a
/// snapshot: restored at any of several cuts, the processor emits exactly the events of an
/// uninterrupted run.
#[test]
fn a_restored_measurement_key_continues_exactly() {
    use deadband::io::state;
    let (whole, _) = processor_loop("");
    for cut in [5, 40, 149, 150, 151, 333] {
        let mut plant = Plant {
            offset: 0.0,
            rng: 7,
        };
        let mut events = Vec::new();
        let mut first = sensor_processor("");
        feed(&mut first, 0..cut, &mut plant, &mut events);
        let fp = state::fingerprint(first.config().params_for("M1/d"));
        let snap = state::encode(first.key_state("M1/d").unwrap(), &fp);
        drop(first);
        let mut second = sensor_processor("");
        second.restore("M1/d", state::decode(&snap, &fp).unwrap());
        feed(&mut second, cut..600, &mut plant, &mut events);
        assert_eq!(events, whole, "cut at part {cut}");
    }
}

#[test]
fn a_tool_change_restarts_the_fit_and_the_offset_and_is_an_event() {
    use deadband::record::EventBody;
    let (events, p) = processor_loop("");
    let changes: Vec<(u64, u32)> = events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::ToolChange { tool } => Some((e.seq, tool)),
            _ => None,
        })
        .collect();
    assert_eq!(changes, [(150, 1), (300, 2), (450, 3)]);
    let core = p.key_state("M1/d").unwrap();
    // The current fitter has seen only the last tool's parts; the counts cover all of them.
    assert_eq!(core.fitter.counts().records, 150);
    assert_eq!(core.fit_counts().records, 600);
    assert_eq!(core.control.tool.changes, 3);
    // The offset applied is the last tool's only, and no part left the tolerance.
    let last: f64 = events
        .iter()
        .filter(|e| e.seq >= 450)
        .filter_map(|e| match e.body {
            EventBody::ToolCompensation { offset, .. } => Some(offset),
            _ => None,
        })
        .sum();
    assert!((core.control.comp.applied - last).abs() < 1e-15);
    assert_eq!(core.out_of_tolerance, 0);
    // Guard 0.003 + 3 x 0.001, horizon 0.003 / 0.0005 = 6 parts: each compensation moves the
    // level from 0.02 - 0.006 - 0.003 down to -0.014, 0.025 of travel; 0.075 of wear per tool
    // takes three.
    let comps = p
        .counters()
        .events_of(deadband::record::EventKind::ToolCompensation);
    assert!((10..=14).contains(&comps), "{comps} compensations");

    // Told to ignore the column: no tool_change events; the steps are found instead.
    let (events, p) = processor_loop("[compensation]\ntool_column = false\n");
    assert!(!events
        .iter()
        .any(|e| matches!(e.body, EventBody::ToolChange { .. })));
    let core = p.key_state("M1/d").unwrap();
    assert_eq!(core.control.tool.changes, 0);
    assert_eq!(core.out_of_tolerance, 0);
}
