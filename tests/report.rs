//! The HTML report as a user gets it: well-formed, self-contained, escaped, decimated, and drawn by a real browser.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deadband::run::report::{
    decimate_min_max, format_utc, render, write, EquityCurves, KeySeries, Marker, MarkerKind,
    ReportData, SummaryRow, ValueFormat, MAX_POINTS_RAW,
};
use proptest::prelude::*;

/// 2023-11-14 22:13:20 UTC (`date -u -d @1700000000`).
const T0: i64 = 1_700_000_000_000_000_000;
const MINUTE: i64 = 60_000_000_000;

const KEY_MARKET: &str = "AAPL<&>\"x\"";
const KEY_SENSOR: &str = "spindle/temp & <1>";
const KEY_EMPTY: &str = "empty<key>";
const KEY_NAN: &str = "nan&only";

/// A deterministic noisy trend with a spike, its fit, a baseline fit and one event of every
/// kind.
fn key_series(key: &str, n: usize, spec: bool) -> KeySeries {
    let ts: Vec<i64> = (0..n as i64).map(|i| T0 + i * MINUTE).collect();
    let level: Vec<f64> = (0..n)
        .map(|i| 100.0 + 5.0 * (i as f64 / n as f64 * 6.0).sin())
        .collect();
    let mut y: Vec<f64> = (0..n)
        .map(|i| level[i] + 0.8 * ((i as f64) * 1.7).sin() * ((i as f64) * 0.31).cos())
        .collect();
    y[n / 3] += 9.0;
    let baseline_level = y
        .iter()
        .scan(y[0], |s, &v| {
            *s += 0.05 * (v - *s);
            Some(*s)
        })
        .collect();
    let markers = MarkerKind::ALL
        .iter()
        .enumerate()
        .map(|(j, &kind)| {
            let i = (j + 1) * n / 8;
            Marker {
                ts: ts[i],
                y: y[i],
                kind,
                label: format!("{} <#{j}>", kind.name()),
            }
        })
        .chain(std::iter::once(Marker {
            ts: T0,
            y: y[0],
            kind: MarkerKind::TrendFlat,
            label: "start".into(),
        }))
        .collect();
    let residual = (0..n).map(|i| y[i] - level[i]).collect();
    let tool_changes = if spec {
        (1..5).map(|j| ts[j * n / 5]).collect()
    } else {
        Vec::new()
    };
    KeySeries {
        key: key.into(),
        ts,
        y,
        level,
        zone: vec![0.9; n],
        baseline_level: Some(baseline_level),
        markers,
        dead_zone_ratio: 0.931,
        update_rate: 0.069,
        lsl: spec.then_some(92.0),
        usl: spec.then_some(108.0),
        residual: Some(residual),
        spc_limit: spec.then(|| vec![2.4; n]),
        position: (!spec).then(|| (0..n).map(|i| ((i / 300) % 3) as f64 - 1.0).collect()),
        baseline_position: (!spec).then(|| (0..n).map(|i| ((i / 100) % 3) as f64 - 1.0).collect()),
        tool_changes,
    }
}

