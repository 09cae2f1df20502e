//! Properties of every loss shape: zero at zero, non-negative, even, psi = d rho/dr (checked by
//! finite differences), finite IRLS weight, the exact dead zone, and continuity at the zone edge.

use deadband::zone::well::Well;
use proptest::prelude::*;

/// Every shape, with defaults and with non-default parameters.
fn all_wells() -> Vec<Well> {
    vec![
        Well::Quadratic,
        Well::DeadZone,
        Well::SoftDeadZone { softness: 0.1 },
        Well::SoftDeadZone { softness: 0.5 },
        Well::SquareWell {
            depth: 1.0,
            sharpness: 0.1,
        },
        Well::SquareWell {
            depth: 4.0,
            sharpness: 0.3,
        },
        Well::Gaussian { scale: 1.0 },
        Well::Gaussian { scale: 2.5 },
        Well::Reciprocal { scale: 1.0 },
        Well::Log { scale: 1.0 },
        Well::Log { scale: 0.5 },
        Well::Huber { threshold: 1.345 },
        Well::Hybrid { knee: 3.0 },
        Well::Hybrid { knee: 1.5 },
    ]
}

/// Central finite difference of rho, step relative to the problem's length scale.
fn fd_psi(w: &Well, r: f64, eps: f64) -> f64 {
    let h = 1e-6 * eps;
    (w.rho(r + h, eps) - w.rho(r - h, eps)) / (2.0 * h)
}

