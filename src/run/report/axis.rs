//! Time on the x axis: epoch nanoseconds as UTC calendar dates and times (no date crate), and
//! a plotters axis whose ticks fall on round times.

use plotters::prelude::Ranged;

/// Formats epoch nanoseconds as `YYYY-MM-DD HH:MM:SS.fffffffff` in UTC (proleptic Gregorian
/// calendar, valid over the whole `i64` range).
pub fn format_utc(ns: i64) -> String {
    let (date, secs_of_day, nanos) = split_ns(ns);
    format!(
        "{} {:02}:{:02}:{:02}.{:09}",
        date,
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        nanos
    )
}

/// A calendar date.
#[derive(Debug, Clone, Copy)]
struct Date {
    year: i64,
    month: u32,
    day: u32,
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Splits epoch nanoseconds into the UTC date, the second of that day and the nanosecond.
fn split_ns(ns: i64) -> (Date, i64, i64) {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    (date_from_days(days), secs_of_day, nanos)
}

/// Civil date of a day count since 1970-01-01. Counts in 400-year cycles (146,097 days) of a
/// calendar whose year starts on 1 March, so the leap day is the last day of its year.
fn date_from_days(days: i64) -> Date {
    const CYCLE: i64 = 146_097;
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let cycle = z.div_euclid(CYCLE);
    let day_of_cycle = z.rem_euclid(CYCLE);
    let year_of_cycle = (day_of_cycle - day_of_cycle / 1_460 + day_of_cycle / 36_524
        - day_of_cycle / (CYCLE - 1))
        / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    // Months counted from March; 153 days per 5 months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_cycle + cycle * 400 + i64::from(month <= 2);
    Date {
        year,
        month: month as u32,
        day: day as u32,
    }
}

const NS_PER_SEC: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

/// Spacing of time-axis ticks: a fixed length (aligned to multiples of it since the epoch, so
/// steps of whole days fall on UTC midnight, and weeks on Mondays) or a number of calendar
/// months (ticks on the first of the month).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TimeStep {
    Fixed(i64),
    Months(i64),
}

/// Tick spacings tried in order, from 1 ms to two weeks; longer spans use calendar months.
const FIXED_STEPS: [i64; 29] = {
    const MS: i64 = 1_000_000;
    const S: i64 = NS_PER_SEC;
    const MIN: i64 = 60 * S;
    const H: i64 = 60 * MIN;
    [
        MS,
        2 * MS,
        5 * MS,
        10 * MS,
        20 * MS,
        50 * MS,
        100 * MS,
        200 * MS,
        500 * MS,
        S,
        2 * S,
        5 * S,
        10 * S,
        15 * S,
        30 * S,
        MIN,
        2 * MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        H,
        2 * H,
        3 * H,
        6 * H,
        12 * H,
        NS_PER_DAY,
        2 * NS_PER_DAY,
        7 * NS_PER_DAY,
    ]
};
const MONTH_STEPS: [i64; 10] = [1, 2, 3, 6, 12, 24, 60, 120, 240, 600];

/// A UTC time axis over epoch nanoseconds with calendar-aligned ticks (plotters' own integer
/// ticks fall on round nanosecond counts, which are not round times).
#[derive(Debug, Clone, Copy)]
pub(super) struct TimeAxis {
    pub(super) start: i64,
    pub(super) end: i64,
}

impl TimeAxis {
    fn span(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }

    /// The finest step giving at most `max_ticks` ticks.
    pub(super) fn tick_step(&self, max_ticks: usize) -> TimeStep {
        let max_ticks = max_ticks.max(2) as i64;
        let span = self.span();
        if let Some(&s) = FIXED_STEPS.iter().find(|&&s| span / s < max_ticks) {
            return TimeStep::Fixed(s);
        }
        let months = span / (NS_PER_DAY * 28);
        let m = MONTH_STEPS
            .iter()
            .copied()
            .find(|&m| months / m < max_ticks)
            .unwrap_or_else(|| (months / (max_ticks - 1)).max(1));
        TimeStep::Months(m)
    }