fn sample_report() -> ReportData {
    let n = 5_000;
    let ts: Vec<i64> = (0..n as i64).map(|i| T0 + i * MINUTE).collect();
    let strategy = (0..n).map(|i| 1.0 + 0.1 * (i as f64 / 900.0).sin() + i as f64 * 2e-5);
    let baseline = (0..n).map(|i| 1.0 + 0.12 * (i as f64 / 700.0).sin() - i as f64 * 1e-5);
    ReportData {
        title: "deadband backtest <demo>".into(),
        subtitle: "config demo.toml · input a&b.parquet · 20,000 rows".into(),
        summary: vec![
            SummaryRow::new("turnover", 1_000.0, 4_000.0).with_note("one-way, <notional>"),
            SummaryRow::new("rebalances", 12_345.0, 50_000.0).with_format(ValueFormat::Integer),
            SummaryRow::new("net_return", 0.1234, 0.1).with_format(ValueFormat::Percent),
            SummaryRow::new("sharpe", 0.5, 0.0),
            SummaryRow::new("hit_rate", f64::NAN, 0.5).with_format(ValueFormat::Percent),
        ],
        equity: Some(EquityCurves {
            strategy_drawdown: (0..n)
                .map(|i| -0.1 * (i as f64 / 700.0).sin().abs())
                .collect(),
            baseline_drawdown: (0..n)
                .map(|i| -0.2 * (i as f64 / 500.0).sin().abs())
                .collect(),
            strategy_turnover: (0..n).map(|i| i as f64 * 0.01).collect(),
            baseline_turnover: (0..n).map(|i| i as f64 * 0.03).collect(),
            ts,
            strategy: strategy.collect(),
            baseline: baseline.collect(),
        }),
        keys: vec![
            key_series(KEY_MARKET, n, false),
            key_series(KEY_SENSOR, 50_000, true),
            KeySeries {
                key: KEY_EMPTY.into(),
                ..KeySeries::default()
            },
            KeySeries {
                key: KEY_NAN.into(),
                ts: vec![T0, T0 + MINUTE, T0 + 2 * MINUTE],
                y: vec![f64::NAN; 3],
                level: vec![f64::NAN; 3],
                zone: vec![f64::NAN; 3],
                baseline_level: None,
                markers: vec![],
                dead_zone_ratio: f64::NAN,
                update_rate: f64::NAN,
                lsl: None,
                usl: None,
                ..KeySeries::default()
            },
        ],
        notes: vec!["turnover = sum |Δ position| & costs = turnover × cost_bps".into()],
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Checks that every non-void element is closed in order and that no text holds a raw `<`;
/// returns how many elements of each name were opened.
fn check_well_formed(html: &str) -> HashMap<String, usize> {
    const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
    let mut stack: Vec<String> = Vec::new();
    let mut opened: HashMap<String, usize> = HashMap::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after
            .find('>')
            .unwrap_or_else(|| panic!("unterminated tag at …{}", &after[..after.len().min(80)]));
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('!') {
            assert!(
                tag.eq_ignore_ascii_case("!DOCTYPE html"),
                "unexpected <{tag}>"
            );
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name.trim(), "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            !name.is_empty(),
            "raw '<' in text before {:?}",
            &tag[..tag.len().min(40)]
        );
        assert!(!tag.contains('<'), "'<' inside tag <{tag}>");
        *opened.entry(name.clone()).or_default() += 1;
        if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    opened
}

#[test]
fn report_is_well_formed_escaped_and_self_contained() {
    let data = sample_report();
    let html = render(&data).unwrap();
    let opened = check_well_formed(&html);

    // Equity with its drawdown and turnover panels, the two keys that have data with their
    // residual panels (and the market key's position panel); the empty and NaN-only keys get
    // notes instead.
    assert_eq!(opened.get("svg"), Some(&8), "one <svg> per chart");
    assert_eq!(html.matches("</svg>").count(), 8);
    assert_eq!(html.matches("class=\"nodata\"").count(), 2);
    for key in [KEY_EMPTY, KEY_NAN] {
        assert!(
            html.contains(&format!("No data for {}", escape(key))),
            "no-data note for {key}"
        );
    }

    for key in [KEY_MARKET, KEY_SENSOR, KEY_EMPTY, KEY_NAN] {
        assert!(html.contains(&format!("<h3>{}</h3>", escape(key))), "{key}");
        assert!(!html.contains(key), "raw key {key} leaked into the HTML");
    }
    assert!(html.contains("<h1>deadband backtest &lt;demo&gt;</h1>"));
    assert!(html.contains("one-way, &lt;notional&gt;"));

    assert!(!html.to_ascii_lowercase().contains("<script"));
    assert!(!html.contains("src="), "no external resources");
    for scheme in ["http://", "https://"] {
        for (at, _) in html.match_indices(scheme) {
            assert!(
                html[at..].starts_with("http://www.w3.org/2000/svg\""),
                "external reference at …{}",
                &html[at..(at + 60).min(html.len())]
            );
        }
    }
    assert!(!html.contains("url("), "no external resources");
}

/// The cells of the summary row whose first cell is `metric`, tags stripped.
fn table_row(html: &str, metric: &str) -> Vec<String> {
    let start = html
        .find(&format!("<tr><td>{metric}</td>"))
        .unwrap_or_else(|| panic!("row {metric}"));
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let body = &cell[cell.find('>').unwrap() + 1..];
            body[..body.find("</td>").unwrap()].to_string()
        })
        .collect()
}

