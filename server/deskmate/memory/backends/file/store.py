"""FileBackend: one human-readable JSON Lines file per session.

Layout of ``<root>/sessions/<id>.jsonl`` (described for users in docs/storage.md):

- line 1, the header: ``{"deskmate": "session", "version": 1, "id": ..., "title": ...,
  "workspaceUri": ..., "createdAt": ..., "tags": [...], ...}`` — every key besides the first six
  is the session's metadata record (``codec.encode_meta``)
- then one message per line, ending with ``"timestamp"`` and ``"n"``: the message
  count once it is added. Messages appended together are one transaction: every
  line of it but the last ends with ``"more": true``, so a reader drops a
  transaction a crash cut short. Ending each line with those keys lets a listing
  (and an append) read them from the file's last bytes however long the line is.

Appends are one ``write`` of whole lines followed by ``fdatasync``; a tail left
by a crash (a line without its newline, or lines still marked ``more``) is
ignored on load and cut off by the next append, and a failed append (a full
disk) cuts off what it wrote. Whole-file writes go through ``replace_atomically``.
A lock file per session (``locking.LockFiles``) orders writers across threads
and processes; readers need no lock. The lock file stays open between writes, and so
does the file an append wrote to (a ``stat`` tells whether its name still leads there).

Files are opened without following symbolic links and without blocking, and
only regular files are read: a link, FIFO or device under a session's name is
reported, never followed, read or moved.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import os
import re
import stat as stat_module
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ...atomic import (
    FILE_MODE,
    ensure_private_dir,
    fsync_dir,
    is_real_dir,
    replace_atomically,
    sync_fd,
    write_all,
)
from ...backend import MetaChange
from ...codec import (
    UnknownEncoding,
    decode_message,
    decode_meta,
    dumps_bytes,
    encode_message,
    encode_meta,
    is_encoded,
    message_openers,
    message_unsealing,
    note_plain,
)
from ...errors import SessionChanged, StorageError, StorageFull
from ...ids import validate_session_id
from ...limits import clip_title
from ...locking import HeldLock, LockFiles, LockTimeout
from ...models import (
    Message,
    Role,
    Session,
    SessionInfo,
    SessionMeta,
    Status,
    _check_context,
    new_message_id,
    now_iso,
)
from ...project_memories import validate_memory_id, validate_project
from . import data_values
from .live import FileLeases, FileWatch
from .memories import FileMemories

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
FORMAT_VERSION = 1
LOCK_TIMEOUT_SECONDS = 30.0
SNAPSHOT_LIMIT = 32  # sessions kept parsed in memory
_PATHS_KEPT = 4096
DAMAGED_TITLE = "(damaged session file)"
LIST_HEAD_LIMIT = 65536  # bytes of line 1 a listing reads: a longer header is listed untitled
LIST_TAIL_LIMIT = 1 << 20  # bytes a listing reads back from the end of a file, at most
_HEAD_BLOCK = 8192  # most headers fit
_TAIL_BLOCK = 4096  # the last line's end: where "timestamp" and "n" are
_MAX_BLOCK = 65536  # backward scans for a line's start read at most this much at a time
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows: there an lstat comes first
_OPEN_FLAGS = _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK}  # O_NOFOLLOW on a link: Linux and macOS, FreeBSD
_FULL_ERRNOS = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())
# The end of every message line deskmate writes, so a reader need not parse (or even
# find the start of) a long line: `...,"timestamp":"<time>","n":12}` with
# `,"more":true` before the brace on a transaction's unfinished lines (lines written
# before deskmate wrote compact JSON have a space after each comma and colon). Inside
# a JSON string every quote is escaped, so a string cannot end a line in this shape.
_END_KEYS = re.compile(
    rb'(?:\{|, ?)"timestamp": ?("(?:[^"\\\x00-\x1f]|\\.)*"), ?"n": ?(0|[1-9][0-9]{0,17})(, ?"more": ?true)?\}\Z'
)
# Lines written before "timestamp" moved to the end still end with "n".
_END_COUNT = re.compile(rb'(?:\{|, ?)"n": ?(0|[1-9][0-9]{0,17})(, ?"more": ?true)?\}\Z')


class CorruptSessionFile(ValueError):
    """The file's committed content does not parse; the message says where."""


class _TooLong(Exception):
    """A listing would have to read further back than LIST_TAIL_LIMIT."""


