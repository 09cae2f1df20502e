//! The backtest report: one self-contained `report.html` (inline CSS, inline SVG charts drawn with plotters, no scripts, no external URLs).
//!
//! The backtest driver fills a [`ReportData`] — plain vectors, no dependency on the other
//! driver modules — and calls [`render`] or [`write`]. The page has, in order: a title and
//! subtitle, the summary table (strategy, baseline, change vs baseline, note), the equity
//! curves of strategy and baseline (bars runs only), one chart per key, and the notes.
//!
//! Choices made here:
//! - **Decimation.** Long series are reduced for drawing by min/max bucketing
//!   ([`decimate_min_max`]): the index range is cut into equal buckets and each bucket keeps
//!   the positions of its smallest and largest finite value, so spikes stay visible. The raw
//!   series `y` keeps at most [`MAX_POINTS_RAW`] points; the smooth fitted lines (level,
//!   zone edges, baseline level) and each equity curve at most [`MAX_POINTS_FIT`] each.
//!   Event markers are thinned to at most [`MAX_MARKERS`] per kind and chart by keeping every
//!   k-th marker of that kind, and the legend says so ("120 of 1,043"), so a busy run is not
//!   a wall of markers. SPC alarms are also drawn as ticks along the top of the residual panel,
//!   tool changes as thin vertical lines.
//! - **Panels.** Under a key's chart: the residual (`y` − prediction) with the zone ±eps
//!   around 0 (at price scale the band of the main chart is a hair), the SPC limits on the
//!   residual when known, and for bars the positions of strategy and baseline. Under the
//!   equity chart: drawdown and cumulative turnover of both. The residual panel's range is
//!   ±max(the 99.5th percentile of |residual|, 1.5·max eps, 1.2·max limit); residuals beyond
//!   it (gross gauge errors) are drawn on its edge. Statistics in captions and the table are never computed from
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

use std::path::{Path, PathBuf};

mod axis;
mod chart;
mod decimate;
mod html;
mod panel;

pub use axis::format_utc;
pub use decimate::decimate_min_max;
pub use html::render;

/// Most points drawn for a key's raw series `y` (min/max bucketing, see [`decimate_min_max`]).
pub const MAX_POINTS_RAW: usize = 2_000;
/// Most points drawn for each smooth line: fitted level, each zone edge, baseline level, and
/// each equity curve.
pub const MAX_POINTS_FIT: usize = 1_000;
/// Most event markers of one kind drawn on one key chart (evenly chosen; the legend says how
/// many of how many); the events table lists the first [`MAX_EVENT_ROWS`].
pub const MAX_MARKERS: usize = 120;
/// Most tool-change lines drawn on one key chart.
pub const MAX_TOOL_LINES: usize = 400;
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

/// Compounded equity (starting at 1) of strategy and baseline on a common time axis, with
/// their drawdowns and cumulative turnover (drawn in panels under the equity chart when given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EquityCurves {
    /// Event time, epoch nanoseconds, UTC.
    pub ts: Vec<i64>,
    /// Strategy equity at each `ts`.
    pub strategy: Vec<f64>,
    /// Baseline equity at each `ts`.
    pub baseline: Vec<f64>,
    /// Drawdown at each `ts`, E / max(E so far) − 1 over the *whole* series (not the samples).
    pub strategy_drawdown: Vec<f64>,
    pub baseline_drawdown: Vec<f64>,
    /// One-way turnover summed up to each `ts`.
    pub strategy_turnover: Vec<f64>,
    pub baseline_turnover: Vec<f64>,
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
    /// `y` minus the fit's prediction before the record: drawn in a residual panel under the
    /// chart with the band ±`zone` around 0, where the zone is visible at any price scale.
    pub residual: Option<Vec<f64>>,
    /// Half-width (3σ) of the SPC control limits on the residual at each point (measurements);
    /// drawn as ±limit lines in the residual panel.
    pub spc_limit: Option<Vec<f64>>,
    /// Position (exposure) of the strategy after each record (bars): a panel under the chart.
    pub position: Option<Vec<f64>>,
    /// Position of the baseline after each record.
    pub baseline_position: Option<Vec<f64>>,
    /// Times of tool changes: thin vertical lines through the key's charts.
    pub tool_changes: Vec<i64>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Renders the report and writes it to `path` (created or truncated).
pub fn write(path: &Path, data: &ReportData) -> Result<(), ReportError> {
    let html = render(data)?;
    std::fs::write(path, html).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}
