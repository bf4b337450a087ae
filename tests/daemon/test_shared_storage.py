"""The daemon on a shared store (Redis here): chosen by storageUrl, shared by daemons, and
answering on through an outage without losing the turn it could not store."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from deskmate.memory.urls import backend_for_url
from helpers import eventually
from memory.tcp_proxy import CuttableProxy


@pytest.fixture
async def stored_in(redis_url):
    """What the store really holds for a session."""
    backend = backend_for_url(redis_url)

    async def load(session_id: str):
        return await backend.load(session_id)

    yield load
    await backend.close()


async def test_sessions_go_to_the_store_the_storage_url_names(
    start_daemon, project, redis_url, stored_in, data_dir
):
    daemon = await start_daemon(folders=[project], settings={"storageUrl": redis_url})
    result = await daemon.ask("where do you keep this?")
    session = await stored_in(result["sessionId"])
    assert [m.content for m in session.messages] == ["where do you keep this?", result["answer"]]
    assert not (data_dir / "sessions").exists()  # nothing went to files
    status = await daemon.run("deskmate.status")
    assert status["storage"] == redis_url and status["storageUnavailable"] is None


async def test_two_daemons_on_two_machines_share_one_history(start_daemon, project, redis_url, tmp_path):
    shared = {"storageUrl": redis_url, "sessionId": "team-project"}
    first = await start_daemon(folders=[project], settings={**shared, "dataDir": str(tmp_path / "laptop")})
    await first.ask("asked on the laptop")
    second = await start_daemon(
        folders=[project], settings={**shared, "dataDir": str(tmp_path / "container")}
    )
    history = await second.run("deskmate.getSession", {})
    assert [m["content"] for m in history["messages"]][0] == "asked on the laptop"
    listed = await second.run("deskmate.listSessions", {"all": True})
    assert [s["sessionId"] for s in listed["sessions"]] == ["team-project"]


async def test_answers_go_on_through_an_outage_and_the_turn_is_stored_after_it(
    start_daemon, project, redis_url, stored_in
):
    parts = urlsplit(redis_url)
    proxy = CuttableProxy(parts.hostname, parts.port or 6379)
    try:
        proxied = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))
        daemon = await start_daemon(folders=[project], settings={"storageUrl": proxied})
        first = await daemon.ask("before the outage")
        session_id = first["sessionId"]

        proxy.cut()
        during = await daemon.ask("during the outage")  # answered all the same
        assert during["answer"]
        warnings = [m.message for m in daemon.client.messages]
        assert any("Redis at 127.0.0.1" in w and "unreachable" in w and "outbox" in w for w in warnings)
        assert (await daemon.run("deskmate.status"))["storageUnavailable"]
        history = await daemon.run("deskmate.getSession", {})
        assert [m["content"] for m in history["messages"]][::2] == ["before the outage", "during the outage"]
        assert len((await stored_in(session_id)).messages) == 2

        proxy.restore()
        session = await eventually(lambda: _with_messages(stored_in(session_id), 4), timeout=15, interval=0.1)
        assert [m.content for m in session.messages][::2] == ["before the outage", "during the outage"]
        await eventually(
            lambda: any("reachable again" in m.message for m in daemon.client.messages),
            timeout=15,
            interval=0.1,
        )
    finally:
        proxy.close()


async def test_a_bad_storage_url_is_reported_and_the_store_kept(start_daemon, project, data_dir):
    daemon = await start_daemon(folders=[project], settings={"storageUrl": "mongodb://somewhere/db"})
    warnings = [m.message for m in daemon.client.messages]
    assert any("'storageUrl'" in w and "Unknown storage URL scheme 'mongodb'" in w for w in warnings)
    await daemon.ask("still stored in files")
    assert any((data_dir / "sessions").glob("*.jsonl"))  # on disk: which store took it is the point


async def _with_messages(loading, count: int):
    session = await loading
    return session if session is not None and len(session.messages) == count else None
