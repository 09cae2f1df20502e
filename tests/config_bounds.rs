//! Values that parse but cannot work are refused at their line with the fix (issue 9, findings
//! 10 and 12): daemon timeouts that overflow `Duration`/`Instant`, non-finite tolerances, and a
//! dead-letter topic that feeds the daemon its own output.

use std::path::Path;

use deadband::config::{parse, ConfigError};

/// A Kafka config: the `[input]`, `[output]` and `[kafka]` lines, one per line from line 1.
fn daemon(output_extra: &str, kafka: &str) -> String {
    format!(
        "[input]\nkind = \"kafka\"\nbrokers = \"b:9092\"\ntopic = \"bars\"\n\
         group = \"g\"\n[output]\nkind = \"kafka\"\ntopic = \"events\"\n{output_extra}\
         [kafka]\n{kafka}"
    )
}

fn err(src: &str) -> ConfigError {
    parse(src, Path::new("run.toml")).expect_err("config should be refused")
}

#[test]
fn kafka_intervals_beyond_a_day_are_refused_at_their_line() {
    parse(
        &daemon("", "shutdown_timeout_s = 86400\n"),
        Path::new("run.toml"),
    )
    .unwrap();
    for (line, help) in [
        ("shutdown_timeout_s = 9223372036854775807\n", "30"),
        ("shutdown_timeout_s = 86401\n", "30"),
        ("checkpoint_interval_ms = 9223372036854775807\n", "1000"),
    ] {
        let e = err(&daemon("", line));
        let t = e.to_string();
        assert_eq!(e.at, Some((10, 1)), "{line}: {t}");
        let key = line.split(' ').next().unwrap();
        assert!(t.contains(key) && t.contains("at most"), "{t}");
        assert!(t.contains(help), "{t}");
    }
}

const SENSOR: &str = "[input]\npath = \"x\"\nrecord = \"measurement\"\n[compensation]\n";

#[test]
fn tolerances_must_be_finite_and_ordered() {
    for (lines, key, line) in [
        ("nominal = nan\n", "nominal", 5),
        ("lsl = -inf\n", "lsl", 5),
        ("usl = 0.0\nlsl = -inf\n", "lsl", 6),
        ("usl = inf\n", "usl", 5),
        ("lsl = 1.0\nusl = 1.0\n", "lsl", 5),
        ("lsl = 2.0\nusl = 1.0\n", "lsl", 5),
    ] {
        let e = err(&format!("{SENSOR}{lines}"));
        let t = e.to_string();
        assert_eq!(e.at, Some((line, 1)), "{lines}: {t}");
        assert!(t.contains(key) && t.contains("[compensation]"), "{t}");
    }
    // A key's own table is checked the same way.
    let e = err(&format!(
        "{SENSOR}lsl = 0.0\n[keys.\"A\".compensation]\nnominal = nan\n"
    ));
    assert_eq!(e.at, Some((7, 1)), "{e}");
    parse(
        &format!("{SENSOR}lsl = 0.0\nusl = 1.0\nnominal = 0.4\n"),
        Path::new("run.toml"),
    )
    .unwrap();
}

#[test]
fn a_dead_letter_topic_that_is_read_or_written_is_refused() {
    for (extra, clash) in [
        ("dlq_topic = \"bars\"\n", "bars"),
        ("dlq_topic = \"events\"\n", "events"),
        ("dlq_topic = \"st\"\nchangelog_topic = \"st\"\n", "st"),
        ("dlq_topic = \"g-state\"\n", "g-state"),
    ] {
        let e = err(&daemon(extra, ""));
        let t = e.to_string();
        assert_eq!(e.at, Some((9, 1)), "{extra}: {t}");
        assert!(t.contains("dlq_topic") && t.contains(clash), "{t}");
    }
    parse(
        &daemon("dlq_topic = \"bars-dlq\"\n", ""),
        Path::new("run.toml"),
    )
    .unwrap();
}

/// Issue 9, finding 8: two input topics would share changelog partitions by number (keys of
/// the same name collide, and so would their resume positions and event ids): refused, with
/// the fix.
#[test]
fn a_daemon_reads_one_input_topic() {
    for (line, key) in [
        ("topics = [\"bars\", \"bars2\"]", "topics"),
        ("topic = \"bars\"\ntopics = [\"bars2\"]", "topics"),
    ] {
        let src = daemon("", "").replace("topic = \"bars\"", line);
        let t = err(&src).to_string();
        assert!(t.contains(key) && t.contains("reads 2 topics"), "{t}");
        assert!(t.contains("one daemon per topic"), "{t}");
    }
    let one = daemon("", "").replace("topic = \"bars\"", "topics = [\"bars\"]");
    parse(&one, Path::new("run.toml")).unwrap();
}

#[test]
fn metric_groups_are_bounded() {
    let ok = daemon("", "") + "[metrics]\nmax_groups = 10000\n";
    parse(&ok, Path::new("run.toml")).unwrap();
    for n in ["0", "10001"] {
        let src = daemon("", "") + &format!("[metrics]\nmax_groups = {n}\n");
        let e = err(&src);
        let t = e.to_string();
        assert!(t.contains("max_groups") && t.contains("1..=10000"), "{t}");
        assert_eq!(e.at.map(|(line, _)| line), Some(11), "{t}");
    }
}
