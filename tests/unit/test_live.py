"""Live sessions in-process: the answering lease around every ask, changes by another process
reported (not this one's own), and getSession's sinceMessageId."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.engine import SessionBusy
from deskmate.memory import BackendUnavailable, FileBackend, Message
from deskmate.memory.watching import SessionChange

from .test_handlers import wire  # noqa: F401 - the fixture


def other_process(engine) -> FileBackend:
    """The engine's store as another process sees it: its own backend on the same files."""
    return FileBackend(engine.store.data_dir)


async def test_an_ask_is_refused_while_another_process_answers_in_the_session(engine):
    ref = engine.sessions.resolve()
    other = other_process(engine)
    assert await other.claim_answer(ref.id, "another-daemon", 10)
    with pytest.raises(SessionBusy, match="still answering in another window"):
        await engine.asks.ask("may I?", ref=ref)
    assert await engine.sessions.stored(ref.id) is None  # nothing was stored for the refused ask
    await other.release_answer(ref.id, "another-daemon")
    result = await engine.asks.ask("now?", ref=ref)
    assert result.answer


async def test_an_ask_holds_the_lease_until_its_answer_is_stored(engine, model):
    ref = engine.sessions.resolve()
    other = other_process(engine)
    model.gate = asyncio.Event()
    asking = asyncio.ensure_future(engine.asks.ask("long one", ref=ref))
    await model.started.wait()
    assert not await other.claim_answer(ref.id, "another-daemon", 10)
    model.gate.set()
    await asking
    assert await other.claim_answer(ref.id, "another-daemon", 10)  # released with the answer
    await other.release_answer(ref.id, "another-daemon")


async def test_changes_by_another_process_are_reported_and_the_own_ask_is_not(engine):
    seen: list[SessionChange] = []
    engine.live.start(seen.append)
    ref = engine.sessions.resolve()
    await engine.asks.ask("mine", ref=ref)  # follows the session; its own turn is not reported
    await asyncio.wait_for(engine.live._watch.ready.wait(), 5)
    other = other_process(engine)
    await other.append(ref.id, [Message(role="user", content="theirs")])
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert seen == [SessionChange(ref.id, "appended", 3)]


async def test_get_session_since_a_message_returns_only_what_is_new(wire):  # noqa: F811
    first = (await wire.command("deskmate.ask", {"question": "one"}))["result"]
    await wire.command("deskmate.ask", {"question": "two"})
    whole = (await wire.command("deskmate.getSession"))["result"]
    assert whole["messageCount"] == 4 and first["sessionId"] == whole["sessionId"]
    since = (await wire.command("deskmate.getSession", {"sinceMessageId": whole["messages"][1]["id"]}))[
        "result"
    ]
    assert [m["content"] for m in since["messages"]] == ["two", whole["messages"][3]["content"]]
    assert (since["reset"], since["messageCount"], since["sinceMessageId"]) == (
        False,
        4,
        whole["messages"][1]["id"],
    )
    gone = (await wire.command("deskmate.getSession", {"sinceMessageId": "no-such-message"}))["result"]
    assert gone["reset"] is True and len(gone["messages"]) == 4  # draw it all again


async def test_a_delete_is_reported_to_other_windows_not_back_to_the_one_that_asked(engine):
    seen: list[SessionChange] = []
    engine.live.start(seen.append)
    ref = engine.sessions.resolve()
    await engine.asks.ask("mine", ref=ref)
    await asyncio.wait_for(engine.live._watch.ready.wait(), 5)
    await engine.delete_session(ref.id, permanent=True)
    await asyncio.sleep(0.5)  # far longer than the file store takes to report a change
    assert seen == []
    other = other_process(engine)
    await other.append(ref.id, [Message(role="user", content="theirs")])
    await engine.live.open(ref.id)
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)
    await other.delete(ref.id)
    for _ in range(500):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert [change.change for change in seen] == ["appended", "deleted"]


def test_a_session_created_empty_is_reported_with_its_first_turn():
    """S3 writes a new session's manifest before its first turn: a poll between the two must
    not report an empty "updated" session, but the append that follows."""
    from deskmate.memory.models import SessionInfo
    from deskmate.memory.watching import _seen, classify

    empty = _seen(SessionInfo(id="s", created_at="2026-12-06T00:00:00Z", updated_at="2026-12-06T00:00:00Z"))
    turn = _seen(
        SessionInfo(
            id="s", created_at="2026-12-06T00:00:00Z", updated_at="2026-12-06T00:00:01Z", message_count=2
        )
    )
    assert classify(None, empty) is None
    assert classify(empty, turn) == "appended"
    assert classify(None, turn) == "appended"


async def test_an_own_write_is_not_read_back_while_the_store_is_known_to_be_away(engine, monkeypatch):
    """In an outage the outbox holds the write; reading it back would only wait out the store's
    timeout (PostgreSQL's pool: 10 s) at the end of every ask and delete."""
    engine.live.start(lambda change: None)
    ref = engine.sessions.resolve()
    await engine.asks.ask("mine", ref=ref)
    read_back: list[str] = []
    recheck = engine.live._watch.recheck

    async def counted(session_id):
        read_back.append(session_id)
        return await recheck(session_id)

    monkeypatch.setattr(engine.live._watch, "recheck", counted)
    monkeypatch.setattr(
        engine.live._watched,
        "unavailable",
        BackendUnavailable("PostgreSQL at 127.0.0.1:5432", "connection refused"),
        raising=False,
    )
    async with engine.live.quiet(ref.id):
        pass
    assert read_back == []
    monkeypatch.setattr(engine.live._watched, "unavailable", None)
    async with engine.live.quiet(ref.id):
        pass
    assert read_back == [ref.id]
