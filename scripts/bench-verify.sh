#!/usr/bin/env bash
# Bring the 8-service fixture up cold (no built images) and warm (all cached) with
# `masgen verify --keep` and with `docker-compose up -d --build` plus polling until every
# service is healthy, side by side; print wall times, the ratio, and masgen's CPU time
# and peak memory. masgen runs with --stability 0 so both measure time-to-healthy.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v docker-compose >/dev/null || { echo "needs Debian's docker-compose (apt-get install docker-compose)" >&2; exit 1; }
[ -x /usr/bin/time ] || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
scripts/offline-images.sh
cargo build --release --quiet
MASGEN=$PWD/target/release/masgen

work=$(mktemp -d)
cp -r fixtures/systems/bench8 "$work/mbench"
cp -r fixtures/systems/bench8 "$work/cbench"
# The classic builder's cache is every layer on the machine: a LABEL with a nonce right
# after FROM makes each tool's first build really cold (both pay the same extra step).
for tool in mbench cbench; do
  for df in "$work/$tool"/*/Dockerfile; do
    sed -i "1a LABEL bench.nonce=$tool-$$-$(date +%s%N)" "$df"
  done
done
cleanup() {
  "$MASGEN" down "$work/mbench" >/dev/null 2>&1 || true
  docker-compose -p cbench -f "$work/cbench/docker-compose.yml" down -v >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

remove_images() { # $1: a regex of repository names
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "$1" | xargs -r docker rmi -f >/dev/null 2>&1 || true
}

now() { date +%s.%N; }

# Poll until every container of project cbench is healthy (or exited 0, for init).
wait_compose_healthy() {
  local deadline=$(( $(date +%s) + 300 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local ids states pending=0
    ids=$(docker ps -aq --filter label=com.docker.compose.project=cbench)
    if [ "$(echo "$ids" | grep -c .)" -ge 8 ]; then
      states=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' $ids)
      while read -r status health code; do
        case "$status/$health/$code" in
          running/healthy/*|exited/none/0) ;;
          *) pending=1 ;;
        esac
      done <<<"$states"
      [ "$pending" = 0 ] && return 0
    fi
    sleep 0.2
  done
  echo "docker-compose: not healthy within 300 s" >&2; return 1
}

run_masgen() { # [extra flags]; prints: wall user sys maxrss_kb
  local out; out=$(mktemp)
  /usr/bin/time -f '%e %U %S %M' -o "$out" "$MASGEN" verify "$work/mbench" --keep --stability 0 --color never "$@" >/dev/null 2>"$work/masgen.err" \
    || { cat "$work/masgen.err" >&2; exit 1; }
  cat "$out"
  "$MASGEN" down "$work/mbench" >/dev/null
}

run_compose() { # prints: wall
  local t0 t1
  t0=$(now)
  docker-compose -p cbench -f "$work/cbench/docker-compose.yml" up -d --build >/dev/null 2>"$work/compose.err" \
    || { cat "$work/compose.err" >&2; exit 1; }
  wait_compose_healthy
  t1=$(now)
  echo "$t1 - $t0" | bc -l
  docker-compose -p cbench -f "$work/cbench/docker-compose.yml" down -v >/dev/null 2>&1
}

# Each tool runs cold then warm, and every image is removed before each tool's cold run:
# the classic builder shares its layer cache, so a tool going second would otherwise
# reuse the first one's layers.
remove_images '^(masgen/mbench-|cbench_)'
# masgen builds with BuildKit, whose cache a LABEL nonce does not bust: its cold run says --no-cache.
read -r m_cold m_cold_user m_cold_sys m_cold_rss <<<"$(run_masgen --no-cache)"
read -r m_warm m_warm_user m_warm_sys m_warm_rss <<<"$(run_masgen)"
remove_images '^(masgen/mbench-|cbench_)'
c_cold=$(run_compose)
c_warm=$(run_compose)
remove_images '^(masgen/mbench-|cbench_)'

printf '\n| run | masgen (s) | docker-compose (s) | ratio | target | masgen CPU (s) | masgen peak RSS (MiB) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
printf '| cold | %.2f | %.2f | %.2fx | <= 0.70x | %.2f | %.1f |\n' "$m_cold" "$c_cold" "$(echo "$m_cold / $c_cold" | bc -l)" \
  "$(echo "$m_cold_user + $m_cold_sys" | bc -l)" "$(echo "$m_cold_rss / 1024" | bc -l)"
printf '| warm | %.2f | %.2f | %.2fx | <= 0.50x | %.2f | %.1f |\n' "$m_warm" "$c_warm" "$(echo "$m_warm / $c_warm" | bc -l)" \
  "$(echo "$m_warm_user + $m_warm_sys" | bc -l)" "$(echo "$m_warm_rss / 1024" | bc -l)"
printf '\npeak RSS target: under 50 MiB\n'