#[test]
fn summary_table_formats_values_and_change_vs_baseline() {
    let html = render(&sample_report()).unwrap();
    assert!(html.contains("<th>change vs baseline</th>"));
    // 1000 vs 4000: turnover down by three quarters.
    assert_eq!(
        table_row(&html, "turnover"),
        [
            "turnover",
            "1,000.00",
            "4,000.00",
            "-75.0%",
            "one-way, &lt;notional&gt;"
        ]
    );
    // (12345 - 50000) / 50000 = -0.7531
    assert_eq!(
        table_row(&html, "rebalances"),
        ["rebalances", "12,345", "50,000", "-75.3%", ""]
    );
    // Fractions: percent, and the change in percentage points (12.34 - 10.00).
    assert_eq!(
        table_row(&html, "net_return"),
        ["net_return", "12.34%", "10.00%", "+2.34 pp", ""]
    );
    // A zero baseline has no relative change; a NaN value prints as n/a.
    assert_eq!(table_row(&html, "sharpe")[3], "n/a");
    assert_eq!(table_row(&html, "hit_rate")[1..4], ["n/a", "50.00%", "n/a"]);
}

#[test]
fn charts_carry_legends_captions_and_utc_times() {
    let html = render(&sample_report()).unwrap();
    // Captions: 0.931 and 0.069 in percent.
    assert!(html.contains("dead-zone ratio 93.1% · update rate 6.9%"));
    // Every marker kind has a legend entry in the charts.
    for kind in MarkerKind::ALL {
        assert!(
            html.contains(&format!(">\n{}\n</text>", escape(kind.name()))),
            "legend for {kind:?}"
        );
    }
    assert!(html.contains(">\nUSL\n</text>") && html.contains(">\nLSL\n</text>"));
    // 5,000 minutes from T0 span several days: ticks carry the date, in UTC.
    assert!(html.contains(">\ntime (UTC)\n</text>"));
    assert!(
        html.contains(">\n2023-11-15 "),
        "a tick on the day after T0"
    );
    // Events table, with the event at T0 in UTC and escaped labels.
    assert!(html.contains("<td>2023-11-14 22:13:20.000000000</td><td>trend flat</td>"));
    assert!(html.contains("trend up &lt;#0&gt;"));
}

/// The text of a legend entry or axis title in an SVG.
fn svg_text(s: &str) -> String {
    format!(">\n{}\n</text>", escape(s))
}

#[test]
fn the_decisions_are_drawn_in_panels() {
    let html = render(&sample_report()).unwrap();
    // Under the equity chart: drawdown and cumulative turnover of both methods.
    for t in [
        "drawdown (%)",
        "cumulative turnover",
        "strategy (dead zone)",
        "baseline (L2)",
    ] {
        assert!(html.contains(&svg_text(t)), "{t}");
    }
    // Under each key: the residual with the zone around 0; SPC limits and tool changes for the
    // sensor key; positions for the market key.
    assert_eq!(html.matches(&svg_text("zone ±eps")).count(), 2);
    assert_eq!(html.matches(&svg_text("y − prediction")).count(), 2);
    assert_eq!(html.matches(&svg_text("SPC limits ±3σ")).count(), 1);
    assert_eq!(html.matches(&svg_text("position")).count(), 1);
    // The tool line is in the sensor key's chart and its residual panel.
    assert_eq!(html.matches(&svg_text("tool change")).count(), 2);
    assert!(html.contains("Position after each bar"));
}

#[test]
fn a_busy_kind_is_thinned_and_the_legend_says_so() {
    let n = 20_000;
    let mut ks = key_series("busy", n, true);
    ks.markers = (0..5_000)
        .map(|j| Marker {
            ts: ks.ts[j * 4],
            y: ks.y[j * 4],
            kind: MarkerKind::SpcAlarm,
            label: String::new(),
        })
        .chain(std::iter::once(Marker {
            ts: ks.ts[7],
            y: ks.y[7],
            kind: MarkerKind::Compensation,
            label: String::new(),
        }))
        .collect();
    let html = render(&ReportData {
        keys: vec![ks],
        ..ReportData::default()
    })
    .unwrap();
    // Every 42nd of 5,000 alarms: 120 drawn; the single compensation is drawn as it is.
    assert!(html.contains(&svg_text("SPC alarm (120 of 5000)")));
    assert!(html.contains(&svg_text("compensation")));
    // The alarms are also ticks on the residual panel, at most 4 × 120 of them.
    assert!(html.contains(&svg_text("SPC alarm (455 of 5000)")));
}

