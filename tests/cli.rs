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