class SpecialSessionFile(StorageError):
    """A session's name in the store is a symbolic link, FIFO, device or directory: not followed or read."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(
            f"Session file {path} is {kind}, not a regular file; deskmate does not follow links "
            "or read special files in its store. Move it out of the sessions folder (for a "
            "link, a copy of the file it points to may take its place)."
        )


def _kind_of(mode: int) -> str:
    if stat_module.S_ISLNK(mode):
        return "a symbolic link"
    if stat_module.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat_module.S_ISDIR(mode):
        return "a directory"
    if stat_module.S_ISCHR(mode) or stat_module.S_ISBLK(mode):
        return "a device"
    if stat_module.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_regular(path: Path, flags: int) -> tuple[int, os.stat_result]:
    """Open ``path`` and fstat it; raises SpecialSessionFile unless it is a regular file.

    Never follows a symbolic link (O_NOFOLLOW) and never blocks or reads a FIFO
    or device (O_NONBLOCK, then the fstat every caller needs anyway), so this
    costs no system call more than a plain open. FileNotFoundError if missing.
    """
    if not _NOFOLLOW and os.path.islink(path):
        raise SpecialSessionFile(path, "a symbolic link")
    try:
        fd = os.open(path, flags | _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS and os.path.islink(path):
            raise SpecialSessionFile(path, "a symbolic link") from None
        if exc.errno == errno.EISDIR:
            raise SpecialSessionFile(path, "a directory") from None
        raise
    try:
        stat = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat_module.S_ISREG(stat.st_mode):
        os.close(fd)
        raise SpecialSessionFile(path, _kind_of(stat.st_mode))
    return fd, stat


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


@dataclass(frozen=True)
class _Header:
    """Line 1, every field checked: what a load and a listing take from it."""

    record: dict[str, Any]  # as stored, keys this version does not know kept
    title: str  # clipped to MAX_TITLE_LENGTH
    workspace_uri: str | None
    created_at: str | None
    meta: SessionMeta = field(default_factory=SessionMeta)


def _check_header(record: Any) -> _Header:
    """The header's fields if each has the type the format says; CorruptSessionFile otherwise.

    The one place header fields are checked, so a damaged field is a damaged
    file everywhere (a load moves it aside, a listing lists it as damaged)
    instead of a TypeError somewhere.
    """
    if type(record) is not dict or record.get("deskmate") != "session":
        raise CorruptSessionFile('line 1 is not a deskmate session header ({"deskmate": "session", ...})')
    get = record.get
    version = get("version", 1)
    if type(version) is not int:
        raise CorruptSessionFile(f"the header's version must be a whole number, not {_json_type(version)}")
    if version > FORMAT_VERSION:
        raise CorruptSessionFile(f"format version {version} is newer than this deskmate understands")
    title, workspace_uri, created_at = get("title"), get("workspaceUri"), get("createdAt")
    for key, value in (("title", title), ("workspaceUri", workspace_uri), ("createdAt", created_at)):
        if value is not None and type(value) is not str:
            raise CorruptSessionFile(f"the header's {key} must be a string or null, not {_json_type(value)}")
    try:  # every other field is the session's metadata record
        meta = decode_meta({key: value for key, value in record.items() if key not in _HEADER_KEYS})
    except ValueError as exc:
        raise CorruptSessionFile(f"the header's {exc}") from None
    return _Header(record, clip_title(title or ""), workspace_uri, created_at or None, meta)


def _count_of(value: Any) -> int | None:
    """A line's "n" if it is a count, else None (hand-written lines may lack it)."""
    return value if type(value) is int and value >= 0 else None


def _encode(record: dict[str, Any]) -> bytes:
    # The shared encoder: compact JSON; a lone surrogate is stored (and read back) as U+FFFD.
    return dumps_bytes(record) + b"\n"


_HEADER_KEYS = frozenset(("deskmate", "version", "id", "title", "workspaceUri", "createdAt"))


def _header(
    session_id: str, title: str, workspace_uri: str | None, created_at: str, meta: SessionMeta | None = None
) -> dict[str, Any]:
    return {
        "deskmate": "session",
        "version": FORMAT_VERSION,
        "id": session_id,
        "title": clip_title(title),
        "workspaceUri": workspace_uri,
        "createdAt": created_at,
        "tags": [],  # always written, so a deskmate from before the metadata record reads it too
        **encode_meta(meta or SessionMeta()),
    }


def _message_lines(messages: Sequence[Message], count_before: int) -> bytes:
    return _numbered(_unnumbered(messages), count_before)


def _unnumbered(messages: Sequence[Message]) -> list[bytes]:
    """Each message's line without its count: compact JSON ending with "timestamp", no newline.

    An append makes these before it takes the lock, on the event loop's thread: it is a few
    microseconds there, and several times that in a worker thread just woken.
    """
    records = []
    for message in messages:
        record = encode_message(message)
        record["timestamp"] = record.pop("timestamp")  # "timestamp" and "n" end the line: see _END_KEYS
        records.append(dumps_bytes(record))
    return records


def _numbered(records: list[bytes], count_before: int) -> bytes:
    """The lines of ``records``, counted on from ``count_before``: every line of the
    transaction but its last ends with ``"more":true``."""
    last = len(records) - 1
    return b"".join(
        b'%b,"n":%d%b\n' % (record[:-1], count_before + index + 1, b',"more":true}' if index < last else b"}")
        for index, record in enumerate(records)
    )


def _read_whole(path: Path) -> bytes | None:
    """The regular file's bytes, or None when there is no file."""
    try:
        fd, stat = _open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.pread(fd, stat.st_size, 0)
    finally:
        os.close(fd)


def _new_file(path: Path, header: dict[str, Any], records: list[bytes]) -> None:
    """Write ``path`` whole: a header line, then the ``_unnumbered`` records counted from 1."""
    replace_atomically(path, _encode(header) + _numbered(records, 0))


def _last_line(data: bytes) -> bytes:
    """The last complete line of ``data``, which ends with a newline."""
    return data[data.rfind(b"\n", 0, -1) + 1 :]


