#!/usr/bin/env bash
# Staged generation of a 12-file system against the fake Anthropic server (1 s per call),
# the original tool's plan (one batch per group) at concurrency 1 against masgen at 4.
# Prints a table with wall times and the speed-up.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test bench_generate -- --ignored --nocapture 2>&1 | sed -n '/^| plan/,/target/p'
