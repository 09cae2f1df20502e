//! Recursive fitters checked against independent truth: batch least squares from the normal
//! equations, the closed-form zone-edge property, noise statistics, and exact serde round trips.

// Index loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

use deadband::zone::fit::{FitSpec, Fitter, Method, Step, TraceGuard};
use deadband::zone::well::Well;
use proptest::prelude::*;

// ---------------------------------------------------------------- test-only helpers

/// splitmix64 + Box-Muller: a seeded generator written here so the tests need no new dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Weighted polynomial least squares of degree `order`, solved from the normal equations with
/// Gaussian elimination (partial pivoting). The basis is `s = (t - t_ref)/scale`, scale the
/// weighted RMS distance from `t_ref`, so the normal matrix is well conditioned; the result is converted back to (level, slope, curvature) at
/// `t_ref` per time unit.
fn batch_ls(ts: &[f64], ys: &[f64], ws: &[f64], order: usize, t_ref: f64) -> [f64; 3] {
    let d = order + 1;
    let (sw, swt2) = ts.iter().zip(ws).fold((0.0, 0.0), |(a, b), (&t, &w)| {
        (a + w, b + w * (t - t_ref) * (t - t_ref))
    });
    let scale = (swt2 / sw).sqrt().max(1.0);
    let mut a = vec![vec![0.0; d + 1]; d];
    for ((&t, &y), &w) in ts.iter().zip(ys).zip(ws) {
        let s = (t - t_ref) / scale;
        let phi: Vec<f64> = (0..d).map(|k| s.powi(k as i32)).collect();
        for i in 0..d {
            for j in 0..d {
                a[i][j] += w * phi[i] * phi[j];
            }
            a[i][d] += w * phi[i] * y;
        }
    }
    for c in 0..d {
        let piv = (c..d)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, piv);
        for r in 0..d {
            if r != c {
                let f = a[r][c] / a[c][c];
                for k in c..=d {
                    a[r][k] -= f * a[c][k];
                }
            }
        }
    }
    let mut beta = [0.0; 3];
    for i in 0..d {
        beta[i] = a[i][d] / a[i][i] / scale.powi(i as i32);
    }
    beta
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1.0)
}

fn spec(method: Method, order: u8, forgetting: f64) -> FitSpec {
    FitSpec {
        method,
        order,
        forgetting,
        trace_max: 1e9,
        ..FitSpec::default()
    }
}

/// Irregular times starting with a repeated time, and a polynomial plus noise.
fn irregular_stream(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng(seed);
    let mut ts = vec![0.0, 0.0];
    while ts.len() < n {
        let last = *ts.last().unwrap();
        ts.push(last + 0.25 + 1.5 * rng.uniform());
    }
    let ys = ts
        .iter()
        .map(|&t| 50.0 + 0.3 * t - 0.002 * t * t + 2.0 * rng.normal())
        .collect();
    (ts, ys)
}

// ---------------------------------------------------------------- rls = batch least squares

/// With lambda = 1, RLS (exact warm-up, then recursive steps) equals batch least squares at every
/// record once the model is determined; with lambda < 1 it equals least squares with weights
/// lambda^(age in records). Truth: the normal equations above.
fn check_rls_against_batch(order: u8, lambda: f64) {
    let (ts, ys) = irregular_stream(400, 7 + order as u64);
    let mut f = Fitter::new(spec(Method::Rls, order, lambda)).unwrap();
    let d = order as usize + 1;
    let mut checked = 0;
    for n in 0..ts.len() {
        let step = f.update(ts[n], ys[n], 1.0);
        assert!(step.updated);
        // ts[0] == ts[1], so d distinct times are reached at record d (0-based).
        if n < d {
            continue;
        }
        let ws: Vec<f64> = (0..=n).map(|i| lambda.powi((n - i) as i32)).collect();
        let beta = batch_ls(&ts[..=n], &ys[..=n], &ws, order as usize, ts[n]);
        assert!(
            close(f.level(), beta[0], 1e-9) && close(step.level, beta[0], 1e-9),
            "n={n} level {} vs batch {}",
            f.level(),
            beta[0]
        );
        assert!(
            close(f.slope(), beta[1], 1e-9),
            "n={n} slope {} vs {}",
            f.slope(),
            beta[1]
        );
        assert!(
            close(f.curvature(), beta[2], 1e-9),
            "n={n} curvature {} vs {}",
            f.curvature(),
            beta[2]
        );
        checked += 1;
    }
    assert!(checked > 300);
    assert_eq!(
        f.counts().guards,
        0,
        "the trace guard must not interfere here"
    );
}

