//! The panels under the charts: a key's residual with the zone ±eps and the SPC limits, its
//! positions, and the portfolio's drawdown and cumulative turnover.

use plotters::prelude::*;

use super::axis::TimeAxis;
use super::chart::{
    band_polygons, draw_err, draw_legend, finite_points, time_chart, tool_label, tool_lines, Frame,
    Swatch, BAND_COLOR, BASELINE_COLOR, CHART_W, LEGEND_W, LEVEL_COLOR, RAW_COLOR, SPEC_COLOR,
    TOOL_COLOR,
};
use super::{EquityCurves, KeySeries, MarkerKind, ReportError, MAX_MARKERS, MAX_POINTS_FIT};

const PANEL_H: u32 = 210;

/// One line of a panel.
struct Line<'a> {
    values: &'a [f64],
    color: RGBColor,
    width: u32,
    label: String,
    max_points: usize,
}

/// A time panel: lines, an optional band ±`band` around 0, optional dashed ±`limits`, tool
/// lines and event ticks, over `frame`.
struct Panel<'a> {
    name: String,
    y_desc: &'a str,
    ts: &'a [i64],
    frame: Frame,
    band: Option<(&'a [f64], &'a str)>,
    limits: Option<(&'a [f64], &'a str)>,
    lines: Vec<Line<'a>>,
    tools: Vec<i64>,
    tool_count: usize,
    ticks: Vec<i64>,
    tick_label: String,
}

impl Panel<'_> {
    fn draw(self) -> Result<String, ReportError> {
        let err = draw_err(&self.name);
        let (y0, y1) = self.frame.y;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (CHART_W, PANEL_H)).into_drawing_area();
            root.fill(&WHITE).map_err(&err)?;
            let (plot_area, legend_area) = root.split_horizontally(CHART_W - LEGEND_W);
            let mut chart = time_chart(&plot_area, &self.frame, self.y_desc).map_err(&err)?;
            let mut legend: Vec<(Swatch, String)> = Vec::new();

            if let Some((half, label)) = self.band {
                let zero = vec![0.0; self.ts.len().min(half.len())];
                let polys = band_polygons(self.ts, &zero, half);
                if !polys.is_empty() {
                    chart
                        .draw_series(
                            polys
                                .into_iter()
                                .map(|p| Polygon::new(p, BAND_COLOR.mix(0.35).filled())),
                        )
                        .map_err(&err)?;
                    legend.push((Swatch::Band(BAND_COLOR), label.to_string()));
                }
            }
            if !self.tools.is_empty() {
                chart
                    .draw_series(self.tools.iter().map(|&t| {
                        PathElement::new(
                            vec![(t, y0), (t, y1)],
                            TOOL_COLOR.mix(0.6).stroke_width(1),
                        )
                    }))
                    .map_err(&err)?;
                legend.push((Swatch::Line(TOOL_COLOR, 1), tool_label(self.tool_count)));
            }
            for line in &self.lines {
                let pts = finite_points(self.ts, line.values, line.max_points);
                if pts.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(pts, line.color.stroke_width(line.width)))
                    .map_err(&err)?;
                legend.push((Swatch::Line(line.color, line.width), line.label.clone()));
            }
            if let Some((limit, label)) = self.limits {
                let mut drawn = false;
                for sign in [1.0, -1.0] {
                    let v: Vec<f64> = limit.iter().map(|l| sign * l).collect();
                    let pts = finite_points(self.ts, &v, MAX_POINTS_FIT);
                    if pts.len() < 2 {
                        continue;
                    }
                    chart
                        .draw_series(DashedLineSeries::new(pts, 8, 5, SPEC_COLOR.stroke_width(1)))
                        .map_err(&err)?;
                    drawn = true;
                }
                if drawn {
                    legend.push((Swatch::Dashed(SPEC_COLOR), label.to_string()));
                }
            }
            if !self.ticks.is_empty() {
                let c = MarkerKind::SpcAlarm.color();
                let (lo, hi) = (y1 - 0.12 * (y1 - y0), y1);
                chart
                    .draw_series(
                        self.ticks
                            .iter()
                            .map(|&t| PathElement::new(vec![(t, lo), (t, hi)], c.stroke_width(2))),
                    )
                    .map_err(&err)?;
                legend.push((Swatch::Line(c, 2), self.tick_label.clone()));
            }
            draw_legend(&legend_area, &legend).map_err(&err)?;
            root.present().map_err(&err)?;
        }
        Ok(svg)
    }
}

/// The time frame of a series, or `None` when empty.
fn time_frame(ts: &[i64]) -> Option<TimeAxis> {
    Frame::around(ts.iter().copied(), [0.0].into_iter()).map(|f| f.x)
}

/// The `q` quantile (0..1) of the finite values' magnitudes; 0 when there are none.
fn abs_quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| x.abs())
        .collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Largest finite magnitude; 0 when there is none.
fn abs_max(values: &[f64]) -> f64 {
    values
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0, |m, x| m.max(x.abs()))
}

