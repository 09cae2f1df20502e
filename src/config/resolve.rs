//! From the tables as written to what the pipeline runs: defaults filled in, every value
//! checked, and each `[keys."NAME"]` table deep-merged over the global one into its own
//! `KeyParams`.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::{ConfigError, Locator};
use super::schema::{RawConfig, RawFit, RawSignal, RawSpc, RawZone, TimeKind, ZONE_KEYS};
use super::zone::{build_scale, build_well, check_well_used, StudyReader};
use crate::pipeline::{KeyParams, KeyPattern, ProcessorConfig, TimeAxis};
use crate::record::RecordKind;
use crate::signal::book::BookSpec;
use crate::signal::compensate::CompSpec;
use crate::signal::scales::MacroSpec;
use crate::signal::trend::TrendSpec;
use crate::zone::fit::FitSpec;
use crate::zone::scale::RegimeSet;
use crate::zone::spc::SpcSpec;
use crate::zone::ParamError;

/// The per-key parameters of the whole file: the defaults, then each `[keys."NAME"]` table
/// (exact names and patterns); also `[signal] periods_per_year`.
pub(super) fn processor(
    loc: &Locator<'_>,
    base_dir: &Path,
    studies: &dyn StudyReader,
    raw: &RawConfig,
) -> Result<(ProcessorConfig, Option<f64>), ConfigError> {
    let base_zone = &raw.zone;
    let record = raw.input.record;
    let (defaults, periods_per_year) = resolve_key(
        loc,
        base_dir,
        studies,
        record,
        base_zone,
        &raw.fit,
        &raw.signal,
        &raw.compensation,
        &raw.spc,
        None,
    )?;
    check_well_used(loc, "zone", &base_zone.well, defaults.fit.method, None)?;

    let mut overrides = HashMap::new();
    let mut patterns = Vec::new();
    for (name, ov) in &raw.keys {
        let span = ov.span();
        let pattern = match KeyPattern::parse(name) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                return Err(loc.at(
                    span,
                    format!("[keys.\"{name}\"]: not a valid key pattern: {e}"),
                    Some("use * and ? wildcards, or the exact key".into()),
                ))
            }
        };
        let ov = ov.get_ref();
        // Each section: the global table with this key's table merged over it, then parsed again.
        let section = |title: &str, base: toml::Value, o: &Option<Spanned<toml::Table>>| {
            let mut v = base;
            if let Some(t) = o {
                merge(&mut v, toml::Value::Table(t.get_ref().clone()));
            }
            let at = o.as_ref().map_or(span.clone(), |t| t.span());
            ((format!("[keys.\"{name}\".{title}]"), at), v)
        };
        let (c, v) = section("zone", to_value(base_zone), &ov.zone);
        let zone: RawZone = from_value(loc, c, v)?;
        let (c, v) = section("fit", to_value(&raw.fit), &ov.fit);
        let fit: RawFit = from_value(loc, c, v)?;
        let (c, v) = section("signal", to_value(&raw.signal), &ov.signal);
        let signal: RawSignal = from_value(loc, c, v)?;
        let (c, v) = section(
            "compensation",
            to_value(&raw.compensation),
            &ov.compensation,
        );
        let comp: CompSpec = from_value(loc, c, v)?;
        let (params, _) = resolve_key(
            loc,
            base_dir,
            studies,
            record,
            &zone,
            &fit,
            &signal,
            &comp,
            &raw.spc,
            Some(name),
        )?;
        // The well is this key's own, or the global one with a method this key chose.
        let own_well = ov.zone.as_ref().map(|z| {
            let mut t = z.get_ref().clone();
            t.retain(|k, _| k == "well" || ZONE_KEYS.iter().all(|z| *z != k));
            t
        });
        match own_well.filter(|t| !t.is_empty()) {
            Some(t) => check_well_used(
                loc,
                &format!("keys.\"{name}\".zone"),
                &t,
                params.fit.method,
                None,
            )?,
            None => check_well_used(
                loc,
                "zone",
                &zone.well,
                params.fit.method,
                Some(&format!("keys.\"{name}\".fit")),
            )?,
        }
        match pattern {
            Some(p) => patterns.push((p, Arc::new(params))),
            None => {
                overrides.insert(name.clone(), Arc::new(params));
            }
        }
    }

    let processor = ProcessorConfig {
        record,
        out_of_order: raw.input.out_of_order,
        defaults: Arc::new(defaults),
        overrides,
        patterns,
    };
    Ok((processor, periods_per_year))
}

