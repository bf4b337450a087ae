"""The trash and retention on every store (files, PostgreSQL, Redis, S3, the resilient wrapper):
the engine over the ``backend`` fixture, with a clock the test moves."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from deskmate.engine import Assistant, EngineError, Settings
from deskmate.memory import keys
from deskmate.memory.models import SessionMeta
from deskmate.memory.sealed import SealedLabels
from helpers import FakeClock, turn


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def engines(backend, reopen, tmp_path, clock):
    """``engines(n)``: n engines on the test's store (the first over ``backend``, the others
    over a store opened again, as other daemons would), with their own data dirs."""
    made: list[Assistant] = []

    def make(count: int = 1, **settings) -> list[Assistant]:
        for _ in range(count):
            store = backend if not made else reopen()
            made.append(
                Assistant(
                    Settings(data_dir=str(tmp_path / f"daemon{len(made)}"), **settings),
                    backend=store,
                    clock=clock,
                    warn=lambda message: None,
                )
            )
        return made[-count:]

    yield make
    for engine in made:
        await engine.close()


async def ids(engine: Assistant, *, trash: bool = False) -> list[str]:
    return sorted(info.id for info, _ in await engine.sessions.list(all=True, trash=trash))


async def test_delete_then_restore_gives_back_exactly_what_was_there(backend, engines):
    (engine,) = engines()
    messages = turn(0, metadata=True) + turn(1) + turn(2, metadata=True)
    await backend.append("s", messages, title="Précis 🙂", workspace_uri="file:///w")
    fork_link = {"sessionId": "origin", "messageId": "a1"}  # a fork: its link must come back too
    meta = SessionMeta(tags=["a", "b"], forked_from=fork_link)
    await backend.update("s", lambda info: (info.title, meta))
    before = await backend.load("s")
    assert before.meta.forked_from == fork_link
    done = await engine.delete_session("s")
    assert (done.deleted, done.trashed) == (True, True)
    assert await ids(engine) == [] and await ids(engine, trash=True) == ["s"]
    restored = await engine.restore_session("s")
    assert (restored.id, restored.title, restored.message_count) == ("s", "Précis 🙂", 6)
    after = await backend.load("s")
    assert [m.to_dict() for m in after.messages] == [m.to_dict() for m in before.messages]
    assert (after.title, after.workspace_uri, after.created_at, after.meta) == (
        before.title,
        before.workspace_uri,
        before.created_at,
        before.meta,
    )
    assert after.meta.forked_from == fork_link and after.meta.tags == ["a", "b"]
    assert await ids(engine) == ["s"] and await ids(engine, trash=True) == []


async def test_permanent_delete_removes_at_once(backend, engines):
    (engine,) = engines()
    await backend.append("p", turn(0))
    done = await engine.delete_session("p", permanent=True)
    assert (done.deleted, done.trashed) == (True, False)
    assert await backend.load("p") is None and await ids(engine, trash=True) == []
    with pytest.raises(Exception, match="does not exist"):
        await engine.restore_session("p")


async def test_retention_and_purge_with_a_moving_clock(backend, engines, clock):
    (engine,) = engines(retention_days=30, trash_days=5)
    await backend.append("old", turn(0))
    await backend.append("pinned", turn(0))
    await backend.update("pinned", lambda info: (info.title, SessionMeta(pinned=True)))
    clock.advance(days=25)
    assert [info.id for info, _ in await engine.expiring_soon()] == ["old"]
    assert (await engine.sweep()).trashed == []
    clock.advance(days=6)
    assert [info.id for info in (await engine.sweep()).trashed] == ["old"]
    assert await ids(engine, trash=True) == ["old"] and await ids(engine) == ["pinned"]
    clock.advance(days=4)
    assert (await engine.sweep()).purged == []
    clock.advance(days=2)
    assert [info.id for info in (await engine.sweep()).purged] == ["old"]
    assert await backend.load("old") is None
    assert len((await backend.load("pinned")).messages) == 2


async def test_two_daemons_sweeping_at_once_purge_once_and_resurrect_nothing(backend, engines, clock):
    first, second = engines(2, trash_days=1)
    for i in range(4):
        await backend.append(f"s{i}", turn(i))
        await first.delete_session(f"s{i}")
    await backend.append("kept", turn(9))
    clock.advance(days=2)
    reports = await asyncio.gather(first.sweep(), second.sweep())
    purged = sorted(info.id for report in reports for info in report.purged)
    assert purged == ["s0", "s1", "s2", "s3"]
    for engine in (first, second):
        assert await ids(engine) == ["kept"] and await ids(engine, trash=True) == []
    for i in range(4):
        assert await backend.load(f"s{i}") is None


async def test_nothing_is_expired_or_purged_while_another_process_answers_in_it(backend, engines, clock):
    sweeper, other = engines(2, retention_days=30, trash_days=5)
    await backend.append("binned", turn(0))
    await sweeper.delete_session("binned")
    await backend.append("aging", turn(1))
    clock.advance(days=31)  # both due: "binned" for purging, "aging" for the trash
    # The other daemon answers in both: it holds their answering leases, as its asks do.
    async with other.asks.leases.holding("binned"), other.asks.leases.holding("aging"):
        report = await sweeper.sweep()
        assert (report.trashed, report.purged) == ([], [])
        assert sorted(info.id for info, _ in report.skipped) == ["aging", "binned"]
        assert all("another process" in why for _, why in report.skipped)
        assert await ids(sweeper) == ["aging"] and await ids(sweeper, trash=True) == ["binned"]
        assert len((await backend.load("binned")).messages) == 2
    report = await sweeper.sweep()  # answered: swept now
    assert [info.id for info in report.trashed] == ["aging"]
    assert [info.id for info in report.purged] == ["binned"]
    assert await backend.load("binned") is None
    # The sweep let go of the leases it took: the other daemon can answer in the session again.
    async with other.asks.leases.holding("aging"):
        pass


async def test_a_restore_wins_over_a_purge_that_listed_before_it(backend, engines, clock):
    purger, restorer = engines(2, trash_days=1)
    await backend.append("r", turn(0))
    await purger.delete_session("r")
    clock.advance(days=2)
    store = purger.store.backend
    listing = store.list

    async def list_then_restore():
        infos = await listing()
        await restorer.restore_session("r")
        return infos

    store.list = list_then_restore
    try:
        assert (await purger.sweep()).purged == []
    finally:
        del store.list
    assert len((await backend.load("r")).messages) == 2
    with pytest.raises(EngineError, match="not in the trash"):
        await restorer.restore_session("r")


async def test_an_encrypted_session_goes_to_the_trash_and_back_with_only_its_trash_state_in_the_clear(
    backend, tmp_path, clock, monkeypatch
):
    monkeypatch.setenv(keys.ENV_KEY, base64.urlsafe_b64encode(os.urandom(32)).decode())
    keys.forget_loaded_keys()
    sealed = SealedLabels(backend, seal=True)
    engine = Assistant(Settings(data_dir=str(tmp_path / "d")), backend=sealed, clock=clock, warn=print)
    try:
        await sealed.append("enc", turn(0), title="SECRETTITLE", workspace_uri="file:///w")
        await sealed.update("enc", lambda info: (info.title, SessionMeta(tags=["SECRETTAG"])))
        done = await engine.delete_session("enc")
        assert (done.deleted, done.trashed) == (True, True)
        [raw] = [info for info in await backend.list() if info.id == "enc"]  # what the store holds
        assert raw.meta.deleted_at is not None and raw.meta.tags == []
        assert "SECRET" not in f"{raw.title} {raw.meta}"
        assert await ids(engine, trash=True) == ["enc"] and await ids(engine) == []
        restored = await engine.restore_session("enc")
        assert (restored.title, restored.meta.tags, restored.meta.deleted_at) == (
            "SECRETTITLE",
            ["SECRETTAG"],
            None,
        )
        [raw] = [info for info in await backend.list() if info.id == "enc"]
        assert raw.meta.deleted_at is None and "SECRET" not in f"{raw.title} {raw.meta}"
    finally:
        keys.forget_loaded_keys()