def _loads(line: bytes | str, where: str) -> Any:
    try:
        return json.loads(line)
    except RecursionError:
        raise CorruptSessionFile(f"{where} is not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise CorruptSessionFile(f"{where} is not valid JSON ({exc})") from None


@functools.cache
def _line_decoder() -> tuple[Any, Any]:
    """msgspec's decoder of message lines and its error class, made on first use (importing
    msgspec would add 5-10 ms to every start of the daemon, loading or not)."""
    import msgspec

    class _Line(msgspec.Struct, gc=False):
        """A message line as the fast decoder takes it: only the field types ``Message.from_dict`` accepts.

        A line of any other shape (or JSON that only the json module reads: NaN, an
        escaped lone surrogate) fails here, and the whole file then goes through
        ``json`` and ``Message.from_dict``, which accept or reject it and word the
        error. So this must never accept more than from_dict: narrow it with it.
        """

        role: Role | None = None  # None only on an encoded line: checked below
        content: str | None = None
        id: str | None = None
        timestamp: str | None = None
        model: str | None = None
        usage: dict[Any, Any] | None = None
        status: Status = "complete"
        context: dict[Any, Any] | None = None
        error: str | None = None
        more: Any = None
        enc: Any = None  # an encoded record (compressed, encrypted): its fields are these two
        kid: Any = None
        data: bytes | None = None  # base64 in the line: msgspec decodes it in C

    return msgspec.json.Decoder(_Line), msgspec.DecodeError


@functools.cache
def _message_decoder() -> Any:
    """msgspec's decoder of message lines straight into ``Message`` (a Struct): the keys a line
    adds, "n" and "more", are skipped. Its types never accept more than ``from_dict``."""
    import msgspec

    return msgspec.json.Decoder(Message)


def _fast_messages(data: bytes, start: int = 0, end: int | None = None) -> tuple[list[Message], int] | None:
    """What ``_committed_messages(_decode_records(body))`` returns for ``body = data[start:end]``,
    decoded by msgspec straight from the bytes (several times faster on a long history); None if
    any line needs the full path.

    ``body`` holds complete lines only. Blank lines are skipped, as there.
    """
    end = len(data) if end is None else end
    body = memoryview(data)[start:end]
    ending = bytes(body[-_TAIL_BLOCK:]).rstrip()
    found = _END_KEYS.search(ending)
    if ending and (found is None or found[3]) or data_values.last_line_encoded(data, start, end):
        # The last line may leave a transaction unfinished (or was written by hand): the
        # decoder that reads each line's "more" finds where the committed ones end. Encoded
        # lines are not messages as they stand: that decoder opens them too.
        return _fast_lines(data, start, end)
    _, decode_error = _line_decoder()
    try:
        messages = _message_decoder().decode_lines(body)
    except (decode_error, RecursionError):  # ValidationError included; invalid UTF-8 too
        # Encoded lines before plain ones (encryption turned off since): the line decoder
        # opens them. Damage fails there too, and goes to the full path.
        return _fast_lines(data, start, end)
    try:
        for message in [m for m in messages if m.context is not None]:
            _check_context(message.context)  # from_dict's own check of a context
    except ValueError:
        return None
    if messages:
        note_plain()  # every line was plain: `migrate --encrypt` must hear of them
    return messages, 0


def _fast_lines(data: bytes, start: int, end: int) -> tuple[list[Message], int] | None:
    """``_fast_messages`` line by line, each line's "more" read: for a body whose last line may
    leave a transaction unfinished, or that holds encoded (encrypted, compressed) lines."""
    if data_values.last_line_encoded(data, start, end):
        fast = _cut_lines(data, start, end)
        if fast is not None:
            return fast
    decoder, decode_error = _line_decoder()
    try:
        lines = decoder.decode_lines(memoryview(data)[start:end])
    except (decode_error, RecursionError):  # ValidationError included; invalid UTF-8 too
        return None
    return _line_messages(lines)


class _NotCut(Exception):
    """The lines do not pair up with their cut values: read them whole."""


def _cut_lines(data: bytes, start: int, end: int) -> tuple[list[Message], int] | None:
    """``_fast_lines`` with each encoded line's base64 cut out before msgspec reads the line and
    decoded by pybase64 straight from ``data`` (data_values.py): an encrypted load's line scan and
    base64 cost a third of what msgspec's own took. None when pybase64 is not installed, or for
    anything out of the ordinary, damage included: ``_fast_lines``' own decoder then reads the
    body again, so what it accepts and the errors it gives stay exactly as they were."""
    decode_base64 = data_values.base64_decoder()
    if decode_base64 is None:
        return None
    decoder, decode_error = _line_decoder()

    def chunks() -> Iterator[tuple[list[Any], list[tuple[int, int] | None]]]:
        for stripped, spans in data_values.cut_chunks(data, start, end):
            lines = decoder.decode_lines(stripped)
            if len(lines) != len(spans):
                raise _NotCut  # a line of spaces, which the decoder skips
            yield lines, spans

    try:
        return _cut_messages(chunks(), memoryview(data), decode_base64)
    except (decode_error, RecursionError, _NotCut, UnknownEncoding):
        # Damage, or a key this deskmate lacks: said (or found to be damage first, as before)
        # by the path that reads it all.
        return None


def _cut_messages(
    chunks: Iterable[tuple[list[Any], list[tuple[int, int] | None]]], view: memoryview, decode_base64: Any
) -> tuple[list[Message], int] | None:
    """``_line_messages`` of cut lines, each sealed record of the load's first encoding and key
    opened in this loop (base64, AES-GCM with the key's cipher, MessagePack into ``Message``):
    five Python calls fewer a record, a tenth of an encrypted load's parse. A record of any other
    encoding or key, or one that fails here, goes through ``_line_message``, which opens it as
    before, or finds what is wrong with it."""
    _, decode_error = _line_decoder()
    messages: list[Message] = []
    append = messages.append
    committed = 0
    open_one = message_openers()
    first = True
    # The steps for the records of the first sealed line's (encoding, key id), as locals.
    sealed_name = sealed_kid = decrypt = decode = then = None
    nonce = 0
    aad_prefix = b""
    failed: tuple[type[Exception], ...] = ()
    for lines, spans in chunks:
        for line, span in zip(lines, spans, strict=True):
            enc = line.enc
            if span is not None and enc is not None:
                if first:
                    first = False
                    if type(enc) is str and type(line.kid) is str:
                        opening = message_unsealing(enc, line.kid)
                        if opening is not None:
                            unsealing, decode = opening
                            sealed_name, sealed_kid = enc, line.kid
                            decrypt, nonce, aad_prefix, then = (
                                unsealing.decrypt,
                                unsealing.nonce_bytes,
                                unsealing.aad_prefix,
                                unsealing.then,
                            )
                            # A record's damage as any of these opens: decode_error and
                            # binascii.Error are ValueErrors.
                            failed = (ValueError, TypeError, RecursionError, *unsealing.errors)
                timestamp = line.timestamp
                if (
                    enc == sealed_name
                    and line.kid == sealed_kid
                    and type(timestamp) is str
                    and line.data == b""
                ):
                    try:
                        # validate=True passed by position (0.9 us a call against 1.2 by keyword),
                        # the nonce and ciphertext as bytes (decrypt: 2.5 us against 3.3 given
                        # memoryviews, which the cipher's bindings take the slow way).
                        sealed = decode_base64(view[span[0] : span[1]], None, True)
                        opened = decrypt(sealed[:nonce], sealed[nonce:], aad_prefix + timestamp.encode())  # type: ignore[misc]
                        message = decode(opened if then is None else then(opened))  # type: ignore[misc]
                        if message.context is not None:
                            _check_context(message.context)
                    except failed:
                        message = _line_message(line, span, view, decode_base64, open_one, decode_error)
                else:
                    message = _line_message(line, span, view, decode_base64, open_one, decode_error)
            else:
                message = _line_message(line, span, view, decode_base64, open_one, decode_error)
            if message is None:
                return None
            append(message)
            if line.more is not True:
                committed = len(messages)
    return _transactions(messages, committed)


def _line_messages(lines: list[Any]) -> tuple[list[Message], int] | None:
    """The messages of decoded lines (none cut), and how many trail uncommitted; None if a line
    needs the full path."""
    _, decode_error = _line_decoder()
    messages: list[Message] = []
    committed = 0
    open_one = message_openers()
    for line in lines:
        message = _line_message(line, None, None, None, open_one, decode_error)
        if message is None:
            return None
        messages.append(message)
        if line.more is not True:
            committed = len(messages)
    return _transactions(messages, committed)


def _line_message(
    line: Any,
    span: tuple[int, int] | None,
    view: memoryview | None,
    decode_base64: Any,
    open_one: Callable[[Any, Any, Any, Any], Message | None],
    decode_error: type[Exception],
) -> Message | None:
    """The message of one decoded line, or None if it needs the full path. A value cut out of it
    (its ``span``) is decoded from ``view`` here, while its chunk of the file is still in the
    CPU's cache."""
    if line.enc is not None:
        # Opened by the codec (which knows the encoding, or says it does not) and decoded
        # straight into a Message; an encoding without raw bytes goes through the full path.
        try:
            if span is None:
                data = line.data
            elif line.data == b"":
                data = decode_base64(view[span[0] : span[1]], validate=True)  # type: ignore[index]
            else:
                return None  # what was cut is not this line's "data"
            return open_one(line.enc, line.kid, data, line.timestamp)
        except (decode_error, ValueError, TypeError, RecursionError):  # binascii.Error included
            return None  # damage: the full path finds it and words the error
    if line.role is None or line.content is None or span is not None:
        return None
    if line.context is not None:
        try:
            _check_context(line.context)  # from_dict's own check of a context
        except ValueError:
            return None
    note_plain()
    return Message(
        line.role,
        line.content,
        line.id or new_message_id(),
        line.timestamp or now_iso(),
        line.model,
        line.usage,
        line.status,
        line.context,
        line.error,
    )


def _committed_lines(body: bytes, first_number: int) -> tuple[list[Message], int]:
    """The messages of the complete transactions in ``body``'s complete lines, numbered from
    ``first_number`` for errors, and how many trail uncommitted; CorruptSessionFile if damaged."""
    fast = _fast_messages(body, 0, body.rfind(b"\n") + 1)
    if fast is not None:
        return fast
    return _committed_messages(_decode_records(body), first_number)


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
    except (ValueError, RecursionError):
        return _parse_lines(complete.split("\n"))  # blank lines, or a damaged line to point at


def _message(record: Any, where: str) -> Message:
    try:
        return decode_message(record)
    except (ValueError, TypeError) as exc:  # any field of the wrong shape is damage, not a crash
        raise CorruptSessionFile(f"{where}: {exc}") from None


def _committed_messages(records: list[Any], first_number: int) -> tuple[list[Message], int]:
    """Messages of the complete transactions in ``records``, and how many records trail uncommitted."""
    messages: list[Message] = []
    committed = 0
    for number, record in enumerate(records, start=first_number):
        messages.append(_message(record, f"record {number}"))
        if record.get("more") is not True:
            committed = len(messages)
    return _transactions(messages, committed)


def _transactions(messages: list[Message], committed: int) -> tuple[list[Message], int]:
    """The messages of whole transactions, and how many trail uncommitted.

    Every line of a transaction but its last says ``"more": true``; ``committed`` counts
    the messages up to the last line that did not, so a transaction a crash cut short
    is left out whole.
    """
    if committed == len(messages):
        return messages, 0
    return messages[:committed], len(messages) - committed


def parse_session(data: bytes, session_id: str) -> Session:
    """Parse a whole session file; a torn tail is ignored, anything else bad raises CorruptSessionFile."""
    first_end = data.find(b"\n") + 1
    if first_end:
        try:
            header = _check_header(json.loads(data[:first_end].decode("utf-8")))
        except (ValueError, RecursionError):  # CorruptSessionFile and UnicodeDecodeError included
            pass  # the full path below says what is wrong
        else:
            fast = _fast_messages(data, first_end, data.rfind(b"\n") + 1)
            if fast is not None:
                return _session(session_id, header, fast[0])
    records = _decode_records(data)
    if not records:
        raise CorruptSessionFile("the file has no header line")
    header = _check_header(records[0])
    messages, _ = _committed_messages(records[1:], 2)
    return _session(session_id, header, messages)


def _session(session_id: str, header: _Header, messages: list[Message]) -> Session:
    return Session(
        id=session_id,
        title=header.title,
        workspace_uri=header.workspace_uri,
        created_at=header.created_at or now_iso(),
        meta=header.meta,
        messages=messages,
    )


def _parse_lines(lines: list[str]) -> list[Any]:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        records.append(_loads(line, f"line {number}"))
    return records


def _iso(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass
class _Tail:
    """The last committed record of a file: where it ends and what it says."""

    end: int  # the offset just after it
    count: int | None  # its "n" (0 for the header); None if the line has none
    timestamp: str | None = None  # a message's time, when it has one
    header: _Header | None = None  # set when the last committed record is line 1


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


class _Backwards:
    """Reads a file from its end, one cached block at a time, never further back than ``limit``."""

    def __init__(self, fd: int, size: int, limit: int | None, head: bytes = b"") -> None:
        self.fd = fd
        self.size = size
        self.limit = limit
        # A small file's head read holds all of it: no second read.
        self._start, self._data = (0, head) if len(head) == size else (size, b"")

    def read(self, start: int, end: int) -> bytes:
        if self._start <= start and end <= self._start + len(self._data):
            return self._data[start - self._start : end - self._start]
        if self.limit is not None and self.size - start > self.limit:
            raise _TooLong
        data = os.pread(self.fd, end - start, start)
        if len(data) < end - start:
            raise CorruptSessionFile("the file was cut shorter while it was read")
        self._start, self._data = start, data
        return data

    def rfind_newline(self, before: int) -> int:
        """The offset of the last newline before ``before``; -1 if there is none."""
        block = _TAIL_BLOCK
        while before > 0:
            start = max(0, before - block)
            found = self.read(start, before).rfind(b"\n")
            if found >= 0:
                return start + found
            before = start
            block = min(block * 4, _MAX_BLOCK)  # memory stays bounded however long the line
        return -1


def _find_tail(fd: int, size: int, limit: int | None = None, head: bytes = b"") -> _Tail:
    """Find the last committed record by reading backwards from the end of the file.

    A line deskmate wrote says what a caller needs in its last bytes (_END_KEYS),
    however long it is; a short line, or a long one in another shape (written by
    hand), is parsed whole. With ``limit``, raises _TooLong rather than read more
    than that many bytes from the end (a listing); without, reads what it must
    (an append has to know exactly where the committed records end).
    """
    reader = _Backwards(fd, size, limit)
    line_end = reader.rfind_newline(size) + 1  # anything after it is a write a crash cut short
    while line_end > 0:
        where = f"the line ending at byte {line_end}"  # for error messages
        chunk_start = max(0, line_end - _TAIL_BLOCK)
        chunk = reader.read(chunk_start, line_end)
        newline = chunk.rfind(b"\n", 0, -1)
        line: bytes | None
        if newline >= 0 or chunk_start == 0:
            start, line = chunk_start + newline + 1, chunk[newline + 1 :]
        else:  # longer than the block: its last bytes usually say all we need
            ending = chunk.rstrip()
            counted = None
            found = _END_KEYS.search(ending)
            if found and not found[3]:
                timestamp = _loads(found[1], where)
                return _Tail(line_end, int(found[2]), timestamp if type(timestamp) is str else None)
            unfinished = bool(found)
            if not found:  # written before "timestamp" moved to the end, or by hand
                counted = _END_COUNT.search(ending)
                unfinished = bool(counted and counted[2])
            try:
                start = reader.rfind_newline(chunk_start) + 1
                # An unfinished transaction's line is skipped unread; another shape is read whole.
                line = None if unfinished else reader.read(start, line_end)
            except _TooLong:
                if counted and not unfinished:
                    return _Tail(line_end, int(counted[1]))  # too long to read for its time
                raise
        if line is not None and line.strip():
            if start == 0:
                return _Tail(line_end, 0, header=_check_header(_loads(line, "line 1")))
            record = _loads(line, where)
            # Checked unless encoded: reading that would need its encoding, and a listing must not.
            message = None if is_encoded(record) else _message(record, where)
            if record.get("more") is not True:
                time = record.get("timestamp")
                timestamp = (message.timestamp if message else time) if type(time) is str else None
                return _Tail(line_end, _count_of(record.get("n")), timestamp)
        line_end = start
    raise CorruptSessionFile("the file has no header line")


def _read_head(fd: int) -> tuple[_Header, bytes]:
    """Line 1, checked, and the bytes read; reads at most LIST_HEAD_LIMIT bytes (_TooLong past them)."""
    block = _HEAD_BLOCK
    while True:
        data = os.pread(fd, block, 0)
        newline = data.find(b"\n")
        if newline >= 0:
            return _check_header(_loads(data[:newline], "line 1")), data
        if len(data) < block:
            raise CorruptSessionFile("the file has no complete header line")
        if block >= LIST_HEAD_LIMIT:
            raise _TooLong
        block = LIST_HEAD_LIMIT


class FileBackend:
    """The default session store: files under ``<root>/sessions``.

    ``root`` is usually ``default_data_dir()``. Directories are created on first
    write with mode 0700, session files with mode 0600. ``root`` may be a
    symbolic link; ``sessions`` and ``sessions/.locks`` below it, the session
    files and the lock files must not be (StorageError names the one that is).
    """

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.root = Path(root).expanduser().absolute()
        self.directory = self.root / "sessions"
        self.lock_timeout = lock_timeout
        self._locks_ready = False
        self._directory_checked = False  # sessions/ is known to be a directory, not a link
        # Parsed sessions by id, to read only what was appended since (see _refresh).
        self._snapshots: dict[str, _Snapshot] = {}
        self._snapshots_lock = threading.Lock()
        # Where our own last append left each file (inode, size, mtime, message count):
        # the next append need not read the tail again.
        self._ends: dict[str, tuple[int, int, int, int]] = {}
        self._paths: dict[str, Path] = {}  # validated session ids and their files
        self._lock_dir = os.path.join(self.directory, ".locks", "")
        self._lock_files = LockFiles(FILE_MODE)
        self._writers: ThreadPoolExecutor | None = None
        self._memories = FileMemories(self.root, lock_timeout)
        self._leases = FileLeases(self.directory / ".locks", self.root)

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
        path = self._paths.get(session_id)
        if path is None:  # made once per session: every append starts here
            path = self.directory / f"{validate_session_id(session_id)}{SUFFIX}"
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            self._paths[session_id] = path
        return path

    def _directory_exists(self) -> bool:
        """Whether ``sessions/`` exists; StorageError if it is a link or not a directory."""
        if not self._directory_checked:
            self._directory_checked = is_real_dir(self.directory)
        return self._directory_checked

    @contextmanager
    def _locked(self, session_id: str, *, keep_file: bool = False) -> Iterator[HeldLock]:
        """Hold the session's lock file: writers in every thread and process take turns.

        The file an append kept open beside the lock is closed first, unless ``keep_file``
        (an append): any other writer is about to replace or remove the session's file.
        """
        held = self._lock(session_id)
        try:
            if not keep_file:
                held.close_file()
            yield held
        finally:
            self._lock_files.release(held)

    def _lock(self, session_id: str) -> HeldLock:
        """Take the session's lock (release it with ``self._lock_files.release``).

        Creates the store's directories on first use. The lock file stays open between holds.
        """
        if not self._locks_ready:
            ensure_private_dir(self.directory / ".locks", inside=self.root)
            self._locks_ready = self._directory_checked = True
        lock_path = f"{self._lock_dir}{session_id}.lock"
        try:
            return self._lock_files.acquire(lock_path, self.lock_timeout)
        except LockTimeout:
            raise StorageError(
                f"Session {session_id!r} is locked by another process for more than "
                f"{self.lock_timeout:.0f} s (lock file {lock_path})."
            ) from None
        except OSError as exc:
            if exc.errno not in _LINK_ERRNOS:
                raise
            raise StorageError(
                f"The lock file {lock_path} is a symbolic link; deskmate does not follow links "
                "in its store. Delete it: lock files hold no data."
            ) from None

    @contextmanager
    def _saving(self, session_id: str) -> Iterator[None]:
        """Report a full disk or an exhausted quota as StorageFull (the writers leave nothing behind)."""
        try:
            yield
        except OSError as exc:
            full = self._full(exc, session_id)
            if full is None:
                raise
            raise full from exc

    def _full(self, exc: OSError, session_id: str) -> StorageFull | None:
        """A StorageFull saying so if ``exc`` means a full disk or quota."""
        if exc.errno not in _FULL_ERRNOS:
            return None
        full = "is full" if exc.errno == errno.ENOSPC else "is full (the disk quota is used up)"
        return StorageFull(
            f"The disk holding {self.directory} {full}: session {session_id} could not be saved "
            "(nothing was written). Free some space; deskmate keeps the turn and saves it when it can."
        )

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
        records = _unnumbered(messages)
        known = self._ends.get(session_id)
        if known is not None:
            ready = self._ready_to_append(session_id, path, known)
            if ready is not None:
                data = _numbered(records, known[3])
                try:
                    written = asyncio.get_running_loop().run_in_executor(
                        self._hand_over(),
                        self._append_ready,
                        session_id,
                        path,
                        ready,
                        data,
                        known,
                        len(records),
                    )
                except BaseException:
                    self._lock_files.release(ready)
                    raise
                # Shielded: once handed over, the write runs (and releases the lock) even if we are cancelled.
                await asyncio.shield(written)
                return
        header = functools.partial(_header, session_id, title, workspace_uri, messages[0].timestamp)
        await asyncio.to_thread(self._append, session_id, path, records, header)

    def _hand_over(self) -> ThreadPoolExecutor:
        """The threads that write what ``_ready_to_append`` locked: not the loop's shared ones,
        where a queued write holding a lock could wait behind threads waiting for that lock."""
        if self._writers is None:
            self._writers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deskmate-append")
        return self._writers

    def _ready_to_append(
        self, session_id: str, path: Path, known: tuple[int, int, int, int]
    ) -> HeldLock | None:
        """The session's lock, if free at once, with the file our last append kept open still
        ending where that append left it; else None (the worker thread then does it all).

        Run on the event loop's thread: an ``flock`` that does not wait and a ``stat``, a few
        microseconds there, and several times that in a worker thread just woken.
        """
        held = self._lock_files.try_acquire(f"{self._lock_dir}{session_id}.lock")
        if held is None:
            return None
        try:
            if held.file >= 0:
                stat = os.stat(path, follow_symlinks=False)
                if (stat.st_dev, stat.st_ino) == held.file_identity and known[:3] == (
                    stat.st_ino,
                    stat.st_size,
                    stat.st_mtime_ns,
                ):
                    return held
        except OSError:
            pass
        self._lock_files.release(held)
        return None

    def _append_ready(
        self,
        session_id: str,
        path: Path,
        held: HeldLock,
        data: bytes,
        known: tuple[int, int, int, int],
        added: int,
    ) -> None:
        """Write and sync ``data`` at the end of the file ``held`` keeps, then release the lock."""
        try:
            fd = held.file
            try:
                write_all(fd, data)
                sync_fd(fd)
            except BaseException:
                self._ends.pop(session_id, None)
                _cut_back(fd, known[1], path)
                held.close_file()
                raise
            after = os.fstat(fd)
            self._ends[session_id] = (after.st_ino, after.st_size, after.st_mtime_ns, known[3] + added)
        except OSError as exc:
            full = self._full(exc, session_id)
            if full is None:
                raise
            raise full from exc
        finally:
            self._lock_files.release(held)

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        path = self.path_of(session.id)
        await asyncio.to_thread(self._save, session, path, expected_messages)

    async def save_copy(self, session: Session, source_id: str) -> None:
        """A save: measured, writing the copy costs about one load here (a fork stays within
        twice a load), so copying inside the store would buy little."""
        await self.save(session)

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Rewrites the header line; the message lines are copied byte for byte, so this costs
        the file's size (renames and tags are rare, appends stay O(1))."""
        path = self.path_of(session_id)
        return await asyncio.to_thread(self._update, session_id, path, change)

    async def delete(self, session_id: str) -> bool:
        path = self.path_of(session_id)
        return await asyncio.to_thread(self._delete, session_id, path)

    async def list(self) -> list[SessionInfo]:
        return await asyncio.to_thread(self._list)

    async def load_memories(self, project: str) -> list[Message]:
        validate_project(project, "read project memories")
        return await asyncio.to_thread(self._memories.load, project)

    async def memory_projects(self) -> list[str]:
        return await asyncio.to_thread(self._memories.projects)

    async def add_memory(self, project: str, memory: Message) -> None:
        validate_project(project, "remember")
        validate_memory_id(memory.id)

        def add(memories: list[Message]) -> bool:
            memories[:] = [m for m in memories if m.id != memory.id] + [memory]
            return True

        await asyncio.to_thread(self._memories.change, project, add)

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        validate_project(project, "forget a memory")
        validate_memory_id(memory_id)

        def remove(memories: list[Message]) -> bool:
            kept = [m for m in memories if m.id != memory_id]
            found = len(kept) < len(memories)
            memories[:] = kept
            return found

        return await asyncio.to_thread(self._memories.change, project, remove)

    def watch(self) -> FileWatch:
        """Changes to ``sessions/`` through inotify (watchfiles), polling where that is unavailable."""
        return FileWatch(self.directory, self.root, SUFFIX, self._summarise, self.path_of)

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        """An flock on ``sessions/.locks/<id>.answering``: released by the kernel when this
        process ends, so ``seconds`` plays no part."""
        path = self.path_of(session_id)  # validates the id
        try:
            return await asyncio.to_thread(self._leases.claim, session_id, holder)
        except OSError as exc:  # e.g. the data dir is a file: said as a load would say it
            raise StorageError(
                f"Cannot read session file {path}: {exc.strerror} (taking its answering lock in "
                f"{self._lock_dir})."
            ) from None

    async def release_answer(self, session_id: str, holder: str) -> None:
        self._leases.release(session_id, holder)

    async def close(self) -> None:
        """Leases this process holds are released, and the lock and session files kept open closed."""
        self._leases.release_all()
        if self._writers is not None:
            writers, self._writers = self._writers, None
            await asyncio.to_thread(writers.shutdown)  # the writes handed over finish first
        self._lock_files.close()

    # -- blocking implementations, run in worker threads ------------------------

    def _load(self, session_id: str, path: Path) -> Session | None:
        try:
            if not self._directory_exists():
                raise FileNotFoundError(path)
            fd, stat = _open_regular(path, os.O_RDONLY)
        except FileNotFoundError:
            self._snapshots.pop(session_id, None)
            return None
        except OSError as exc:
            raise StorageError(f"Cannot read session file {path}: {exc.strerror}.") from None
        try:
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
            messages, uncommitted = _committed_lines(added, 0)
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
            data = _read_whole(path)
            if data is None:
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
        while os.path.lexists(target):
            counter += 1
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        os.rename(path, target)
        fsync_dir(path.parent)
        log.warning("Session file %s could not be read (%s); moved it to %s", path, reason, target)
        return target

    def _append(
        self, session_id: str, path: Path, records: list[bytes], header: Callable[[], dict[str, Any]]
    ) -> None:
        """Add the ``_unnumbered`` records, in a new file (``header()`` its first line) if need be:
        the whole append in a worker thread, when ``_ready_to_append`` could not take the lock at
        once or the file is not the one our last append left (a first append, another writer)."""
        with self._saving(session_id), self._locked(session_id, keep_file=True) as held:
            try:
                fd, stat = self._append_file(held, path)
            except FileNotFoundError:
                _new_file(path, header(), records)
                return
            keep = fd == held.file  # beside the lock, for the next append: unless this one fails
            try:
                known = self._ends.get(session_id)
                if known is not None and known[:3] == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
                    # Our own last append: the file ends where we left it.
                    end, count = stat.st_size, known[3]
                else:
                    try:
                        tail = _find_tail(fd, stat.st_size)
                        count = tail.count if tail.count is not None else self._count(fd, stat, session_id)
                    except CorruptSessionFile as exc:
                        if keep:
                            held.forget_file()
                        keep = False
                        os.close(fd)  # before the file is moved aside
                        fd = -1
                        self._move_aside(path, str(exc))
                        _new_file(path, header(), records)
                        return
                    end = tail.end
                    if end < stat.st_size:
                        # Cut off what a crash left half-written before adding to the file.
                        os.ftruncate(fd, end)
                try:
                    write_all(fd, _numbered(records, count))
                    sync_fd(fd)
                except BaseException:
                    self._ends.pop(session_id, None)
                    _cut_back(fd, end, path)
                    raise
                after = os.fstat(fd)
                self._ends[session_id] = (
                    after.st_ino,
                    after.st_size,
                    after.st_mtime_ns,
                    count + len(records),
                )
            except BaseException:
                if keep:
                    held.forget_file()  # closed below: the next append opens the file afresh
                keep = False
                raise
            finally:
                if not keep and fd >= 0:
                    os.close(fd)

    @staticmethod
    def _append_file(held: HeldLock, path: Path) -> tuple[int, os.stat_result]:
        """The session file, open for appending, and its stat: the one the last append kept
        open beside the lock if ``path`` still names it (a ``stat``, not an open and a close)."""
        if held.file >= 0:
            try:
                stat = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                held.close_file()
                raise
            if (stat.st_dev, stat.st_ino) == held.file_identity:
                return held.file, stat
        fd, stat = _open_regular(path, os.O_RDWR | os.O_APPEND)
        if held.fd >= 0:
            held.keep_file(fd, (stat.st_dev, stat.st_ino))
        return fd, stat

    @staticmethod
    def _count(fd: int, stat: os.stat_result, session_id: str) -> int:
        """The message count of a file whose last line has no "n" (written by hand): parse it all."""
        return len(parse_session(os.pread(fd, stat.st_size, 0), session_id).messages)

    def _save(self, session: Session, path: Path, expected_messages: int | None = None) -> None:
        header = _header(session.id, session.title, session.workspace_uri, session.created_at, session.meta)
        with self._saving(session.id), self._locked(session.id):
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                mode = stat_module.S_IFREG
            if not stat_module.S_ISREG(mode):
                raise SpecialSessionFile(path, _kind_of(mode))  # replacing a link would hide it
            if expected_messages is not None:
                found = self._stored_count(session.id, path)
                if found != expected_messages:
                    raise SessionChanged(session.id, expected_messages, found)
            self._ends.pop(session.id, None)
            self._snapshots.pop(session.id, None)
            _new_file(path, header, _unnumbered(session.messages))

    def _stored_count(self, session_id: str, path: Path) -> int | None:
        """How many messages the file holds now (None: no file); read whole, under the lock."""
        data = _read_whole(path)
        if data is None:
            return None
        try:
            return len(parse_session(data, session_id).messages)
        except CorruptSessionFile as exc:
            raise StorageError(f"Session file {path} is damaged ({exc}); nothing was written.") from None

    def _update(self, session_id: str, path: Path, change: MetaChange) -> SessionInfo | None:
        if not self._directory_exists():
            return None
        with self._saving(session_id), self._locked(session_id):
            try:
                fd, stat = _open_regular(path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                data = os.pread(fd, stat.st_size, 0)
                tail = _find_tail(fd, len(data))
                session = parse_session(data, session_id)
            except CorruptSessionFile as exc:
                raise StorageError(
                    f"Session file {path} is damaged ({exc}); nothing was changed. Open the session "
                    "to move the damaged file aside."
                ) from None
            finally:
                os.close(fd)
            title, meta = change(session.info())
            header = _header(session_id, title, session.workspace_uri, session.created_at, meta)
            # Only whole transactions are kept: what a crash left half-written goes, as an append would cut it.
            body = data[data.find(b"\n") + 1 : tail.end] if tail.header is None else b""
            self._ends.pop(session_id, None)
            self._snapshots.pop(session_id, None)
            replace_atomically(path, _encode(header) + body)
            session.title, session.meta = clip_title(title), meta
            return session.info()

    def _delete(self, session_id: str, path: Path) -> bool:
        if not self.directory.is_dir():
            return False
        self._ends.pop(session_id, None)
        self._snapshots.pop(session_id, None)
        with self._locked(session_id):
            try:
                path.unlink()  # a link is removed, never its target
            except FileNotFoundError:
                return False
            fsync_dir(self.directory)
        return True

    def _list(self) -> list[SessionInfo]:
        try:
            if not self._directory_exists():
                return []
            paths = [p for p in self.directory.iterdir() if p.name.endswith(SUFFIX)]
        except FileNotFoundError:
            return []
        infos = [info for info in map(self._summarise, paths) if info is not None]
        infos.sort(key=lambda info: info.updated_at, reverse=True)
        return infos

    def _summarise(self, path: Path) -> SessionInfo | None:
        """A session's summary from the first and last bytes of its file only.

        Reads at most LIST_HEAD_LIMIT bytes of the header and LIST_TAIL_LIMIT
        from the end, whatever the file holds: a listing stays small and quick.
        """
        session_id = path.name[: -len(SUFFIX)]
        try:
            fd, stat = _open_regular(path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # deleted while we listed
        except SpecialSessionFile as exc:
            log.warning("Not listing %s: it is %s, which deskmate neither follows nor reads", path, exc.kind)
            return None
        except OSError as exc:
            log.warning("Not listing %s: %s", path, exc.strerror)
            return None
        header: _Header | None = None
        head = b""
        tail: _Tail | None = None
        try:
            try:
                header, head = _read_head(fd)
            except _TooLong:
                log.warning(
                    "Session file %s has a header line over %d bytes; listed untitled", path, LIST_HEAD_LIMIT
                )
            try:
                tail = _find_tail(fd, stat.st_size, LIST_TAIL_LIMIT, head)
            except _TooLong:
                log.warning(
                    "Session file %s ends in a line over %d bytes that deskmate did not write; "
                    "listed without its message count",
                    path,
                    LIST_TAIL_LIMIT,
                )
        except CorruptSessionFile as exc:
            log.warning("Session file %s is damaged (%s); it will be moved aside when opened", path, exc)
            return SessionInfo(id=session_id, title=DAMAGED_TITLE)
        finally:
            os.close(fd)
        created_at = (header.created_at if header else None) or ""
        if tail is None:
            count, updated_at = 0, _iso(stat.st_mtime_ns)
        elif tail.header is not None:
            count, updated_at = 0, created_at
        else:
            # Lines written before "timestamp" ended them may say only "n": the file's time is close.
            count, updated_at = tail.count or 0, tail.timestamp or _iso(stat.st_mtime_ns)
        return SessionInfo(
            id=session_id,
            title=header.title if header else "",
            workspace_uri=header.workspace_uri if header else None,
            created_at=created_at,
            updated_at=updated_at,
            message_count=count,
            meta=header.meta if header else SessionMeta(),
        )


def _cut_back(fd: int, end: int, path: Path) -> None:
    """Undo a failed append: the file ends where it did before (readers skip the partial lines meanwhile)."""
    try:
        os.ftruncate(fd, end)
        sync_fd(fd)
    except OSError as exc:
        log.warning(
            "Could not cut %s back to %d bytes after a failed append (%s); "
            "a load ignores the partial lines and the next append cuts them off",
            path,
            end,
            exc.strerror,
        )