fn to_value<T: Serialize>(v: &T) -> toml::Value {
    toml::Value::try_from(v).expect("config sections serialise to TOML")
}

fn from_value<T: for<'de> Deserialize<'de>>(
    loc: &Locator<'_>,
    (section, span): (String, Range<usize>),
    v: toml::Value,
) -> Result<T, ConfigError> {
    T::deserialize(v).map_err(|e| loc.toml_error(&e, Some((section, span))))
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Builds and checks one key's parameters (the defaults when `key` is `None`).
#[allow(clippy::too_many_arguments)]
fn resolve_key(
    loc: &Locator<'_>,
    base_dir: &Path,
    studies: &dyn StudyReader,
    record: RecordKind,
    zone: &RawZone,
    fit: &RawFit,
    signal: &RawSignal,
    comp: &CompSpec,
    spc: &RawSpc,
    key: Option<&str>,
) -> Result<(KeyParams, Option<f64>), ConfigError> {
    let section = |s: &str| match key {
        Some(k) => format!("keys.\"{k}\".{s}"),
        None => s.to_string(),
    };
    let perr =
        |s: &str, e: ParamError| loc.key_error(&section(s), e.param, e.problem.clone(), None);

    let well = build_well(loc, &section("zone"), &zone.well)?;
    well.validate().map_err(|e| perr("zone", e))?;
    let scale = build_scale(loc, base_dir, studies, zone, key)?;
    scale.validate().map_err(|e| perr("zone.scale", e))?;
    let regimes = match &zone.regimes {
        None => None,
        Some(list) => {
            let mut set = RegimeSet {
                regimes: list.clone(),
                ..RegimeSet::default()
            };
            if let Some(h) = zone.regime_half_life {
                set.long_half_life = h;
            }
            if let Some(c) = zone.regime_confirm {
                set.confirm = c;
            }
            set.validate().map_err(|e| perr("zone.regimes", e))?;
            Some(set)
        }
    };
    if !(zone.floor.is_finite() && zone.floor > 0.0) {
        return Err(perr(
            "zone",
            ParamError::new("floor", format!("must be > 0, got {}", zone.floor)),
        ));
    }

    let mut fs = FitSpec::default();
    if let Some(m) = fit.method {
        fs.method = m;
    }
    if let Some(o) = fit.order {
        fs.order = o;
    }
    if let Some(v) = fit.forgetting {
        fs.forgetting = v;
    }
    if let Some(v) = fit.p0 {
        fs.p0 = v;
    }
    if let Some(v) = fit.trace_max {
        fs.trace_max = v;
    }
    if let Some(v) = fit.leak {
        fs.leak = v;
    }
    fs.well = well;
    fs.validate().map_err(|e| perr("fit", e))?;
    let time = match fit.time {
        TimeKind::Index => TimeAxis::Index,
        TimeKind::Seconds => TimeAxis::Seconds {
            unit_s: fit.time_unit_s.unwrap_or(1.0),
        },
    };

    let mut trend = TrendSpec::default();
    let mut book = BookSpec::default();
    macro_rules! set {
        ($dst:expr, $src:expr) => {
            if let Some(v) = $src {
                $dst = v;
            }
        };
    }
    set!(trend.horizon, signal.horizon);
    set!(trend.enter, signal.enter);
    set!(trend.exit, signal.exit);
    set!(trend.saturate, signal.saturate);
    set!(trend.warmup, signal.warmup);
    set!(book.sizing, signal.sizing);
    set!(book.cost_bps, signal.cost_bps);
    set!(book.band, signal.band);
    set!(book.weight, signal.weight);
    // Costs come from one source: `cost_bps`, or spread + commission + slippage (round-trip
    // fractions of price: one unit of one-way turnover costs half their sum), which then also
    // floor the zone unless `zone_from_costs = false`.
    let parts = [signal.spread, signal.commission, signal.slippage];
    let from_parts = parts.iter().any(Option::is_some);
    if from_parts {
        if signal.cost_bps.is_some() {
            return Err(loc.key_error(
                &section("signal"),
                "cost_bps",
                "is given together with spread/commission/slippage: costs come from one source"
                    .into(),
                Some(
                    "keep either cost_bps (cost per unit of one-way turnover, in bps) or \
                     spread + commission + slippage (round-trip fractions of price, which also \
                     floor the zone), not both"
                        .into(),
                ),
            ));
        }
        for (name, v) in ["spread", "commission", "slippage"].iter().zip(parts) {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(perr(
                    "signal",
                    ParamError::new(name, format!("must be >= 0 (a fraction of price), got {v}")),
                ));
            }
        }
        book.cost_bps = parts.iter().flatten().sum::<f64>() * 1e4 / 2.0;
    }
    trend.validate().map_err(|e| perr("signal", e))?;
    book.validate().map_err(|e| perr("signal", e))?;
    let cost_fraction = if signal.zone_from_costs.unwrap_or(from_parts) {
        if !from_parts {
            return Err(loc.key_error(
                &section("signal"),
                "zone_from_costs",
                "needs at least one of spread, commission, slippage (fractions of price)".into(),
                Some("e.g. spread = 0.0002, commission = 0.0001".into()),
            ));
        }
        Some(parts.iter().flatten().sum::<f64>())
    } else {
        None
    };
    if let Some(p) = signal.periods_per_year {
        if !(p.is_finite() && p > 0.0) {
            return Err(perr(
                "signal",
                ParamError::new("periods_per_year", format!("must be > 0, got {p}")),
            ));
        }
    }
    comp.validate().map_err(|e| perr("compensation", e))?;

    let spc_spec = if spc.enabled && record == RecordKind::Measurement {
        let d = SpcSpec::default();
        let s = SpcSpec {
            target: spc.target,
            sigma: spc.sigma,
            baseline: spc.baseline.unwrap_or(d.baseline),
            rules: spc.rules.clone().unwrap_or(d.rules),
            ewma: spc.ewma,
            cusum: spc.cusum,
        };
        s.validate().map_err(|e| perr("spc", e))?;
        Some(s)
    } else {
        None
    };

    let macro_scale = match &fit.macro_scale {
        None => None,
        Some(_) if record == RecordKind::Measurement => {
            return Err(loc.key_error(
                &section("fit"),
                "macro",
                "is for bars: the measurement loop has its own tool-change and step handling"
                    .into(),
                Some("remove [fit.macro], or set [input] record = \"bar\"".into()),
            ))
        }
        Some(m) => {
            let mut spec = MacroSpec::with_trend(trend);
            set!(spec.multiplier, m.multiplier);
            set!(spec.forgetting, m.forgetting);
            set!(spec.trend.horizon, m.horizon);
            set!(spec.trend.enter, m.enter);
            set!(spec.trend.exit, m.exit);
            set!(spec.combine, m.combine);
            if spec.trend.exit > spec.trend.enter && m.exit.is_none() {
                // A macro enter below the tactical exit: keep exit <= enter.
                spec.trend.exit = spec.trend.enter;
            }
            let fit_err = FitSpec {
                forgetting: spec.forgetting,
                ..fs
            }
            .validate()
            .err()
            .filter(|e| e.param == "forgetting");
            spec.validate()
                .and(fit_err.map_or(Ok(()), Err))
                .map_err(|e| perr("fit.macro", e))?;
            Some(spec)
        }
    };

    let params = KeyParams {
        macro_scale,
        scale,
        regimes,
        floor: zone.floor,
        cost_fraction,
        time,
        fit: fs,
        trend,
        book,
        comp: *comp,
        spc: spc_spec,
    };
    params.check().map_err(|e| perr("fit", e))?;
    Ok((params, signal.periods_per_year))
}
