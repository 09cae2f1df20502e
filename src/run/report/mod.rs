//! The backtest report: one self-contained `report.html` (inline CSS, inline SVG charts drawn with plotters, no scripts, no external URLs).
//!
//! The backtest driver fills a [`ReportData`] — plain vectors, no dependency on the other
//! driver modules — and calls [`render`] or [`write`]. The page has, in order: a title and
//! subtitle, the summary table (strategy, baseline, change vs baseline, note), the equity
//! curves of strategy and baseline (bars runs only), one chart per key, and the notes.
//!
//! Choices where the design is silent:
//! - **Decimation.** Long series are reduced for drawing by min/max bucketing
//!   ([`decimate_min_max`]): the index range is cut into equal buckets and each bucket keeps
//!   the positions of its smallest and largest finite value, so spikes stay visible. The raw
//!   series `y` keeps at most [`MAX_POINTS_RAW`] points; the smooth fitted lines (level,
//!   zone edges, baseline level) and each equity curve at most [`MAX_POINTS_FIT`] each.
//!   Event markers are thinned to at most [`MAX_MARKERS`] per chart by keeping every k-th
//!   marker of each kind. Statistics in captions and the table are never computed from
//!   decimated data: they come from the driver.
//! - **Non-finite values** are skipped when drawing (lines join across the gap; the zone
//!   band is split into one shaded polygon per run of finite values). A key with no finite
//!   `y` and no finite `level` gets a "no data" note instead of a chart.
//! - **Lengths.** `ts`, `y` and `level` are read up to the shortest of the three; a shorter
//!   `zone` or `baseline_level` counts as missing values at the end. `ts` is expected to be
//!   ascending, as it is for one key of a replay.
//! - **Time axis.** Epoch nanoseconds are formatted in UTC by hand (proleptic Gregorian
//!   calendar, no date crate). Ticks fall on round times — 1 ms to 12 h steps, whole days at
//!   UTC midnight, weeks on Mondays, or the first of a month — and their labels show only
//!   what changes at that step (a day's charts name the date in the axis title).
//! - **Fractions.** `dead_zone_ratio` and `update_rate` are fractions in [0, 1] and are shown
//!   in percent. In the summary, "change vs baseline" is the relative change
//!   `(strategy - baseline) / |baseline|` in percent, except for rows whose values are
//!   themselves fractions ([`ValueFormat::Percent`]: returns, drawdown, hit rate), where a
//!   difference in percentage points is the meaningful comparison.
//! - **Text.** Plotters is built without font support, so it only estimates text widths;
//!   the browser renders the SVG `<text>` elements with its own sans-serif font. Titles and
//!   captions are therefore HTML, and chart legends are drawn in a reserved column to the
//!   right of each plot so they never cover data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod axis;
mod chart;
mod decimate;

pub use axis::format_utc;
use chart::{equity_chart, key_chart};
pub use decimate::decimate_min_max;

/// Most points drawn for a key's raw series `y` (min/max bucketing, see [`decimate_min_max`]).
pub const MAX_POINTS_RAW: usize = 2_000;
/// Most points drawn for each smooth line: fitted level, each zone edge, baseline level, and
/// each equity curve.
pub const MAX_POINTS_FIT: usize = 1_000;
/// Most event markers drawn on one key chart; the events table lists the first
/// [`MAX_EVENT_ROWS`].
pub const MAX_MARKERS: usize = 1_500;
/// Rows in each key's collapsible events table.
pub const MAX_EVENT_ROWS: usize = 200;

/// Everything the report shows. Filled by the backtest driver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportData {
    /// Page title (`<h1>` and `<title>`).
    pub title: String,
    /// One line under the title, e.g. config file, input files, rows, elapsed time.
    pub subtitle: String,
    /// Rows of the summary table, in the order given.
    pub summary: Vec<SummaryRow>,
    /// Compounded equity of strategy and baseline (bars runs); `None` for measurement runs.
    pub equity: Option<EquityCurves>,
    /// The keys to chart, in the order given (the driver picks the first N).
    pub keys: Vec<KeySeries>,
    /// Definitions and footnotes, listed at the end of the page.
    pub notes: Vec<String>,
}