#[test]
fn rls_without_forgetting_equals_batch_least_squares_order_1() {
    check_rls_against_batch(1, 1.0);
}

#[test]
fn rls_without_forgetting_equals_batch_least_squares_order_2() {
    check_rls_against_batch(2, 1.0);
}

#[test]
fn rls_with_forgetting_equals_exponentially_weighted_least_squares() {
    check_rls_against_batch(1, 0.95);
    check_rls_against_batch(2, 0.97);
}

#[test]
fn warm_up_interpolates_the_first_points_exactly() {
    // Parabola through (1, 2), (2, 3), (4, 11): y = t² - 2t + 3 → at t = 4 level 11, slope 6.
    let mut f = Fitter::new(spec(Method::SmRls, 2, 0.99)).unwrap();
    f.update(1.0, 2.0, 0.5);
    f.update(2.0, 3.0, 0.5);
    let s = f.update(4.0, 11.0, 0.5);
    assert!(f.is_warm() && s.updated && !s.inside);
    // Before the third point the prediction is the line through the first two: 3 + 1·2 = 5.
    assert!(close(s.predicted, 5.0, 1e-12));
    assert!(close(f.level(), 11.0, 1e-12));
    assert!(close(f.slope(), 6.0, 1e-12));
    assert!(close(f.curvature(), 1.0, 1e-12));
    assert!(close(f.predict(5.0), 18.0, 1e-12));
}

// ---------------------------------------------------------------- zone edge

/// A random-walk level with noise, so that both sides of the zone are visited often.
fn wandering(n: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = Rng(seed);
    let mut level = 100.0;
    (0..n)
        .map(|i| {
            level += 0.3 * rng.normal();
            (i as f64, level + rng.normal())
        })
        .collect()
}

/// After an update of a set-membership fitter the a-posteriori residual is exactly ±eps, with the
/// sign of the a-priori residual (closed form of the BEACON / SM-NLMS step); inside-zone records
/// change nothing.
fn check_zone_edge(method: Method, order: u8) {
    let eps = 1.0;
    let mut f = Fitter::new(spec(method, order, 0.98)).unwrap();
    let mut updates = 0;
    for (i, (t, y)) in wandering(3000, 11).into_iter().enumerate() {
        let before = f.predict(t);
        let s = f.update(t, y, eps);
        if i <= order as usize {
            continue; // warm-up: interpolation, residual 0 afterwards
        }
        let post = y - f.predict(t);
        if s.updated {
            assert!(s.residual.abs() > eps);
            let target = eps * s.residual.signum();
            assert!(
                (post - target).abs() <= 1e-12 * eps,
                "{method:?} record {i}: a-posteriori {post} vs {target}"
            );
            updates += 1;
        } else {
            assert!(s.inside);
            assert_eq!(f.predict(t).to_bits(), before.to_bits());
        }
    }
    assert!(updates > 100, "{method:?}: only {updates} updates");
}

#[test]
fn sm_rls_posterior_residual_is_on_the_zone_edge() {
    check_zone_edge(Method::SmRls, 1);
    check_zone_edge(Method::SmRls, 2);
}

#[test]
fn sm_nlms_posterior_residual_is_on_the_zone_edge() {
    check_zone_edge(Method::SmNlms, 1);
    check_zone_edge(Method::SmNlms, 2);
}

// ---------------------------------------------------------------- bounded noise

