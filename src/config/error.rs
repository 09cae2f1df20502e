//! Configuration errors and how they are told: the file:line:col of the key at fault, serde's
//! message, and a fix ("did you mean", the valid names).

use std::fmt;
use std::ops::Range;

/// A configuration problem with its place in the file and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column; `None` when the problem is not at one place (a missing file).
    pub at: Option<(usize, usize)>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((l, c)) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Turns positions in the source into line:col and finds keys inside tables.
pub(super) struct Locator<'a> {
    pub(super) src: &'a str,
    pub(super) file: &'a str,
}

impl Locator<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    pub(super) fn at(
        &self,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            at: Some(self.line_col(span.start)),
            message,
            help,
        }
    }

    /// An error from the TOML parser or from deserialising a (merged) table.
    pub(super) fn toml_error(
        &self,
        e: &toml::de::Error,
        ctx: Option<(String, Range<usize>)>,
    ) -> ConfigError {
        let (msg, help) = explain(e.message());
        match (e.span(), ctx) {
            (Some(span), None) => self.at(span, msg, help),
            (_, Some((section, span))) => {
                // Inside a merged table the parser's span is lost: find the key named in the
                // message within the table, else point at the table.
                let pos = backticked(&msg)
                    .and_then(|k| self.find_key_in(span.clone(), &k))
                    .unwrap_or(span.start);
                self.at(pos..pos, format!("{section}: {msg}"), help)
            }
            (None, None) => ConfigError {
                file: self.file.to_string(),
                at: None,
                message: msg,
                help,
            },
        }
    }

    /// An out-of-range value: points at `key = ...` in `[section]` (or at the section).
    pub(super) fn key_error(
        &self,
        section: &str,
        key: &str,
        problem: String,
        help: Option<String>,
    ) -> ConfigError {
        let pos = self.find_key(section, key);
        let message = format!("[{section}] `{key}` {problem}");
        ConfigError {
            file: self.file.to_string(),
            at: pos.map(|p| self.line_col(p)),
            message,
            help,
        }
    }

    /// Byte offset of `key =` inside the table `[section]` (or `[a.b]` written as dotted keys
    /// `b.key` under `[a]`), if it is written there.
    fn find_key(&self, section: &str, key: &str) -> Option<usize> {
        let headers = [format!("[{section}]"), format!("[[{section}]]")];
        let mut offset = 0;
        let mut in_section = false;
        let mut section_start = None;
        for line in self.src.split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with('[') {
                let h = t.split('#').next().unwrap_or("").trim();
                in_section = headers.iter().any(|x| x == h);
                if in_section && section_start.is_none() {
                    section_start = Some(offset + (line.len() - t.len()));
                }
            } else if in_section && line_sets_key(t, key) {
                return Some(offset + (line.len() - t.len()));
            }
            offset += line.len();
        }
        section_start
    }

    fn find_key_in(&self, span: Range<usize>, key: &str) -> Option<usize> {
        let text = self.src.get(span.clone())?;
        let mut offset = span.start;
        for line in text.split_inclusive('\n') {
            let t = line.trim_start();
            if line_sets_key(t, key) {
                return Some(offset + (line.len() - t.len()));
            }
            offset += line.len();
        }
        None
    }
}

fn line_sets_key(trimmed: &str, key: &str) -> bool {
    let Some(rest) = trimmed.strip_prefix(key) else {
        return false;
    };
    rest.trim_start().starts_with('=')
}

/// First `name` in backticks in a serde message.
pub(super) fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_string())
}

/// The name in `names` closest to the misspelt `bad`, if any is close enough to suggest.
pub(super) fn closest<'a>(bad: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .map(|n| (strsim::jaro_winkler(bad, n), n))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(s, _)| *s > 0.7)
        .map(|(_, n)| n)
}

/// Adds the fix to serde's messages: for an unknown key or variant, the closest valid name.
pub(super) fn explain(msg: &str) -> (String, Option<String>) {
    let msg = msg.trim().to_string();
    let unknown = msg.starts_with("unknown field") || msg.starts_with("unknown variant");
    if unknown {
        if let (Some(bad), Some(exp)) = (backticked(&msg), msg.find("expected")) {
            let names: Vec<String> = msg[exp..]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            let help = match closest(&bad, names.iter().map(String::as_str)) {
                Some(n) => format!("did you mean `{n}`? valid here: {}", names.join(", ")),
                None => format!("valid here: {}", names.join(", ")),
            };
            return (msg, Some(help));
        }
    }
    if msg.starts_with("missing field") {
        return (msg, Some("add it to this table".into()));
    }
    (msg, None)
}