/// How a summary value is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValueFormat {
    /// A plain number: thousands separators from 1,000 up, otherwise 4 significant digits.
    #[default]
    Number,
    /// A count, rounded to an integer with thousands separators.
    Integer,
    /// A fraction shown in percent with two decimals (0.1234 -> `12.34%`); the change column
    /// is then a difference in percentage points.
    Percent,
}

/// One row of the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Metric name, e.g. `turnover`.
    pub metric: String,
    /// The dead-zone strategy's value (NaN prints as `n/a`).
    pub strategy: f64,
    /// The L2 baseline's value (NaN prints as `n/a`).
    pub baseline: f64,
    /// How to print both values.
    pub format: ValueFormat,
    /// Optional remark in the last column.
    pub note: Option<String>,
}

impl SummaryRow {
    /// A [`ValueFormat::Number`] row without a note.
    pub fn new(metric: impl Into<String>, strategy: f64, baseline: f64) -> Self {
        Self {
            metric: metric.into(),
            strategy,
            baseline,
            format: ValueFormat::Number,
            note: None,
        }
    }

    /// The same row printed with `format`.
    pub fn with_format(mut self, format: ValueFormat) -> Self {
        self.format = format;
        self
    }

    /// The same row with a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// Compounded equity (starting at 1) of strategy and baseline on a common time axis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EquityCurves {
    /// Event time, epoch nanoseconds, UTC.
    pub ts: Vec<i64>,
    /// Strategy equity at each `ts`.
    pub strategy: Vec<f64>,
    /// Baseline equity at each `ts`.
    pub baseline: Vec<f64>,
}

/// One key's series for its chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySeries {
    /// The key (symbol or machine feature); any text, escaped on output.
    pub key: String,
    /// Event time, epoch nanoseconds, UTC, ascending.
    pub ts: Vec<i64>,
    /// Observed values (close or measurement).
    pub y: Vec<f64>,
    /// Fitted level of the dead-zone fit.
    pub level: Vec<f64>,
    /// Zone half-width eps; the band drawn is `level ± zone`.
    pub zone: Vec<f64>,
    /// Fitted level of the L2 baseline, if it was run.
    pub baseline_level: Option<Vec<f64>>,
    /// Events to mark on the chart.
    pub markers: Vec<Marker>,
    /// Share of records whose residual stayed inside the zone, in [0, 1].
    pub dead_zone_ratio: f64,
    /// Share of records that updated the fit, in [0, 1].
    pub update_rate: f64,
    /// Lower spec limit, drawn as a horizontal line when given.
    pub lsl: Option<f64>,
    /// Upper spec limit, drawn as a horizontal line when given.
    pub usl: Option<f64>,
}

/// One event drawn on a key chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Event time, epoch nanoseconds, UTC.
    pub ts: i64,
    /// Vertical position (usually the observed value or the level at `ts`).
    pub y: f64,
    /// What happened; decides the marker's colour and shape.
    pub kind: MarkerKind,
    /// Short description listed in the events table under the chart.
    pub label: String,
}

/// Event kinds, each with its own colour and shape on the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerKind {
    /// Trend turned up: green triangle pointing up.
    TrendUp,
    /// Trend turned down: dark red triangle pointing down.
    TrendDown,
    /// Trend turned flat: grey circle.
    TrendFlat,
    /// Position rebalanced: purple diamond.
    Rebalance,
    /// Tool compensation applied: orange square.
    Compensation,
    /// SPC alarm: magenta cross.
    SpcAlarm,
}

impl MarkerKind {
    /// All kinds, in legend order.
    pub const ALL: [MarkerKind; 6] = [
        MarkerKind::TrendUp,
        MarkerKind::TrendDown,
        MarkerKind::TrendFlat,
        MarkerKind::Rebalance,
        MarkerKind::Compensation,
        MarkerKind::SpcAlarm,
    ];

