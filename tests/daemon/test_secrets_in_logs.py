"""Secrets never reach a log: a verbose daemon's whole stderr and every message it sends are
searched for a planted API key, token and storage passwords."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conftest import clean_env
from helpers import command, frame, pieces

API_KEY = "sk-Qz8vX4mN2pL7wE"
ENV_KEY = "sk-Jw3Rt9Yh6Bc1uO"
REDIS_PASSWORD = "Kd#Wp/Zx?Vq@5Yr"  # unencoded '#', '/', '?' and '@'
PG_PASSWORD = "Mf7Gh2Tn8Ls4"


def run_session(tmp_path, model_server, verbose: bool) -> tuple[str, str]:
    settings = {
        "apiKey": API_KEY,
        "baseUrl": model_server.base_url,
        "model": "test-model",
        "dataDir": str(tmp_path / "data"),
        "maxRetries": 0,
        "requestTimeout": 5,
    }
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "initializationOptions": settings, "rootUri": None},
        },
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        command(2, "deskmate.ask", {"question": "hello [[tokens:3]]", "sessionId": "s1"}),
        command(3, "deskmate.status"),
        # A store that cannot be reached, with passwords in the URL: errors name it.
        {
            "jsonrpc": "2.0",
            "method": "workspace/didChangeConfiguration",
            "params": {"settings": {"storageUrl": f"redis://user:{REDIS_PASSWORD}@127.0.0.1:1/0"}},
        },
        command(4, "deskmate.listSessions"),
        command(5, "deskmate.status"),
        {
            "jsonrpc": "2.0",
            "method": "workspace/didChangeConfiguration",
            "params": {
                "settings": {"storageUrl": f"postgresql://me:{PG_PASSWORD}@127.0.0.1:1/db?connect_timeout=1"}
            },
        },
        command(6, "deskmate.listSessions"),
        command(7, "deskmate.ask", {"question": "again", "sessionId": "s2"}),
        {"jsonrpc": "2.0", "id": 8, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    argv = [sys.executable, "-m", "deskmate", *(["-v"] if verbose else []), "lsp"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(OPENAI_API_KEY=ENV_KEY, DESKMATE_DATA_DIR=str(tmp_path / "data")),
    )
    assert proc.stdin is not None
    for message in messages:
        proc.stdin.write(frame(message))
        proc.stdin.flush()
        time.sleep(0.3)  # one after another, as an editor would
    out, err = proc.communicate(timeout=60)
    return out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.parametrize("verbose", [True, False], ids=["verbose", "normal"])
def test_no_secret_in_any_log_or_message(tmp_path, model_server, verbose):
    out, err = run_session(tmp_path, model_server, verbose)
    assert "Content-Length" in out  # the session ran and answered
    assert "Redis" in out and "PostgreSQL" in out  # the failing stores were reported...
    for secret in (API_KEY, ENV_KEY, REDIS_PASSWORD, PG_PASSWORD):
        for piece in pieces(secret, size=5):
            assert piece not in err, f"{piece!r} of a secret is in stderr"
            assert piece not in out, f"{piece!r} of a secret was sent to the client"
    if verbose:
        assert "DEBUG" in err  # ...and the verbose run really logged in detail
    else:
        assert "Traceback" not in err and "Traceback" not in out
