"""FileBackend: one human-readable JSON Lines file per session.

Layout of ``<root>/sessions/<id>.jsonl`` (described for users in docs/storage.md):

- line 1, the header: ``{"deskmate": "session", "version": 1, "id": ..., "title": ...,
  "workspaceUri": ..., "createdAt": ..., "tags": [...]}``
- then one message per line, each with ``"n"``: the message count once it is added.
  Messages appended together are one transaction: every line of it but the last
  carries ``"more": true``, so a reader drops a transaction a crash cut short.

Appends are one ``write`` of whole lines followed by ``fdatasync``; a tail left
by a crash (a line without its newline, or lines still marked ``more``) is
ignored on load and cut off by the next append. Whole-file writes go through
``replace_atomically``. A lock file per session (``locking.exclusive_lock``) orders
writers across threads and processes; readers need no lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from .atomic import FILE_MODE, ensure_private_dir, fsync_dir, replace_atomically, sync_fd, write_all
from .errors import StorageError
from .ids import validate_session_id
from .locking import LockTimeout, exclusive_lock
from .models import Message, Session, SessionInfo, now_iso

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
FORMAT_VERSION = 1
LOCK_TIMEOUT_SECONDS = 30.0
_HEAD_BLOCK = 8192
SNAPSHOT_LIMIT = 32  # sessions kept parsed in memory
_TAIL_BLOCK = 4096  # most records fit; longer ones make _find_tail read further back


class CorruptSessionFile(ValueError):
    """The file's committed content does not parse; the message says where."""


@dataclass
class _Tail:
    """The last committed record of a file and the offset just after it."""

    end: int
    record: dict[str, Any]


@dataclass(frozen=True)
class _Snapshot:
    """A parsed session and the exact file state it was parsed from.

    Kept only for files that ended cleanly (no torn or uncommitted tail), so
    ``size`` is a record boundary and bytes past it are whole new records.
    """

    inode: int
    size: int
    mtime_ns: int
    last_line: bytes  # the file's last line, checked again before trusting the prefix
    session: Session  # never handed out: callers get session.copy()


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


def _header(
    session_id: str, title: str, workspace_uri: str | None, created_at: str, tags: list[str]
) -> dict[str, Any]:
    return {
        "deskmate": "session",
        "version": FORMAT_VERSION,
        "id": session_id,
        "title": title,
        "workspaceUri": workspace_uri,
        "createdAt": created_at,
        "tags": tags,
    }


def _message_lines(messages: Sequence[Message], count_before: int) -> bytes:
    last = len(messages) - 1
    lines = []
    for index, message in enumerate(messages):
        record = message.to_dict()
        record["n"] = count_before + index + 1
        if index < last:
            record["more"] = True
        lines.append(_encode(record))
    return b"".join(lines)


def _new_file(path: Path, header: dict[str, Any], messages: Sequence[Message]) -> None:
    """Write ``path`` whole: a header line, then ``messages`` counted from 1."""
    replace_atomically(path, _encode(header) + _message_lines(messages, 0))


def _last_line(data: bytes) -> bytes:
    """The last complete line of ``data``, which ends with a newline."""
    return data[data.rfind(b"\n", 0, -1) + 1 :]


def _check_header(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict) or record.get("deskmate") != "session":
        raise CorruptSessionFile('line 1 is not a deskmate session header ({"deskmate": "session", ...})')
    if record.get("version", 1) > FORMAT_VERSION:
        raise CorruptSessionFile(
            f"format version {record.get('version')} is newer than this deskmate understands"
        )
    return record


