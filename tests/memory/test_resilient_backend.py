"""A shared backend that goes away: turns wait in the local outbox and are stored when it is back.

The outage is real: the backend (Redis, PostgreSQL) is reached through a TCP
proxy the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskmate.engine.trash import Trash, trash_patch
from deskmate.memory import BackendUnavailable, Message, Session, SessionStoreError
from deskmate.memory.locking import exclusive_lock
from deskmate.memory.patches import MetaPatch
from deskmate.memory.resilient import ResilientBackend
from deskmate.memory.urls import backend_for_url, redact
from helpers import FakeClock, eventually, kill_after, turn

from . import store_postgres, store_redis
from .tcp_proxy import proxy_to

WRITER = Path(__file__).with_name("resilient_writer.py")
TRASH = MetaPatch({"deletedAt": "2026-12-01T00:00:00.000Z"}, only_missing=True)  # as the engine's


@pytest.fixture(params=["redis", "postgres"])
def store_url(request, tmp_path):
    """A real shared store, in a namespace of this test's own."""
    store = {"redis": store_redis, "postgres": store_postgres}[request.param]
    namespace = f"r{os.getpid()}x{time.monotonic_ns()}"
    url = store.url_for(namespace, tmp_path)
    yield url
    store.cleanup(namespace)


@pytest.fixture
def proxy(store_url):
    with proxy_to(store_url) as proxy:
        yield proxy


@pytest.fixture
def proxied_url(store_url, proxy):
    return proxy.url_for(store_url)


@pytest.fixture
def notices():
    return []


@pytest.fixture
async def resilient(proxied_url, tmp_path, notices):
    backend = ResilientBackend(
        backend_for_url(proxied_url),
        tmp_path / "outbox",
        name=redact(proxied_url),
        notify=notices.append,
        retry_initial=0.05,
        retry_max=0.2,
    )
    yield backend
    await backend.close()


@pytest.fixture
async def direct(store_url):
    """The same store, not through the proxy: what really got stored."""
    backend = backend_for_url(store_url)
    yield backend
    await backend.close()


async def test_turns_wait_while_the_backend_is_down_and_are_stored_when_it_is_back(
    resilient, direct, proxy, notices
):
    await resilient.append("s", turn(0, ids=True), title="Outage", workspace_uri="file:///w")
    assert len((await resilient.load("s")).messages) == 2
    proxy.cut()
    await resilient.append("s", turn(1, ids=True))  # returns: the turn is safe in the outbox
    await resilient.append("s", turn(2, ids=True))
    assert resilient.unavailable is not None
    assert len(notices) == 1 and " at 127.0.0.1:" in notices[0] and "unreachable" in notices[0]
    assert resilient.outbox.path.exists()
    served = await resilient.load("s")  # the last copy read, plus what waits
    assert [m.id for m in served.messages] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert [m.id for m in (await direct.load("s")).messages] == ["q0", "a0"]

    proxy.restore()
    await eventually(lambda: resilient.unavailable is None)
    assert "reachable again" in notices[-1] and "2 waiting appends stored" in notices[-1]
    stored = await direct.load("s")
    assert [m.id for m in stored.messages] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert stored.title == "Outage"
    assert not resilient.outbox.path.exists()
    await resilient.append("s", turn(3, ids=True))  # and straight through again
    assert len((await direct.load("s")).messages) == 8


async def test_a_session_first_seen_during_the_outage_is_created_when_it_is_back(resilient, direct, proxy):
    proxy.cut()
    await resilient.append("new", turn(0, ids=True), title="Born offline", workspace_uri="file:///w")
    assert [m.id for m in (await resilient.load("new")).messages] == ["q0", "a0"]
    proxy.restore()
    assert await resilient.flush() is True
    stored = await direct.load("new")
    assert [m.id for m in stored.messages] == ["q0", "a0"]
    assert (stored.title, stored.workspace_uri) == ("Born offline", "file:///w")


async def test_save_a_first_listing_and_changing_an_unknown_session_fail_naming_the_backend(resilient, proxy):
    proxy.cut()
    for call in (
        lambda: resilient.save(Session(id="x", messages=turn(0, ids=True))),
        lambda: resilient.list(),
        lambda: resilient.update("x", TRASH),  # may not exist: not queued
        lambda: resilient.update("x", lambda info: (info.title, info.meta)),  # not a patch
    ):
        with pytest.raises(
            BackendUnavailable, match=r"(Redis|PostgreSQL) at 127\.0\.0\.1:\d+/\w+ is unreachable"
        ):
            await call()


