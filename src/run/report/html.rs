//! The HTML page: head and stylesheet, summary table, one figure per key with its events
//! table, notes, and the escaping and number formatting they use.

use std::fmt::Write as _;

use super::chart::{equity_chart, key_chart};
use super::panel::{drawdown_panel, position_panel, residual_panel, turnover_panel};
use super::{
    format_utc, KeySeries, ReportData, ReportError, SummaryRow, ValueFormat, MAX_EVENT_ROWS,
    MAX_MARKERS, MAX_POINTS_FIT, MAX_POINTS_RAW,
};

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
            "<figcaption>Compounded equity of the dead-zone strategy and the L2 baseline, starting at 1.</figcaption>\n</figure>\n",
        );
        if let Some(svg) = drawdown_panel(eq)? {
            html.push_str("<figure>\n");
            html.push_str(&svg);
            html.push_str("<figcaption>Drawdown: equity / its running maximum − 1, over every period (not only the drawn samples).</figcaption>\n</figure>\n");
        }
        if let Some(svg) = turnover_panel(eq)? {
            html.push_str("<figure>\n");
            html.push_str(&svg);
            html.push_str("<figcaption>Cumulative one-way turnover (Σ |Δ position| over all keys): where the trading happens.</figcaption>\n</figure>\n");
        }
        html.push_str("</section>\n");
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
         markers of each kind per chart (the legend says when fewer are drawn than happened). All numbers in captions and tables use the full data. Times are UTC.</li>",
        fmt_int(MAX_POINTS_RAW as f64),
        fmt_int(MAX_POINTS_FIT as f64),
        fmt_int(MAX_MARKERS as f64)
    );
    html.push_str("</ul>\n</section>\n</main>\n</body>\n</html>\n");
    Ok(html)
}

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
    if let Some(svg) = residual_panel(ks)? {
        html.push_str(&svg);
        let _ = writeln!(
            html,
            "<p class=\"caption\">Residual: the value minus the fit's prediction before it, with \
             the zone ±eps around 0 — inside it the fit does not move.{}</p>",
            if ks.spc_limit.is_some() {
                " The dashed lines are the SPC limits of the residual chart (re-estimated for \
                 each tool); ticks at the top mark alarms, one per excursion."
            } else {
                ""
            }
        );
    }
    if let Some(svg) = position_panel(ks)? {
        html.push_str(&svg);
        html.push_str(
            "<p class=\"caption\">Position after each bar (units of one notional), strategy and \
             L2 baseline.</p>\n",
        );
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
