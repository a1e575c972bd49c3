#!/usr/bin/env bash
# Build the base images masgen's fixtures, demo and tests use, from Debian packages,
# because no container registry is reachable on these machines.
#
#   busybox:latest        Debian's busybox-static with every applet linked
#   debian:bookworm-slim  a debootstrap --variant=minbase of bookworm, without the docs,
#                         man pages and translations, as the official slim images are
#   python:3.11-slim      debian:bookworm-slim + python3, pip and the host's CA bundle
#
# Idempotent: an image that already exists is skipped, unless this script made it from an
# older recipe (its org.masgen.base label is lower than RECIPE). Needs root and a Docker
# daemon.
set -euo pipefail

MIRROR="${MASGEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${MASGEN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# Raise RECIPE when an image's recipe changes, so machines that have the older one rebuild it.
# 2: docs, man pages and translations left out. On fuse-overlayfs, exporting an image diffs
# the whole file tree: the python image's 11,200 files became 8,000, and a one-file change
# to a Python service exports in about half the time.
RECIPE=2
LABEL="org.masgen.base=$RECIPE"

log() { printf '[offline-images] %s\n' "$*" >&2; }

# True when the image exists and is not an older build of this script's. An image without
# the label (pulled, or the user's own) is always kept.
have_image() {
  local made
  made=$(docker image inspect -f '{{index .Config.Labels "org.masgen.base"}}' "$1" 2>/dev/null) || return 1
  case "$made" in
    ''|'<no value>') return 0 ;;
    *[!0-9]*) return 0 ;;
  esac
  [ "$made" -ge "$RECIPE" ] && return 0
  log "$1 was built from an older recipe ($made, now $RECIPE): rebuilding it"
  old_ids+=("$(docker image inspect -f '{{.Id}}' "$1")")
  return 1
}
old_ids=()

# What the official slim images leave out, for every package installed now or later.
slim() {
  local root=$1
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  cat >"$root/etc/dpkg/dpkg.cfg.d/masgen-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  for d in man groff info lintian linda; do
    [ -d "$root/usr/share/$d" ] && find "$root/usr/share/$d" -mindepth 1 -delete
  done
  [ -d "$root/usr/share/locale" ] && find "$root/usr/share/locale" -mindepth 1 ! -name locale.alias -delete
  return 0
}

need_pkg() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    log "$cmd is missing; install Debian's $pkg (as root: apt-get install -y $pkg)"; exit 1
  fi
  log "installing $pkg"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build_busybox() {
  have_image busybox:latest && { log "busybox:latest present"; return; }
  [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' \
    || need_pkg busybox busybox-static
  dpkg -s busybox-static >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }
  local root=$work/busybox
  mkdir -p "$root"/{bin,etc,tmp,root,var/www,proc,sys,dev}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]' --change "LABEL $LABEL" - busybox:latest >/dev/null
  log "built busybox:latest"
}

build_debian() {
  have_image debian:bookworm-slim && { log "debian:bookworm-slim present"; return; }
  need_pkg debootstrap debootstrap
  local root=$work/debian
  log "debootstrap bookworm minbase (about 40 s)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  slim "$root"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --change "LABEL $LABEL" - debian:bookworm-slim >/dev/null
  log "built debian:bookworm-slim"
}

build_python() {
  have_image python:3.11-slim && { log "python:3.11-slim present"; return; }
  local ctx=$work/python
  mkdir -p "$ctx"
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 python3-pip python3-venv ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
 && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
# The host's CA bundle, so pip works behind a TLS-intercepting proxy.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
CMD ["python3"]
DOCKERFILE
  docker build -q --label "$LABEL" -t python:3.11-slim "$ctx" >/dev/null
  log "built python:3.11-slim"
}

build_busybox
build_debian
build_python
# The images the older recipe made, now untagged; one a container still uses stays.
for id in "${old_ids[@]}"; do docker image rm "$id" >/dev/null 2>&1 || true; done
