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

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod axis;
mod decimate;

pub use axis::format_utc;
use axis::TimeAxis;
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

    fn color(self) -> RGBColor {
        match self {
            MarkerKind::TrendUp => RGBColor(0x1a, 0x98, 0x50),
            MarkerKind::TrendDown => RGBColor(0xb2, 0x18, 0x2b),
            MarkerKind::TrendFlat => RGBColor(0x73, 0x73, 0x73),
            MarkerKind::Rebalance => RGBColor(0x6a, 0x3d, 0x9a),
            MarkerKind::Compensation => RGBColor(0xff, 0x7f, 0x00),
            MarkerKind::SpcAlarm => RGBColor(0xe7, 0x29, 0x8a),
        }
    }

    /// Outline of the marker in pixels around its anchor (y grows downwards).
    fn outline(self) -> Vec<(i32, i32)> {
        match self {
            MarkerKind::TrendUp => vec![(0, -6), (6, 5), (-6, 5)],
            MarkerKind::TrendDown => vec![(0, 6), (6, -5), (-6, -5)],
            MarkerKind::TrendFlat => vec![
                (5, 0),
                (4, 3),
                (3, 4),
                (0, 5),
                (-3, 4),
                (-4, 3),
                (-5, 0),
                (-4, -3),
                (-3, -4),
                (0, -5),
                (3, -4),
                (4, -3),
            ],
            MarkerKind::Rebalance => vec![(0, -6), (6, 0), (0, 6), (-6, 0)],
            MarkerKind::Compensation => vec![(-5, -5), (5, -5), (5, 5), (-5, 5)],
            MarkerKind::SpcAlarm => vec![
                (-6, -4),
                (-4, -6),
                (0, -2),
                (4, -6),
                (6, -4),
                (2, 0),
                (6, 4),
                (4, 6),
                (0, 2),
                (-4, 6),
                (-6, 4),
                (-2, 0),
            ],
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

// ---------------------------------------------------------------------------------------------
// Charts

const CHART_W: u32 = 1140;
const KEY_CHART_H: u32 = 400;
const EQUITY_CHART_H: u32 = 340;
const LEGEND_W: u32 = 170;
const FONT: &str = "sans-serif";

const RAW_COLOR: RGBColor = RGBColor(0xa6, 0xa6, 0xa6);
const LEVEL_COLOR: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const BAND_COLOR: RGBColor = RGBColor(0x6f, 0xa8, 0xdc);
const BASELINE_COLOR: RGBColor = RGBColor(0x8c, 0x56, 0x4b);
const SPEC_COLOR: RGBColor = RGBColor(0x20, 0x20, 0x20);
const GRID_COLOR: RGBColor = RGBColor(0xea, 0xee, 0xf2);
const AXIS_COLOR: RGBColor = RGBColor(0x57, 0x60, 0x6a);

/// How a legend entry's swatch is drawn.
enum Swatch {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Band(RGBColor),
    Marker(MarkerKind),
}

/// A time × value frame with finite, non-empty ranges.
struct Frame {
    x: TimeAxis,
    y: (f64, f64),
}

impl Frame {
    /// Frame around the given points; `None` if no value is finite.
    fn around(ts: impl Iterator<Item = i64>, ys: impl Iterator<Item = f64>) -> Option<Frame> {
        let (mut x0, mut x1) = (i64::MAX, i64::MIN);
        for t in ts {
            x0 = x0.min(t);
            x1 = x1.max(t);
        }
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in ys.filter(|v| v.is_finite()) {
            y0 = y0.min(v);
            y1 = y1.max(v);
        }
        if x0 > x1 || y0 > y1 {
            return None;
        }
        if x0 == x1 {
            x0 = x0.saturating_sub(1_000_000_000);
            x1 = x1.saturating_add(1_000_000_000);
        }
        let span = y1 - y0;
        let pad = if span > 0.0 && span.is_finite() {
            span * 0.05
        } else {
            (y0.abs() * 0.01).max(1e-9)
        };
        Some(Frame {
            x: TimeAxis { start: x0, end: x1 },
            y: (y0 - pad, y1 + pad),
        })
    }
}

/// Decimal places for y tick labels over `span`.
fn y_decimals(span: f64) -> usize {
    if !(span.is_finite() && span > 0.0) {
        return 2;
    }
    (1.0 - (span / 5.0).log10().floor()).clamp(0.0, 8.0) as usize
}

fn draw_err<E: std::fmt::Debug>(chart: &str) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Draw {
        chart: chart.to_string(),
        message: format!("{e:?}"),
    }
}

/// Draws a legend column: one swatch and one label per row.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Swatch, String)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let text = TextStyle::from((FONT, 16).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (swatch, label)) in entries.iter().enumerate() {
        let y = 30 + 24 * i as i32;
        let (x0, x1) = (8, 34);
        match swatch {
            Swatch::Line(c, w) => {
                area.draw(&PathElement::new(
                    vec![(x0, y), (x1, y)],
                    c.stroke_width(*w),
                ))?;
            }
            Swatch::Dashed(c) => {
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 10, y)],
                    c.stroke_width(1),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x0 + 16, y), (x1, y)],
                    c.stroke_width(1),
                ))?;
            }
            Swatch::Band(c) => {
                area.draw(&Rectangle::new(
                    [(x0, y - 6), (x1, y + 6)],
                    c.mix(0.35).filled(),
                ))?;
            }
            Swatch::Marker(k) => {
                area.draw(
                    &(EmptyElement::at(((x0 + x1) / 2, y))
                        + Polygon::new(k.outline(), k.color().filled())),
                )?;
            }
        }
        area.draw(&Text::new(label.clone(), (x1 + 8, y), text.clone()))?;
    }
    Ok(())
}

