//! The `[zone.scale]` table: resolved into a `ScaleSpec`, with sigma_GRR taken from a gauge
//! study when the table names one. The study is read by the caller's [`StudyReader`], so this
//! layer itself opens no files.

use std::path::Path;

use serde::Deserialize;

use super::error::{backticked, explain, ConfigError, Locator};
use super::schema::RawZone;
use crate::zone::grr::GrrMethod;
use crate::zone::scale::ScaleSpec;

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