/// The residual panel of a key: `y` − prediction, the zone ±eps around 0, the SPC limits when
/// known, tool changes and SPC alarms. `None` without residuals.
pub(super) fn residual_panel(ks: &KeySeries) -> Result<Option<String>, ReportError> {
    let Some(residual) = ks.residual.as_deref() else {
        return Ok(None);
    };
    let n = ks.ts.len().min(residual.len());
    let ts = &ks.ts[..n];
    let Some(x) = time_frame(ts) else {
        return Ok(None);
    };
    let zone = &ks.zone[..ks.zone.len().min(n)];
    let limit = ks.spc_limit.as_deref().map(|l| &l[..l.len().min(n)]);
    // The range: the bulk of the residuals, the zone and the limits; gross errors beyond it
    // are drawn on its edge rather than squashing everything else into a line.
    let range = abs_quantile(&residual[..n], 0.995)
        .max(1.5 * abs_max(zone))
        .max(1.2 * limit.map_or(0.0, abs_max));
    if !(range.is_finite() && range > 0.0) {
        return Ok(None);
    }
    let clamped: Vec<f64> = residual[..n]
        .iter()
        .map(|r| r.clamp(-range, range))
        .collect();
    let ticks: Vec<i64> = ks
        .markers
        .iter()
        .filter(|m| m.kind == MarkerKind::SpcAlarm)
        .map(|m| m.ts)
        .filter(|t| x.start <= *t && *t <= x.end)
        .collect();
    let stride = ticks.len().div_ceil(4 * MAX_MARKERS).max(1);
    let tick_label = if stride > 1 {
        format!(
            "SPC alarm ({} of {})",
            ticks.len().div_ceil(stride),
            ticks.len()
        )
    } else {
        "SPC alarm".to_string()
    };
    let panel = Panel {
        name: format!("residual {}", ks.key),
        y_desc: "residual",
        ts,
        frame: Frame {
            x,
            y: (-1.08 * range, 1.08 * range),
        },
        band: Some((zone, "zone ±eps")),
        limits: limit.map(|l| (l, "SPC limits ±3σ")),
        lines: vec![Line {
            values: &clamped,
            color: RAW_COLOR,
            width: 1,
            label: "y − prediction".into(),
            max_points: 2 * MAX_POINTS_FIT,
        }],
        tools: tool_lines(ts, &ks.tool_changes),
        tool_count: ks.tool_changes.len(),
        ticks: ticks.into_iter().step_by(stride).collect(),
        tick_label,
    };
    panel.draw().map(Some)
}

/// The positions of strategy and baseline over time (bars). `None` without positions.
pub(super) fn position_panel(ks: &KeySeries) -> Result<Option<String>, ReportError> {
    let Some(pos) = ks.position.as_deref() else {
        return Ok(None);
    };
    let n = ks.ts.len().min(pos.len());
    let ts = &ks.ts[..n];
    let base = ks
        .baseline_position
        .as_deref()
        .map(|b| &b[..b.len().min(n)]);
    let Some(frame) = Frame::around(
        ts.iter().copied(),
        pos[..n]
            .iter()
            .chain(base.into_iter().flatten())
            .copied()
            .chain([0.0]),
    ) else {
        return Ok(None);
    };
    let mut lines = Vec::new();
    if let Some(b) = base {
        lines.push(Line {
            values: b,
            color: BASELINE_COLOR,
            width: 1,
            label: "baseline (L2)".into(),
            max_points: MAX_POINTS_FIT,
        });
    }
    lines.push(Line {
        values: &pos[..n],
        color: LEVEL_COLOR,
        width: 2,
        label: "strategy".into(),
        max_points: MAX_POINTS_FIT,
    });
    Panel {
        name: format!("position {}", ks.key),
        y_desc: "position",
        ts,
        frame,
        band: None,
        limits: None,
        lines,
        tools: Vec::new(),
        tool_count: 0,
        ticks: Vec::new(),
        tick_label: String::new(),
    }
    .draw()
    .map(Some)
}

/// Two lines (strategy, baseline) over the equity curves' times; `None` when empty.
fn pair_panel(
    eq: &EquityCurves,
    name: &str,
    y_desc: &str,
    strategy: &[f64],
    baseline: &[f64],
) -> Result<Option<String>, ReportError> {
    let n = eq.ts.len();
    let (s, b) = (
        &strategy[..strategy.len().min(n)],
        &baseline[..baseline.len().min(n)],
    );
    if s.is_empty() && b.is_empty() {
        return Ok(None);
    }
    let Some(frame) = Frame::around(eq.ts.iter().copied(), s.iter().chain(b).copied()) else {
        return Ok(None);
    };
    Panel {
        name: name.to_string(),
        y_desc,
        ts: &eq.ts,
        frame,
        band: None,
        limits: None,
        lines: vec![
            Line {
                values: b,
                color: BASELINE_COLOR,
                width: 2,
                label: "baseline (L2)".into(),
                max_points: MAX_POINTS_FIT,
            },
            Line {
                values: s,
                color: LEVEL_COLOR,
                width: 2,
                label: "strategy (dead zone)".into(),
                max_points: MAX_POINTS_FIT,
            },
        ],
        tools: Vec::new(),
        tool_count: 0,
        ticks: Vec::new(),
        tick_label: String::new(),
    }
    .draw()
    .map(Some)
}

/// Drawdown of both methods, in percent.
pub(super) fn drawdown_panel(eq: &EquityCurves) -> Result<Option<String>, ReportError> {
    let pct = |v: &[f64]| v.iter().map(|x| 100.0 * x).collect::<Vec<_>>();
    let (s, b) = (pct(&eq.strategy_drawdown), pct(&eq.baseline_drawdown));
    pair_panel(eq, "drawdown", "drawdown (%)", &s, &b)
}

/// Cumulative one-way turnover of both methods.
pub(super) fn turnover_panel(eq: &EquityCurves) -> Result<Option<String>, ReportError> {
    pair_panel(
        eq,
        "turnover",
        "cumulative turnover",
        &eq.strategy_turnover,
        &eq.baseline_turnover,
    )
}