/// The decimated finite points of `values` over `ts`, ready to draw.
fn finite_points(ts: &[i64], values: &[f64], max_points: usize) -> Vec<(i64, f64)> {
    let n = ts.len().min(values.len());
    decimate_min_max(&values[..n], max_points)
        .into_iter()
        .filter(|&i| values[i].is_finite())
        .map(|i| (ts[i], values[i]))
        .collect()
}

/// The zone band as polygons, one per run of finite `level ± zone`.
fn band_polygons(ts: &[i64], level: &[f64], zone: &[f64]) -> Vec<Vec<(i64, f64)>> {
    let n = ts.len().min(level.len());
    let value = |i: usize| {
        let z = zone.get(i).copied().unwrap_or(f64::NAN);
        (level[i] - z.abs(), level[i] + z.abs())
    };
    let lower: Vec<f64> = (0..n).map(|i| value(i).0).collect();
    let upper: Vec<f64> = (0..n).map(|i| value(i).1).collect();
    let mut keep = decimate_min_max(&lower, MAX_POINTS_FIT / 2);
    keep.extend(decimate_min_max(&upper, MAX_POINTS_FIT / 2));
    keep.sort_unstable();
    keep.dedup();

    let mut polys = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let mut flush = |run: &mut Vec<usize>| {
        if run.len() >= 2 {
            let mut poly: Vec<(i64, f64)> = run.iter().map(|&i| (ts[i], upper[i])).collect();
            poly.extend(run.iter().rev().map(|&i| (ts[i], lower[i])));
            polys.push(poly);
        }
        run.clear();
    };
    for i in keep {
        if lower[i].is_finite() && upper[i].is_finite() {
            run.push(i);
        } else {
            flush(&mut run);
        }
    }
    flush(&mut run);
    polys
}

/// A chart over `frame` with a UTC time axis, grid, tick labels and axis titles drawn.
fn time_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    frame: &Frame,
    y_desc: &str,
) -> Result<
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<TimeAxis, RangedCoordf64>>,
    DrawingAreaErrorKind<<SVGBackend<'b> as DrawingBackend>::ErrorType>,
> {
    const X_LABELS: usize = 7;
    let axis = frame.x;
    let mut chart = ChartBuilder::on(area)
        .margin_top(14)
        .margin_right(18)
        .margin_left(6)
        .x_label_area_size(52)
        .y_label_area_size(84)
        .build_cartesian_2d(axis, frame.y.0..frame.y.1)?;
    let step = axis.tick_step(X_LABELS);
    let x_fmt = |t: &i64| axis.label(*t, step);
    let dec = y_decimals(frame.y.1 - frame.y.0);
    let y_fmt = |v: &f64| format!("{v:.dec$}");
    chart
        .configure_mesh()
        .x_labels(X_LABELS)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(axis.desc())
        .y_desc(y_desc)
        .label_style((FONT, 16).into_font().color(&AXIS_COLOR))
        .axis_desc_style((FONT, 17).into_font().color(&AXIS_COLOR))
        .axis_style(AXIS_COLOR)
        .max_light_lines(4)
        .light_line_style(GRID_COLOR.mix(0.6))
        .bold_line_style(GRID_COLOR)
        .draw()?;
    Ok(chart)
}

