//! The inline SVG charts: a key's observed series, fitted level, zone band, spec limits and
//! event markers, and the equity curves, each with a legend column beside the plot.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::TimeAxis;
use super::{
    decimate_min_max, EquityCurves, KeySeries, Marker, MarkerKind, ReportError, MAX_MARKERS,
    MAX_POINTS_FIT, MAX_POINTS_RAW, MAX_TOOL_LINES,
};

pub(super) const CHART_W: u32 = 1140;
const KEY_CHART_H: u32 = 400;
const EQUITY_CHART_H: u32 = 340;
pub(super) const LEGEND_W: u32 = 170;
pub(super) const FONT: &str = "sans-serif";

pub(super) const RAW_COLOR: RGBColor = RGBColor(0xa6, 0xa6, 0xa6);
pub(super) const LEVEL_COLOR: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
pub(super) const BAND_COLOR: RGBColor = RGBColor(0x6f, 0xa8, 0xdc);
pub(super) const BASELINE_COLOR: RGBColor = RGBColor(0x8c, 0x56, 0x4b);
pub(super) const SPEC_COLOR: RGBColor = RGBColor(0x20, 0x20, 0x20);
const GRID_COLOR: RGBColor = RGBColor(0xea, 0xee, 0xf2);
const AXIS_COLOR: RGBColor = RGBColor(0x57, 0x60, 0x6a);

/// Tool-change lines.
pub(super) const TOOL_COLOR: RGBColor = RGBColor(0x35, 0x8c, 0x8c);

/// The legend label of a marker kind: its name, and how many are drawn when thinned.
fn marker_label(kind: MarkerKind, n: usize, stride: usize) -> String {
    if stride > 1 {
        format!("{} ({} of {n})", kind.name(), n.div_ceil(stride))
    } else {
        kind.name().to_string()
    }
}

/// The legend label of the tool-change lines.
pub(super) fn tool_label(n: usize) -> String {
    if n > MAX_TOOL_LINES {
        format!(
            "tool change ({} of {n})",
            n.div_ceil(n.div_ceil(MAX_TOOL_LINES))
        )
    } else {
        "tool change".to_string()
    }
}

/// The tool changes inside the series' time range, at most [`MAX_TOOL_LINES`] (evenly chosen).
pub(super) fn tool_lines(ts: &[i64], changes: &[i64]) -> Vec<i64> {
    let (Some(&t0), Some(&t1)) = (ts.first(), ts.last()) else {
        return Vec::new();
    };
    let stride = changes.len().div_ceil(MAX_TOOL_LINES).max(1);
    changes
        .iter()
        .step_by(stride)
        .copied()
        .filter(|t| (t0..=t1).contains(t))
        .collect()
}

/// How each event kind is drawn.
impl MarkerKind {
    pub(super) fn color(self) -> RGBColor {
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

/// How a legend entry's swatch is drawn.
pub(super) enum Swatch {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Band(RGBColor),
    Marker(MarkerKind),
}

/// A time × value frame with finite, non-empty ranges.
pub(super) struct Frame {
    pub(super) x: TimeAxis,
    pub(super) y: (f64, f64),
}

impl Frame {
    /// Frame around the given points; `None` if no value is finite.
    pub(super) fn around(
        ts: impl Iterator<Item = i64>,
        ys: impl Iterator<Item = f64>,
    ) -> Option<Frame> {
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

pub(super) fn draw_err<E: std::fmt::Debug>(chart: &str) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Draw {
        chart: chart.to_string(),
        message: format!("{e:?}"),
    }
}

/// Draws a legend column: one swatch and one label per row.
pub(super) fn draw_legend<DB: DrawingBackend>(
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
pub(super) fn finite_points(ts: &[i64], values: &[f64], max_points: usize) -> Vec<(i64, f64)> {
    let n = ts.len().min(values.len());
    decimate_min_max(&values[..n], max_points)
        .into_iter()
        .filter(|&i| values[i].is_finite())
        .map(|i| (ts[i], values[i]))
        .collect()
}

/// The zone band as polygons, one per run of finite `level ± zone`.
pub(super) fn band_polygons(ts: &[i64], level: &[f64], zone: &[f64]) -> Vec<Vec<(i64, f64)>> {
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

/// A chart over time on an SVG area, as plotters builds it.
type TimeChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<TimeAxis, RangedCoordf64>>;
/// What drawing on an SVG area can fail with.
type SvgError<'b> = DrawingAreaErrorKind<<SVGBackend<'b> as DrawingBackend>::ErrorType>;

/// A chart over `frame` with a UTC time axis, grid, tick labels and axis titles drawn.
pub(super) fn time_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    frame: &Frame,
    y_desc: &str,
) -> Result<TimeChart<'a, 'b>, SvgError<'b>> {
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
pub(super) fn key_chart(ks: &KeySeries) -> Result<Option<String>, ReportError> {
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

        let tools = tool_lines(ts, &ks.tool_changes);
        if !tools.is_empty() {
            chart
                .draw_series(tools.iter().map(|&t| {
                    PathElement::new(
                        vec![(t, frame.y.0), (t, frame.y.1)],
                        TOOL_COLOR.mix(0.6).stroke_width(1),
                    )
                }))
                .map_err(&err)?;
            legend.push((
                Swatch::Line(TOOL_COLOR, 1),
                tool_label(ks.tool_changes.len()),
            ));
        }

        for kind in MarkerKind::ALL {
            let of_kind: Vec<&Marker> =
                markers.iter().copied().filter(|m| m.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let stride = of_kind.len().div_ceil(MAX_MARKERS).max(1);
            chart
                .draw_series(of_kind.iter().step_by(stride).map(|m| {
                    EmptyElement::at((m.ts, m.y))
                        + Polygon::new(kind.outline(), kind.color().mix(0.85).filled())
                }))
                .map_err(&err)?;
            legend.push((
                Swatch::Marker(kind),
                marker_label(kind, of_kind.len(), stride),
            ));
        }

        draw_legend(&legend_area, &legend).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(Some(svg))
}

/// Draws the equity chart; `None` when neither curve has a finite value.
pub(super) fn equity_chart(eq: &EquityCurves) -> Result<Option<String>, ReportError> {
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