    fn ticks(&self, step: TimeStep) -> Vec<i64> {
        match step {
            TimeStep::Fixed(s) => {
                // Weeks start on Monday (1970-01-05); other steps on multiples since the epoch.
                let anchor = if s == 7 * NS_PER_DAY {
                    4 * NS_PER_DAY
                } else {
                    0
                };
                let from = self.start.saturating_sub(anchor);
                let mut t = from.div_euclid(s).saturating_add(1).saturating_mul(s);
                if from.rem_euclid(s) == 0 {
                    t = from;
                }
                t = t.saturating_add(anchor);
                let mut out = Vec::new();
                while t <= self.end && out.len() < 1_000 {
                    out.push(t);
                    t = match t.checked_add(s) {
                        Some(next) => next,
                        None => break,
                    };
                }
                out
            }
            TimeStep::Months(m) => {
                // Walk the days of the span (at most ~213,000 for the whole i64 range).
                let first = self.start.div_euclid(NS_PER_DAY);
                let last = self.end.div_euclid(NS_PER_DAY);
                (first..=last)
                    .filter(|&d| {
                        let date = date_from_days(d);
                        date.day == 1 && (date.year * 12 + i64::from(date.month) - 1) % m == 0
                    })
                    .filter_map(|d| d.checked_mul(NS_PER_DAY))
                    .filter(|&t| t >= self.start && t <= self.end)
                    .collect()
            }
        }
    }

    /// Tick label for `ns` when ticks are `step` apart.
    pub(super) fn label(&self, ns: i64, step: TimeStep) -> String {
        let (date, sod, nanos) = split_ns(ns);
        let (h, m, s) = (sod / 3600, sod / 60 % 60, sod % 60);
        match step {
            TimeStep::Months(_) => date.to_string(),
            TimeStep::Fixed(st) if st >= NS_PER_DAY => date.to_string(),
            TimeStep::Fixed(_) if self.span() >= NS_PER_DAY => format!("{date} {h:02}:{m:02}"),
            TimeStep::Fixed(st) if st >= 60 * NS_PER_SEC => format!("{h:02}:{m:02}"),
            TimeStep::Fixed(st) if st >= NS_PER_SEC => format!("{h:02}:{m:02}:{s:02}"),
            TimeStep::Fixed(_) => format!("{h:02}:{m:02}:{s:02}.{:03}", nanos / 1_000_000),
        }
    }

    /// Axis title: names the day when the tick labels omit it.
    pub(super) fn desc(&self) -> String {
        if self.span() >= NS_PER_DAY {
            return "time (UTC)".to_string();
        }
        let (d0, _, _) = split_ns(self.start);
        let (d1, _, _) = split_ns(self.end);
        if (d0.year, d0.month, d0.day) == (d1.year, d1.month, d1.day) {
            format!("time (UTC), {d0}")
        } else {
            format!("time (UTC), {d0} to {d1}")
        }
    }
}

impl Ranged for TimeAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = i64;

    fn map(&self, value: &i64, limit: (i32, i32)) -> i32 {
        let frac = (*value as f64 - self.start as f64) / self.span().max(1) as f64;
        (limit.0 as f64 + frac * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<i64> {
        // Light grid lines coincide with the labelled ones: finer calendar steps would not
        // always subdivide the labelled ones evenly.
        self.ticks(self.tick_step(hint.bold_points()))
    }

    fn range(&self) -> std::ops::Range<i64> {
        self.start..self.end
    }
}

impl plotters::coord::ranged1d::ValueFormatter<i64> for TimeAxis {
    fn format(value: &i64) -> String {
        format_utc(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_calendar_days() {
        // Day counts from the Unix epoch checked against `date -u -d @<secs>`.
        assert_eq!(date_from_days(0).to_string(), "1970-01-01");
        assert_eq!(date_from_days(-1).to_string(), "1969-12-31");
        assert_eq!(date_from_days(11_016).to_string(), "2000-02-29");
        assert_eq!(date_from_days(11_017).to_string(), "2000-03-01");
        assert_eq!(date_from_days(-719_468).to_string(), "0000-03-01");
    }
}
