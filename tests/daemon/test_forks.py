"""Forks through the real daemon, on every store: fork, edit and resend, regenerate.

Both branches' histories are checked message by message, the source is untouched, the
lineage is listed, and all of it holds after the daemon restarts.
"""

from __future__ import annotations

import pytest
from pygls.exceptions import JsonRpcException


def contents(session: dict) -> list[str]:
    return [m["content"] for m in session["messages"]]


async def test_fork_edit_and_regenerate_keep_both_branches(start_daemon, project, store_settings):
    daemon = await start_daemon(folders=[project], settings=store_settings)
    await daemon.ask("one")
    second = await daemon.ask("two")
    source = await daemon.run("deskmate.getSession", {})
    source_id = second["sessionId"]
    assert contents(source) == [
        "one",
        "You asked: one. I see 0 earlier messages.",
        "two",
        "You asked: two. I see 2 earlier messages.",
    ]
    ids = [m["id"] for m in source["messages"]]

    # Fork at the first answer: the fork holds the first turn and becomes the active session.
    forked = await daemon.run("deskmate.forkSession", {"messageId": ids[1]})
    assert forked["forkedFrom"] == {"sessionId": source_id, "messageId": ids[1]}
    assert forked["title"] == "one (fork)" and forked["messageCount"] == 2
    fork = await daemon.run("deskmate.getSession", {})
    assert fork["sessionId"] == forked["sessionId"] and fork["active"] is True
    assert contents(fork) == contents(source)[:2] and [m["id"] for m in fork["messages"]] == ids[:2]
    in_fork = await daemon.ask("three")
    assert in_fork["sessionId"] == forked["sessionId"]
    assert in_fork["answer"] == "You asked: three. I see 2 earlier messages."

    # Edit and resend the second question of the source: a fork with the first turn, then the new text.
    edited = await daemon.ask("two, reworded", sessionId=source_id, editMessageId=ids[2])
    assert edited["forkedFrom"] == {"sessionId": source_id, "messageId": ids[2]}
    assert edited["answer"] == "You asked: two, reworded. I see 2 earlier messages."
    # Regenerate the second answer: the same question again, in another fork.
    again = await daemon.run(
        "deskmate.ask", {"sessionId": source_id, "editMessageId": ids[3], "regenerate": True}
    )
    assert again["forkedFrom"] == {"sessionId": source_id, "messageId": ids[2]}
    assert again["answer"] == "You asked: two. I see 2 earlier messages."
    assert len({source_id, forked["sessionId"], edited["sessionId"], again["sessionId"]}) == 4

    async def check(client) -> None:
        assert contents(await client.run("deskmate.getSession", {"sessionId": source_id})) == contents(source)
        branches = {
            forked["sessionId"]: contents(source)[:2] + ["three", in_fork["answer"]],
            edited["sessionId"]: contents(source)[:2] + ["two, reworded", edited["answer"]],
            again["sessionId"]: contents(source)[:2] + ["two", again["answer"]],
        }
        for session_id, expected in branches.items():
            branch = await client.run("deskmate.getSession", {"sessionId": session_id})
            assert contents(branch) == expected
            assert [m["id"] for m in branch["messages"][:2]] == ids[:2]
            assert branch["forkedFrom"]["sessionId"] == source_id
        held = await client.run("deskmate.getSession", {"sessionId": source_id})
        assert held["forkedFrom"] is None
        assert [(f["sessionId"], f["messageId"]) for f in held["forks"]] == [
            (forked["sessionId"], ids[1]),
            (edited["sessionId"], ids[2]),
            (again["sessionId"], ids[2]),
        ]
        listed = {s["sessionId"]: s for s in (await client.run("deskmate.listSessions", {}))["sessions"]}
        assert listed[source_id]["forkedFrom"] is None
        assert listed[edited["sessionId"]]["forkedFrom"] == edited["forkedFrom"]
        assert listed[again["sessionId"]]["active"] is True  # the last fork made is the folder's session

    await check(daemon)
    await daemon.stop()
    await check(await start_daemon(folders=[project], settings=store_settings))


async def test_unknown_sessions_and_messages_are_refused_clearly(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    await daemon.ask("one")
    for arguments, fragment in (
        ({"messageId": "no-such-message"}, 'has no message "no-such-message"'),
        ({"messageId": "m", "sessionId": "no-such-session"}, "'no-such-session' does not exist"),
    ):
        with pytest.raises(JsonRpcException) as failure:
            await daemon.run("deskmate.forkSession", arguments)
        assert failure.value.code == -32803 and fragment in failure.value.message
    with pytest.raises(JsonRpcException) as failure:
        await daemon.run("deskmate.forkSession", {})
    assert failure.value.code == -32602 and '"messageId" is required' in failure.value.message
