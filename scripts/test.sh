#!/usr/bin/env bash
# Install everything the tests need (a virtualenv in .venv, Neovim, the VS Code
# extension's toolchain) and run every test: pytest, then the VS Code suites.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
export PATH="$PWD/.venv/bin:$PATH"

# Tests spend much of their time waiting on daemons, model servers and stores: two workers
# per core (at most four). On 2 CPUs, 4 workers took 8.5 min where 2 took 9.5.
workers=$(( $(nproc) * 2 ))
python -m pytest -n "$(( workers > 4 ? 4 : workers ))" "$@"

if [ -f clients/vscode/scripts/ci.sh ] && [ "${DESKMATE_SKIP_VSCODE:-0}" != 1 ]; then
  bash clients/vscode/scripts/ci.sh
fi
