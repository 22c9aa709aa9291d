#!/usr/bin/env bash
# Installs the pinned restate-server and restatectl from the npm registry into a cache outside
# the repository and prints the directory holding both binaries. Only the two packages and
# their linux-x64 binaries are installed. The binaries are never run here: restate-server
# contacts a public host at start-up, so e2e/restate_netns.py runs it in a loopback-only netns.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${RESTATE_OP_CACHE:-$HOME/.cache/restate-op}
dir="$cache/restate-$RESTATE_VERSION"
bin="$dir/bin"
if [ ! -x "$bin/restate-server" ] || [ ! -x "$bin/restatectl" ]; then
  echo "[install-restate] installing restate-server and restatectl $RESTATE_VERSION from npm" >&2
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (cd "$dir.tmp" && npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
      "@restatedev/restate-server-linux-x64@$RESTATE_VERSION" \
      "@restatedev/restatectl-linux-x64@$RESTATE_VERSION" >&2) \
    || { echo "[install-restate] FAILED: npm install of restate $RESTATE_VERSION" >&2; exit 1; }
  mkdir -p "$dir.tmp/bin"
  ln -s ../node_modules/@restatedev/restate-server-linux-x64/bin/restate-server "$dir.tmp/bin/restate-server"
  ln -s ../node_modules/@restatedev/restatectl-linux-x64/bin/restatectl "$dir.tmp/bin/restatectl"
  chmod +x "$dir.tmp"/node_modules/@restatedev/*/bin/*
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
echo "$bin"
