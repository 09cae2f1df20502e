//! Configuration: shipped examples validate; errors name file:line:col, the key and the fix;
//! per-key overrides merge over the global settings.

use std::path::Path;

use deadband::config::{parse, parse_with, ConfigError};
use deadband::run::grr::StudyFiles;
use deadband::zone::fit::Method;
use deadband::zone::scale::ScaleSpec;
use deadband::zone::well::Well;

fn err(src: &str) -> ConfigError {
    parse(src, Path::new("run.toml")).expect_err("config should be refused")
}

const MINIMAL: &str = "[input]\npath = \"x.parquet\"\n";

#[test]
fn every_shipped_config_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir("config").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            // As `deadband validate` reads it: gauge studies from disk.
            deadband::config::load_with(&path, &StudyFiles).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2, "expected the shipped example configs, found {n}");
}

#[test]
fn minimal_config_takes_documented_defaults() {
    let c = parse(MINIMAL, Path::new("run.toml")).unwrap();
    let p = &c.processor.defaults;
    assert_eq!(p.fit.method, Method::SmRls);
    assert_eq!(p.fit.well, Well::DeadZone);
    assert!(matches!(p.scale, ScaleSpec::Atr { period: 14, .. }));
    assert!(p.spc.is_none(), "SPC runs on measurement streams only");
}

#[test]
fn unknown_key_names_line_column_and_the_closest_valid_key() {
    let e = err("[input]\npath = \"x\"\n\n[fit]\nmethod = \"rls\"\nforgeting = 0.9\n");
    assert_eq!(e.at, Some((6, 1)), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("run.toml:6:1:"), "{text}");
    assert!(text.contains("forgeting"), "{text}");
    assert!(text.contains("did you mean `forgetting`"), "{text}");
}

#[test]
fn unknown_variant_suggests_the_valid_name() {
    let e = err("[input]\npath = \"x\"\n[fit]\nmethod = \"sm_rsl\"\n");
    assert_eq!(e.at.map(|a| a.0), Some(4), "{e}");
    assert!(e.to_string().contains("did you mean `sm_rls`"), "{e}");
}

#[test]
fn wrong_type_is_located() {
    let e = err("[input]\npath = \"x\"\n[signal]\nhorizon = \"ten\"\n");
    assert_eq!(e.at.map(|a| a.0), Some(4), "{e}");
}

#[test]
fn out_of_range_value_points_at_its_key_and_says_why() {
    let e = err("[input]\npath = \"x\"\n[fit]\norder = 1\nforgetting = 1.5\n");
    assert_eq!(e.at, Some((5, 1)), "{e}");
    let t = e.to_string();
    assert!(t.contains("[fit]") && t.contains("forgetting"), "{t}");

    let e = err("[input]\npath = \"x\"\n[zone.scale]\nkind = \"atr\"\nperiod = 0\n");
    assert_eq!(e.at, Some((5, 1)), "{e}");
    assert!(e.to_string().contains("period"), "{e}");
}

#[test]
fn well_parameters_that_do_not_apply_are_refused() {
    let e = err("[input]\npath = \"x\"\n[zone]\nwell = \"huber\"\nsoftness = 0.2\n");
    assert_eq!(e.at, Some((5, 1)), "{e}");
    assert!(
        e.to_string().contains("threshold"),
        "lists the huber's own parameter: {e}"
    );
}

#[test]
fn wells_are_read_by_shape_with_their_parameters() {
    let c = parse(
        "[input]\npath = \"x\"\n[fit]\nmethod = \"robust_rls\"\n[zone]\nwell = \"gaussian\"\nwidth = 2.0\n",
        Path::new("run.toml"),
    )
    .unwrap();
    assert_eq!(c.processor.defaults.fit.well, Well::Gaussian { scale: 2.0 });
    let c = parse(
        "[input]\npath = \"x\"\n[fit]\nmethod = \"robust_rls\"\n[zone]\nwell = \"huber\"\n[keys.\"ES\".zone]\nthreshold = 2.0\n",
        Path::new("run.toml"),
    )
    .unwrap();
    assert_eq!(
        c.processor.defaults.fit.well,
        Well::Huber { threshold: 1.345 }
    );
    assert_eq!(
        c.processor.params_for("ES").fit.well,
        Well::Huber { threshold: 2.0 }
    );
}

