//! The report's summary table, subtitle and notes, from a `Summary` alone: shared by the
//! backtest's report and the merged report of `deadband merge`.

use crate::record::RecordKind;
use crate::run::backtest::Summary;
use crate::run::report::{SummaryRow, ValueFormat};
use crate::signal::truth::TruthReport;

/// The rows of the summary table (strategy vs baseline).
pub fn summary_rows(s: &Summary) -> Vec<SummaryRow> {
    let (a, b) = (&s.strategy, &s.baseline);
    let count = |x: Option<u64>| x.map_or(f64::NAN, |v| v as f64);
    let mut summary = Vec::new();
    match s.record {
        RecordKind::Bar => {
            summary.push(
                SummaryRow::new("turnover", a.turnover, b.turnover)
                    .with_note("one-way, sum |Δ position|"),
            );
            summary.push(
                SummaryRow::new("rebalances", a.rebalances as f64, b.rebalances as f64)
                    .with_format(ValueFormat::Integer),
            );
            summary.push(SummaryRow::new(
                "gross return",
                a.gross_return,
                b.gross_return,
            ));
            summary
                .push(SummaryRow::new("costs", a.costs, b.costs).with_note("turnover × cost_bps"));
            summary.push(SummaryRow::new("net return", a.net_return, b.net_return));
            summary.push(SummaryRow::new("sharpe", a.sharpe, b.sharpe).with_note(
                match s.periods_per_year {
                    Some(p) => format!("annualised, {p} periods/year"),
                    None => "per period, not annualised".to_string(),
                },
            ));
            summary.push(
                SummaryRow::new("max drawdown", a.max_drawdown, b.max_drawdown)
                    .with_format(ValueFormat::Percent),
            );
            summary.push(
                SummaryRow::new("hit rate", a.hit_rate, b.hit_rate)
                    .with_format(ValueFormat::Percent),
            );
            if let Some(act) = &s.active {
                let opt = |x: Option<f64>| x.unwrap_or(f64::NAN);
                let (vb, vh, bh) = (
                    &act.vs_baseline,
                    &act.vs_buy_and_hold,
                    &act.baseline_vs_buy_and_hold,
                );
                let per = if s.periods_per_year.is_some() {
                    "annualised"
                } else {
                    "per period"
                };
                summary.push(
                    SummaryRow::new("active return vs L2", vb.active_return, f64::NAN)
                        .with_note(format!("mean strategy − baseline return, {per}")),
                );
                summary.push(
                    SummaryRow::new(
                        "information ratio vs L2",
                        opt(vb.information_ratio),
                        f64::NAN,
                    )
                    .with_note(format!(
                        "active return / tracking error; tracking error {} {per}",
                        fmt_opt(vb.tracking_error)
                    )),
                );
                summary.push(
                    SummaryRow::new(
                        "active return vs buy & hold",
                        vh.active_return,
                        bh.active_return,
                    )
                    .with_note("buy & hold: each key long 1 notional from its first bar"),
                );
                summary.push(SummaryRow::new(
                    "tracking error vs buy & hold",
                    opt(vh.tracking_error),
                    opt(bh.tracking_error),
                ));
                summary.push(SummaryRow::new(
                    "information ratio vs buy & hold",
                    opt(vh.information_ratio),
                    opt(bh.information_ratio),
                ));
            }
            if let (Some(x), Some(y)) = (&a.trend_truth, &b.trend_truth) {
                truth_rows(&mut summary, x, y);
            }
        }
        RecordKind::Measurement => {
            summary.push(
                SummaryRow::new(
                    "compensations",
                    count(a.compensations),
                    count(b.compensations),
                )
                .with_format(ValueFormat::Integer)
                .with_note("baseline: Shewhart 3σ"),
            );
            summary.push(
                SummaryRow::new(
                    "out of tolerance",
                    count(a.out_of_tolerance),
                    count(b.out_of_tolerance),
                )
                .with_format(ValueFormat::Integer)
                .with_note("compensated parts outside [lsl, usl]"),
            );
            if a.truly_out_of_tolerance.is_some() {
                summary.push(
                    SummaryRow::new(
                        "truly out of tolerance",
                        count(a.truly_out_of_tolerance),
                        count(b.truly_out_of_tolerance),
                    )
                    .with_format(ValueFormat::Integer)
                    .with_note("by the data's true_value (no gauge noise), after the offsets"),
                );
            }
            summary.push(
                SummaryRow::new("SPC alarms", count(a.spc_alarms), count(b.spc_alarms))
                    .with_format(ValueFormat::Integer),
            );
        }
    }
    summary.push(
        SummaryRow::new("dead-zone ratio", a.dead_zone_ratio, b.dead_zone_ratio)
            .with_format(ValueFormat::Percent)
            .with_note("residual inside the zone"),
    );
    summary.push(
        SummaryRow::new("update rate", a.update_rate, b.update_rate)
            .with_format(ValueFormat::Percent)
            .with_note("records that changed the fit"),
    );
    summary.push(
        SummaryRow::new("trend events", a.trend_events as f64, b.trend_events as f64)
            .with_format(ValueFormat::Integer),
    );
    summary
}