/// Draws a key's chart; `None` when there is nothing finite to draw.
fn key_chart(ks: &KeySeries) -> Result<Option<String>, ReportError> {
    let n = ks.ts.len().min(ks.y.len()).min(ks.level.len());
    let ts = &ks.ts[..n];
    let (y, level) = (&ks.y[..n], &ks.level[..n]);
    if !y.iter().chain(level).any(|v| v.is_finite()) {
        return Ok(None);
    }
    let zone = &ks.zone[..ks.zone.len().min(n)];
    let baseline = ks.baseline_level.as_ref().map(|b| &b[..b.len().min(n)]);
    let markers: Vec<&Marker> = ks
        .markers
        .iter()
        .filter(|m| m.y.is_finite() && ts.first().is_some_and(|&t0| m.ts >= t0))
        .filter(|m| ts.last().is_some_and(|&t1| m.ts <= t1))
        .collect();

    let band_edges = (0..zone.len()).flat_map(|i| {
        let z = zone[i].abs();
        [level[i] - z, level[i] + z]
    });
    let frame = Frame::around(
        ts.iter().copied(),
        y.iter()
            .chain(level)
            .copied()
            .chain(band_edges)
            .chain(baseline.into_iter().flatten().copied())
            .chain(ks.lsl)
            .chain(ks.usl)
            .chain(markers.iter().map(|m| m.y)),
    )
    .expect("a finite value exists");

    let chart_name = format!("key {}", ks.key);
    let err = draw_err(&chart_name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_W, KEY_CHART_H)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (plot_area, legend_area) = root.split_horizontally(CHART_W - LEGEND_W);
        let mut chart = time_chart(&plot_area, &frame, "value").map_err(&err)?;

        let mut legend: Vec<(Swatch, String)> = Vec::new();

        let raw = finite_points(ts, y, MAX_POINTS_RAW);
        if !raw.is_empty() {
            chart
                .draw_series(LineSeries::new(raw, RAW_COLOR.stroke_width(1)))
                .map_err(&err)?;
            legend.push((Swatch::Line(RAW_COLOR, 1), "observed".into()));
        }

        let band = band_polygons(ts, level, zone);
        if !band.is_empty() {
            chart
                .draw_series(
                    band.into_iter()
                        .map(|poly| Polygon::new(poly, BAND_COLOR.mix(0.35).filled())),
                )
                .map_err(&err)?;
            legend.push((Swatch::Band(BAND_COLOR), "zone (level ± eps)".into()));
        }

        if let Some(b) = baseline {
            let pts = finite_points(ts, b, MAX_POINTS_FIT);
            if !pts.is_empty() {
                chart
                    .draw_series(LineSeries::new(pts, BASELINE_COLOR.stroke_width(2)))
                    .map_err(&err)?;
                legend.push((
                    Swatch::Line(BASELINE_COLOR, 2),
                    "baseline level (L2)".into(),
                ));
            }
        }

        let lv = finite_points(ts, level, MAX_POINTS_FIT);
        if !lv.is_empty() {
            chart
                .draw_series(LineSeries::new(lv, LEVEL_COLOR.stroke_width(2)))
                .map_err(&err)?;
            legend.push((Swatch::Line(LEVEL_COLOR, 2), "level (dead zone)".into()));
        }

        let mut spec = false;
        for (limit, name) in [(ks.lsl, "LSL"), (ks.usl, "USL")] {
            if let Some(v) = limit.filter(|v| v.is_finite()) {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(frame.x.start, v), (frame.x.end, v)],
                        10,
                        6,
                        SPEC_COLOR.stroke_width(1),
                    ))
                    .map_err(&err)?;
                let style = TextStyle::from((FONT, 15).into_font())
                    .color(&SPEC_COLOR)
                    .pos(Pos::new(HPos::Left, VPos::Bottom));
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((frame.x.start, v)) + Text::new(name, (6, -3), style),
                    ))
                    .map_err(&err)?;
                spec = true;
            }
        }
        if spec {
            legend.push((Swatch::Dashed(SPEC_COLOR), "spec limits".into()));
        }

        for kind in MarkerKind::ALL {
            let of_kind: Vec<&Marker> =
                markers.iter().copied().filter(|m| m.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let stride = markers.len().div_ceil(MAX_MARKERS).max(1);
            chart
                .draw_series(of_kind.iter().step_by(stride).map(|m| {
                    EmptyElement::at((m.ts, m.y))
                        + Polygon::new(kind.outline(), kind.color().filled())
                }))
                .map_err(&err)?;
            legend.push((Swatch::Marker(kind), kind.name().into()));
        }

        draw_legend(&legend_area, &legend).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(Some(svg))
}

/// Draws the equity chart; `None` when neither curve has a finite value.
fn equity_chart(eq: &EquityCurves) -> Result<Option<String>, ReportError> {
    let n = eq.ts.len();
    let strategy = &eq.strategy[..eq.strategy.len().min(n)];
    let baseline = &eq.baseline[..eq.baseline.len().min(n)];
    let Some(frame) = Frame::around(
        eq.ts.iter().copied(),
        strategy.iter().chain(baseline).copied(),
    ) else {
        return Ok(None);
    };
    let err = draw_err("equity");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_W, EQUITY_CHART_H)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (plot_area, legend_area) = root.split_horizontally(CHART_W - LEGEND_W);
        let mut chart = time_chart(&plot_area, &frame, "equity (start = 1)").map_err(&err)?;

        let mut legend = Vec::new();
        let b = finite_points(&eq.ts, baseline, MAX_POINTS_FIT);
        if !b.is_empty() {
            chart
                .draw_series(LineSeries::new(b, BASELINE_COLOR.stroke_width(2)))
                .map_err(&err)?;
            legend.push((Swatch::Line(BASELINE_COLOR, 2), "baseline (L2)".to_string()));
        }
        let s = finite_points(&eq.ts, strategy, MAX_POINTS_FIT);
        if !s.is_empty() {
            chart
                .draw_series(LineSeries::new(s, LEVEL_COLOR.stroke_width(2)))
                .map_err(&err)?;
            legend.push((
                Swatch::Line(LEVEL_COLOR, 2),
                "strategy (dead zone)".to_string(),
            ));
        }
        draw_legend(&legend_area, &legend).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(Some(svg))
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
