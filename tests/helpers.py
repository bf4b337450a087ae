"""Helpers shared by the test suites (tests/daemon, tests/memory and the tests beside this file).

Importable as ``helpers``: tests/conftest.py puts this folder on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deskmate.memory import Message

# -- messages and sessions ------------------------------------------------------------


def turn(
    i: int, *, tag: str | None = None, ids: bool = False, padding: int = 0, metadata: bool = False
) -> list[Message]:
    """A question and its answer, number ``i``: contents ``q{i}`` and ``a{i}``, fresh ids.

    ``ids``: the ids are ``q{i}`` and ``a{i}`` too, so a turn stored twice shows as one.
    ``tag``: contents ``{tag}-{i} q`` and ``{tag}-{i} a``, ids ``{tag}-{i}-q`` and ``{tag}-{i}-a``,
    for turns of several writers told apart.
    ``padding``: that many dots after the answer, for a turn of a chosen size.
    ``metadata``: the answer carries ``model="m"`` and ``usage={"totalTokens": i}``.
    """
    name = f"{tag}-{i}" if tag is not None else None
    asked: dict[str, Any] = {"content": f"{name} q" if name else f"q{i}"}
    answered: dict[str, Any] = {"content": (f"{name} a" if name else f"a{i}") + "." * padding}
    if name:
        asked["id"], answered["id"] = f"{name}-q", f"{name}-a"
    elif ids:
        asked["id"], answered["id"] = f"q{i}", f"a{i}"
    if metadata:
        answered.update(model="m", usage={"totalTokens": i})
    question = Message(role="user", **asked)
    answer = Message(role="assistant", **answered)
    return [question, answer]


def write_jsonl(path: Path, records: Iterable[object]) -> bytes:
    """Write ``records`` to ``path`` as JSON lines, by hand (its folder made if missing); returns the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    path.write_bytes(data)
    return data


@contextlib.contextmanager
def namespace_in(store: ModuleType) -> Iterator[str]:
    """A namespace no other test uses (``t`` and 12 hex digits); afterwards
    ``store.cleanup`` removes what was stored under it (``store`` is a ``memory.store_*`` module)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        store.cleanup(name)


# -- the daemon ------------------------------------------------------------------------


async def stored_messages(daemon: Any, session_id: str) -> list[dict[str, Any]]:
    """The session's messages as ``deskmate.getSession`` gives them, after checking that all of
    them are stored (``persisted``), not only held in the daemon's memory."""
    session = await daemon.run("deskmate.getSession", {"sessionId": session_id})
    assert session["persisted"] is True, f"session {session_id!r} is not (all) stored: {session}"
    return session["messages"]


# -- time --------------------------------------------------------------------------------


class FakeClock:
    """A clock a test moves by hand (``Assistant(clock=...)``): starts at the real time, so it
    agrees with the timestamps of messages stored now, then jumps days ahead on request."""

    def __init__(self) -> None:
        from datetime import datetime, timezone

        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


# -- waiting ---------------------------------------------------------------------------


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call ``check`` (plain or async) every ``interval`` seconds until it returns something true,
    and return that; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)


def kill_after(proc: subprocess.Popen, lines: Iterable[str], prefix: str, count: int) -> None:
    """Read ``lines`` (``proc``'s output) until ``count`` of them start with ``prefix``, then kill
    ``proc`` with SIGKILL and wait for it: a crash at a known point of its work."""
    seen = 0
    for line in lines:
        seen += line.startswith(prefix)
        if seen == count:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()


# -- network and JSON-RPC ---------------------------------------------------------------


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago: nothing listens on it (a store there
    refuses connections) and a server of the test may take it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


def frame(message: dict) -> bytes:
    """``message`` as one LSP base-protocol frame: a Content-Length header, then the JSON body."""
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(sock: socket.socket) -> dict:
    """The next framed JSON-RPC message from ``sock`` (blocks until it is whole)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(1)
    length = int(data.split(b"Content-Length:")[1].split(b"\r\n")[0])
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return json.loads(body)


def command(msg_id: int, name: str, arguments: dict | None = None) -> dict:
    """A ``workspace/executeCommand`` request for the daemon's command ``name``."""
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "workspace/executeCommand",
        "params": {"command": name, "arguments": [arguments or {}]},
    }


# -- secrets ----------------------------------------------------------------------------


def pieces(secret: str, size: int) -> set[str]:
    """Every run of ``size`` characters of ``secret``: none may show where the secret must not."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


# -- full disks --------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, mode: str | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"256k"``) mounted at ``path`` (made here), unmounted afterwards.

    Mounting needs root: without it the test skips, and fails on CI (``CI`` set), where it must run.
    """
    path.mkdir(parents=True)
    options = f"size={size}" + (f",mode={mode}" if mode else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            raise AssertionError(f"cannot mount a tmpfs on CI: {mounted.stderr.decode()}")
        pytest.skip(f"mounting a tmpfs needs root: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        # Lazily: a daemon of the test may still hold a file open there.
        subprocess.run(["umount", "-l", str(path)], check=True)


class Filler:
    """A file that takes every free byte of a filesystem, and gives some back on request."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "filler"
        self.size = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                self.size += os.write(fd, b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)

    def free(self, nbytes: int) -> None:
        """Give ``nbytes`` back to the filesystem."""
        self.size -= nbytes
        os.truncate(self.path, self.size)

    def remove(self) -> None:
        """Give everything back."""
        self.path.unlink()


def descriptors_to(path: Path | str) -> list[str]:
    """What this process has open at ``path``, or at a file once named so (" (deleted)"): read
    from /proc/self/fd (Linux)."""
    wanted = os.path.realpath(path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.removesuffix(" (deleted)") == wanted:
            found.append(target)
    return found