#[test]
fn bad_wells_name_the_valid_shapes_and_the_key_at_fault() {
    let e = err("[input]\npath = \"x\"\n[zone]\nwell = \"hubr\"\n");
    assert_eq!(e.at, Some((4, 1)), "{e}");
    let t = e.to_string();
    assert!(
        t.contains("did you mean `huber`") && t.contains("soft_dead_zone"),
        "{t}"
    );

    let e = err("[input]\npath = \"x\"\n[zone]\nwell = \"huber\"\nthreshold = \"big\"\n");
    assert_eq!(e.at, Some((5, 1)), "{e}");
    assert!(e.to_string().contains("`threshold`"), "{e}");

    let e = err("[input]\npath = \"x\"\n[zone]\nwell = \"gaussian\"\nwidth = -1.0\n");
    assert_eq!(e.at, Some((5, 1)), "{e}");
    assert!(e.to_string().contains("`width`"), "{e}");

    // A misspelt [zone] key is refused too, with the closest name.
    let e = err("[input]\npath = \"x\"\n[zone]\nflor = 1e-6\n");
    assert_eq!(e.at, Some((4, 1)), "{e}");
    assert!(e.to_string().contains("did you mean `floor`"), "{e}");
}

#[test]
fn per_key_override_merges_over_the_global_tables() {
    let src = r#"
[input]
path = "x"
[zone.scale]
kind = "atr"
period = 20
multiplier = 2.0
[signal]
cost_bps = 1.0
[keys."ES".zone.scale]
multiplier = 3.0
[keys."ES".signal]
cost_bps = 7.5
"#;
    let c = parse(src, Path::new("run.toml")).unwrap();
    let es = c.processor.params_for("ES");
    let other = c.processor.params_for("NQ");
    assert_eq!(es.book.cost_bps, 7.5);
    assert_eq!(other.book.cost_bps, 1.0);
    // period comes from the global table, multiplier from the override.
    assert!(
        matches!(es.scale, ScaleSpec::Atr { period: 20, multiplier, .. } if multiplier == 3.0),
        "{:?}",
        es.scale
    );
    assert!(
        matches!(other.scale, ScaleSpec::Atr { period: 20, multiplier, .. } if multiplier == 2.0)
    );
}

#[test]
fn bad_value_in_a_key_override_names_the_key_table() {
    let src = "[input]\npath = \"x\"\n[keys.\"ES\".fit]\nforgetting = 2.0\n";
    let e = err(src);
    let t = e.to_string();
    assert!(t.contains("keys.\"ES\".fit"), "{t}");
    assert_eq!(e.at.map(|a| a.0), Some(4), "{t}");
    let e = err("[input]\npath = \"x\"\n[keys.\"ES\".fit]\nforgeting = 0.9\n");
    assert!(e.to_string().contains("did you mean `forgetting`"), "{e}");
}

