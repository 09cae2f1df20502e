#!/usr/bin/env bash
# Runs the whole test suite: starts whatever the tests need, then cargo test in the release profile
# (one profile for build and tests, so CI compiles the dependency tree once).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --all-targets
cargo test --release --doc
