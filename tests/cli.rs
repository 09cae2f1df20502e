//! Exit codes and messages of the command line for bad arguments found after parsing: the user's
//! problems exit 2 with the fix, never a panic (exit 101).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_deadband");

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().expect("run deadband");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn produce_refuses_rates_it_cannot_schedule() {
    for rate in ["1e-20", "0", "-5", "NaN", "inf"] {
        let rate_arg = format!("--rate={rate}");
        let (code, err) = run(&[
            "produce",
            "--input",
            "none.parquet",
            "--topic",
            "t",
            "--brokers",
            "127.0.0.1:1",
            &rate_arg,
        ]);
        assert_eq!(code, Some(2), "--rate {rate}: {err}");
        assert!(
            err.contains("--rate must be at least"),
            "--rate {rate}: {err}"
        );
    }
}

#[test]
fn run_refuses_a_file_config() {
    let (code, err) = run(&["run", "--config", "config/market-atr.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs [input] kind = \"kafka\""), "{err}");
}

/// Issue 9, finding 2: a truncated or corrupt Parquet input is the user's bad input (exit 2),
/// named, with what is wrong with it.
#[test]
fn backtest_refuses_a_truncated_or_corrupt_parquet_file() {
    use deadband::run::gen::{self, GenKind, GenOptions};
    let dir = std::env::temp_dir().join(format!("deadband-cli-{}-trunc", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.parquet");
    gen::write(GenKind::Market, &GenOptions::new(2, 20_000, 3), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    // Cut in half (no footer), cut the last byte (broken magic), and garbage in the pages
    // under an intact footer.
    let mut garbage = bytes.clone();
    garbage[8..n / 2].iter_mut().for_each(|b| *b = 0xA5);
    let cases = [
        ("half.parquet", bytes[..n / 2].to_vec()),
        ("cut.parquet", bytes[..n - 1].to_vec()),
        ("garbage.parquet", garbage),
    ];
    for (name, data) in cases {
        let file = dir.join(name);
        std::fs::write(&file, data).unwrap();
        let out_dir = dir.join(format!("out-{name}"));
        let (code, err) = run(&[
            "backtest",
            "--config",
            "config/market-atr.toml",
            "--input",
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains("corrupt or truncated"),
            "{name}: {err}"
        );
    }
}

/// Issue 9, finding 12: a backtest that fails after writing some of its outputs leaves the
/// previous run's outputs whole, never new events beside an old summary. The failure here comes
/// at the very end (the report's destination is a directory), after events and summary exist.
#[test]
fn a_failed_backtest_leaves_the_previous_outputs_whole() {
    use deadband::run::gen::{self, GenKind, GenOptions};
    let dir = std::env::temp_dir().join(format!("deadband-cli-{}-mixed", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (dir.join("first.parquet"), dir.join("second.parquet"));
    gen::write(GenKind::Market, &GenOptions::new(2, 3_000, 1), &first).unwrap();
    gen::write(GenKind::Market, &GenOptions::new(2, 3_000, 2), &second).unwrap();
    let out = dir.join("out");
    let backtest = |input: &std::path::Path, report: bool| {
        let mut args = vec![
            "backtest",
            "--config",
            "config/market-atr.toml",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if !report {
            args.push("--no-report");
        }
        run(&args)
    };
    let (code, err) = backtest(&first, false);
    assert_eq!(code, Some(0), "{err}");
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    let (events, summary) = (read("events.parquet"), read("summary.json"));
    std::fs::create_dir(out.join("report.html")).unwrap();
    let (code, err) = backtest(&second, true);
    assert_ne!(code, Some(0), "the run must fail: {err}");
    assert!(err.contains("report.html"), "{err}");
    assert!(
        read("events.parquet") == events,
        "events.parquet was replaced"
    );
    assert!(read("summary.json") == summary, "summary.json was replaced");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".deadband-staging"))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}
