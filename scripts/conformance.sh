#!/usr/bin/env bash
# Does masgen read your compose projects as Docker Compose v2 does? For every compose
# project under the folders given (a folder holding compose.yaml, compose.yml,
# docker-compose.yml or docker-compose.yaml), run `masgen config --format json` and
# Compose's `config --format json` there and compare what they mean (the JSON, keys in
# any order). Prints one line per project and a summary; exits 1 when any project is
# read differently (a key masgen refuses by its rule is counted apart, not as a
# difference: masgen says so before anything runs).
#
#   scripts/conformance.sh DIR...          e.g. scripts/conformance.sh ~/src/*/
#
# Compose: $MASGEN_COMPOSE_REF, else target/compose-ref (scripts/test.sh installs it), else
# `docker compose`. masgen: $MASGEN, else target/release/masgen, target/debug/masgen, or
# masgen on PATH.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ $# -eq 0 ]; then
  echo "usage: scripts/conformance.sh DIR... (folders holding compose projects)" >&2
  exit 2
fi

compose=()
if [ -n "${MASGEN_COMPOSE_REF:-}" ]; then
  compose=("$MASGEN_COMPOSE_REF")
elif ref=$(ls "$root"/target/compose-ref/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -1) && [ -n "$ref" ]; then
  compose=("$ref")
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  echo "no Docker Compose v2: run scripts/test.sh (installs it into target/compose-ref) or set MASGEN_COMPOSE_REF" >&2
  exit 2
fi

masgen="${MASGEN:-}"
for m in "$root/target/release/masgen" "$root/target/debug/masgen"; do
  [ -z "$masgen" ] && [ -x "$m" ] && masgen="$m"
done
[ -z "$masgen" ] && masgen="$(command -v masgen || true)"
if [ -z "$masgen" ]; then
  echo "no masgen binary: cargo build --release, or set MASGEN" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

same=0 differ=0 refused=0 both=0 compose_only=0 ignored=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  ( cd "$dir" && "${compose[@]}" config --format json >"$work/compose.json" 2>"$work/compose.err" )
  c=$?
  ( cd "$dir" && "$masgen" config --format json >"$work/masgen.json" 2>"$work/masgen.err" )
  m=$?
  if [ $c -ne 0 ] && [ $m -ne 0 ]; then
    both=$((both + 1)); echo "both refuse     $dir"
  elif [ $c -ne 0 ]; then
    compose_only=$((compose_only + 1))
    echo "DIFFERS         $dir: Compose refuses it, masgen reads it: $(head -c 200 "$work/compose.err")"
  elif [ $m -ne 0 ]; then
    # masgen refuses before anything runs, at file:line:column, saying why.
    refused=$((refused + 1)); echo "masgen refuses  $dir: $(head -c 300 "$work/masgen.err")"
  elif diff=$(python3 - "$work/compose.json" "$work/masgen.json" "$work/masgen.err" <<'PY'
import json, sys

def meaning(v, top=True):
    """What decides what runs: null and missing are one, x-* extensions are data."""
    if isinstance(v, dict):
        return {k: meaning(x, False) for k, x in v.items()
                if x is not None and not (top and k.startswith("x-"))}
    if isinstance(v, list):
        return [meaning(x, False) for x in v]
    return v

def first_difference(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                return f"{path}.{k}: only Compose has it ({json.dumps(a[k])[:120]})"
            if k not in a:
                return f"{path}.{k}: only masgen has it ({json.dumps(b[k])[:120]})"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b:
        return f"{path}: Compose {json.dumps(a)[:120]}, masgen {json.dumps(b)[:120]}"
    return None

a, b = (meaning(json.load(open(p))) for p in sys.argv[1:3])
d = first_difference(a, b)
if d:
    # A key masgen warned it ignores (it changes nothing masgen verifies) is said so.
    key = d.split(":")[0].rsplit(".", 1)[-1]
    warned = [l.strip() for l in open(sys.argv[3]) if "ignored" in l and f".{key}:" in l]
    if warned:
        print("IGNORED " + warned[0][:200], end="")
        sys.exit(1)
print(d or "", end="")
sys.exit(1 if d else 0)
PY
  ); then
    same=$((same + 1)); echo "same            $dir"
  elif [ "${diff#IGNORED }" != "$diff" ]; then
    ignored=$((ignored + 1)); echo "masgen ignores  $dir: ${diff#IGNORED }"
  else
    differ=$((differ + 1)); echo "DIFFERS         $dir: $diff"
  fi
done < <(for d in "$@"; do
  find "$d" \( -name node_modules -o -name .git -o -name .masgen \) -prune -o -type f \
    \( -name compose.yaml -o -name compose.yml -o -name docker-compose.yml -o -name docker-compose.yaml \) -print
done | while IFS= read -r f; do
  # One project per folder: the name Compose prefers.
  dir=$(dirname "$f")
  for n in compose.yaml compose.yml docker-compose.yml docker-compose.yaml; do
    if [ -f "$dir/$n" ]; then echo "$dir/$n"; break; fi
  done
done | sort -u)

total=$((same + differ + refused + both + compose_only + ignored))
echo
echo "$total project(s): $same same, $((differ + compose_only)) read differently, $refused refused by masgen (before anything runs), $ignored with a key masgen ignores and warns about, $both refused by both"
[ $((differ + compose_only)) -eq 0 ]