/// sigma_GRR read from a study file equals the AIAG MSA 4th ed. ANOVA result for that study
/// (GRR = 0.3024, interaction pooled; see tests/data/aiag_msa4_grr.md).
#[test]
fn grr_scale_reads_sigma_from_a_study_file() {
    let src = "[input]\npath = \"x\"\nrecord = \"measurement\"\n[zone.scale]\nkind = \"grr\"\nstudy = \"data/aiag_msa4_grr.csv\"\nmultiplier = 1.0\n";
    let c = parse_with(src, Path::new("tests/run.toml"), &StudyFiles).unwrap();
    match c.processor.defaults.scale {
        ScaleSpec::Grr { sigma, .. } => assert!((sigma - 0.3024).abs() < 5e-4, "sigma {sigma}"),
        ref s => panic!("{s:?}"),
    }
    let e = parse_with(
        "[input]\npath = \"x\"\n[zone.scale]\nkind = \"grr\"\nstudy = \"nope.csv\"\n",
        Path::new("tests/run.toml"),
        &StudyFiles,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope.csv"), "{e}");
    assert_eq!(e.at.map(|a| a.0), Some(5), "{e}");
}

/// `parse` reads no files: a study is refused at its key, naming the entry point that reads it.
#[test]
fn parse_without_a_study_reader_refuses_a_study_at_its_key() {
    let e = err("[input]\npath = \"x\"\n[zone.scale]\nkind = \"grr\"\nstudy = \"g.csv\"\n");
    assert_eq!(e.at, Some((5, 1)), "{e}");
    let t = e.to_string();
    assert!(t.contains("g.csv") && t.contains("parse_with"), "{t}");
}

#[test]
fn baseline_is_l2_rls_with_the_same_signal_rules() {
    let c = deadband::config::load(Path::new("config/market-atr.toml")).unwrap();
    let b = c.baseline();
    assert_eq!(b.defaults.fit.method, Method::Rls);
    assert_eq!(b.defaults.fit.well, Well::Quadratic);
    assert_eq!(b.defaults.trend, c.processor.defaults.trend);
    assert_eq!(b.defaults.book, c.processor.defaults.book);
    assert_eq!(b.params_for("SYM000").book.cost_bps, 5.0);
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = deadband::config::load(Path::new("no/such.toml")).unwrap_err();
    assert!(
        e.to_string().contains("no/such.toml") && e.to_string().contains("--config"),
        "{e}"
    );
}

#[test]
fn key_patterns_apply_to_matching_keys_and_exact_names_win() {
    let src = r#"
[input]
path = "x"
record = "measurement"
[zone.scale]
kind = "grr"
sigma = 0.002
[keys."*/bore".zone.scale]
sigma = 0.0005
[keys."M07/bore".zone.scale]
sigma = 0.0009
"#;
    let c = parse(src, Path::new("run.toml")).unwrap();
    let sigma = |k: &str| match c.processor.params_for(k).scale {
        ScaleSpec::Grr { sigma, .. } => sigma,
        ref s => panic!("{s:?}"),
    };
    assert_eq!(sigma("M01/bore"), 0.0005);
    assert_eq!(sigma("M07/bore"), 0.0009);
    assert_eq!(sigma("M01/length"), 0.002);
    let e = err("[input]\npath = \"x\"\n[keys.\"[a\".fit]\norder = 1\n");
    assert!(e.to_string().contains("pattern"), "{e}");
}

/// Only `robust_rls` weights residuals by the well: a well written for any other method would do
/// nothing, so it is refused at its line with the fix.
#[test]
fn a_well_the_method_ignores_is_refused_with_the_fix() {
    for method in ["sm_rls", "sm_nlms", "rls"] {
        let src = format!(
            "[input]\npath = \"x\"\n[fit]\nmethod = \"{method}\"\n[zone]\nfloor = 1e-6\nwell = \"gaussian\"\n"
        );
        let e = err(&src);
        let t = e.to_string();
        assert_eq!(e.at, Some((7, 1)), "{t}");
        assert!(t.starts_with("run.toml:7:1:"), "{t}");
        assert!(
            t.contains(&format!("method = \"{method}\""))
                && t.contains("only `robust_rls` uses wells"),
            "{t}"
        );
        assert!(
            t.contains("help: remove `well`") && t.contains("robust_rls"),
            "{t}"
        );
    }
    // The default method (sm_rls) ignores it too — the case that used to pass silently.
    let e = err("[input]\npath = \"x\"\n[zone]\nwell = \"gaussian\"\n");
    assert_eq!(e.at, Some((4, 1)), "{e}");
    // A well parameter alone (the default dead_zone has none, so use a shape that has one).
    let e = err("[input]\npath = \"x\"\n[zone]\nwell = \"huber\"\nthreshold = 2.0\n");
    assert_eq!(e.at, Some((4, 1)), "{e}");
    // Accepted with robust_rls, and without a well whatever the method.
    let ok = "[input]\npath = \"x\"\n[fit]\nmethod = \"robust_rls\"\n[zone]\nwell = \"gaussian\"\n";
    assert!(parse(ok, Path::new("run.toml")).is_ok());
    let ok = "[input]\npath = \"x\"\n[fit]\nmethod = \"sm_nlms\"\n[zone]\nfloor = 1e-6\n";
    assert!(parse(ok, Path::new("run.toml")).is_ok());
}

/// Per key: a key's own well with a method that ignores it is refused at that key's `well`; a
/// global well that one key's method ignores is refused at that key's `method`.
#[test]
fn a_well_ignored_by_one_keys_method_is_refused_there() {
    let src = "[input]\npath = \"x\"\n[keys.\"ES\".zone]\nwell = \"log\"\n";
    let e = err(src);
    assert_eq!(e.at, Some((4, 1)), "{e}");
    assert!(e.to_string().contains("[keys.\"ES\".zone] `well`"), "{e}");
    let src = "[input]\npath = \"x\"\n[fit]\nmethod = \"robust_rls\"\n[zone]\nwell = \"log\"\n\
               [keys.\"ES\".fit]\nmethod = \"sm_rls\"\n";
    let e = err(src);
    assert_eq!(e.at, Some((8, 1)), "{e}");
    let t = e.to_string();
    assert!(
        t.contains("[keys.\"ES\".fit] `method`") && t.contains("ignores the well"),
        "{t}"
    );
}

/// Costs come from one source: `cost_bps`, or spread + commission + slippage (round-trip
/// fractions of price) which then set the book's cost (half their sum per unit of one-way
/// turnover) and the zone floor.
#[test]
fn costs_come_from_one_source() {
    let e = err(
        "[input]\npath = \"x\"\n[signal]\nspread = 0.0002\ncost_bps = 2.0\ncommission = 0.0001\n",
    );
    let t = e.to_string();
    assert_eq!(e.at, Some((5, 1)), "{t}");
    assert!(t.contains("`cost_bps`") && t.contains("one source"), "{t}");
    assert!(t.contains("help: keep either cost_bps"), "{t}");

    let c = parse(
        "[input]\npath = \"x\"\n[signal]\nspread = 0.0002\ncommission = 0.0001\nslippage = 0.0001\n",
        Path::new("run.toml"),
    )
    .unwrap();
    let p = &c.processor.defaults;
    assert!((p.book.cost_bps - 2.0).abs() < 1e-12, "{}", p.book.cost_bps);
    assert_eq!(p.cost_fraction, Some(0.0002 + 0.0001 + 0.0001));

    // zone_from_costs = false keeps them for the book only.
    let c = parse(
        "[input]\npath = \"x\"\n[signal]\nspread = 0.0004\nzone_from_costs = false\n",
        Path::new("run.toml"),
    )
    .unwrap();
    assert!((c.processor.defaults.book.cost_bps - 2.0).abs() < 1e-12);
    assert_eq!(c.processor.defaults.cost_fraction, None);

    // cost_bps alone: no floor, as before.
    let c = parse(
        "[input]\npath = \"x\"\n[signal]\ncost_bps = 3.0\n",
        Path::new("run.toml"),
    )
    .unwrap();
    assert_eq!(c.processor.defaults.book.cost_bps, 3.0);
    assert_eq!(c.processor.defaults.cost_fraction, None);

    // A key that adds cost_bps over global spread is refused in its own table.
    let e = err(
        "[input]\npath = \"x\"\n[signal]\nspread = 0.0002\n[keys.\"ES\".signal]\ncost_bps = 5.0\n",
    );
    assert_eq!(e.at, Some((6, 1)), "{e}");
    assert!(e.to_string().contains("keys.\"ES\".signal"), "{e}");

    let e = err("[input]\npath = \"x\"\n[signal]\nslippage = -0.1\n");
    assert_eq!(e.at, Some((4, 1)), "{e}");
    let e = err("[input]\npath = \"x\"\n[signal]\nzone_from_costs = true\n");
    assert!(
        e.to_string().contains("needs at least one of spread"),
        "{e}"
    );
}
