"""The outbox: a damaged line is moved aside (never lost, never blocking the others); no links followed."""

from __future__ import annotations

import os
import stat

import pytest

from deskmate.memory import Message, StorageError
from deskmate.memory.outbox import Outbox, PendingAppend, pending_for
from deskmate.memory.patches import MetaPatch
from deskmate.memory.resilient import ResilientBackend
from deskmate.memory.urls import backend_for_url, redact

DAMAGED = [
    b"not json\n",
    b"\xff\xfe\n",
    b"[1, 2]\n",
    b'{"sessionId": "../../etc/passwd", "messages": []}\n',
    b'{"sessionId": "s", "messages": [{"role": "robot", "content": "x"}]}\n',
    b'{"sessionId": "s", "messages": 5}\n',
    b'{"sessionId": 7, "messages": []}\n',
    b"[" * 100_000 + b"\n",
    b'{"sessionId": "s", "messages": [], "kind": "explode"}\n',
    b'{"sessionId": "s", "messages": [], "kind": "update", "patch": {"values": {"pinned": "yes"}}}\n',
    b'{"sessionId": "s", "messages": [], "kind": "update"}\n',
]


def entry(i: int, session_id: str = "s") -> PendingAppend:
    return PendingAppend(session_id, [Message(role="user", content=f"q{i}", id=f"q{i}")], title="T")


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def outbox(tmp_path, warnings):
    return Outbox(tmp_path / "outbox", "redis://h/0", warn=warnings.append)


def damage(outbox: Outbox) -> list[PendingAppend]:
    """Good entries with every kind of damaged line between them, and a torn last line."""
    good = [entry(0), entry(1)]
    outbox.add(good[0])
    with open(outbox.path, "ab") as file:
        file.write(b"".join(DAMAGED))
    outbox.add(good[1])
    with open(outbox.path, "ab") as file:
        file.write(b'{"sessionId": "s", "mess')  # a write a crash cut short: never acknowledged
    return good


def test_changes_wait_beside_appends_in_order(outbox):
    trash = MetaPatch({"deletedAt": "2026-12-01T00:00:00.000Z"}, only_missing=True)
    outbox.add(entry(0))
    outbox.add(PendingAppend.update("s", trash))
    outbox.add(PendingAppend.delete("s"))
    outbox.add(entry(1))
    read = outbox.read()
    assert [e.kind for e in read] == ["append", "update", "delete", "append"]
    assert read[1].patch == trash
    assert [m.id for m in pending_for(read, "s")] == ["q1"]  # nothing from before the delete
    assert b'"kind"' not in entry(0).to_line()  # appends keep the format earlier releases read


def test_damaged_lines_are_moved_aside_and_the_others_read(outbox, warnings):
    good = damage(outbox)
    assert [e.messages[0].id for e in outbox.read()] == ["q0", "q1"]
    assert outbox.rejected_path.read_bytes() == b"".join(DAMAGED)  # kept, byte for byte
    assert stat.S_IMODE(os.stat(outbox.rejected_path).st_mode) == 0o600
    assert [e.messages[0].id for e in outbox.read()] == ["q0", "q1"]
    assert outbox.path.read_bytes() == good[0].to_line() + good[1].to_line()
    [warning] = warnings  # once, not on every read
    assert f"{len(DAMAGED)} lines of the outbox {outbox.path} cannot be read" in warning
    assert str(outbox.rejected_path) in warning and "line 2: " in warning
    outbox.remove(outbox.read())
    assert not outbox.path.exists() and len(warnings) == 1


def test_discard_and_remove_step_over_damaged_lines(outbox, warnings):
    outbox.add(entry(0, "gone"))
    with open(outbox.path, "ab") as file:
        file.write(b"not json\n")
    outbox.add(entry(1))
    outbox.discard("gone")
    assert [e.session_id for e in outbox.read()] == ["s"]
    assert outbox.rejected_path.read_bytes() == b"not json\n" and len(warnings) == 1


def test_rejected_lines_accumulate(outbox, warnings):
    for damaged in (b"first\n", b"second\n"):
        outbox.add(entry(0))
        with open(outbox.path, "ab") as file:
            file.write(damaged)
        outbox.read()
        outbox.remove(outbox.read())
    assert outbox.rejected_path.read_bytes() == b"first\nsecond\n" and len(warnings) == 2


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW on this platform")
@pytest.mark.parametrize("link", ["path", "rejected_path"])
def test_links_are_never_followed(outbox, tmp_path, link):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"someone else's file\n")
    outbox.directory.mkdir()
    if link == "rejected_path":
        outbox.add(entry(0))
        with open(outbox.path, "ab") as file:
            file.write(b"not json\n")
    getattr(outbox, link).symlink_to(target)
    with pytest.raises(StorageError, match=f"{getattr(outbox, link)} is a symbolic link"):
        outbox.read() if link == "rejected_path" else outbox.add(entry(1))
    if link == "path":
        with pytest.raises(StorageError, match="is a symbolic link"):
            outbox.read()
    assert target.read_bytes() == b"someone else's file\n"


async def test_a_damaged_line_does_not_fail_the_first_ask_after_start_up(tmp_path, redis_url):
    notices: list[str] = []
    outbox = Outbox(tmp_path / "outbox", redact(redis_url))
    damage(outbox)  # what an earlier daemon left, damaged since
    backend = ResilientBackend(
        backend_for_url(redis_url), tmp_path / "outbox", name=redact(redis_url), notify=notices.append
    )
    try:
        loaded = await backend.load("s")  # the first ask: replays what waits
        assert [m.id for m in loaded.messages] == ["q0", "q1"]
        assert await backend.flush() is True
        stored = await backend.inner.load("s")
        assert [m.id for m in stored.messages] == ["q0", "q1"]
        assert [n for n in notices if "cannot be read" in n] == [notices[0]]
        assert outbox.rejected_path.read_bytes() == b"".join(DAMAGED)
    finally:
        await backend.close()