/// A line plus uniform noise of half-width h = 0.5 < eps = 1.
///
/// Guaranteed (zone geometry): at every record after warm-up `|y - fit| <= eps` holds after the
/// record (inside, or put on the edge by the update) and `|y - truth| <= h`, so the fitted level
/// is within `eps + h` of the true line at every record. Convergence: the slope error shrinks
/// (< 1e-4 after 20 000 records) and updates become sparse: counts per quarter never increase and
/// the last quarter updates < 1 % of records.
///
/// Not asserted: zero updates in the last half. BEACON puts the fit on the far edge of the
/// triggering record's zone, and barely-outside records add almost no information, so the fit
/// keeps riding the zone edge with rare small updates (measured: 144, 62, 43, 36 updates per
/// quarter) rather than stopping outright.
#[test]
fn sm_rls_converges_on_a_line_with_bounded_noise_and_updates_become_sparse() {
    let (eps, h) = (1.0, 0.5);
    for (forgetting, slope) in [(1.0, 0.05), (0.99, 0.0)] {
        let mut rng = Rng(3);
        let mut f = Fitter::new(spec(Method::SmRls, 1, forgetting)).unwrap();
        let n = 20_000;
        let mut quarters = [0; 4];
        for i in 0..n {
            let t = i as f64;
            let truth = 10.0 + slope * t;
            let s = f.update(t, truth + 2.0 * h * (rng.uniform() - 0.5), eps);
            if s.updated {
                quarters[4 * i / n] += 1;
            }
            if i > 1 {
                assert!(
                    (s.level - truth).abs() <= (eps + h) * (1.0 + 1e-12),
                    "record {i}"
                );
            }
        }
        let truth_end = 10.0 + slope * (n - 1) as f64;
        eprintln!(
            "bounded noise, lambda {forgetting}: updates per quarter {quarters:?}, level error \
             {:.3e}, slope error {:.3e}",
            f.level() - truth_end,
            f.slope() - slope
        );
        assert!((f.slope() - slope).abs() < 1e-4);
        assert!(quarters.windows(2).all(|w| w[1] <= w[0]), "{quarters:?}");
        assert!((quarters[3] as f64) < 0.01 * (n / 4) as f64, "{quarters:?}");
    }
}

// ---------------------------------------------------------------- gaussian noise

/// Gaussian noise sigma = 1 and eps = 2 sigma: a perfect model would see |e| > eps with
/// probability 2Q(2) ≈ 4.55 %; estimation error of the fit adds some. Long-run update rate must be
/// within [2 %, 15 %].
#[test]
fn gaussian_noise_update_rate_is_near_the_two_sided_tail() {
    for (method, slope) in [
        (Method::SmRls, 0.0),
        (Method::SmRls, 0.02),
        (Method::SmNlms, 0.0),
        (Method::SmNlms, 0.02),
    ] {
        let mut rng = Rng(42);
        let mut f = Fitter::new(spec(method, 1, 0.99)).unwrap();
        let (burn, n) = (2_000, 50_000);
        let mut late = 0;
        let mut late_inside = 0;
        for i in 0..n {
            let t = i as f64;
            let s = f.update(t, 5.0 + slope * t + rng.normal(), 2.0);
            if i >= burn {
                late += s.updated as u32;
                late_inside += s.inside as u32;
            }
        }
        let rate = late as f64 / (n - burn) as f64;
        eprintln!(
            "{method:?} slope {slope}: update rate {:.2} % after burn-in ({:.2} % overall), \
             dead-zone ratio {:.2} %",
            100.0 * rate,
            100.0 * f.counts().update_rate(),
            100.0 * late_inside as f64 / (n - burn) as f64
        );
        assert!((0.02..=0.15).contains(&rate), "{method:?}: rate {rate}");
        assert_eq!(late + late_inside, (n - burn) as u32);
    }
}

// ---------------------------------------------------------------- spike

