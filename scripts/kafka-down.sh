#!/usr/bin/env bash
# Stops the tansu broker started by scripts/kafka-up.sh (SIGTERM to its recorded pid).
set -euo pipefail
port="${DEADBAND_KAFKA_PORT:-19092}"
state="${DEADBAND_KAFKA_STATE:-${TMPDIR:-/tmp}/deadband-kafka-$port}"
pidfile="$state/tansu.pid"
if [[ ! -f "$pidfile" ]]; then
    echo "no tansu pid file at $pidfile" >&2
    exit 0
fi
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
fi
rm -f "$pidfile"
echo "tansu stopped" >&2
