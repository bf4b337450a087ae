"""The trash and retention in-process: delete, restore, expiry and purge with a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.engine import Assistant, EngineError, Settings
from deskmate.memory.models import SessionMeta
from helpers import FakeClock, turn

from .fakes import FakeModel


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_engine(tmp_path, project, clock):
    """Assistants on one file store (as several daemons of one machine), sharing ``clock``."""
    made: list[Assistant] = []

    def make(**settings) -> Assistant:
        model = FakeModel(Settings())
        warnings: list[str] = []
        assistant = Assistant(
            Settings(data_dir=str(tmp_path / "data"), **settings),
            warn=warnings.append,
            model_factory=lambda s: model,
            clock=clock,
        )
        assistant.warnings = warnings  # type: ignore[attr-defined]
        assistant.model = model  # type: ignore[attr-defined]
        assistant.sessions.workspaces.set_folders([project.as_uri()])
        made.append(assistant)
        return assistant

    yield make
    for assistant in made:
        await assistant.close()


async def listed(engine: Assistant, *, trash: bool = False) -> list[str]:
    return [info.id for info, _ in await engine.sessions.list(all=True, trash=trash)]


async def test_delete_moves_to_the_trash_and_restore_brings_back_every_message(make_engine, project):
    engine = make_engine()
    messages = turn(0, metadata=True) + turn(1)
    await engine.store.backend.append("kept", messages, title="Kept", workspace_uri=project.as_uri())
    await engine.store.backend.update("kept", lambda info: (info.title, SessionMeta(tags=["x"])))
    done = await engine.delete_session("kept")
    assert (done.deleted, done.trashed) == (True, True) and done.purge_after
    assert "kept" not in await listed(engine) and await listed(engine, trash=True) == ["kept"]
    restored = await engine.restore_session("kept")
    assert (restored.title, restored.message_count) == ("Kept", 4)
    session = await engine.store.backend.load("kept")
    assert [m.to_dict() for m in session.messages] == [m.to_dict() for m in messages]
    assert session.meta.tags == ["x"] and session.meta.deleted_at is None
    assert "kept" in await listed(engine) and await listed(engine, trash=True) == []
    with pytest.raises(EngineError, match="not in the trash"):
        await engine.restore_session("kept")


async def test_permanent_delete_and_deleting_nothing(make_engine):
    engine = make_engine()
    await engine.store.backend.append("gone", turn(0))
    done = await engine.delete_session("gone", permanent=True)
    assert (done.deleted, done.trashed) == (True, False)
    assert await engine.store.backend.load("gone") is None and await listed(engine, trash=True) == []
    nothing = await engine.delete_session("never-was")
    assert (nothing.deleted, nothing.trashed, nothing.purge_after) == (False, False, None)


async def test_a_trashed_default_session_gives_its_folder_a_fresh_one(make_engine):
    engine = make_engine()
    ref = engine.sessions.resolve()
    await engine.asks.ask("first", ref=ref)
    await engine.delete_session(ref.id)
    fresh = engine.sessions.resolve()
    assert fresh.id != ref.id
    await engine.asks.ask("goes on", ref=fresh)  # a new conversation, not the trashed one
    with pytest.raises(EngineError, match="is in the trash"):
        await engine.asks.ask("into the bin", ref=ref)
    with pytest.raises(EngineError, match="is in the trash"):
        await engine.sessions.switch(ref.id)
    assert len((await engine.store.backend.load(ref.id)).messages) == 2  # untouched


async def test_retention_warns_moves_to_the_trash_then_purges_and_never_touches_pinned(make_engine, clock):
    engine = make_engine(retention_days=30, trash_days=10)
    backend = engine.store.backend
    await backend.append("old", turn(0), title="Old one")
    await backend.append("pinned", turn(0))
    await backend.update("pinned", lambda info: (info.title, SessionMeta(pinned=True)))

    clock.advance(days=20)
    report = await engine.sweep_and_tell()
    assert report.expiring == [] and engine.warnings == []  # 10 days left: not yet worth a word

    clock.advance(days=5)
    report = await engine.sweep_and_tell()
    assert [info.id for info, _ in report.expiring] == ["old"] and report.trashed == []
    assert len(engine.warnings) == 1, engine.warnings
    assert '"Old one" (old, in 5 days)' in engine.warnings[0], engine.warnings[0]
    assert len(await engine.expiring_soon()) == 1
    await engine.sweep_and_tell()
    assert len(engine.warnings) == 1  # once a day
    other_daemon = make_engine(retention_days=30, trash_days=10)
    await other_daemon.sweep_and_tell()
    assert other_daemon.warnings == []  # once a day for the data dir, however many daemons

    clock.advance(days=6)
    report = await engine.sweep_and_tell()
    assert [info.id for info in report.trashed] == ["old"]
    assert await listed(engine, trash=True) == ["old"] and "pinned" in await listed(engine)
    assert any("went to the trash" in w and "within 10 days" in w for w in engine.warnings)

    clock.advance(days=9)
    assert (await engine.sweep()).purged == []  # one day left in the trash
    clock.advance(days=2)
    dry = await engine.sweep(dry_run=True)
    assert [info.id for info in dry.purged] == ["old"] and await listed(engine, trash=True) == ["old"]
    report = await engine.sweep()
    assert [info.id for info in report.purged] == ["old"]
    assert await backend.load("old") is None
    assert await backend.load("pinned") is not None  # 42 days unused, pinned: kept


async def test_nothing_expires_unless_asked(make_engine, clock):
    engine = make_engine()
    await engine.store.backend.append("ancient", turn(0))
    clock.advance(days=3650)
    report = await engine.sweep_and_tell()
    assert (report.trashed, report.purged, report.expiring) == ([], [], [])
    assert await engine.store.backend.load("ancient") is not None


async def test_two_daemons_sweeping_at_once_purge_each_session_once(make_engine, clock):
    first, second = make_engine(trash_days=1), make_engine(trash_days=1)
    for i in range(6):
        await first.store.backend.append(f"s{i}", turn(i))
        await first.delete_session(f"s{i}")
    clock.advance(days=2)
    reports = await asyncio.gather(first.sweep(), second.sweep())
    purged = [info.id for report in reports for info in report.purged]
    assert sorted(purged) == [f"s{i}" for i in range(6)]  # each once, by one of them
    assert await listed(first, trash=True) == []


async def test_a_session_restored_after_the_listing_is_not_purged(make_engine, clock):
    engine = make_engine(trash_days=1)
    await engine.store.backend.append("saved", turn(0))
    await engine.delete_session("saved")
    clock.advance(days=2)
    backend = engine.store.backend
    real_list = backend.list

    async def list_then_restore():
        infos = await real_list()
        await make_engine().restore_session("saved")  # another daemon, between listing and purge
        return infos

    backend.list = list_then_restore  # type: ignore[method-assign]
    report = await engine.sweep()
    assert report.purged == [] and [why for _, why in report.skipped] == ["restored or written to meanwhile"]
    assert len((await backend.load("saved")).messages) == 2


async def test_a_session_being_purged_cannot_be_restored_and_an_answering_one_is_not_purged(
    make_engine, clock
):
    engine = make_engine(trash_days=1)
    backend = engine.store.backend
    await backend.append("claimed", turn(0))
    await engine.delete_session("claimed")
    clock.advance(days=2)
    from deskmate.engine.trash import claim_change

    await backend.update("claimed", claim_change(1, clock()))  # a daemon is purging it right now
    with pytest.raises(EngineError, match="being purged"):
        await engine.restore_session("claimed")
    clock.advance(hours=2)  # that daemon died long ago: its claim no longer holds
    assert (await engine.restore_session("claimed")).message_count == 2

    engine.trash.busy = lambda session_id: True  # answering in every session
    await engine.delete_session("claimed")
    clock.advance(days=2)
    report = await engine.sweep()
    assert report.purged == [] and report.skipped[0][1] == "answering"


async def test_the_testing_clock_reads_its_file_on_every_call_and_is_inert_when_unset(tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from deskmate.engine.trash import CLOCK_FILE_ENV, FileClock, clock_from_environment, utc_now

    monkeypatch.delenv(CLOCK_FILE_ENV, raising=False)
    assert clock_from_environment() is utc_now
    monkeypatch.setenv(CLOCK_FILE_ENV, "")
    assert clock_from_environment() is utc_now
    path = tmp_path / "clock"
    monkeypatch.setenv(CLOCK_FILE_ENV, str(path))
    clock = clock_from_environment()
    assert isinstance(clock, FileClock)

    def off_by(expected: timedelta) -> timedelta:
        return abs(clock() - (datetime.now(timezone.utc) + expected))

    assert off_by(timedelta(0)) < timedelta(seconds=5)  # no file yet: the real time
    path.write_text("86400\n")  # a day ahead, read at the next call
    assert off_by(timedelta(days=1)) < timedelta(seconds=5)
    path.write_text("-3600.5")
    assert off_by(timedelta(seconds=-3600.5)) < timedelta(seconds=5)
    path.write_text("2030-01-02T03:04:05Z")  # a time: the clock stands there
    assert clock() == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for nonsense in ("", "soon", "1e400", "\xff"):
        path.write_text(nonsense)
        assert off_by(timedelta(0)) < timedelta(seconds=5)

    path.write_text("0")
    seen = clock.reading()
    moved = asyncio.ensure_future(clock.moved(seen))
    await asyncio.sleep(0.3)
    assert not moved.done()  # nothing changed
    path.write_text("60")
    await asyncio.wait_for(moved, 5)
