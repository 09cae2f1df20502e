#!/usr/bin/env bash
# Runs the whole test suite: starts a local tansu broker for the daemon tests (when tansu is
# installed and no broker is given in DEADBAND_TEST_BROKERS), then cargo test in the release
# profile (one profile for build and tests, so the dependency tree is compiled once; benches are
# built and run once in test mode). Without tansu, outside CI, the daemon tests print a loud SKIP;
# under CI=true they fail. Ends with one tally line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DEADBAND_TEST_BROKERS:-}" ]]; then
    if command -v tansu >/dev/null 2>&1 || [[ -x "$HOME/.cargo/bin/tansu" ]]; then
        eval "$(scripts/kafka-up.sh)"
        trap 'scripts/kafka-down.sh >/dev/null 2>&1' EXIT
    else
        echo "NOTE: tansu not installed; daemon tests will SKIP (cargo install tansu --version 0.6.0 --locked --features libsql)" >&2
    fi
fi
log="$(mktemp)"
status=0
cargo test --release --all-targets 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' "$log"
rm -f "$log"
exit "$status"
