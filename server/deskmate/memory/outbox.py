"""Outbox: appends that could not reach a shared backend yet, kept durably on local disk.

One JSON Lines file per backend URL, one line per waiting append:
``{"sessionId": ..., "title": ..., "workspaceUri": ..., "messages": [...]}``, or per
waiting change of a session, named by ``kind``: ``"update"`` with a ``patch`` of its
metadata (``patches.MetaPatch``, e.g. moving it to the trash), ``"delete"``.
A line is added with one ``write`` and ``fdatasync``, so a daemon killed while
its backend is down loses nothing; a torn last line (the crash hit that very
write) was never acknowledged and is ignored. Every daemon on the machine that
uses the same backend shares the file, under a lock.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .atomic import FILE_MODE, ensure_private_dir, replace_atomically, sync_fd, write_all
from .codec import UnknownEncoding, decode_message, dumps_bytes, encode_message
from .errors import SessionStoreError, StorageError
from .ids import validate_session_id
from .locking import LockTimeout, exclusive_lock
from .models import Message
from .patches import MetaPatch

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 30.0
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows, where links need privileges to make


KINDS = ("append", "update", "delete")


@dataclass
class PendingAppend:
    """A waiting append, or (``kind``) a waiting metadata ``patch`` or delete of a session."""

    session_id: str
    messages: list[Message]
    title: str = ""
    workspace_uri: str | None = None
    line: bytes = b""  # as read from the file: how a stored entry is found again
    kind: str = "append"
    patch: MetaPatch | None = None

    @classmethod
    def update(cls, session_id: str, patch: MetaPatch) -> PendingAppend:
        return cls(session_id, [], kind="update", patch=patch)

    @classmethod
    def delete(cls, session_id: str) -> PendingAppend:
        return cls(session_id, [], kind="delete")

    def to_line(self) -> bytes:
        record: dict = {
            "sessionId": self.session_id,
            "title": self.title,
            "workspaceUri": self.workspace_uri,
            "messages": [encode_message(m) for m in self.messages],
        }
        if self.kind != "append":  # appends keep the format earlier releases read
            record["kind"] = self.kind
        if self.patch is not None:
            record["patch"] = self.patch.to_record()
        return dumps_bytes(record) + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> PendingAppend:
        """The entry ``line`` holds; ValueError saying why when it holds none a store would take."""
        try:
            record = json.loads(line)
        except RecursionError:
            raise ValueError("it is nested too deeply") from None
        if type(record) is not dict:
            raise ValueError("it is not a JSON object")
        session_id = record.get("sessionId")
        if type(session_id) is not str:
            raise ValueError("its sessionId is not a string")
        try:
            validate_session_id(session_id)  # a store would refuse it on every replay
        except SessionStoreError as exc:
            raise ValueError(str(exc)) from None
        messages, title, workspace_uri = (
            record.get("messages"),
            record.get("title") or "",
            record.get("workspaceUri"),
        )
        if type(messages) is not list:
            raise ValueError("its messages are not a list")
        if type(title) is not str or (workspace_uri is not None and type(workspace_uri) is not str):
            raise ValueError("its title or workspaceUri is not a string")
        kind = record.get("kind", "append")
        if kind not in KINDS:
            raise ValueError(f"its kind is not one of {', '.join(KINDS)}")
        patch = MetaPatch.from_record(record.get("patch")) if kind == "update" else None
        decoded = [decode_message(m) for m in messages]
        return cls(session_id, decoded, title, workspace_uri, line, kind, patch)


class Outbox:
    """A durable FIFO of appends waiting for one backend (named by ``key``, e.g. its redacted URL).

    ``warn`` hears once that damaged lines were moved aside (default: the log).
    """

    def __init__(self, directory: Path, key: str, *, warn: Callable[[str], None] | None = None) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.directory = directory
        self.path = directory / f"{digest}.jsonl"
        self.rejected_path = directory / f"{digest}.jsonl.rejected"
        self._lock_path = str(directory / f"{digest}.lock")
        self.warn = warn or (lambda message: log.warning("%s", message))

    def add(self, pending: PendingAppend) -> None:
        """Durably queue ``pending`` at the end (blocking: run it in a thread)."""
        ensure_private_dir(self.directory)
        with self._locked():
            _append_synced(self.path, pending.to_line())

    def read(self) -> list[PendingAppend]:
        """Everything waiting, oldest first (blocking). Damaged lines are moved aside, not returned."""
        data = _read(self.path)
        if data is None:
            return []
        entries, damaged = _parse(data)
        if damaged:
            self._rewrite(lambda line: False)  # moves them aside, under the lock
        return entries

    def remove(self, stored: Sequence[PendingAppend]) -> None:
        """Drop entries once they are stored (blocking). Matched by content, so entries
        added or removed meanwhile by this or another process are left as they are."""
        done = [entry.line for entry in stored]
        self._rewrite(lambda line: _take(done, line))

    def discard(self, session_id: str) -> None:
        """Drop every entry of a session that was deleted (blocking)."""
        self._rewrite(lambda line: PendingAppend.from_line(line).session_id == session_id)

    def _rewrite(self, drop: Callable[[bytes], bool]) -> None:
        """Rewrite the outbox without the lines ``drop`` picks, and without damaged lines,
        which are first appended to ``rejected_path``."""
        with self._locked():
            data = _read(self.path)
            if data is None:
                return
            lines = _whole_lines(data)
            _, damaged = _parse(data)
            rejected = [line for _, line, _ in damaged]
            kept = [line for line in lines if line not in rejected and not drop(line)]
            if len(kept) == len(lines):
                return
            if rejected:
                # Kept aside first, synced: a crash before the rewrite only leaves a copy in both.
                _append_synced(self.rejected_path, b"".join(rejected))
                reasons = "; ".join(f"line {number}: {why}" for number, _, why in damaged[:5])
                self.warn(
                    f"deskmate: {len(damaged)} line{'s' if len(damaged) > 1 else ''} of the outbox "
                    f"{self.path} cannot be read ({reasons}); moved to {self.rejected_path}, "
                    "the other waiting turns go on."
                )
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


def _open(path: Path, flags: int) -> int:
    """``os.open`` that never follows a symbolic link at ``path`` (StorageError if one is there)."""
    try:
        return os.open(path, flags | _NOFOLLOW, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StorageError(
                f"The outbox file {path} is a symbolic link; deskmate does not follow it. Remove the link."
            ) from None
        raise


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None when there is none."""
    try:
        fd = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        return file.read()


def _append_synced(path: Path, data: bytes) -> None:
    fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        write_all(fd, data)
        sync_fd(fd)
    finally:
        os.close(fd)


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


def _parse(data: bytes) -> tuple[list[PendingAppend], list[tuple[int, bytes, str]]]:
    """The entries of the whole lines in ``data``, and the (number, line, why) of those that hold none."""
    entries, damaged = [], []
    for number, line in enumerate(_whole_lines(data), 1):
        try:
            entries.append(PendingAppend.from_line(line))
        except (ValueError, UnknownEncoding) as exc:  # includes bad JSON and bad UTF-8
            damaged.append((number, line, str(exc)[:200]))
    return entries, damaged


def pending_for(entries: Sequence[PendingAppend], session_id: str) -> list[Message]:
    """The messages waiting for ``session_id``, in order (none from before a waiting delete)."""
    waiting: list[Message] = []
    for entry in entries:
        if entry.session_id == session_id:
            if entry.kind == "delete":
                waiting = []
            waiting.extend(entry.messages)
    return waiting
