"""Outbox: appends that could not reach a shared backend yet, kept durably on local disk.

One JSON Lines file per backend URL, one line per waiting append:
``{"sessionId": ..., "title": ..., "workspaceUri": ..., "messages": [...]}``.
A line is added with one ``write`` and ``fdatasync``, so a daemon killed while
its backend is down loses nothing; a torn last line (the crash hit that very
write) was never acknowledged and is ignored. Every daemon on the machine that
uses the same backend shares the file, under a lock.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .atomic import FILE_MODE, ensure_private_dir, replace_atomically, sync_fd, write_all
from .codec import dumps_bytes
from .errors import StorageError
from .locking import LockTimeout, exclusive_lock
from .models import Message

LOCK_TIMEOUT_SECONDS = 30.0


@dataclass
class PendingAppend:
    session_id: str
    messages: list[Message]
    title: str = ""
    workspace_uri: str | None = None
    line: bytes = b""  # as read from the file: how a stored entry is found again

    def to_line(self) -> bytes:
        record = {
            "sessionId": self.session_id,
            "title": self.title,
            "workspaceUri": self.workspace_uri,
            "messages": [m.to_dict() for m in self.messages],
        }
        return dumps_bytes(record) + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> PendingAppend:
        record = json.loads(line)
        return cls(
            record["sessionId"],
            [Message.from_dict(m) for m in record["messages"]],
            record.get("title") or "",
            record.get("workspaceUri"),
            line,
        )


class Outbox:
    """A durable FIFO of appends waiting for one backend (named by ``key``, e.g. its redacted URL)."""

    def __init__(self, directory: Path, key: str) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.directory = directory
        self.path = directory / f"{digest}.jsonl"
        self._lock_path = str(directory / f"{digest}.lock")

    def add(self, pending: PendingAppend) -> None:
        """Durably queue ``pending`` at the end (blocking: run it in a thread)."""
        ensure_private_dir(self.directory)
        with self._locked():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                write_all(fd, pending.to_line())
                sync_fd(fd)
            finally:
                os.close(fd)

    def read(self) -> list[PendingAppend]:
        """Everything waiting, oldest first (blocking)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return _parse(data, self.path)

    def remove(self, stored: Sequence[PendingAppend]) -> None:
        """Drop entries once they are stored (blocking). Matched by content, so entries
        added or removed meanwhile by this or another process are left as they are."""
        done = [entry.line for entry in stored]
        self._rewrite(lambda line: _take(done, line))

    def discard(self, session_id: str) -> None:
        """Drop every entry of a session that was deleted (blocking)."""
        self._rewrite(lambda line: PendingAppend.from_line(line).session_id == session_id)

    def _rewrite(self, drop) -> None:
        with self._locked():
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return
            lines = _whole_lines(data)
            kept = [line for line in lines if not drop(line)]
            if len(kept) == len(lines):
                return
            if kept:
                replace_atomically(self.path, b"".join(kept))
            else:
                self.path.unlink()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with exclusive_lock(self._lock_path, LOCK_TIMEOUT_SECONDS, FILE_MODE):
                yield
        except LockTimeout:
            raise StorageError(f"The outbox {self.path} is locked by another process.") from None


def _take(lines: list[bytes], line: bytes) -> bool:
    """Remove one occurrence of ``line`` from ``lines``; True if there was one."""
    try:
        lines.remove(line)
    except ValueError:
        return False
    return True


def _whole_lines(data: bytes) -> list[bytes]:
    lines = data.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # torn by a crash during its write: never acknowledged
    return lines


def _parse(data: bytes, path: Path) -> list[PendingAppend]:
    entries = []
    for number, line in enumerate(_whole_lines(data), 1):
        try:
            entries.append(PendingAppend.from_line(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"The outbox {path} has a bad line {number}: {exc}") from None
    return entries


def pending_for(entries: Sequence[PendingAppend], session_id: str) -> list[Message]:
    """The messages waiting for ``session_id``, in order."""
    return [m for entry in entries if entry.session_id == session_id for m in entry.messages]
