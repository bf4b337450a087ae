"""The trash and retention through the real daemon, on every store: delete and restore, permanent
delete, retention and purge (time is controlled through the times stored with the sessions, and
through the daemon's own clock, DESKMATE_TEST_CLOCK_FILE), two daemons sweeping one store, and a
delete during an outage."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pygls.exceptions import JsonRpcException

from deskmate.memory import Message
from deskmate.memory.models import SessionMeta
from deskmate.memory.urls import backend_for_url
from helpers import eventually
from memory.tcp_proxy import proxy_to

DAY = timedelta(days=1)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def days_ago(days: float) -> str:
    return iso(datetime.now(timezone.utc) - days * DAY)


@pytest.fixture(params=["file", "postgres", "redis", "s3"])
def store_url(request, tmp_path, data_dir):
    """The storageUrl of each store (None: files in the data dir), in a namespace of this test's own."""
    if request.param == "file":
        yield None
        return
    store = importlib.import_module(f"memory.store_{request.param}")
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield store.url_for(namespace, tmp_path)
    store.cleanup(namespace)


@pytest.fixture
async def direct(store_url, data_dir):
    """The store itself, as the daemon's store holds it (not through a daemon)."""
    backend = backend_for_url(store_url or str(data_dir))
    yield backend
    await backend.close()


def storage(store_url) -> dict:
    return {"storageUrl": store_url} if store_url else {}


async def trashed_ids(daemon) -> list[str]:
    listed = await daemon.run("deskmate.listSessions", {"trash": True, "all": True})
    return [s["sessionId"] for s in listed["sessions"]]


async def listed_ids(daemon) -> list[str]:
    listed = await daemon.run("deskmate.listSessions", {"all": True})
    return [s["sessionId"] for s in listed["sessions"] if s["messageCount"]]


async def test_delete_goes_to_the_trash_and_restore_gives_back_every_message(
    start_daemon, project, store_url
):
    daemon = await start_daemon(folders=[project], settings=storage(store_url))
    first = await daemon.ask("keep this\nplease")
    await daemon.ask("and this 🙂")
    session_id = first["sessionId"]
    before = await daemon.run("deskmate.getSession", {"sessionId": session_id})

    deleted = await daemon.run("deskmate.deleteSession", {"sessionId": session_id})
    assert deleted["deleted"] is True and deleted["trashed"] is True
    assert deleted["purgeAfter"] > before["updatedAt"]
    assert session_id not in await listed_ids(daemon)
    [entry] = (await daemon.run("deskmate.listSessions", {"trash": True}))["sessions"]
    assert entry["sessionId"] == session_id and entry["messageCount"] == 4
    assert entry["deletedAt"] and entry["purgeAfter"] == deleted["purgeAfter"]
    now = await daemon.run("deskmate.getSession", {})  # the folder goes on in a fresh session
    assert now["sessionId"] != session_id and now["messages"] == []
    with pytest.raises(JsonRpcException, match="is in the trash"):
        await daemon.ask("sneak in", sessionId=session_id)

    restored = await daemon.run("deskmate.restoreSession", {"sessionId": session_id})
    assert restored == {"sessionId": session_id, "title": "keep this", "messageCount": 4}
    after = await daemon.run("deskmate.getSession", {"sessionId": session_id})
    assert after["messages"] == before["messages"]
    assert (after["title"], after["createdAt"], after["updatedAt"], after["deletedAt"]) == (
        before["title"],
        before["createdAt"],
        before["updatedAt"],
        None,
    )
    assert await trashed_ids(daemon) == [] and session_id in await listed_ids(daemon)
    with pytest.raises(JsonRpcException, match="is not in the trash"):
        await daemon.run("deskmate.restoreSession", {"sessionId": session_id})


async def test_permanent_delete_removes_at_once(start_daemon, project, store_url, direct):
    daemon = await start_daemon(folders=[project], settings=storage(store_url))
    session_id = (await daemon.ask("short-lived"))["sessionId"]
    deleted = await daemon.run("deskmate.deleteSession", {"sessionId": session_id, "permanent": True})
    assert deleted == {"deleted": True, "trashed": False}
    assert await direct.load(session_id) is None and await trashed_ids(daemon) == []
    with pytest.raises(JsonRpcException, match="does not exist"):
        await daemon.run("deskmate.restoreSession", {"sessionId": session_id})
    assert await daemon.run("deskmate.deleteSession", {"sessionId": "never-was"}) == {
        "deleted": False,
        "trashed": False,
    }


async def store_aged(direct, session_id: str, days: float, **meta) -> None:
    """A session last written ``days`` ago, with metadata ``meta``."""
    when = days_ago(days)
    messages = [
        Message(role="user", content=f"{session_id}?", timestamp=when),
        Message(role="assistant", content=f"{session_id}!", timestamp=when),
    ]
    await direct.append(session_id, messages, title=f"About {session_id}")
    if meta:
        await direct.update(session_id, lambda info: (info.title, SessionMeta(**meta)))


