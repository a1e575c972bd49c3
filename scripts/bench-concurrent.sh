#!/usr/bin/env bash
# 1, 4 and 8 verifications of the healthy fixture at once on one engine, every copy in a
# folder of the same name (so all are one project, as parallel CI jobs of one repository
# are). Images are built once beforehand, so the runs measure verifying, not building.
# Prints the wall time of each level and the mean and slowest per-run time; fails if any
# run is not healthy or anything of the project is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/offline-images.sh >/dev/null
cargo build --release --quiet
MASGEN=$PWD/target/release/masgen
project=mbconc
work=$(mktemp -d)
cleanup() {
  docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

copy() { mkdir -p "$work/$1"; cp -r fixtures/systems/healthy "$work/$1/$project"; }
now() { date +%s.%N; }

copy warmup
"$MASGEN" verify "$work/warmup/$project" --stability 2 --color never >/dev/null 2>&1

printf '\n| runs at once | wall (s) | mean per run (s) | slowest run (s) | healthy |\n|---:|---:|---:|---:|---:|\n'
for n in 1 4 8; do
  pids=()
  for i in $(seq 1 "$n"); do
    copy "l$n-$i"
    ( t0=$(now); "$MASGEN" verify "$work/l$n-$i/$project" --stability 2 --color never >"$work/l$n-$i.out" 2>&1
      echo "$? $(echo "$(now) - $t0" | bc -l)" >"$work/l$n-$i.res" ) &
    pids+=($!)
  done
  t0=$(now)
  wait "${pids[@]}"
  wall=$(echo "$(now) - $t0" | bc -l)
  ok=0; sum=0; max=0
  for i in $(seq 1 "$n"); do
    read -r code secs <"$work/l$n-$i.res"
    [ "$code" = 0 ] && ok=$((ok + 1)) || { echo "run $i of $n failed:" >&2; cat "$work/l$n-$i.out" >&2; }
    sum=$(echo "$sum + $secs" | bc -l)
    max=$(echo "if ($secs > $max) $secs else $max" | bc -l)
  done
  printf '| %d | %.2f | %.2f | %.2f | %d/%d |\n' "$n" "$wall" "$(echo "$sum / $n" | bc -l)" "$max" "$ok" "$n"
  [ "$ok" = "$n" ] || exit 1
done

left=$(docker ps -aq --filter "label=com.docker.compose.project=$project"; docker network ls -q --filter "label=com.docker.compose.project=$project"; docker volume ls -q --filter "label=com.docker.compose.project=$project")
if [ -n "$left" ]; then echo "left behind: $left" >&2; exit 1; fi
echo
echo "nothing left behind"