#[test]
fn utc_formatting_matches_the_calendar() {
    // Reference values from `date -u -d @<secs>`.
    assert_eq!(format_utc(T0), "2023-11-14 22:13:20.000000000");
    assert_eq!(format_utc(0), "1970-01-01 00:00:00.000000000");
    assert_eq!(format_utc(-1), "1969-12-31 23:59:59.999999999");
    assert_eq!(
        format_utc(951_782_400_000_000_123),
        "2000-02-29 00:00:00.000000123"
    );
    assert_eq!(
        format_utc(4_107_542_399_000_000_000),
        "2100-02-28 23:59:59.000000000"
    );
}

/// The tick labels of the only chart in a report of one key whose `n` points are `step` apart.
fn tick_labels(n: usize, step: i64) -> (String, Vec<String>) {
    let mut ks = key_series("k", n, false);
    ks.ts = (0..n as i64).map(|i| T0 + i * step).collect();
    ks.markers.clear();
    let html = render(&ReportData {
        keys: vec![ks],
        ..ReportData::default()
    })
    .unwrap();
    // Tick labels are the middle-anchored texts under the plot of the key's chart (the first
    // <svg>; the panels under it repeat the same axis).
    let chart = &html[..html.find("</svg>").unwrap()];
    let labels = chart
        .split("<text ")
        .skip(1)
        .filter(|t| {
            t.contains("text-anchor=\"middle\"")
                && t.contains("dy=\"0.76em\"")
                && !t.contains("transform")
        })
        .map(|t| t[t.find(">\n").unwrap() + 2..t.find("\n</text>").unwrap()].to_string())
        .collect();
    (html, labels)
}

#[test]
fn time_ticks_fall_on_round_utc_times() {
    // 90 seconds from 22:13:20: the day goes into the axis title, ticks every 15 s.
    let (html, labels) = tick_labels(91, 1_000_000_000);
    assert!(html.contains(">\ntime (UTC), 2023-11-14\n</text>"));
    assert_eq!(
        labels,
        ["22:13:30", "22:13:45", "22:14:00", "22:14:15", "22:14:30", "22:14:45"]
    );

    // Two years of days: ticks on the first of a month, one of them New Year 2024.
    let (html, labels) = tick_labels(731, 86_400_000_000_000);
    assert!(html.contains(">\ntime (UTC)\n</text>"));
    assert!(labels.len() >= 3 && labels.len() <= 7, "{labels:?}");
    assert!(
        labels.iter().all(|l| l.len() == 10 && l.ends_with("-01")),
        "{labels:?}"
    );
    assert!(labels.contains(&"2024-01-01".to_string()), "{labels:?}");
}

#[test]
fn long_series_are_decimated_so_the_file_stays_small() {
    let with = |n: usize| {
        let mut data = sample_report();
        data.keys = vec![key_series(KEY_MARKET, n, true)];
        render(&data).unwrap().len()
    };
    let small = with(MAX_POINTS_RAW * 2);
    let large = with(MAX_POINTS_RAW * 100);
    assert!(
        (large as f64) < small as f64 * 1.3,
        "{small} bytes for 4k points, {large} for 200k"
    );
}

#[test]
fn awkward_inputs_do_not_panic() {
    let mut odd = key_series("odd", 50, true);
    odd.y.truncate(40);
    odd.zone.truncate(10);
    odd.baseline_level = Some(vec![1.0; 3]);
    odd.y[5] = f64::INFINITY;
    odd.level[7] = f64::NAN;
    odd.markers.push(Marker {
        ts: i64::MAX,
        y: f64::NAN,
        kind: MarkerKind::SpcAlarm,
        label: String::new(),
    });
    let single = KeySeries {
        key: "one point".into(),
        ts: vec![T0],
        y: vec![3.0],
        level: vec![3.0],
        zone: vec![0.0],
        ..KeySeries::default()
    };
    let data = ReportData {
        keys: vec![odd, single],
        equity: Some(EquityCurves::default()),
        ..ReportData::default()
    };
    let html = render(&data).unwrap();
    let opened = check_well_formed(&html);
    // The odd key's chart and residual panel, the single point's chart.
    assert_eq!(opened.get("svg"), Some(&3));
    assert!(html.contains("No data: the equity curves are empty"));
}

