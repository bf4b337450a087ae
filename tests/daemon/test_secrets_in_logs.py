"""Secrets never reach a log: a verbose daemon's whole stderr and every message it sends are
searched for a planted API key, token and storage passwords."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import clean_env
from helpers import command, frame, pieces

API_KEY = "sk-Qz8vX4mN2pL7wE"
ENV_KEY = "sk-Jw3Rt9Yh6Bc1uO"
REDIS_PASSWORD = "Kd#Wp/Zx?Vq@5Yr"  # unencoded '#', '/', '?' and '@'
PG_PASSWORD = "Mf7Gh2Tn8Ls4"


class Session:
    """A daemon driven over its stdio as an editor would: each request's answer awaited before
    the next message (fixed pauses lost the race on a loaded machine), everything it wrote kept."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.out = bytearray()
        self.err = bytearray()
        self.answers: dict[int, dict] = {}
        self.changed = threading.Condition()
        self.threads = [
            threading.Thread(target=self._read_messages, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),  # a full pipe would block it
        ]
        for thread in self.threads:
            thread.start()

    def _read_messages(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        length = None
        while header := stream.readline():
            self.out += header
            if header.startswith(b"Content-Length:"):
                length = int(header.split(b":")[1])
            if header != b"\r\n" or length is None:
                continue  # headers go on to a blank line
            body = stream.read(length)
            length = None
            self.out += body
            message = json.loads(body)
            if "id" in message and "method" not in message:  # an answer, not a request of its own
                with self.changed:
                    self.answers[message["id"]] = message
                    self.changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(65536):
            self.err += chunk

    def send(self, message: dict) -> dict | None:
        """Write ``message``; for a request, its answer (within 30 s)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(message))
        self.proc.stdin.flush()
        if "id" not in message:
            return None
        with self.changed:
            assert self.changed.wait_for(lambda: message["id"] in self.answers, timeout=30), message
            return self.answers[message["id"]]

    def finish(self) -> tuple[str, str]:
        self.proc.wait(timeout=60)
        for thread in self.threads:
            thread.join(timeout=10)
        return self.out.decode(errors="replace"), self.err.decode(errors="replace")


def use_store(session: Session, url: str, scheme: str, first_id: int) -> int:
    """Switch the daemon to the store at ``url`` and wait until its status shows that store's
    ``scheme`` (the switch is the notification's work, not the next request's); the next free
    request id."""
    session.send(
        {
            "jsonrpc": "2.0",
            "method": "workspace/didChangeConfiguration",
            "params": {"settings": {"storageUrl": url}},
        }
    )
    for msg_id in range(first_id, first_id + 100):
        answer = session.send(command(msg_id, "deskmate.status"))
        if answer["result"]["storage"].startswith(scheme):
            return msg_id + 1
        time.sleep(0.1)
    raise AssertionError(f"the daemon never switched to the {scheme} store")


def run_session(tmp_path, model_server, verbose: bool) -> tuple[str, str]:
    settings = {
        "apiKey": API_KEY,
        "baseUrl": model_server.base_url,
        "model": "test-model",
        "dataDir": str(tmp_path / "data"),
        "maxRetries": 0,
        "requestTimeout": 5,
    }
    argv = [sys.executable, "-m", "deskmate", *(["-v"] if verbose else []), "lsp"]
    session = Session(argv, clean_env(OPENAI_API_KEY=ENV_KEY, DESKMATE_DATA_DIR=str(tmp_path / "data")))
    session.send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "initializationOptions": settings, "rootUri": None},
        }
    )
    session.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    session.send(command(2, "deskmate.ask", {"question": "hello [[tokens:3]]", "sessionId": "s1"}))
    session.send(command(3, "deskmate.status"))
    # A store that cannot be reached, with passwords in the URL: errors name it.
    next_id = use_store(session, f"redis://user:{REDIS_PASSWORD}@127.0.0.1:1/0", "redis://", 4)
    session.send(command(next_id, "deskmate.listSessions"))
    pg_url = f"postgresql://me:{PG_PASSWORD}@127.0.0.1:1/db?connect_timeout=1"
    next_id = use_store(session, pg_url, "postgresql://", next_id + 1)
    session.send(command(next_id, "deskmate.listSessions"))
    session.send(command(next_id + 1, "deskmate.ask", {"question": "again", "sessionId": "s2"}))
    session.send({"jsonrpc": "2.0", "id": next_id + 2, "method": "shutdown"})
    session.send({"jsonrpc": "2.0", "method": "exit"})
    return session.finish()


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
