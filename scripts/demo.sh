#!/usr/bin/env bash
# The bundled demo, end to end with no API key: build the offline base images (no
# registry is reachable here), build masgen, generate examples/demo_spec.txt from the
# recorded replies in fixtures/demo, then build, start and health-check the system.
set -euo pipefail
cd "$(dirname "$0")/.."
# The base images (network and disk) are built while masgen compiles (CPU).
scripts/offline-images.sh &
images=$!
cargo build --release --quiet
wait "$images"
exec ./target/release/masgen @examples/demo_spec.txt --replay fixtures/demo -o "${1:-demo-system}"
