#!/usr/bin/env bash
# Instructions executed per unit of work, counted by valgrind's callgrind: unlike wall time they
# barely move between runs on a shared machine, so a change of a few percent shows (issue 10).
#   chain   instructions per bar through Processor::process_hinted / ::process (benches/chain.rs)
#   decode  instructions per JSON bar through io::codec::decode, full-precision prices and
#           prices on a 0.0001 tick (benches/core.rs)
#   replay  instructions of a whole `backtest --no-report --single-thread` of a generated
#           1 M-bar, 4-key file (benches/sm-rls-atr.toml), per row
# Installs valgrind when it is missing (Debian/Ubuntu). Takes ~3 min once built.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The bench executable cargo just built.
bench_bin() {
    cargo bench --bench "$1" --no-run --message-format=json 2>/dev/null |
        jq -r 'select(.executable != null and .target.name == "'"$1"'") | .executable' | tail -n 1
}

# Instructions per call of the function matching $2 (a regex on callgrind's name), summed over
# its callers, in the callgrind profile $1.
per_call() {
    callgrind_annotate --tree=calling --threshold=100 "$1" 2>/dev/null |
        grep -E "> .*$2 \(" |
        awk '{ c = $1; gsub(",", "", c); match($0, /\([0-9,]+x\)/)
               n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n); cost += c; calls += n }
             END { if (calls == 0) { print "no calls of the function" > "/dev/stderr"; exit 1 }
                   printf "%.0f", cost / calls }'
}

# Profiles one criterion bench function ($2 of executable $1) for 2 s.
profile() {
    valgrind --tool=callgrind --callgrind-out-file="$work/$2.cg" "$1" --bench "(^|/)$2\$" \
        --profile-time 2 >/dev/null 2>&1
    echo "$work/$2.cg"
}

cargo build --release --quiet
chain="$(bench_bin chain)"
core="$(bench_bin core)"

hinted="$(per_call "$(profile "$chain" sm_rls_atr_hinted)" 'deadband::pipeline::Processor::process_hinted')"
plain="$(per_call "$(profile "$chain" sm_rls_atr)" 'deadband::pipeline::Processor::process')"
full="$(per_call "$(profile "$core" json_decode_bar)" 'deadband::io::codec::decode')"
ticks="$(per_call "$(profile "$core" json_decode_bar_ticks)" 'deadband::io::codec::decode')"

rows=250000
target/release/deadband gen market --keys 4 --rows "$rows" --seed 1 --out "$work/m.parquet" >/dev/null
valgrind --tool=callgrind --callgrind-out-file="$work/replay.cg" target/release/deadband backtest \
    --config benches/sm-rls-atr.toml --input "$work/m.parquet" --out "$work/out" --no-report \
    --single-thread >/dev/null 2>&1
total="$(callgrind_annotate "$work/replay.cg" 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{ gsub(",", "", $1); print $1 }')"

printf '%-58s %s\n' "what (callgrind, instructions)" "count"
printf '%-58s %s\n' "chain per bar, key slot known (sm_rls_atr_hinted)" "$hinted"
printf '%-58s %s\n' "chain per bar, key looked up (sm_rls_atr)" "$plain"
printf '%-58s %s\n' "JSON decode per bar, full-precision prices" "$full"
printf '%-58s %s\n' "JSON decode per bar, prices on a 0.0001 tick" "$ticks"
printf '%-58s %s\n' "replay --single-thread, 1 M bars, whole process, per row" \
    "$(awk -v t="$total" -v r="$((rows * 4))" 'BEGIN { printf "%.0f", t / r }')"
