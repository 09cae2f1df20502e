//! The three parsers that read what users and upstream systems hand us — the JSON record decoder
//! (every Kafka message), the TOML configuration loader and the gauge-study CSV reader — fed
//! random and mutated input: they answer with a value or an error, never a panic or a hang.
//! Bounded: a few thousand cases each, seconds in the release profile.

use std::path::Path;

use deadband::io::codec::decode;
use deadband::record::RecordKind;
use proptest::prelude::*;

const BAR: &str = r#"{"key":"SYM","ts":"2024-01-02T03:04:05Z","open":1.5,"high":2,"low":1,"close":1.75,"volume":10}"#;
const MEASUREMENT: &str = r#"{"key":"M1/bore","ts":1704164645000000000,"value":10.002,"nominal":10,"lsl":9.99,"usl":10.01,"tool":3}"#;
const CONFIG: &str = r#"
[input]
path = "data/*.parquet"
record = "measurement"
[zone]
floor = 0.0001
[zone.scale]
kind = "grr"
sigma = 0.001
multiplier = 3
[fit]
method = "sm_rls"
forgetting = 0.99
[compensation]
nominal = 10.0
lsl = 9.99
usl = 10.01
[spc]
rules = ["we1", "ewma"]
[keys."*/bore".fit]
forgetting = 0.95
"#;
const STUDY: &str = "part,operator,trial,value\n1,A,1,10.01\n1,A,2,10.02\n1,B,1,10.00\n1,B,2,10.01\n2,A,1,9.98\n2,A,2,9.99\n2,B,1,9.97\n2,B,2,9.98\n";

/// `base` with up to `edits` random byte edits: replace, insert, delete, or truncate.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<u8>(), any::<prop::sample::Index>(), 0u8..4);
    prop::collection::vec(edit, 0..8).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (byte, at, op) in edits {
            if b.is_empty() {
                b.push(byte);
                continue;
            }
            let i = at.index(b.len());
            match op {
                0 => b[i] = byte,
                1 => b.insert(i, byte),
                2 => {
                    b.remove(i);
                }
                _ => b.truncate(i),
            }
        }
        b
    })
}

/// Structure-aware: the bar's fields with random JSON values of random types.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| format!("{v:e}")),
        any::<i64>().prop_map(|v| v.to_string()),
        "[ -~]{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_string()),
        Just("\"NaN\"".to_string()),
        Just("\"-Infinity\"".to_string()),
        Just("1e999".to_string()),
        Just("[1,2]".to_string()),
        Just("{\"a\":{}}".to_string()),
        Just("true".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_record_decoder_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes, RecordKind::Bar);
        let _ = decode(&bytes, RecordKind::Measurement);
    }

    #[test]
    fn the_record_decoder_never_panics_on_mutated_records(bar in mutated(BAR), m in mutated(MEASUREMENT)) {
        for bytes in [&bar, &m] {
            for kind in [RecordKind::Bar, RecordKind::Measurement] {
                if let Ok(d) = decode(bytes, kind) {
                    // What decodes must also validate without panicking.
                    let _ = d.record().validate();
                }
            }
        }
    }

    #[test]
    fn the_record_decoder_never_panics_on_fields_of_any_type(
        key in json_value(), ts in json_value(), open in json_value(),
        high in json_value(), low in json_value(), close in json_value(),
    ) {
        let text = format!(
            r#"{{"key":{key},"ts":{ts},"open":{open},"high":{high},"low":{low},"close":{close}}}"#
        );
        if let Ok(d) = decode(text.as_bytes(), RecordKind::Bar) {
            let _ = d.record().validate();
        }
    }

    #[test]
    fn the_config_loader_never_panics(src in mutated(CONFIG)) {
        let text = String::from_utf8_lossy(&src);
        let _ = deadband::config::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn the_config_loader_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = deadband::config::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn the_gauge_study_reader_never_panics(src in mutated(STUDY)) {
        let _ = deadband::io::study_csv::parse_study(src.as_slice(), Path::new("study.csv"));
    }
}

/// The unmutated inputs are valid: the mutations above start from something that parses, so
/// they reach past the first byte.
#[test]
fn the_seeds_are_valid() {
    assert!(decode(BAR.as_bytes(), RecordKind::Bar).is_ok());
    assert!(decode(MEASUREMENT.as_bytes(), RecordKind::Measurement).is_ok());
    deadband::config::parse(CONFIG, Path::new("fuzz.toml")).expect("config seed");
    deadband::io::study_csv::parse_study(STUDY.as_bytes(), Path::new("study.csv"))
        .expect("study seed");
}