    /// The name shown in legends and event tables.
    pub fn name(self) -> &'static str {
        match self {
            MarkerKind::TrendUp => "trend up",
            MarkerKind::TrendDown => "trend down",
            MarkerKind::TrendFlat => "trend flat",
            MarkerKind::Rebalance => "rebalance",
            MarkerKind::Compensation => "compensation",
            MarkerKind::SpcAlarm => "SPC alarm",
        }
    }
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Plotters failed while drawing a chart (a bug in the report, not in the data).
    #[error(
        "drawing the {chart} chart failed: {message}; please report this with the run's config"
    )]
    Draw {
        /// Which chart: `equity` or `key <name>`.
        chart: String,
        /// The drawing backend's message.
        message: String,
    },
    /// The HTML file could not be written.
    #[error("cannot write report {path}: {source}; check that the directory exists and is writable", path = path.display())]
    Io {
        /// The file that was being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Renders the whole report as one HTML document.
pub fn render(data: &ReportData) -> Result<String, ReportError> {
    let mut html = String::with_capacity(64 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(html, "<title>{}</title>", escape(&data.title));
    html.push_str(STYLE);
    html.push_str("</head>\n<body>\n<main>\n<header>\n");
    let _ = writeln!(html, "<h1>{}</h1>", escape(&data.title));
    if !data.subtitle.is_empty() {
        let _ = writeln!(html, "<p class=\"subtitle\">{}</p>", escape(&data.subtitle));
    }
    html.push_str("</header>\n");

    render_summary(&mut html, &data.summary);

    if let Some(eq) = &data.equity {
        html.push_str("<section id=\"equity\">\n<h2>Equity</h2>\n<figure>\n");
        match equity_chart(eq)? {
            Some(svg) => html.push_str(&svg),
            None => html.push_str(
                "<p class=\"nodata\">No data: the equity curves are empty or not finite.</p>\n",
            ),
        }
        html.push_str(
            "<figcaption>Compounded equity of the dead-zone strategy and the L2 baseline, starting at 1.</figcaption>\n</figure>\n</section>\n",
        );
    }

    if !data.keys.is_empty() {
        html.push_str("<section id=\"keys\">\n<h2>Keys</h2>\n");
        for ks in &data.keys {
            render_key(&mut html, ks)?;
        }
        html.push_str("</section>\n");
    }

    html.push_str("<section id=\"notes\">\n<h2>Notes</h2>\n<ul class=\"notes\">\n");
    for note in &data.notes {
        let _ = writeln!(html, "<li>{}</li>", escape(note));
    }
    let _ = writeln!(
        html,
        "<li>Charts are decimated for drawing by min/max bucketing: each bucket of consecutive \
         points keeps its lowest and highest value, so spikes stay visible. At most {} points of \
         the observed series and {} points of each fitted line are drawn; at most {} event \
         markers per chart. All numbers in captions and tables use the full data. Times are UTC.</li>",
        fmt_int(MAX_POINTS_RAW as f64),
        fmt_int(MAX_POINTS_FIT as f64),
        fmt_int(MAX_MARKERS as f64)
    );
    html.push_str("</ul>\n</section>\n</main>\n</body>\n</html>\n");
    Ok(html)
}

/// Renders the report and writes it to `path` (created or truncated).
pub fn write(path: &Path, data: &ReportData) -> Result<(), ReportError> {
    let html = render(data)?;
    std::fs::write(path, html).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// HTML

const STYLE: &str = "<style>
:root { color-scheme: light; }
body { margin: 0; background: #ffffff; color: #1f2328; font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', 'DejaVu Sans', sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 12px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin: 0 0 2px; overflow-wrap: anywhere; }
.subtitle { color: #57606a; margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; white-space: nowrap; }
td.better { color: #116329; }
td.worse { color: #a40e26; }
figure { margin: 0 0 28px; }
figcaption, .caption { color: #57606a; font-size: 14px; margin: 2px 0 6px; }
svg { display: block; max-width: 100%; height: auto; }
.nodata { padding: 18px; border: 1px dashed #afb8c1; color: #57606a; background: #f6f8fa; }
details { margin: 4px 0 0; font-size: 14px; }
details table { margin-top: 6px; }
.notes li { margin: 4px 0; }
</style>
";

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn render_summary(html: &mut String, rows: &[SummaryRow]) {
    html.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    if rows.is_empty() {
        html.push_str("<p class=\"nodata\">No summary metrics.</p>\n</section>\n");
        return;
    }
    html.push_str(
        "<table class=\"summary\">\n<thead><tr><th>metric</th><th>strategy</th><th>baseline</th>\
         <th>change vs baseline</th><th>note</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&row.metric),
            fmt_value(row.strategy, row.format),
            fmt_value(row.baseline, row.format),
            change_vs_baseline(row),
            escape(row.note.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

/// The "change vs baseline" cell: relative change in percent, or percentage points for
/// [`ValueFormat::Percent`] rows; `n/a` when undefined.
fn change_vs_baseline(row: &SummaryRow) -> String {
    let (s, b) = (row.strategy, row.baseline);
    if !s.is_finite() || !b.is_finite() {
        return "n/a".into();
    }
    match row.format {
        ValueFormat::Percent => format!("{:+.2} pp", (s - b) * 100.0),
        ValueFormat::Number | ValueFormat::Integer => {
            if b == 0.0 {
                if s == 0.0 {
                    "0.0%".into()
                } else {
                    "n/a".into()
                }
            } else {
                format!("{:+.1}%", (s - b) / b.abs() * 100.0)
            }
        }
    }
}

fn fmt_value(v: f64, format: ValueFormat) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    match format {
        ValueFormat::Integer => fmt_int(v),
        ValueFormat::Percent => format!("{:.2}%", v * 100.0),
        ValueFormat::Number => {
            if v.abs() >= 1_000.0 {
                let int = fmt_int(v.trunc());
                let frac = format!("{:.2}", v.abs().fract());
                // fract rounded to 1.00 would need a carry: fall back to the integer.
                if frac.starts_with('1') {
                    fmt_int(v)
                } else {
                    let sign = if v < 0.0 && v.trunc() == 0.0 { "-" } else { "" };
                    format!("{sign}{int}{}", &frac[1..])
                }
            } else if v == 0.0 {
                "0".into()
            } else {
                // 4 significant digits.
                let decimals = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
                format!("{v:.decimals$}")
            }
        }
    }
}

/// Rounds to an integer and groups thousands with commas.
fn fmt_int(v: f64) -> String {
    let r = v.round();
    let digits = format!("{:.0}", r.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if r < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render_key(html: &mut String, ks: &KeySeries) -> Result<(), ReportError> {
    let n = ks.ts.len().min(ks.y.len()).min(ks.level.len());
    html.push_str("<figure class=\"key\">\n");
    let _ = writeln!(html, "<h3>{}</h3>", escape(&ks.key));
    let mut caption = format!(
        "dead-zone ratio {} · update rate {} · {} points",
        fmt_fraction(ks.dead_zone_ratio),
        fmt_fraction(ks.update_rate),
        fmt_int(n as f64)
    );
    if n > MAX_POINTS_RAW {
        let _ = write!(caption, " (drawn decimated)");
    }
    let _ = write!(caption, " · {} events", fmt_int(ks.markers.len() as f64));
    let _ = writeln!(html, "<p class=\"caption\">{caption}</p>");
    match key_chart(ks)? {
        Some(svg) => html.push_str(&svg),
        None => {
            let _ = writeln!(
                html,
                "<p class=\"nodata\">No data for {}: the series is empty or has no finite values.</p>",
                escape(&ks.key)
            );
        }
    }
    if !ks.markers.is_empty() {
        let _ = writeln!(
            html,
            "<details><summary>{} events</summary>\n<table><thead><tr><th>time (UTC)</th>\
             <th>kind</th><th>value</th><th>label</th></tr></thead><tbody>",
            fmt_int(ks.markers.len() as f64)
        );
        for m in ks.markers.iter().take(MAX_EVENT_ROWS) {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                format_utc(m.ts),
                m.kind.name(),
                fmt_value(m.y, ValueFormat::Number),
                escape(&m.label)
            );
        }
        html.push_str("</tbody></table>\n");
        if ks.markers.len() > MAX_EVENT_ROWS {
            let _ = writeln!(
                html,
                "<p class=\"caption\">First {MAX_EVENT_ROWS} of {} events listed.</p>",
                fmt_int(ks.markers.len() as f64)
            );
        }
        html.push_str("</details>\n");
    }
    html.push_str("</figure>\n");
    Ok(())
}

fn fmt_fraction(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(fmt_int(1_234_567.4), "1,234,567");
        assert_eq!(fmt_int(-999.6), "-1,000");
        assert_eq!(fmt_value(1234.5678, ValueFormat::Number), "1,234.57");
        assert_eq!(fmt_value(-1234.999, ValueFormat::Number), "-1,235");
        assert_eq!(fmt_value(0.012345, ValueFormat::Number), "0.01235");
        assert_eq!(fmt_value(f64::NAN, ValueFormat::Number), "n/a");
    }
}
