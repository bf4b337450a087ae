#!/usr/bin/env bash
# Session-store benchmark: deskmate's FileBackend against LangChain's
# FileChatMessageHistory, the OpenAI Agents SDK's SQLiteSession and a bare
# os.write + os.fdatasync of the same bytes (the floor), in one run.
#
# The peers are installed only into benchmarks/.venv (gitignored), never into the
# project's dependencies. Usage, from anywhere:
#
#     bash benchmarks/run_store_benchmark.sh [store_benchmark.py options]
#
# Set PYTHON to choose the interpreter that creates the venv (default: python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e "$repo" langchain-community openai-agents

cd "$repo"
exec "$venv/bin/python" benchmarks/store_benchmark.py "$@"
