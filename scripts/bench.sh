#!/usr/bin/env bash
# Issue 10's speed targets as ratios, each between two criterion benchmarks of the same run (a
# shared machine is too noisy for absolute numbers alone):
#   chain  (benches/chain.rs)  whole chain per bar (sm_rls + ATR 14) vs the ATR-only update
#   file   (benches/file.rs)   backtest --no-report of a generated 4-key file vs decoding its columns
#   keys   (benches/keys.rs)   1 M keys x 3 bars through one processor: rows/s and heap per key
# Short warm-up and measurement times keep the whole script within a few minutes once built;
# BENCH_WARMUP and BENCH_TIME (seconds) override them. Ends with one table, one row per target.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

warmup="${BENCH_WARMUP:-1}"
measure="${BENCH_TIME:-3}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

for bench in chain file keys; do
    cargo bench --bench "$bench" -- --warm-up-time "$warmup" --measurement-time "$measure" \
        2>&1 | tee -a "$log"
done

# Time of one iteration in ns, from criterion's estimates of this run (the slope of its
# linear fit when it has one, else the mean: the figure criterion prints).
mean() {
    jq -r '(.slope // .mean).point_estimate' "target/criterion/$1/new/estimates.json"
}

atr="$(mean chain/atr_only)"
fit="$(mean chain/sm_rls_fit_only)"
chain="$(mean chain/sm_rls_atr)"
decode="$(mean replay_file/decode)"
replay="$(mean replay_file/backtest)"
keys="$(mean million_keys/process_3_bars)"
file_rows="$(jq -r '.throughput.Elements' target/criterion/replay_file/backtest/new/benchmark.json)"
keys_rows="$(jq -r '.throughput.Elements' target/criterion/million_keys/process_3_bars/new/benchmark.json)"
memory="$(grep -o 'bytes_per_key=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)"

awk -v atr="$atr" -v fit="$fit" -v chain="$chain" -v decode="$decode" -v replay="$replay" \
    -v keys="$keys" -v file_rows="$file_rows" -v keys_rows="$keys_rows" -v memory="$memory" '
function verdict(ok) { return ok ? "met" : "NOT met" }
BEGIN {
    printf "\n%-38s %-24s %-24s %-8s %-22s %s\n", "target", "measured", "reference", "ratio", "goal", "verdict"
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "1. whole chain per bar (sm_rls+ATR)",
        sprintf("%.1f ns", chain), sprintf("ATR only %.1f ns", atr), chain / atr,
        "<= 30 ns and <= 5x", verdict(chain <= 30 && chain / atr <= 5)
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "   (fit alone, for scale)",
        sprintf("%.1f ns", fit), sprintf("ATR only %.1f ns", atr), fit / atr, "", ""
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", sprintf("2. replay, %.1f M bars, 4 keys", file_rows / 1e6),
        sprintf("%.2f s (%.2f M rows/s)", replay / 1e9, file_rows / replay * 1e3),
        sprintf("decode %.3f s", decode / 1e9), replay / decode, "<= 1.5x", verdict(replay / decode <= 1.5)
    printf "%-38s %-24s %-24s %-8s %-22s %s\n", "4. 1 M keys x 3 bars, one processor",
        sprintf("%.2f M rows/s", keys_rows / keys * 1e3), sprintf("%s B heap per key", memory), "-",
        ">= 1 M rows/s, <= 1 KiB", verdict(keys_rows / keys * 1e3 >= 1 && memory <= 1024)
}'
