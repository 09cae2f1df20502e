#!/usr/bin/env bash
# Issue 10's speed targets as ratios, each between two criterion benchmarks of the same run (a
# shared machine is too noisy for absolute numbers alone):
#   chain  (benches/chain.rs)  whole chain per bar (sm_rls + ATR 14) vs the ATR-only update
#   file   (benches/file.rs)   backtest --no-report of a generated 4-key file vs decoding its columns
#   keys   (benches/keys.rs)   1 M keys x 3 bars through one processor: rows/s and heap per key
#   daemon (benches/daemon.rs) `deadband run` draining 100k JSON bars from librdkafka's mock
#                              cluster (its group resuming from committed offsets; one drain by a
#                              brand-new group is shown too) vs a bare consumer draining them, and the daemon's p99
#                              per-record latency at a steady 20k records/s (from its /metrics)
#   startup (benches/startup.rs) a 400-row backtest as a whole process vs `deadband --version`
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

for bench in chain file keys daemon startup; do
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
hinted="$(mean chain/sm_rls_atr_hinted)"
decode="$(mean replay_file/decode)"
replay="$(mean replay_file/backtest)"
replay_one="$(mean replay_file/backtest_one_thread)"
keys="$(mean million_keys/process_3_bars)"
file_rows="$(jq -r '.throughput.Elements' target/criterion/replay_file/backtest/new/benchmark.json)"
keys_rows="$(jq -r '.throughput.Elements' target/criterion/million_keys/process_3_bars/new/benchmark.json)"
memory="$(grep -o 'bytes_per_key=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)"
checkpoint="$(mean million_keys/checkpoint)"
restore="$(mean million_keys/restore)"
snapshot="$(grep -o 'snapshot_bytes=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)"
floor="$(mean startup/version)"
small="$(mean startup/backtest_no_report)"
small_report="$(mean startup/backtest_report)"
# The daemon bench prints its own figures (medians of whole runs; see benches/daemon.rs).
field() {
    grep "^$1:" "$log" | grep -o " $2=[0-9.]*" | tail -n 1 | cut -d= -f2
}
daemon_rate="$(field daemon_ceiling daemon_per_s)"
bare_rate="$(field daemon_ceiling bare_per_s)"
daemon_ratio="$(field daemon_ceiling ratio)"
new_group_rate="$(field daemon_ceiling new_group_per_s)"
new_group_ratio="$(field daemon_ceiling new_group_ratio)"
p50="$(field daemon_latency p50_ns)"
p99="$(field daemon_latency p99_ns)"

awk -v atr="$atr" -v fit="$fit" -v chain="$chain" -v hinted="$hinted" -v decode="$decode" -v replay="$replay" -v replay_one="$replay_one" \
    -v keys="$keys" -v file_rows="$file_rows" -v keys_rows="$keys_rows" -v memory="$memory" \
    -v daemon_rate="$daemon_rate" -v bare_rate="$bare_rate" -v daemon_ratio="$daemon_ratio" \
    -v new_group_rate="$new_group_rate" -v new_group_ratio="$new_group_ratio" \
    -v p50="$p50" -v p99="$p99" -v checkpoint="$checkpoint" -v restore="$restore" \
    -v snapshot="$snapshot" -v floor="$floor" -v small="$small" -v small_report="$small_report" '
function verdict(ok) { return ok ? "met" : "NOT met" }
BEGIN {
    printf "\n%-38s %-24s %-24s %-8s %-22s %s\n", "target", "measured", "reference", "ratio", "goal", "verdict"
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "1. whole chain per bar (sm_rls+ATR)",
        sprintf("%.1f ns", chain), sprintf("ATR only %.1f ns", atr), chain / atr,
        "<= 30 ns and <= 5x", verdict(chain <= 30 && chain / atr <= 5)
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "   (key slot known, as in a backtest)",
        sprintf("%.1f ns", hinted), sprintf("ATR only %.1f ns", atr), hinted / atr, "", ""
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "   (fit alone, for scale)",
        sprintf("%.1f ns", fit), sprintf("ATR only %.1f ns", atr), fit / atr, "", ""
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", sprintf("2. replay, %.1f M bars, 4 keys", file_rows / 1e6),
        sprintf("%.2f s (%.2f M rows/s)", replay / 1e9, file_rows / replay * 1e3),
        sprintf("decode %.3f s", decode / 1e9), replay / decode, "<= 1.5x", verdict(replay / decode <= 1.5)
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "   (both lanes on one thread)",
        sprintf("%.2f s", replay_one / 1e9), sprintf("decode %.3f s", decode / 1e9),
        replay_one / decode, "", ""
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "3. daemon drain vs bare consumer",
        sprintf("%.0f k rec/s", daemon_rate / 1e3), sprintf("bare %.0f k rec/s", bare_rate / 1e3),
        daemon_ratio, ">= 0.8x", verdict(daemon_ratio >= 0.8)
    printf "%-38s %-24s %-24s %-8.2f %-22s %s\n", "   (a brand-new group, one drain)",
        sprintf("%.0f k rec/s", new_group_rate / 1e3), sprintf("bare %.0f k rec/s", bare_rate / 1e3),
        new_group_ratio, "", ""
    printf "%-38s %-24s %-24s %-8s %-22s %s\n", "   p99 per record at 20k rec/s",
        sprintf("%.2f us", p99 / 1e3), sprintf("p50 %.2f us", p50 / 1e3), "-", "<= 2 us",
        verdict(p99 <= 2000)
    printf "%-38s %-24s %-24s %-8s %-22s %s\n", "4. 1 M keys x 3 bars, one processor",
        sprintf("%.2f M rows/s", keys_rows / keys * 1e3), sprintf("%s B heap per key", memory), "-",
        ">= 1 M rows/s, <= 1 KiB", verdict(keys_rows / keys * 1e3 >= 1 && memory <= 1024)
    printf "%-38s %-24s %-24s %-8s %-22s %s\n", "   checkpoint / restore of 1 M keys",
        sprintf("%.1f s / %.1f s", checkpoint / 1e9, restore / 1e9),
        sprintf("%.2f GB of snapshots", snapshot / 1e9), "-", "timed", "-"
    printf "%-38s %-24s %-24s %-8.1f %-22s %s\n", "5. start-up: 400-row backtest",
        sprintf("%.1f ms (report %.1f)", small / 1e6, small_report / 1e6),
        sprintf("--version %.1f ms", floor / 1e6), small / floor, "small", "-"
}'