#[test]
fn every_shape_validates_and_has_a_name() {
    for w in all_wells() {
        w.validate().unwrap();
        assert!(!w.name().is_empty());
    }
    assert!(Well::Hybrid { knee: 1.0 }.validate().is_err());
    assert!(Well::SoftDeadZone { softness: 0.0 }.validate().is_err());
    assert!(Well::Gaussian { scale: f64::NAN }.validate().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rho_is_zero_at_zero_nonnegative_and_even(u in -30.0f64..30.0, log_eps in -3.0f64..3.0) {
        let eps = 10f64.powf(log_eps);
        let r = u * eps;
        for w in all_wells() {
            prop_assert_eq!(w.rho(0.0, eps), 0.0, "{:?}", w);
            let a = w.rho(r, eps);
            prop_assert!(a >= 0.0 && a.is_finite(), "{:?} rho({}) = {}", w, r, a);
            prop_assert_eq!(a, w.rho(-r, eps), "{:?} not even", w);
            prop_assert_eq!(w.psi(r, eps), -w.psi(-r, eps), "{:?} psi not odd", w);
        }
    }

    #[test]
    fn psi_is_the_derivative_of_rho(u in -30.0f64..30.0, log_eps in -3.0f64..3.0) {
        let eps = 10f64.powf(log_eps);
        let r = u * eps;
        for w in all_wells() {
            let psi = w.psi(r, eps);
            let fd = fd_psi(&w, r, eps);
            // psi is of order eps·|u|; the finite difference errs by O(h²·rho''') + round-off.
            let tol = 1e-5 * eps * (1.0 + u.abs());
            prop_assert!((psi - fd).abs() <= tol, "{:?} at r={} eps={}: psi={} fd={}", w, r, eps, psi, fd);
        }
    }

    #[test]
    fn weight_is_finite_and_equals_psi_over_r(u in -30.0f64..30.0, log_eps in -3.0f64..3.0) {
        let eps = 10f64.powf(log_eps);
        let r = u * eps;
        for w in all_wells() {
            let wt = w.weight(r, eps);
            prop_assert!(wt.is_finite() && wt >= 0.0, "{:?} weight({}) = {}", w, r, wt);
            if u.abs() > 1e-6 {
                let expect = w.psi(r, eps) / r;
                prop_assert!((wt - expect).abs() <= 1e-9 * (1.0 + expect.abs()), "{:?}: {} vs {}", w, wt, expect);
            }
        }
    }

    #[test]
    fn dead_zone_costs_exactly_nothing_inside(u in -1.0f64..=1.0, log_eps in -6.0f64..6.0) {
        let eps = 10f64.powf(log_eps);
        let r = u * eps;
        for w in [Well::DeadZone, Well::Hybrid { knee: 3.0 }] {
            prop_assert_eq!(w.rho(r, eps), 0.0);
            prop_assert_eq!(w.psi(r, eps), 0.0);
            prop_assert_eq!(w.weight(r, eps), 0.0);
        }
    }

    #[test]
    fn dead_zone_is_quadratic_in_the_excess_outside(u in 1.0f64..50.0, log_eps in -3.0f64..3.0) {
        let eps = 10f64.powf(log_eps);
        let r = u * eps;
        let d = r - eps;
        let rho = Well::DeadZone.rho(r, eps);
        prop_assert!((rho - d * d).abs() <= 1e-12 * d * d + f64::MIN_POSITIVE);
    }
}

/// At r = 0 the weight is taken as a limit: it must join the psi/r values continuously.
#[test]
fn weight_is_continuous_at_zero() {
    let eps = 0.7;
    for w in all_wells() {
        let w0 = w.weight(0.0, eps);
        for r in [1e-7 * eps, 1e-5 * eps, -1e-6 * eps] {
            let wr = w.psi(r, eps) / r;
            assert!(
                (w0 - wr).abs() <= 1e-6 * (1.0 + w0.abs()),
                "{w:?}: weight(0)={w0}, psi/r at {r} = {wr}"
            );
        }
    }
}

/// Soft shapes are C1 at the zone edge: psi just inside equals psi just outside.
#[test]
fn psi_is_continuous_at_the_zone_edge() {
    let eps: f64 = 1.3;
    for w in all_wells() {
        for edge in [eps, -eps] {
            for h in [1e-4, 1e-6, 1e-8] {
                let inner = w.psi(edge - edge.signum() * h * eps, eps);
                let outer = w.psi(edge + edge.signum() * h * eps, eps);
                // a C1 loss has |psi jump| = O(h·max rho'') -> 0 with h.
                assert!(
                    (inner - outer).abs() <= 50.0 * h * eps,
                    "{w:?} jumps at {edge}: {inner} vs {outer}"
                );
            }
        }
    }
    // The hybrid's knee is the other place where two pieces meet.
    let w = Well::Hybrid { knee: 3.0 };
    let knee = 3.0 * eps;
    let jump = w.psi(knee + 1e-9, eps) - w.psi(knee - 1e-9, eps);
    assert!(jump.abs() < 1e-6, "hybrid psi jumps at the knee by {jump}");
}

/// Shapes with a quadratic bottom are scaled to rho ≈ r² near zero (module convention).
#[test]
fn quadratic_bottoms_match_l2_near_zero() {
    let eps = 2.0;
    let r = 1e-3;
    for w in [
        Well::Gaussian { scale: 1.0 },
        Well::Reciprocal { scale: 1.0 },
        Well::Log { scale: 1.0 },
        Well::Huber { threshold: 1.345 },
    ] {
        let ratio = w.rho(r, eps) / (r * r);
        assert!((ratio - 1.0).abs() < 1e-6, "{w:?}: rho/r² = {ratio}");
    }
}

/// Huber's closed form: linear tail 2c|r| - c² beyond c = 1.345·eps.
#[test]
fn huber_matches_its_closed_form() {
    let eps = 1.0;
    let w = Well::Huber { threshold: 1.345 };
    let c = 1.345;
    assert_eq!(w.rho(1.0, eps), 1.0);
    assert!((w.rho(5.0, eps) - (2.0 * c * 5.0 - c * c)).abs() < 1e-12);
    assert!((w.weight(5.0, eps) - 2.0 * c / 5.0).abs() < 1e-12);
}

/// Redescending and plateauing shapes: bounded loss, influence -> 0 for gross outliers.
#[test]
fn bounded_shapes_plateau() {
    let eps = 1.0;
    let cases = [
        (
            Well::SquareWell {
                depth: 2.0,
                sharpness: 0.1,
            },
            2.0,
        ),
        (Well::Gaussian { scale: 1.0 }, 2.0),
        (Well::Reciprocal { scale: 1.0 }, 1.0),
        (Well::Hybrid { knee: 3.0 }, 2.0 * 2.0 * 2.0),
    ];
    for (w, plateau) in cases {
        let far = w.rho(1e6, eps);
        assert!(
            (far - plateau).abs() < 1e-4 * plateau,
            "{w:?}: rho(1e6) = {far}, expected plateau {plateau}"
        );
        assert!(w.psi(1e6, eps).abs() < 1e-4, "{w:?} still pulls at 1e6");
    }
}

/// The soft dead zone tends to the hard one as softness -> 0.
#[test]
fn soft_dead_zone_converges_to_dead_zone() {
    let eps = 1.0;
    for r in [0.0, 0.5, 0.99, 1.5, 3.0, -4.0] {
        let hard = Well::DeadZone.rho(r, eps);
        let soft = Well::SoftDeadZone { softness: 1e-3 }.rho(r, eps);
        assert!((soft - hard).abs() < 5e-3, "r={r}: soft {soft} hard {hard}");
    }
}

#[test]
fn wells_parse_from_toml_by_name() {
    #[derive(serde::Deserialize)]
    struct Z {
        #[serde(flatten)]
        well: Well,
    }
    let z: Z = toml::from_str("well = \"soft_dead_zone\"\nsoftness = 0.2").unwrap();
    assert_eq!(z.well, Well::SoftDeadZone { softness: 0.2 });
    let z: Z = toml::from_str("well = \"huber\"").unwrap();
    assert_eq!(z.well, Well::Huber { threshold: 1.345 });
    assert!(toml::from_str::<Well>("well = \"huber\"\nsoftnes = 1.0").is_err());
}

/// `param_names` lists exactly the keys serde reads for each shape (the configuration refuses
/// any other key next to `well`), and every listed key is really read.
#[test]
fn param_names_are_the_keys_each_shape_reads() {
    for w in all_wells() {
        let bare: Well = toml::from_str(&format!("well = \"{}\"", w.name())).unwrap();
        assert_eq!(bare.param_names(), w.param_names(), "{w:?}");
        for p in w.param_names() {
            let src = format!("well = \"{}\"\n{p} = 7.0", w.name());
            let set: Well = toml::from_str(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_ne!(set, bare, "`{p}` of {} is not read", w.name());
        }
        let src = format!("well = \"{}\"\nnot_a_param = 1.0", w.name());
        if !w.param_names().is_empty() {
            assert!(toml::from_str::<Well>(&src).is_err(), "{src}");
        }
    }
}

/// Snapshots write the gaussian/reciprocal/log length as `scale` and read it back under
/// either name.
#[test]
fn width_is_read_as_scale_and_snapshots_keep_scale() {
    let w = Well::Gaussian { scale: 2.5 };
    let json = serde_json::to_string(&w).unwrap();
    assert_eq!(json, r#"{"well":"gaussian","scale":2.5}"#);
    assert_eq!(serde_json::from_str::<Well>(&json).unwrap(), w);
    let z: Well = toml::from_str("well = \"gaussian\"\nwidth = 2.5").unwrap();
    assert_eq!(z, w);
}