/// One 20-sigma spike after a long Gaussian stretch (sigma = 1, eps = 2, lambda = 0.99, order 1).
///
/// Closed forms, with G = P₁₁ after moving the origin to the spike (the a-priori variance factor
/// of the level, `G = P₁₁ + 2·dt·P₁₂ + dt²·P₂₂` from the state before the spike):
/// * rls moves the level by `g·e`, `g = G/(λ + G)`; checked against batch exponentially weighted
///   least squares with and without the spike (independent of the recursion).
/// * robust_rls takes one weighted step, `w = weight(e, eps)/2`, and moves `e·wG/(λ + wG)`,
///   which is `≤ w·e·G/λ`: for the hybrid well (knee 3) at |e| ≈ 10 eps, w = (1/16)/(2·10) ≈ 1/320,
///   for the Gaussian well w = e^-50. Both must move far less than rls (asserted: < rls/5).
/// * sm_rls is *not* spike-resistant: its step puts the a-posteriori error on the zone edge, so
///   the level moves by exactly `|e| - eps`, whatever P is — the spike is followed to within eps,
///   far more than rls's `g·e`. We assert that closed form (and that it exceeds the rls move).
#[test]
fn one_spike_moves_robust_rls_far_less_than_rls_and_sm_rls_to_the_zone_edge() {
    let (sigma, eps, lambda, n) = (1.0, 2.0, 0.99, 600);
    let mut rng = Rng(5);
    let ts: Vec<f64> = (0..=n).map(|i| i as f64).collect();
    let mut ys: Vec<f64> = (0..n).map(|_| 20.0 + sigma * rng.normal()).collect();
    let spike_y = 20.0 + 20.0 * sigma;
    ys.push(spike_y);
    let t_spike = ts[n];

    // Returns G (see above) from the state before the spike, and the spike's step.
    let run = |spec: FitSpec| -> (f64, Step) {
        let mut f = Fitter::new(spec).unwrap();
        for i in 0..n {
            f.update(ts[i], ys[i], eps);
        }
        let (p, dt) = (f.covariance(), t_spike - f.origin());
        let g = p[0][0] + 2.0 * dt * p[0][1] + dt * dt * p[1][1];
        (g, f.update(t_spike, spike_y, eps))
    };
    let moved = |s: &Step| s.level - s.predicted;

    // rls, against batch weighted least squares with and without the spike.
    let (g_rls, s_rls) = run(spec(Method::Rls, 1, lambda));
    let ws: Vec<f64> = (0..=n).map(|i| lambda.powi((n - i) as i32)).collect();
    let with = batch_ls(&ts, &ys, &ws, 1, t_spike);
    let without = batch_ls(&ts[..n], &ys[..n], &ws[1..], 1, t_spike);
    let rls_move = moved(&s_rls);
    assert!(close(s_rls.predicted, without[0], 1e-9));
    assert!(close(rls_move, with[0] - without[0], 1e-9));
    assert!(close(
        rls_move,
        s_rls.residual * g_rls / (lambda + g_rls),
        1e-9
    ));
    assert!(s_rls.residual > 15.0);

    // robust_rls with bounded-influence wells.
    for well in [Well::Hybrid { knee: 3.0 }, Well::Gaussian { scale: 1.0 }] {
        let (g, s) = run(FitSpec {
            well,
            ..spec(Method::RobustRls, 1, lambda)
        });
        let e = s.residual;
        let w = well.weight(e, eps) / 2.0;
        assert!(e > 15.0 && w < 1.0 / 200.0, "{}: e {e}, w {w}", well.name());
        let exact = e * w * g / (lambda + w * g);
        eprintln!(
            "spike: rls moved {rls_move:.4}, robust {} moved {:.3e} (closed form {exact:.3e}, \
             bound w·e·G/λ {:.3e})",
            well.name(),
            moved(&s),
            w * e * g / lambda
        );
        assert!((moved(&s) - exact).abs() <= 1e-9 * rls_move);
        assert!(moved(&s).abs() <= w * e.abs() * g / lambda * (1.0 + 1e-12));
        assert!(moved(&s).abs() < rls_move / 5.0);
    }

    // sm_rls: exactly |e| - eps toward the spike.
    let (_, s) = run(spec(Method::SmRls, 1, lambda));
    assert!(close(moved(&s), s.residual - eps, 1e-12));
    eprintln!("spike: sm_rls moved {:.4} (= |e| - eps)", moved(&s));
    assert!(moved(&s) > rls_move);
}

/// The sm_nlms step direction equals the steady-state gain of discounted least squares at unit
/// spacing, computed here from the normal equations of a long history (independent of the
/// closed form used by the fitter).
#[test]
fn sm_nlms_moves_along_the_steady_state_discounted_least_squares_gain() {
    for (order, lambda) in [(1u8, 0.9_f64), (1, 0.99), (2, 0.9), (2, 0.97)] {
        let d = order as usize + 1;
        // First column of the inverse of R = Σ λ^k φ_k φ_kᵀ, φ_k = (1, -k, k²).
        // Truncated where λ^k < 1e-40.
        let len = (40.0 * 10f64.ln() / -lambda.ln()).ceil() as usize;
        let ks: Vec<f64> = (0..len).map(|k| k as f64).collect();
        let ys = vec![0.0; ks.len()];
        let ws: Vec<f64> = ks.iter().map(|&k| lambda.powf(k)).collect();
        let neg: Vec<f64> = ks.iter().map(|k| -k).collect();
        // Solving R x = e1 is a weighted LS fit to data that is 1 at k = 0 and 0 elsewhere.
        let mut unit = ys.clone();
        unit[0] = 1.0;
        let gain = batch_ls(&neg, &unit, &ws, order as usize, 0.0);
        let mut f = Fitter::new(spec(Method::SmNlms, order, lambda)).unwrap();
        for i in 0..d {
            f.update(i as f64, 0.0, 1.0);
        }
        let t = d as f64 + 0.0;
        let (theta, origin) = (f.theta(), f.origin());
        let slope_before = theta[1] + 2.0 * theta[2] * (t - origin);
        let s = f.update(t, 10.0, 1.0);
        assert!(s.updated);
        let dl = s.level - s.predicted;
        assert!(close(dl, 9.0, 1e-12));
        assert!(close(
            (s.slope - slope_before) / dl,
            gain[1] / gain[0],
            1e-9
        ));
        assert!(close(
            (f.curvature() - theta[2]) / dl,
            gain[2] / gain[0],
            1e-9
        ));
    }
}

