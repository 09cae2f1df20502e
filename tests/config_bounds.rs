//! Values that parse but cannot work are refused at their line with the fix (issue 9, findings
//! 10 and 12): daemon timeouts that overflow `Duration`/`Instant`, non-finite tolerances, and a
//! dead-letter topic that feeds the daemon its own output.

use std::path::Path;

use deadband::config::{parse, ConfigError};

/// A Kafka config: the `[input]`, `[output]` and `[kafka]` lines, one per line from line 1.
fn daemon(output_extra: &str, kafka: &str) -> String {
    format!(
        "[input]\nkind = \"kafka\"\nbrokers = \"b:9092\"\ntopics = [\"bars\", \"bars2\"]\n\
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
