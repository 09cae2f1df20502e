//! The two open-ended parts of `[zone]`: the well, read as a `zone::well::Well` from the keys
//! the zone table does not name itself, and `[zone.scale]`, resolved into a `ScaleSpec` with
//! sigma_GRR taken from a gauge study when the table names one. The study is read by the
//! caller's [`StudyReader`], so this layer itself opens no files.

use std::path::Path;

use serde::Deserialize;

use super::error::{backticked, closest, explain, ConfigError, Locator};
use super::schema::{RawZone, ZONE_KEYS};
use crate::zone::fit::Method;
use crate::zone::grr::GrrMethod;
use crate::zone::scale::ScaleSpec;
use crate::zone::well::Well;

/// Reads sigma_GRR (the measurement system's standard deviation) from a gauge R&R study file,
/// for `[zone.scale] kind = "grr"` with `study = "file.csv"`. Supplied by whoever parses the
/// configuration: the command line passes `run::grr::StudyFiles`; [`NoStudies`] reads nothing.
pub trait StudyReader {
    /// sigma_GRR of the study at `path` (already joined to the configuration file's folder);
    /// the error text is shown after the `study` key's file:line:col.
    fn sigma_grr(
        &self,
        path: &Path,
        method: GrrMethod,
    ) -> Result<f64, Box<dyn std::error::Error + Send + Sync>>;
}

/// The reader of [`parse`](super::parse) and [`load`](super::load): opens no file, so a
/// `study` key is refused at its line. Configurations that give `sigma` directly are unaffected.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStudies;

impl StudyReader for NoStudies {
    fn sigma_grr(
        &self,
        path: &Path,
        _: GrrMethod,
    ) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "`{}` was not read: this configuration was parsed without a gauge-study reader \
             (config::parse_with / load_with take one)",
            path.display()
        )
        .into())
    }
}

/// The well of `[section]`: `keys` are the zone keys `RawZone` does not name, i.e. `well`
/// (default `dead_zone`) and the shape's parameters. The shape is read first, then each
/// parameter on its own, so an error names the key at fault; a key that is neither a parameter
/// of the shape nor a `[zone]` setting is refused with the shape's parameters and the closest
/// valid name.
pub(super) fn build_well(
    loc: &Locator<'_>,
    section: &str,
    keys: &toml::Table,
) -> Result<Well, ConfigError> {
    let shape = keys
        .get("well")
        .cloned()
        .unwrap_or_else(|| Well::default().name().into());
    let with = |param: Option<(&String, &toml::Value)>| {
        let mut t = toml::Table::new();
        t.insert("well".into(), shape.clone());
        if let Some((k, v)) = param {
            t.insert(k.clone(), v.clone());
        }
        toml::Value::Table(t)
    };
    let at_well = |e: toml::de::Error| {
        let (msg, help) = explain(e.message());
        loc.key_error(section, "well", msg, help)
    };
    let bare = Well::deserialize(with(None)).map_err(at_well)?;
    let own = bare.param_names();
    for (k, v) in keys.iter().filter(|(k, _)| *k != "well") {
        if !own.contains(&k.as_str()) {
            let which = if own.is_empty() {
                "none".to_string()
            } else {
                own.join(", ")
            };
            let fix = "remove it, or change `well` to a shape that takes it";
            let help = match closest(k, ZONE_KEYS.iter().chain(own).copied()) {
                Some(n) => format!("did you mean `{n}`? Otherwise {fix}"),
                None => fix.to_string(),
            };
            return Err(loc.key_error(
                section,
                k,
                format!(
                    "is not a parameter of the `{}` well (its parameters: {which}) nor a [zone] setting",
                    bare.name()
                ),
                Some(help),
            ));
        }
        Well::deserialize(with(Some((k, v))))
            .map_err(|e| loc.key_error(section, k, e.message().trim().to_string(), None))?;
    }
    let mut all = keys.clone();
    all.insert("well".into(), shape);
    Well::deserialize(toml::Value::Table(all)).map_err(at_well)
}