// ---------------------------------------------------------------- robust = rls for L2

#[test]
fn robust_rls_with_quadratic_well_is_rls_bit_for_bit() {
    for order in [1u8, 2] {
        let mut a = Fitter::new(spec(Method::Rls, order, 0.97)).unwrap();
        let mut b = Fitter::new(FitSpec {
            well: Well::Quadratic,
            ..spec(Method::RobustRls, order, 0.97)
        })
        .unwrap();
        let mut rng = Rng(9);
        for i in 0..2000 {
            let y = 3.0 * rng.normal() + if i % 97 == 0 { 50.0 } else { 0.0 };
            let t = i as f64 * 0.7;
            let (sa, sb) = (a.update(t, y, 1.0), b.update(t, y, 1.0));
            assert_eq!(sa, sb);
            assert_eq!(a.theta(), b.theta());
            assert_eq!(a.covariance(), b.covariance());
        }
        assert_eq!(a.counts(), b.counts());
    }
}

// ---------------------------------------------------------------- guards

/// Records that repeat one time carry no information about slope and curvature, so with
/// forgetting those directions of P grow by 1/λ per record (windup); the guard must cap the trace.
#[test]
fn trace_guard_bounds_p() {
    for guard in [TraceGuard::Reset, TraceGuard::Scale] {
        let s = FitSpec {
            trace_max: 50.0,
            p0: 10.0,
            trace_guard: guard,
            ..spec(Method::Rls, 2, 0.8)
        };
        let mut f = Fitter::new(s).unwrap();
        for i in 0..3 {
            f.update(i as f64, i as f64, 1.0);
        }
        let mut max_trace: f64 = 0.0;
        for i in 0..100 {
            f.update(2.0, (i % 3) as f64, 1.0);
            let p = f.covariance();
            let trace = p[0][0] + p[1][1] + p[2][2];
            max_trace = max_trace.max(trace);
            assert!(trace <= 50.0 * (1.0 + 1e-12), "{guard:?}: trace {trace}");
        }
        // Without the guard the trace would have grown by about 0.8^-100.
        assert!(max_trace > 25.0, "{guard:?}: {max_trace}");
        assert!(f.counts().guards > 0, "{guard:?}: guard never acted");
    }
}

#[test]
fn leak_keeps_sm_rls_moving_inside_the_zone() {
    let mut pure = Fitter::new(spec(Method::SmRls, 1, 0.99)).unwrap();
    let mut leaky = Fitter::new(FitSpec {
        leak: 0.05,
        ..spec(Method::SmRls, 1, 0.99)
    })
    .unwrap();
    // Start at 0, then sit at 0.8 inside the zone (eps = 1) for a long time.
    for i in 0..2 {
        pure.update(i as f64, 0.0, 1.0);
        leaky.update(i as f64, 0.0, 1.0);
    }
    for i in 2..500 {
        let (a, b) = (
            pure.update(i as f64, 0.8, 1.0),
            leaky.update(i as f64, 0.8, 1.0),
        );
        assert!(a.inside && !a.updated && !b.updated);
    }
    assert_eq!(pure.level(), 0.0);
    // The leak pulls toward the data like a slow weighted least squares.
    assert!((leaky.level() - 0.8).abs() < 0.05, "{}", leaky.level());
    assert_eq!(leaky.counts().updates, 2);
}

// ---------------------------------------------------------------- validation and config

