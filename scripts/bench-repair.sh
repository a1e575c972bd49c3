#!/usr/bin/env bash
# The repair loop on the bundled demo: input tokens of a repair round against resending the
# whole system, and time to healthy after a one-service fix against rebuilding everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/offline-images.sh
cargo test --release --test bench_repair -- --ignored --nocapture 2>&1 | sed -n '/^| measure/,/^times are medians/p'
