"""One damaged record never takes the listing (or the daemon) down, and no traceback reaches the
client: the real daemon over session files damaged by hand, field by field."""

from __future__ import annotations

import asyncio

from helpers import write_jsonl

HEADER = {
    "deskmate": "session",
    "version": 1,
    "title": "t",
    "workspaceUri": None,
    "createdAt": "2026-01-01T00:00:00.000Z",
}
MESSAGE = {"id": "m1", "role": "user", "content": "hi", "timestamp": "2026-01-01T00:00:01.000Z", "n": 1}


def write_session(data_dir, session_id, header, *messages):
    write_jsonl(
        data_dir / "sessions" / f"{session_id}.jsonl", [{**HEADER, "id": session_id, **header}, *messages]
    )


DAMAGE = {
    "tags-is-a-number": ({"tags": 5}, [MESSAGE]),
    "version-is-a-string": ({"version": "2"}, [MESSAGE]),
    "title-is-a-list": ({"title": ["x"]}, [MESSAGE]),
    "context-text-is-a-number": ({}, [{**MESSAGE, "context": {"uri": "file:///x", "text": 5}}]),
    "message-is-a-list": ({}, [[1, 2]]),
}


async def test_one_damaged_session_leaves_the_listing_whole(start_daemon, project, data_dir):
    write_session(data_dir, "healthy", {"title": "healthy one"}, MESSAGE)
    for damage, (header, messages) in DAMAGE.items():
        write_session(data_dir, damage, header, *messages)
    daemon = await start_daemon(folders=[project])

    listed = await daemon.run("deskmate.listSessions", {"all": True})
    assert "healthy" in {s["sessionId"] for s in listed["sessions"]}
    for damage in DAMAGE:
        # Opening a damaged one moves it aside, warns, and starts afresh: never a traceback.
        session = await daemon.run("deskmate.getSession", {"sessionId": damage})
        assert session["messages"] == [], damage
        for _ in range(100):
            if any(f'session "{damage}" was damaged' in m.message for m in daemon.client.messages):
                break
            await asyncio.sleep(0.05)
        assert any(f'session "{damage}" was damaged' in m.message for m in daemon.client.messages), damage
        assert list((data_dir / "sessions").glob(f"{damage}.jsonl.corrupt-*")), f"{damage} was not kept aside"
    healthy = await daemon.run("deskmate.getSession", {"sessionId": "healthy"})
    assert [m["content"] for m in healthy["messages"]] == ["hi"]
    for text in [m.message for m in daemon.client.messages] + [m.message for m in daemon.client.log_messages]:
        assert "Traceback" not in text