#[test]
fn invalid_parameters_are_named() {
    let bad = [
        (
            FitSpec {
                order: 3,
                ..FitSpec::default()
            },
            "order",
        ),
        (
            FitSpec {
                order: 0,
                ..FitSpec::default()
            },
            "order",
        ),
        (
            FitSpec {
                forgetting: 0.0,
                ..FitSpec::default()
            },
            "forgetting",
        ),
        (
            FitSpec {
                forgetting: 1.01,
                ..FitSpec::default()
            },
            "forgetting",
        ),
        (
            FitSpec {
                forgetting: f64::NAN,
                ..FitSpec::default()
            },
            "forgetting",
        ),
        (
            FitSpec {
                p0: 0.0,
                ..FitSpec::default()
            },
            "p0",
        ),
        (
            FitSpec {
                trace_max: f64::INFINITY,
                ..FitSpec::default()
            },
            "trace_max",
        ),
        (
            FitSpec {
                trace_guard: TraceGuard::Reset,
                p0: 1e6,
                ..FitSpec::default()
            },
            "trace_max",
        ),
        (
            FitSpec {
                leak: -0.1,
                ..FitSpec::default()
            },
            "leak",
        ),
        (
            FitSpec {
                well: Well::Hybrid { knee: 0.5 },
                ..FitSpec::default()
            },
            "knee",
        ),
    ];
    for (s, param) in bad {
        let err = Fitter::new(s).unwrap_err();
        assert_eq!(err.param, param, "{s:?}");
    }
    assert!(FitSpec::default().validate().is_ok());
}

#[test]
fn spec_reads_snake_case_names_with_defaults_and_rejects_unknown_keys() {
    let s: FitSpec = serde_json::from_str(
        r#"{"method": "robust_rls", "order": 2, "well": {"well": "huber", "threshold": 2.0}}"#,
    )
    .unwrap();
    assert_eq!(s.method, Method::RobustRls);
    assert_eq!(s.order, 2);
    assert_eq!(s.well, Well::Huber { threshold: 2.0 });
    assert_eq!(s.forgetting, FitSpec::default().forgetting);
    for (name, m) in [
        ("rls", Method::Rls),
        ("sm_rls", Method::SmRls),
        ("sm_nlms", Method::SmNlms),
    ] {
        let s: FitSpec = serde_json::from_str(&format!(r#"{{"method": "{name}"}}"#)).unwrap();
        assert_eq!(s.method, m);
    }
    assert!(serde_json::from_str::<FitSpec>(r#"{"lamda": 0.9}"#).is_err());
    let g: FitSpec = serde_json::from_str(r#"{"trace_guard": "reset"}"#).unwrap();
    assert_eq!(g.trace_guard, TraceGuard::Reset);
}

// ---------------------------------------------------------------- snapshots

#[test]
fn serde_round_trip_mid_stream_continues_bit_for_bit() {
    let data = wandering(800, 21);
    for method in [
        Method::Rls,
        Method::SmRls,
        Method::SmNlms,
        Method::RobustRls,
    ] {
        for order in [1u8, 2] {
            for cut in [1usize, 400] {
                let s = FitSpec {
                    well: Well::Hybrid { knee: 3.0 },
                    leak: 0.01,
                    ..spec(method, order, 0.98)
                };
                let mut a = Fitter::new(s).unwrap();
                for &(t, y) in &data[..cut] {
                    a.update(t * 0.37, y, 0.8);
                }
                let json = serde_json::to_string(&a).unwrap();
                let mut b: Fitter = serde_json::from_str(&json).unwrap();
                assert_eq!(a, b, "{method:?}: restored state differs");
                for &(t, y) in &data[cut..] {
                    let (sa, sb) = (a.update(t * 0.37, y, 0.8), b.update(t * 0.37, y, 0.8));
                    assert_eq!(sa.level.to_bits(), sb.level.to_bits());
                    assert_eq!(sa, sb);
                }
                assert_eq!(a, b);
            }
        }
    }
}

// ---------------------------------------------------------------- properties

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Rls),
        Just(Method::SmRls),
        Just(Method::SmNlms),
        Just(Method::RobustRls)
    ]
}

fn any_well() -> impl Strategy<Value = Well> {
    prop_oneof![
        Just(Well::DeadZone),
        Just(Well::Quadratic),
        Just(Well::Hybrid { knee: 3.0 }),
        Just(Well::Gaussian { scale: 1.0 }),
        Just(Well::SquareWell {
            depth: 1.0,
            sharpness: 0.1
        }),
        Just(Well::Huber { threshold: 1.345 }),
    ]
}

/// Finite values spanning tiny to huge magnitudes, zeros included.
fn wild() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e3..1e3_f64,
        Just(0.0),
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
    ]
}