/// Refuses a well the fit method ignores: only `robust_rls` weights residuals by the well, so a
/// `well` (or a well parameter) written in `[section]` with any other method would silently do
/// nothing. `zone` are the keys of that table the zone does not name itself (the well's);
/// `method_at` is where the method was chosen, when the well was not written with it.
pub(super) fn check_well_used(
    loc: &Locator<'_>,
    section: &str,
    zone: &toml::Table,
    method: Method,
    method_at: Option<&str>,
) -> Result<(), ConfigError> {
    if method == Method::RobustRls || zone.is_empty() {
        return Ok(());
    }
    let name = toml::Value::try_from(method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let why = match method {
        Method::Rls => "the L2 baseline: every residual has weight 1",
        _ => "a set-membership fit: it does not move inside ±eps, whatever the well",
    };
    let key = if zone.contains_key("well") {
        "well".to_string()
    } else {
        zone.keys().next().cloned().unwrap_or_default()
    };
    let help =
        "remove `well` and its parameters from this table, or set [fit] method = \"robust_rls\"";
    match method_at {
        Some(fit) => Err(loc.key_error(
            fit,
            "method",
            format!(
                "= \"{name}\" ignores the well of [{section}] ({why}); only `robust_rls` uses wells"
            ),
            Some(format!(
                "set method = \"robust_rls\" here, or remove `well` and its parameters from [{section}]"
            )),
        )),
        None => Err(loc.key_error(
            section,
            &key,
            format!(
                "is ignored by [fit] method = \"{name}\" ({why}); only `robust_rls` uses wells"
            ),
            Some(help.into()),
        )),
    }
}

/// `[zone.scale]`; for `kind = "grr"` the sigma may come from a study file:
/// `study = "gauge.csv"` (relative to the config file), `method = "anova" | "range"`, read
/// through `studies`.
pub(super) fn build_scale(
    loc: &Locator<'_>,
    base_dir: &Path,
    studies: &dyn StudyReader,
    z: &RawZone,
    key: Option<&str>,
) -> Result<ScaleSpec, ConfigError> {
    let section = match key {
        Some(k) => format!("keys.\"{k}\".zone.scale"),
        None => "zone.scale".to_string(),
    };
    let Some(table) = &z.scale else {
        return Ok(ScaleSpec::default());
    };
    let mut t = table.clone();
    if t.get("kind").and_then(|v| v.as_str()) == Some("grr") {
        if let Some(study) = t.remove("study") {
            let method = match t.remove("method") {
                None => GrrMethod::Anova,
                Some(m) => GrrMethod::deserialize(m).map_err(|e| {
                    loc.key_error(
                        &section,
                        "method",
                        e.message().to_string(),
                        Some("use \"anova\" or \"range\"".into()),
                    )
                })?,
            };
            let Some(study) = study.as_str() else {
                return Err(loc.key_error(&section, "study", "must be a path string".into(), None));
            };
            if t.contains_key("sigma") {
                return Err(loc.key_error(
                    &section,
                    "sigma",
                    "is given together with `study`".into(),
                    Some("keep one: sigma = <sigma_GRR> or study = \"file.csv\"".into()),
                ));
            }
            let p = base_dir.join(study);
            let sigma = studies.sigma_grr(&p, method).map_err(|e| {
                loc.key_error(
                    &section,
                    "study",
                    format!("{e}"),
                    Some("fix the study file, or give sigma directly".into()),
                )
            })?;
            t.insert("sigma".into(), toml::Value::Float(sigma));
        }
    }
    ScaleSpec::deserialize(toml::Value::Table(t)).map_err(|e| {
        let (msg, help) = explain(e.message());
        let key_in_msg = backticked(&msg);
        match key_in_msg {
            Some(k) => loc.key_error(&section, &k, msg, help),
            None => loc.key_error(&section, "kind", msg, help),
        }
    })
}