async def test_deletes_and_trash_moves_during_the_outage_wait_and_are_stored_in_order(
    proxied_url, direct, proxy, tmp_path
):
    def opened() -> ResilientBackend:
        return ResilientBackend(
            backend_for_url(proxied_url), tmp_path / "outbox", name=redact(proxied_url), retry_initial=0.05
        )

    first = opened()
    try:
        for name in ("binned", "gone", "reborn"):
            await first.append(name, turn(0, ids=True), title=name)
        assert len(await first.list()) == 3
        proxy.cut()
        binned = await first.update("binned", TRASH)  # queued, and shown at once
        assert binned.meta.deleted_at == "2026-12-01T00:00:00.000Z" and binned.message_count == 2
        assert await first.delete("gone") is True
        assert await first.delete("reborn") is True
        await first.append("reborn", turn(5, ids=True))  # a new session under the old id, after it
        listed = {info.id: info for info in await first.list()}
        assert set(listed) == {"binned", "reborn"} and listed["binned"].meta.deleted_at
        assert await first.load("gone") is None
        assert [m.id for m in (await first.load("reborn")).messages] == ["q5", "a5"]
        assert await direct.load("gone") is not None  # nothing reached the store yet
    finally:
        await first.close()  # as if the daemon stopped during the outage

    proxy.restore()
    second = opened()  # the next daemon replays what waits, in order
    try:
        await second.load("binned")
        await eventually(lambda: not second.outbox.path.exists())
    finally:
        await second.close()
    assert (await direct.load("binned")).meta.deleted_at == "2026-12-01T00:00:00.000Z"
    assert await direct.load("gone") is None
    assert [m.id for m in (await direct.load("reborn")).messages] == ["q5", "a5"]


async def test_nothing_is_swept_while_the_backend_is_unreachable(resilient, direct, proxy):
    clock = FakeClock()
    trash = Trash(lambda session_id: False, clock)
    await resilient.append("binned", turn(0, ids=True), title="Binned")
    await resilient.update("binned", trash_patch(clock()))
    await resilient.append("aging", turn(1, ids=True), title="Aging")
    assert {info.id for info in await resilient.list()} == {"binned", "aging"}  # a listing to serve
    clock.advance(days=40)  # "binned" is due for purging, "aging" for the trash
    proxy.cut()
    for _ in range(2):  # known down or not yet: nothing is done
        with pytest.raises(BackendUnavailable):
            await trash.sweep(resilient, retention_days=30, trash_days=30)
    assert not resilient.outbox.path.exists()  # nothing waits to be done later either
    proxy.restore()
    await eventually(lambda: resilient.unavailable is None)
    binned, aging = await direct.load("binned"), await direct.load("aging")
    assert binned.meta.deleted_at and [m.id for m in binned.messages] == ["q0", "a0"]
    assert aging.meta.deleted_at is None and [m.id for m in aging.messages] == ["q1", "a1"]
    report = await trash.sweep(resilient, retention_days=30, trash_days=30)  # back: swept
    assert ([i.id for i in report.purged], [i.id for i in report.trashed]) == (["binned"], ["aging"])
    assert await direct.load("binned") is None and (await direct.load("aging")).meta.deleted_at


async def test_a_session_born_in_an_outage_is_changed_once_stored(resilient, direct, proxy):
    proxy.cut()
    await resilient.append("born", turn(0, ids=True), title="Born")
    proxy.restore()
    rename = lambda info: ("Renamed", info.meta)  # noqa: E731
    with pytest.raises(BackendUnavailable):  # known down until the retry finds it back: said, not queued
        await resilient.update("born", rename)
    await eventually(lambda: resilient.unavailable is None)  # back, its turns stored first
    assert (await resilient.update("born", rename)).title == "Renamed"
    stored = await direct.load("born")
    assert (stored.title, len(stored.messages)) == ("Renamed", 2)


async def test_listing_during_the_outage_is_the_last_one_read_with_local_turns(resilient, proxy):
    await resilient.append("a", turn(0, ids=True), title="A")
    assert [i.id for i in await resilient.list()] == ["a"]
    proxy.cut()
    await resilient.append("b", turn(0, ids=True), title="B")
    infos = {info.id: info for info in await resilient.list()}
    assert set(infos) == {"a", "b"} and infos["b"].message_count == 2


async def test_a_replay_cut_short_stores_nothing_twice(resilient, direct, proxy):
    proxy.cut()
    await resilient.append("s", turn(0, ids=True))
    await resilient.append("s", turn(1, ids=True))
    await direct.append("s", turn(0, ids=True))  # as if a replay stored the first entry, then crashed
    proxy.restore()
    assert await resilient.flush() is True
    assert [m.id for m in (await direct.load("s")).messages] == ["q0", "a0", "q1", "a1"]


async def test_a_deleted_session_is_not_brought_back_by_the_replay(proxied_url, direct, proxy, tmp_path):
    backend = ResilientBackend(
        backend_for_url(proxied_url), tmp_path / "outbox", name=redact(proxied_url), retry_initial=3600
    )
    try:
        await backend.append("keep", turn(0, ids=True))
        proxy.cut()
        await backend.append("doomed", turn(1, ids=True))
        await backend.append("keep", turn(1, ids=True))
        proxy.restore()
        assert await backend.delete("doomed") is False  # never reached the store...
        assert await backend.flush() is True  # ...and is not created by the replay
        assert await direct.load("doomed") is None
        assert len((await direct.load("keep")).messages) == 4
    finally:
        await backend.close()


