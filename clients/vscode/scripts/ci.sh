#!/usr/bin/env bash
# Builds, packages and tests the VS Code extension on a fresh Debian machine with
# Node 20. Installs what it needs itself: npm packages, Debian's Chromium, and
# code-server with its Node 24 (cached outside the repository, see
# install-code-server.sh). The daemon must be installed: `deskmate` on PATH, or
# in the repository's .venv.
#
# Tests: unit tests, the chat page in headless Chromium, and end to end in a
# real VS Code (code-server) against the real daemon and the fake model server, with the
# terminal CLI and headless Neovim (`nvim` on PATH: the repository's .venv has it) as other
# windows on the same session.
# Set DESKMATE_SCREENSHOT=path to keep the end-to-end picture of the chat panel, and
# DESKMATE_FORKS_SCREENSHOT=path for the one of its message actions on a fork, and
# DESKMATE_SEARCH_SCREENSHOT=path for the Sessions quick pick searching as you type.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(cd ../.. && pwd)
started=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - started)); }

if ! command -v deskmate >/dev/null 2>&1; then
  if [ -x "$repo/.venv/bin/deskmate" ]; then
    export PATH="$repo/.venv/bin:$PATH"
  else
    echo "ci.sh: the deskmate daemon is not installed: put its venv first on PATH (pip install -e $repo)." >&2
    exit 1
  fi
fi
# The fake model server runs with the Python that has the daemon (and aiohttp).
deskmate_bin=$(dirname "$(command -v deskmate)")
if [ -z "${DESKMATE_PYTHON:-}" ] && [ -x "$deskmate_bin/python" ]; then
  export DESKMATE_PYTHON="$deskmate_bin/python"
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM_PATH:-}" ] || missing+=(chromium)
# code-server's npm install builds a few native modules.
for package in build-essential pkg-config libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "code-server"
bash scripts/install-code-server.sh >/dev/null

step "type check"
npx tsc -p . --noEmit

step "build and package the .vsix"
npm run --silent package >/dev/null
ls -l dist/deskmate.vsix

step "tests: unit, chat page in Chromium, end to end in code-server"
node --test --test-reporter=spec --test-concurrency=1 \
  out/test/unit/*.test.js out/test/webview/*.test.js out/test/e2e/*.test.js
step "done"