fn spec_strategy() -> impl Strategy<Value = FitSpec> {
    (
        any_method(),
        1u8..=2,
        prop_oneof![Just(1.0), 0.5..1.0_f64],
        prop_oneof![Just(0.0), 0.0..0.2_f64],
        any_well(),
        prop_oneof![Just(TraceGuard::Reset), Just(TraceGuard::Scale)],
    )
        .prop_map(
            |(method, order, forgetting, leak, well, trace_guard)| FitSpec {
                method,
                order,
                forgetting,
                leak,
                well,
                trace_guard,
                ..FitSpec::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_nan_on_finite_input(
        s in spec_strategy(),
        recs in prop::collection::vec((wild(), wild(), wild()), 1..60),
    ) {
        let mut f = Fitter::new(s).unwrap();
        for (i, &(dt, y, eps)) in recs.iter().enumerate() {
            // Times: duplicates, backwards steps and huge jumps all occur.
            let t = if i % 5 == 1 { 0.0 } else { dt };
            let st = f.update(t, y, eps);
            for v in [st.predicted, st.residual, st.level, st.slope] {
                prop_assert!(!v.is_nan(), "{st:?} at record {i}");
            }
            for v in [f.level(), f.slope(), f.curvature(), f.predict(t + 1.0)] {
                prop_assert!(!v.is_nan());
            }
            prop_assert!(f.theta().iter().all(|v| v.is_finite()));
            prop_assert!(f.covariance().iter().flatten().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn inside_zone_set_membership_records_change_nothing(
        method in prop_oneof![Just(Method::SmRls), Just(Method::SmNlms)],
        order in 1u8..=2,
        eps in 0.1..5.0_f64,
        recs in prop::collection::vec((0.0..3.0_f64, -10.0..10.0_f64), 5..120),
    ) {
        let mut f = Fitter::new(spec(method, order, 0.95)).unwrap();
        let mut t = 0.0;
        for &(dt, y) in &recs {
            t += dt;
            let (theta, p, origin) = (f.theta(), f.covariance(), f.origin());
            let warm = f.is_warm();
            let st = f.update(t, y, eps);
            if warm && st.inside {
                prop_assert!(!st.updated);
                prop_assert_eq!(theta.map(f64::to_bits), f.theta().map(f64::to_bits));
                prop_assert_eq!(p.map(|r| r.map(f64::to_bits)), f.covariance().map(|r| r.map(f64::to_bits)));
                prop_assert_eq!(origin.to_bits(), f.origin().to_bits());
            }
        }
    }

    #[test]
    fn counts_match_the_steps(
        s in spec_strategy(),
        recs in prop::collection::vec((0.0..3.0_f64, -10.0..10.0_f64, 0.1..5.0_f64), 1..120),
    ) {
        let mut f = Fitter::new(s).unwrap();
        let (mut t, mut updates, mut inside) = (0.0, 0u64, 0u64);
        for &(dt, y, eps) in &recs {
            t += dt;
            let st = f.update(t, y, eps);
            updates += st.updated as u64;
            inside += st.inside as u64;
            if s.method == Method::Rls {
                prop_assert!(st.updated);
            }
            if matches!(s.method, Method::SmRls | Method::SmNlms) && f.is_warm() {
                // A set-membership record is either inside the zone or an update, never both.
                prop_assert!(st.inside != st.updated, "{st:?}");
            }
        }
        // Non-finite records are not counted.
        f.update(f64::NAN, 1.0, 1.0);
        f.update(1.0, f64::INFINITY, 1.0);
        let c = f.counts();
        prop_assert_eq!(c.records, recs.len() as u64);
        prop_assert_eq!(c.updates, updates);
        prop_assert_eq!(c.inside, inside);
        prop_assert!((c.update_rate() - updates as f64 / recs.len() as f64).abs() < 1e-15);
        prop_assert!((c.dead_zone_ratio() - inside as f64 / recs.len() as f64).abs() < 1e-15);
    }
}