/// One line under the title: input, rows, keys, rejected records, time.
pub fn subtitle(s: &Summary) -> String {
    let rejected: u64 =
        s.rejected.invalid.values().sum::<u64>() + s.rejected.out_of_order + s.rejected.duplicate;
    format!(
        "{} · {} rows, {} keys, {} rejected · {:.2} s ({:.0} rows/s)",
        s.input, s.rows, s.keys, rejected, s.elapsed_s, s.rows_per_s
    )
}

/// Definitions listed at the end of the page.
pub fn notes() -> Vec<String> {
    vec![
        "Strategy: the configured dead-zone fit. Baseline: L2 RLS (quadratic loss) with the same signal rules; for measurements, compensation when an individuals-chart point passes 3σ.".into(),
        "Positions are taken at the record after the decision (no look-ahead); PnL in units of one notional per key; per-period portfolio return = mean over keys.".into(),
        "Sharpe = mean/std (ddof 1) of per-period returns; max drawdown on compounded equity (empyrical); hit rate = positive periods / non-zero periods.".into(),
        "Charts show at most 20,000 evenly thinned samples per key, decimated again (min/max per bucket) for drawing.".into(),
    ]
}

/// The trend signals scored against the data's `true_trend` (definitions in `signal::truth`).
fn truth_rows(summary: &mut Vec<SummaryRow>, a: &TruthReport, b: &TruthReport) {
    let opt = |x: Option<f64>| x.unwrap_or(f64::NAN);
    summary.push(
        SummaryRow::new(
            "trend direction accuracy",
            a.direction_accuracy,
            b.direction_accuracy,
        )
        .with_format(ValueFormat::Percent)
        .with_note(format!(
            "bars whose signal direction = sign(true_trend), flat = flat; {} bars",
            a.bars
        )),
    );
    summary.push(
        SummaryRow::new(
            "regime changes detected",
            a.detected as f64,
            b.detected as f64,
        )
        .with_format(ValueFormat::Integer)
        .with_note(format!(
            "of {} sign changes of true_trend; missed: {} / {}",
            a.regime_changes, a.missed, b.missed
        )),
    );
    summary.push(
        SummaryRow::new(
            "detection delay, mean",
            opt(a.delay_mean),
            opt(b.delay_mean),
        )
        .with_note("bars from a sign change of true_trend until the signal agrees"),
    );
    summary.push(SummaryRow::new(
        "detection delay, median",
        opt(a.delay_median),
        opt(b.delay_median),
    ));
    summary.push(
        SummaryRow::new(
            "false flips per 1,000 bars",
            a.false_flips_per_1000,
            b.false_flips_per_1000,
        )
        .with_note("direction changes that detect no regime change"),
    );
}

/// A value for a note, `n/a` when undefined.
fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("n/a".to_string(), |v| format!("{v:.4}"))
}