async def test_retention_warns_before_moves_to_the_trash_after_and_purges_the_trash(
    start_daemon, project, store_url, direct
):
    await store_aged(direct, "ancient", 45)
    await store_aged(direct, "soon", 26)
    await store_aged(direct, "recent", 2)
    await store_aged(direct, "treasured", 400, pinned=True)
    await store_aged(direct, "long-binned", 50, deleted_at=days_ago(31))
    await store_aged(direct, "just-binned", 50, deleted_at=days_ago(3))

    settings = {**storage(store_url), "retentionDays": 30}
    daemon = await start_daemon(folders=[project], settings=settings)

    def warned(text: str):
        return [m.message for m in daemon.client.messages if text in m.message]

    [moved] = await eventually(lambda: warned("went to the trash"))
    assert '"About ancient" (ancient)' in moved and "within 30 days" in moved
    [ahead] = await eventually(lambda: warned("go to the trash within 7 days") or warned("goes to the"))
    assert '"About soon" (soon, in 4 days)' in ahead and "unset retentionDays" in ahead
    await eventually(lambda: _gone(direct, "long-binned"))
    assert sorted(await trashed_ids(daemon)) == ["ancient", "just-binned"]
    assert sorted(await listed_ids(daemon)) == ["recent", "soon", "treasured"]
    status = await daemon.run("deskmate.status")
    assert (status["retentionDays"], status["trashDays"], status["expiringIn7Days"]) == (30, 30, 1)

    # Another editor on the same data dir: no second warning today.
    other = await start_daemon(folders=[project], settings=settings)
    await asyncio.sleep(1.0)
    assert not any("within 7 days" in m.message for m in other.client.messages)
    assert len((await direct.load("treasured")).messages) == 2  # pinned: never expires


async def _gone(direct, session_id: str) -> bool:
    return await direct.load(session_id) is None


class MovingClock:
    """The daemon's clock (``DESKMATE_TEST_CLOCK_FILE``), moved by the test. ``to(days)`` sets it
    that many days ahead of the real time and returns once the daemon has swept at that time: a
    session put in the trash beforehand, due for purging just before it, is gone."""

    def __init__(self, path, direct, trash_days: int) -> None:
        self.path = path
        self.direct = direct
        self.trash_days = trash_days

    @property
    def env(self) -> dict[str, str]:
        return {"DESKMATE_TEST_CLOCK_FILE": str(self.path)}

    async def to(self, days: float) -> None:
        tick = f"tick-{round(days * 1000)}"
        # Purged trash_days after it went to the trash: 0.01 days before the clock's new time.
        went = iso(datetime.now(timezone.utc) + (days - self.trash_days - 0.01) * DAY)
        await store_aged(self.direct, tick, 0, deleted_at=went)
        self.path.write_text(f"{days * DAY.total_seconds()}\n")
        await eventually(lambda: _gone(self.direct, tick), timeout=20)
        await asyncio.sleep(0.3)  # what that sweep tells the user comes right after its purges


async def test_retention_with_the_daemons_clock_moving_warns_daily_then_trashes_then_purges(
    start_daemon, project, store_url, direct, tmp_path
):
    clock = MovingClock(tmp_path / "clock", direct, trash_days=5)
    settings = {**storage(store_url), "retentionDays": 30, "trashDays": 5}
    daemon = await start_daemon(folders=[project], settings=settings, env=clock.env)
    await daemon.ask("aging notes", sessionId="aging")
    await daemon.ask("treasured notes", sessionId="treasured")
    await daemon.run("deskmate.pinSession", {"sessionId": "treasured", "pinned": True})

    def told(text: str) -> list[str]:
        return [m.message for m in daemon.client.messages if text in m.message]

    async def expiring() -> int:
        return (await daemon.run("deskmate.status"))["expiringIn7Days"]

    # 20 days on: 10 days left, no warning yet.
    await clock.to(20)
    assert told("trash within 7 days") == [] and await expiring() == 0

    # 24 days on: 6 days left, the user is warned (pinned sessions are never named).
    await clock.to(24)
    [warning] = await eventually(lambda: told("trash within 7 days"))
    assert '"aging notes" (aging, in 6 days)' in warning and "treasured" not in warning
    assert "To keep one, ask in it" in warning and await expiring() == 1
    await clock.to(24.5)  # later that day: not again
    assert len(told("trash within 7 days")) == 1
    await clock.to(25.1)  # the next day: again
    warnings = await eventually(lambda: told("trash within 7 days")[1:] and told("trash within 7 days"))
    assert len(warnings) == 2 and '"aging notes" (aging, in 5 days)' in warnings[1]
    assert told("went to the trash") == [] and "aging" in await listed_ids(daemon)

    # 30 days on: to the trash, and the user is told; the pinned session stays.
    await clock.to(30.1)
    [moved] = await eventually(lambda: told("went to the trash"))
    assert '"aging notes" (aging)' in moved and "within 5 days" in moved and "treasured" not in moved
    assert await listed_ids(daemon) == ["treasured"] and "aging" in await trashed_ids(daemon)
    assert await expiring() == 0

    # In the trash 5 days (it went at 30.1): kept at 35, purged after.
    await clock.to(35)
    assert "aging" in await trashed_ids(daemon) and len((await direct.load("aging")).messages) == 2
    await clock.to(35.2)
    await eventually(lambda: _gone(direct, "aging"))
    assert await trashed_ids(daemon) == []

    # Pinned: never expires, however long.
    await clock.to(400)
    assert await listed_ids(daemon) == ["treasured"]
    assert [m.content for m in (await direct.load("treasured")).messages][0] == "treasured notes"
    assert len(told("trash within 7 days")) == 2 and len(told("went to the trash")) == 1