def _decode_records(data: bytes) -> list[Any]:
    """The JSON records of the complete lines in ``data``; the part after the last newline is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptSessionFile(f"the file is not UTF-8 text ({exc})") from None
    # The part after the last newline is empty, or a write a crash cut short.
    complete = text[: text.rfind("\n") + 1].rstrip("\n")
    try:
        # One parser call for the whole file is several times faster than one per line.
        return json.loads("[" + complete.replace("\n", ",") + "]")
    except ValueError:
        return _parse_lines(complete.split("\n"))  # blank lines, or a damaged line to point at


def _committed_messages(records: list[Any], first_number: int) -> tuple[list[Message], int]:
    """Messages of the complete transactions in ``records``, and how many records trail uncommitted."""
    messages: list[Message] = []
    pending: list[Message] = []
    for number, record in enumerate(records, start=first_number):
        try:
            message = Message.from_dict(record)
        except ValueError as exc:
            raise CorruptSessionFile(f"record {number}: {exc}") from None
        if record.get("more") is True:
            pending.append(message)
            continue
        if pending:
            messages.extend(pending)
            pending.clear()
        messages.append(message)
    return messages, len(pending)


def parse_session(data: bytes, session_id: str) -> Session:
    """Parse a whole session file; a torn tail is ignored, anything else bad raises."""
    records = _decode_records(data)
    if not records:
        raise CorruptSessionFile("the file has no header line")
    header = _check_header(records[0])
    messages, _ = _committed_messages(records[1:], 2)
    return Session(
        id=session_id,
        title=str(header.get("title") or ""),
        workspace_uri=header.get("workspaceUri"),
        created_at=str(header.get("createdAt") or now_iso()),
        tags=[str(tag) for tag in header.get("tags") or []],
        messages=messages,
    )


def _parse_lines(lines: list[str]) -> list[Any]:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise CorruptSessionFile(f"line {number} is not valid JSON ({exc})") from None
    return records


def _find_tail(fd: int, size: int) -> _Tail:
    """Find the last committed record by reading backwards from the end: O(last record)."""
    block = _TAIL_BLOCK
    while True:
        start = max(0, size - block)
        data = os.pread(fd, size - start, start)
        lines = data.split(b"\n")
        offset = size - len(lines.pop())  # just after the last newline
        # When the block starts mid-file its first piece may be a partial line.
        first = 0 if start == 0 else 1
        for line in reversed(lines[first:]):
            line_end = offset
            offset -= len(line) + 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise CorruptSessionFile(
                    f"the line ending at byte {line_end} is not valid JSON ({exc})"
                ) from None
            if not isinstance(record, dict):
                raise CorruptSessionFile(f"the line ending at byte {line_end} is not a JSON object")
            if record.get("more") is not True:
                return _Tail(end=line_end, record=record)
        if start == 0:
            raise CorruptSessionFile("the file has no header line")
        block *= 4


def _read_head(fd: int) -> dict[str, Any]:
    block = _HEAD_BLOCK
    while True:
        data = os.pread(fd, block, 0)
        newline = data.find(b"\n")
        if newline >= 0:
            try:
                return _check_header(json.loads(data[:newline]))
            except ValueError as exc:
                if isinstance(exc, CorruptSessionFile):
                    raise
                raise CorruptSessionFile(f"line 1 is not valid JSON ({exc})") from None
        if len(data) < block:
            raise CorruptSessionFile("the file has no complete header line")
        block *= 4


class FileBackend:
    """The default session store: files under ``<root>/sessions``.

    ``root`` is usually ``default_data_dir()``. Directories are created on first
    write with mode 0700, session files with mode 0600.
    """

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.root = Path(root).expanduser().absolute()
        self.directory = self.root / "sessions"
        self.lock_timeout = lock_timeout
        self._locks_ready = False
        # Parsed sessions by id, to read only what was appended since (see _refresh).
        self._snapshots: dict[str, _Snapshot] = {}
        self._snapshots_lock = threading.Lock()
        # Where our own last append left each file (inode, size, mtime, message count):
        # the next append need not read the tail again.
        self._ends: dict[str, tuple[int, int, int, int]] = {}

    def __repr__(self) -> str:
        return f"FileBackend({str(self.root)!r})"

    @classmethod
    def from_url(cls, url: str) -> FileBackend:
        """``file:///path/to/dir``: sessions are kept in ``<dir>/sessions``, as with ``dataDir``."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(
                f"A file:// storage URL must name a local directory, got host {parts.netloc!r}."
            )
        if not parts.path:
            raise StorageError("A file:// storage URL needs a directory path, e.g. file:///home/me/deskmate.")
        return cls(url2pathname(parts.path))

    # -- paths and locks ----------------------------------------------------

    def path_of(self, session_id: str) -> Path:
        """The file that holds ``session_id`` (validated first)."""
        return self.directory / f"{validate_session_id(session_id)}{SUFFIX}"

    @contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        """Hold the session's lock file: writers in every thread and process take turns.

        Creates the store's directories on first use.
        """
        if not self._locks_ready:
            ensure_private_dir(self.directory / ".locks")
            self._locks_ready = True
        lock_path = os.path.join(self.directory, ".locks", f"{session_id}.lock")
        try:
            with exclusive_lock(lock_path, self.lock_timeout, FILE_MODE):
                yield
        except LockTimeout:
            raise StorageError(
                f"Session {session_id!r} is locked by another process for more than "
                f"{self.lock_timeout:.0f} s (lock file {lock_path})."
            ) from None

    # -- MemoryBackend ---------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        path = self.path_of(session_id)
        return await asyncio.to_thread(self._load, session_id, path)

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        path = self.path_of(session_id)
        if not messages:
            return
        await asyncio.to_thread(self._append, session_id, path, list(messages), title, workspace_uri)

    async def save(self, session: Session) -> None:
        path = self.path_of(session.id)
        await asyncio.to_thread(self._save, session, path)

    async def delete(self, session_id: str) -> bool:
        path = self.path_of(session_id)
        return await asyncio.to_thread(self._delete, session_id, path)

    async def list(self) -> list[SessionInfo]:
        return await asyncio.to_thread(self._list)

    async def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    # -- blocking implementations, run in worker threads ------------------------

    def _load(self, session_id: str, path: Path) -> Session | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self._snapshots.pop(session_id, None)
            return None
        except OSError as exc:
            raise StorageError(f"Cannot read session file {path}: {exc.strerror}.") from None
        try:
            stat = os.fstat(fd)
            snapshot = self._snapshots.get(session_id)
            if snapshot is not None and snapshot.inode == stat.st_ino:
                session = self._refresh(session_id, fd, stat, snapshot)
                if session is not None:
                    return session
            data = os.pread(fd, stat.st_size, 0)
        finally:
            os.close(fd)
        try:
            session = parse_session(data, session_id)
        except CorruptSessionFile:
            self._snapshots.pop(session_id, None)
            return self._quarantine_and_restart(session_id, path)
        if data.endswith(b"\n") and len(data) == stat.st_size:
            self._remember(session_id, stat, _last_line(data), session)
            return session.copy()
        return session

    def _refresh(self, session_id: str, fd: int, stat: os.stat_result, snapshot: _Snapshot) -> Session | None:
        """The session from its snapshot plus any records appended since; None: read it all again.

        Makes the daemon's load before each answer cost the new bytes, not the history.
        """
        if stat.st_size == snapshot.size and stat.st_mtime_ns == snapshot.mtime_ns:
            return snapshot.session.copy()
        if stat.st_size <= snapshot.size:
            return None
        start = snapshot.size - len(snapshot.last_line)
        if os.pread(fd, len(snapshot.last_line), start) != snapshot.last_line:
            return None  # rewritten in place (a hand edit): trust nothing
        added = os.pread(fd, stat.st_size - snapshot.size, snapshot.size)
        if not added.endswith(b"\n"):
            return None  # a torn or in-flight write: the full parse knows how to skip it
        try:
            messages, uncommitted = _committed_messages(_decode_records(added), 0)
        except CorruptSessionFile:
            return None
        if uncommitted:
            return None
        session = snapshot.session.copy()
        session.messages += messages
        if messages:
            session.updated_at = messages[-1].timestamp
        self._remember(session_id, stat, _last_line(added), session)
        return session.copy()

    def _remember(self, session_id: str, stat: os.stat_result, last_line: bytes, session: Session) -> None:
        snapshot = _Snapshot(stat.st_ino, stat.st_size, stat.st_mtime_ns, last_line, session)
        with self._snapshots_lock:  # loads run in several worker threads
            self._snapshots.pop(session_id, None)  # re-insert: the dict's order is recency of use
            self._snapshots[session_id] = snapshot
            if len(self._snapshots) > SNAPSHOT_LIMIT:
                del self._snapshots[next(iter(self._snapshots))]

    def _quarantine_and_restart(self, session_id: str, path: Path) -> Session | None:
        # Decide again under the lock: a writer may have replaced the file meanwhile.
        with self._locked(session_id):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return None
            try:
                return parse_session(data, session_id)
            except CorruptSessionFile as exc:
                moved_to = self._move_aside(path, str(exc))
        return Session(id=session_id, quarantined_to=str(moved_to))

    def _move_aside(self, path: Path, reason: str) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        os.rename(path, target)
        fsync_dir(path.parent)
        log.warning("Session file %s could not be read (%s); moved it to %s", path, reason, target)
        return target

    def _append(
        self,
        session_id: str,
        path: Path,
        messages: list[Message],
        title: str,
        workspace_uri: str | None,
    ) -> None:
        with self._locked(session_id):
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:
                _new_file(
                    path, _header(session_id, title, workspace_uri, messages[0].timestamp, []), messages
                )
                return
            try:
                stat = os.fstat(fd)
                known = self._ends.get(session_id)
                if known is not None and known[:3] == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
                    count = known[3]  # our own last append: the file ends where we left it
                else:
                    try:
                        tail = _find_tail(fd, stat.st_size)
                    except CorruptSessionFile as exc:
                        os.close(fd)
                        fd = -1
                        self._move_aside(path, str(exc))
                        header = _header(session_id, title, workspace_uri, messages[0].timestamp, [])
                        _new_file(path, header, messages)
                        return
                    if "role" not in tail.record and title and not tail.record.get("title"):
                        # An empty, untitled session (e.g. just made by newSession) takes the
                        # first question's title: rewriting a header-only file is O(1).
                        header = {**tail.record, "title": title}
                        header["workspaceUri"] = header.get("workspaceUri") or workspace_uri
                        _new_file(path, header, messages)
                        return
                    if tail.end < stat.st_size:
                        # Cut off what a crash left half-written before adding to the file.
                        os.ftruncate(fd, tail.end)
                    count = int(tail.record.get("n", 0)) if "role" in tail.record else 0
                write_all(fd, _message_lines(messages, count))
                sync_fd(fd)
                after = os.fstat(fd)
                self._ends[session_id] = (
                    after.st_ino,
                    after.st_size,
                    after.st_mtime_ns,
                    count + len(messages),
                )
            finally:
                if fd >= 0:
                    os.close(fd)

    def _save(self, session: Session, path: Path) -> None:
        header = _header(
            session.id, session.title, session.workspace_uri, session.created_at, list(session.tags)
        )
        with self._locked(session.id):
            _new_file(path, header, session.messages)

    def _delete(self, session_id: str, path: Path) -> bool:
        if not self.directory.is_dir():
            return False
        self._ends.pop(session_id, None)
        self._snapshots.pop(session_id, None)
        with self._locked(session_id):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            fsync_dir(self.directory)
        return True

    def _list(self) -> list[SessionInfo]:
        try:
            paths = [p for p in self.directory.iterdir() if p.name.endswith(SUFFIX)]
        except FileNotFoundError:
            return []
        infos = [info for info in map(self._summarise, paths) if info is not None]
        infos.sort(key=lambda info: info.updated_at, reverse=True)
        return infos

    def _summarise(self, path: Path) -> SessionInfo | None:
        """A session's summary from its header line and last record only."""
        session_id = path.name[: -len(SUFFIX)]
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # deleted while we listed
        try:
            size = os.fstat(fd).st_size
            try:
                header = _read_head(fd)
                tail = _find_tail(fd, size)
            except CorruptSessionFile as exc:
                log.warning("Session file %s is damaged (%s); it will be moved aside when opened", path, exc)
                return SessionInfo(id=session_id, title="(damaged session file)")
        finally:
            os.close(fd)
        created_at = str(header.get("createdAt") or "")
        last = tail.record
        is_message = "role" in last
        return SessionInfo(
            id=session_id,
            title=str(header.get("title") or ""),
            workspace_uri=header.get("workspaceUri"),
            created_at=created_at,
            updated_at=str(last.get("timestamp") or created_at) if is_message else created_at,
            message_count=int(last.get("n", 0)) if is_message else 0,
            tags=[str(tag) for tag in header.get("tags") or []],
        )