#[test]
fn a_spike_survives_decimation() {
    let mut v: Vec<f64> = (0..100_000).map(|i| (i as f64 * 0.01).sin()).collect();
    v[61_234] = 50.0;
    v[7_777] = -50.0;
    let kept = decimate_min_max(&v, 2_000);
    assert!(kept.len() <= 2_000);
    assert!(kept.contains(&61_234) && kept.contains(&7_777));
}

proptest! {
    #[test]
    fn decimation_keeps_every_bucket_extreme(
        values in prop::collection::vec(
            prop_oneof![8 => -1e6f64..1e6, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)],
            0..3_000,
        ),
        max_points in 0usize..400,
    ) {
        let kept = decimate_min_max(&values, max_points);
        let n = values.len();
        let cap = max_points.max(2);
        prop_assert!(kept.len() <= cap, "{} points kept for a cap of {}", kept.len(), cap);
        prop_assert!(kept.windows(2).all(|w| w[0] < w[1]), "ascending, no duplicates");
        prop_assert!(kept.iter().all(|&i| i < n));
        if n <= cap {
            prop_assert_eq!(kept, (0..n).collect::<Vec<_>>());
        } else {
            // Buckets as documented: b*n/B .. (b+1)*n/B with B = max_points / 2.
            let buckets = cap / 2;
            for b in 0..buckets {
                let range = b * n / buckets..(b + 1) * n / buckets;
                let finite: Vec<f64> =
                    values[range.clone()].iter().copied().filter(|v| v.is_finite()).collect();
                let in_bucket: Vec<f64> =
                    kept.iter().filter(|i| range.contains(i)).map(|&i| values[i]).collect();
                if finite.is_empty() {
                    prop_assert!(in_bucket.is_empty());
                    continue;
                }
                let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(in_bucket.contains(&lo), "bucket {} lost its min {}", b, lo);
                prop_assert!(in_bucket.contains(&hi), "bucket {} lost its max {}", b, hi);
                prop_assert!(in_bucket.len() <= 2);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real browser

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs headless Chromium on `html` and returns the screenshot path; panics after `timeout`.
fn screenshot(browser: &Path, html: &Path, dir: &Path, timeout: Duration) -> PathBuf {
    let png = dir.join("report.png");
    let profile = dir.join("profile");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1280,2400")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    png
}

/// Needs a headless browser, so plain `cargo test` lists it as ignored; `scripts/test.sh`
/// installs Chromium and runs it.
#[test]
#[ignore = "needs chromium: scripts/test.sh installs it and runs this test"]
fn chromium_renders_the_report() {
    let browser = chromium()
        .expect("chromium not installed: run scripts/test.sh or apt-get install chromium");
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    write(&html, &sample_report()).unwrap();
    let png = screenshot(&browser, &html, dir.path(), Duration::from_secs(120));
    // For looking at the result: DEADBAND_KEEP_SCREENSHOT=/tmp/shot.png keeps the PNG and,
    // beside it, the HTML (shot.html).
    if let Ok(keep) = std::env::var("DEADBAND_KEEP_SCREENSHOT") {
        std::fs::copy(&png, &keep).unwrap();
        std::fs::copy(&html, Path::new(&keep).with_extension("html")).unwrap();
    }

    let mut decoder = png::Decoder::new(BufReader::new(std::fs::File::open(&png).unwrap()));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2400));
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "colour screenshot, got {:?}",
        info.color_type
    );

    let pixels = (info.width * info.height) as usize;
    let mut non_white = 0usize;
    // Saturated colours (lines, band, markers), quantised to 4 bits per channel.
    let mut colours: HashMap<[u8; 3], usize> = HashMap::new();
    for row in buf.chunks(info.line_size).take(info.height as usize) {
        for px in row.chunks(channels).take(info.width as usize) {
            let (r, g, b) = (px[0], px[1], px[2]);
            if r.min(g).min(b) < 240 {
                non_white += 1;
            }
            if r.max(g).max(b) - r.min(g).min(b) > 60 {
                *colours.entry([r >> 4, g >> 4, b >> 4]).or_default() += 1;
            }
        }
    }
    let share = non_white as f64 / pixels as f64;
    assert!(
        share > 0.03,
        "only {:.2}% of the page is not white",
        share * 100.0
    );
    let distinct = colours.values().filter(|&&c| c >= 30).count();
    assert!(
        distinct >= 6,
        "only {distinct} distinct chart colours: {colours:?}"
    );
}
