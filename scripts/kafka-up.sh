#!/usr/bin/env bash
# Starts a tansu broker for the daemon tests on 127.0.0.1:19092 (SQLite storage in a fresh temp
# dir), waits until it listens, and prints the line to export for `cargo test`:
#   eval "$(scripts/kafka-up.sh)"
# Env: DEADBAND_KAFKA_PORT (19092), DEADBAND_KAFKA_STATE (pid/log/data folder), TANSU (binary).
set -euo pipefail
port="${DEADBAND_KAFKA_PORT:-19092}"
state="${DEADBAND_KAFKA_STATE:-${TMPDIR:-/tmp}/deadband-kafka-$port}"
tansu="${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}"
pidfile="$state/tansu.pid"

if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "tansu already running (pid $(cat "$pidfile"))" >&2
    echo "export DEADBAND_TEST_BROKERS=127.0.0.1:$port"
    exit 0
fi
if [[ ! -x "$tansu" ]]; then
    echo "tansu not found; install it: cargo install tansu --version 0.6.0 --locked --features libsql" >&2
    exit 1
fi
mkdir -p "$state"
data="$(mktemp -d "$state/data.XXXXXX")"
log="$state/tansu.log"
# tansu resolves sqlite:// paths relative to its working directory (absolute paths were seen
# doubled), so it runs from the data folder with a relative path. memory:// loses records.
(cd "$data" && exec "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "sqlite://tansu.db" >"$log" 2>&1) &
echo $! >"$pidfile"
for _ in $(seq 1 300); do
    if grep -q "ready in" "$log" 2>/dev/null; then
        echo "tansu listening on 127.0.0.1:$port (pid $(cat "$pidfile"), data $data)" >&2
        echo "export DEADBAND_TEST_BROKERS=127.0.0.1:$port"
        exit 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "tansu exited during start-up; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "tansu did not report 'ready in' within 60 s; its log: $log" >&2
exit 1
