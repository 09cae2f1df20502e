#!/usr/bin/env bash
# The whole test suite, set-up included, so that nothing is skipped on a fresh machine:
#   1. installs what the tests need when it is missing — Chromium (the report screenshot test,
#      Debian package) and the tansu Kafka broker (crates.io, ~20 min of compiling once);
#   2. starts tansu on 127.0.0.1:19092 (unless DEADBAND_TEST_BROKERS names a broker already);
#   3. runs every test in the release profile (one profile for build and tests, so the
#      dependency tree is compiled once), then the tests that need the broker or the browser,
#      which plain `cargo test` lists as ignored;
#   4. checks deploy/ with scripts/deploy-check.sh (hadolint, kubernetes-validate,
#      check-jsonschema, ShellCheck, systemd-analyze verify, deadband validate; it installs
#      those tools when they are missing);
#   5. ends with one tally line over both runs and the deploy checks. Measurements marked
#      #[ignore] (throughput and memory runs) count as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (report rendering test)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ -z "${DEADBAND_TEST_BROKERS:-}" ]]; then
    if ! tansu --version 2>/dev/null | grep -q "0.6.0"; then
        echo "installing tansu 0.6.0 (Kafka-compatible test broker; ~20 min on 2 cores, once)" >&2
        cargo install tansu --version 0.6.0 --locked --features libsql
    fi
    eval "$(scripts/kafka-up.sh)"
    trap 'scripts/kafka-down.sh >/dev/null 2>&1' EXIT
fi
export DEADBAND_TEST_BROKERS

# The test build needs ~15 GB (target/release); say how much there is, for a failed link's sake.
df -h . | awk 'NR == 2 { print "disk: " $4 " free on " $6 }' >&2

log="$(mktemp)"
status=0
cargo test --release --all-targets 2>&1 | tee "$log" || status=$?
broker_log="$(mktemp)"
cargo test --release --test daemon --test faults --test report -- --ignored --skip throughput --test-threads=1 2>&1 \
    | tee "$broker_log" || status=$?
# The deploy/ checks (scripts/deploy-check.sh) use the binary the first run built.
deploy_log="$(mktemp)"
scripts/deploy-check.sh 2>&1 | tee "$deploy_log" || status=1
awk '
    FNR == 1 { file++ }
    /^test result:/ {
        if (file == 1) { p += $4; f += $6; i += $8 }
        else { p += $4; f += $6; ran += $4 + $6 }
    }
    /^deploy-check: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
    END { printf "%d passed, %d failed, %d skipped\n", p, f, i - ran }
' "$log" "$broker_log" "$deploy_log"
rm -f "$log" "$broker_log" "$deploy_log"
exit "$status"