async def test_turns_waiting_when_the_process_is_killed_are_stored_by_the_next_one(
    proxied_url, direct, proxy, tmp_path
):
    proxy.cut()
    outbox = tmp_path / "outbox"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), proxied_url, str(outbox), "killed", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    kill_after(writer, writer.stdout, "ok ", 30)
    proxy.restore()
    backend = ResilientBackend(
        backend_for_url(proxied_url), outbox, name=redact(proxied_url), retry_initial=0.05
    )
    try:
        await backend.load("killed")  # first use: replays what the killed process left
        await eventually(lambda: not backend.outbox.path.exists())
    finally:
        await backend.close()
    ids = [m.id for m in (await direct.load("killed")).messages]
    assert ids == [f"{kind}{i}" for i in range(30) for kind in ("q", "a")]


async def test_a_second_daemon_lists_what_the_first_wrote_up_to_date(store_url, tmp_path):
    # Two daemons on two machines (two outboxes) sharing one store.
    first, second = (
        ResilientBackend(backend_for_url(store_url), tmp_path / name, name=redact(store_url))
        for name in ("first", "second")
    )
    try:
        await first.append("s", turn(0, ids=True), title="S")
        await first.append("t", turn(0, ids=True), title="T")
        assert [i.id for i in await first.list()] == ["t", "s"]
        await first.load("s")  # the first daemon now holds copies of both
        await first.load("t")
        await asyncio.sleep(0.002)
        await second.append("s", turn(1, ids=True))
        await second.append("s", turn(2, ids=True))
        assert await second.delete("t") is True
        infos = await first.list()
        assert [(i.id, i.message_count) for i in infos] == [("s", 6)]
        await second.save(Session(id="s", title="Renamed", messages=turn(7, ids=True)))
        assert [(i.id, i.title, i.message_count) for i in await first.list()] == [("s", "Renamed", 2)]
    finally:
        await first.close()
        await second.close()


async def test_listing_while_turns_wait_counts_them_once(proxied_url, direct, proxy, tmp_path):
    outbox = tmp_path / "outbox"
    earlier = ResilientBackend(
        backend_for_url(proxied_url), outbox, name=redact(proxied_url), retry_initial=3600
    )
    await earlier.append("s", turn(0, ids=True), title="S")
    proxy.cut()
    await earlier.append("s", turn(1, ids=True))
    await earlier.append("new", turn(0, ids=True), title="New")
    await earlier.close()  # the daemon stops with two appends waiting
    proxy.restore()
    await direct.append("other", turn(0, ids=True), title="Other")  # another daemon, meanwhile
    backend = ResilientBackend(
        backend_for_url(proxied_url), outbox, name=redact(proxied_url), retry_initial=3600
    )
    try:
        # Another process is storing the outbox: the store answers, the turns still wait.
        with exclusive_lock(str(backend.outbox.path) + ".flush", 0):
            infos = {i.id: (i.title, i.message_count) for i in await backend.list()}
            assert infos == {"s": ("S", 4), "new": ("New", 2), "other": ("Other", 2)}
            assert backend.unavailable is None and backend.outbox.read()
        assert await backend.flush() is True
        infos = {i.id: (i.title, i.message_count) for i in await backend.list()}
        assert infos == {"s": ("S", 4), "new": ("New", 2), "other": ("Other", 2)}
    finally:
        await backend.close()


async def test_an_unsafe_session_id_is_refused_and_never_queued(resilient, proxy):
    proxy.cut()
    await resilient.append("s", turn(0, ids=True))  # the store is known to be down now
    for bad_id in ("../x", "", "a/b"):
        with pytest.raises(SessionStoreError):
            await resilient.append(bad_id, turn(1, ids=True))
        with pytest.raises(SessionStoreError):
            await resilient.load(bad_id)
    assert [entry.session_id for entry in resilient.outbox.read()] == ["s"]


async def test_memories_read_before_an_outage_are_served_during_it_and_changes_fail_saying_so(
    resilient, direct, proxy
):
    fact = Message(role="system", content="We deploy with Ansible", id="m1")
    await resilient.add_memory("proj", fact)
    assert [m.content for m in await resilient.load_memories("proj")] == ["We deploy with Ansible"]
    proxy.cut()
    # An ask goes on with the memories last read; a project never read has none to serve.
    assert [m.content for m in await resilient.load_memories("proj")] == ["We deploy with Ansible"]
    with pytest.raises(BackendUnavailable):
        await resilient.load_memories("other")
    # Remembering and forgetting are asked for: they fail at once, and nothing waits in the outbox.
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await resilient.add_memory("proj", Message(role="system", content="offline fact", id="m2"))
    with pytest.raises(BackendUnavailable):
        await resilient.delete_memory("proj", "m1")
    assert not resilient.outbox.path.exists()
    proxy.restore()
    await eventually(lambda: resilient.unavailable is None)
    assert [m.id for m in await direct.load_memories("proj")] == ["m1"]
    assert await resilient.delete_memory("proj", "m1") is True
    assert await resilient.load_memories("proj") == [] and await direct.load_memories("proj") == []