async def test_nothing_expires_unless_asked(start_daemon, project, store_url, direct):
    await store_aged(direct, "ancient", 3000)
    daemon = await start_daemon(folders=[project], settings=storage(store_url))
    status = await daemon.run("deskmate.status")
    assert (status["retentionDays"], status["trashDays"], status["expiringIn7Days"]) == (None, 30, 0)
    await asyncio.sleep(0.5)
    assert await listed_ids(daemon) == ["ancient"] and await trashed_ids(daemon) == []


async def test_two_daemons_sweeping_one_store_purge_everything_due_once(
    start_daemon, project, store_url, direct, tmp_path
):
    for i in range(5):
        await store_aged(direct, f"due{i}", 50, deleted_at=days_ago(40))
    await store_aged(direct, "kept", 50, deleted_at=days_ago(1))
    daemons = await asyncio.gather(
        *(
            # On a shared store, two machines (data dirs of their own); on files, two editors.
            start_daemon(folders=[project], settings={**storage(store_url), **machine})
            for machine in (
                ({"dataDir": str(tmp_path / "laptop")}, {"dataDir": str(tmp_path / "desktop")})
                if store_url
                else ({}, {})
            )
        )
    )
    for i in range(5):
        await eventually(lambda i=i: _gone(direct, f"due{i}"))
    for daemon in daemons:
        assert await trashed_ids(daemon) == ["kept"]
        errors = [m.message for m in daemon.client.messages if "purg" in m.message.lower()]
        assert errors == []
    assert len((await direct.load("kept")).messages) == 2


@pytest.fixture(params=["redis", "postgres"])
def shared_url(request, tmp_path):
    """A shared store the test can cut off (Redis, PostgreSQL), in a namespace of this test's own."""
    store = importlib.import_module(f"memory.store_{request.param}")
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield store.url_for(namespace, tmp_path)
    store.cleanup(namespace)


@pytest.fixture
def proxy(shared_url):
    with proxy_to(shared_url) as proxy:
        yield proxy


async def test_a_delete_during_an_outage_waits_and_is_stored_when_the_store_is_back(
    start_daemon, project, shared_url, proxy
):
    direct = backend_for_url(shared_url)
    try:
        daemon = await start_daemon(folders=[project], settings={"storageUrl": proxy.url_for(shared_url)})
        binned = (await daemon.ask("to the trash", sessionId="binned"))["sessionId"]
        erased = (await daemon.ask("erased", sessionId="erased"))["sessionId"]
        assert sorted(await listed_ids(daemon)) == ["binned", "erased"]

        proxy.cut()
        deleted = await daemon.run("deskmate.deleteSession", {"sessionId": binned})
        assert deleted["deleted"] is True and deleted["trashed"] is True
        gone = await daemon.run("deskmate.deleteSession", {"sessionId": erased, "permanent": True})
        assert gone == {"deleted": True, "trashed": False}
        assert await listed_ids(daemon) == [] and await trashed_ids(daemon) == ["binned"]
        assert (await direct.load(binned)).meta.deleted_at is None  # waiting, not stored yet
        assert await direct.load(erased) is not None

        proxy.restore()
        await eventually(lambda: _gone(direct, erased), timeout=20, interval=0.2)
        stored = await direct.load(binned)
        assert stored.meta.deleted_at and [m.content for m in stored.messages][0] == "to the trash"
        restored = await daemon.run("deskmate.restoreSession", {"sessionId": binned})
        assert restored["messageCount"] == 2
        await daemon.stop()  # its connections end before the proxy goes
    finally:
        await direct.close()
