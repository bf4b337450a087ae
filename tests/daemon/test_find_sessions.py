"""Rename, tags, pins and search through the real daemon, on every store.

A rename survives a restart; tags and pins round-trip and order listings; search finds the
right message, ranks, matches phrases and Unicode; the index, deleted, is rebuilt; a deleted
session leaves no results.
"""

from __future__ import annotations

import pytest
from pygls.exceptions import JsonRpcException

from deskmate.engine.titles import clean_title
from helpers import eventually


async def new_session(daemon, *questions: str) -> str:
    made = await daemon.run("deskmate.newSession", {})
    for question in questions:
        await daemon.ask(question)
    return made["sessionId"]


async def test_rename_tag_pin_and_search_on_every_store(start_daemon, project, store_settings, data_dir):
    daemon = await start_daemon(folders=[project], settings=store_settings)
    parser = await new_session(daemon, "How does parse_args read --verbose?", "Und die Größe der Datei?")
    other = await new_session(daemon, "Where is the config file loaded?")
    history = await daemon.run("deskmate.getSession", {"sessionId": parser})
    question_id = history["messages"][0]["id"]

    assert await daemon.run("deskmate.renameSession", {"sessionId": parser, "title": "Parser notes"}) == {
        "sessionId": parser,
        "title": "Parser notes",
    }
    tagged = await daemon.run("deskmate.tagSession", {"sessionId": parser, "add": ["cli", "Work"]})
    assert tagged == {"sessionId": parser, "tags": ["cli", "Work"]}
    assert await daemon.run("deskmate.pinSession", {"sessionId": parser, "pinned": True}) == {
        "sessionId": parser,
        "pinned": True,
    }
    await daemon.ask("one more in the parser session", sessionId=parser)  # the title stays the user's

    found = await daemon.run("deskmate.searchSessions", {"query": "PARSE_ARGS"})
    assert found["total"] == 2  # the question, and the test model's answer that repeats it
    best = found["results"][0]
    assert best | {"timestamp": None, "snippet": None} == {
        "sessionId": parser,
        "title": "Parser notes",
        "messageId": question_id,
        "role": "user",
        "timestamp": None,
        "snippet": None,
    }
    # Highlighted: the file store marks the identifier whole, PostgreSQL each of its words.
    assert "**parse" in best["snippet"] and best["snippet"].replace("**", "").startswith(
        "How does parse_args read --verbose"
    )
    assert (await daemon.run("deskmate.searchSessions", {"query": '"config file"'}))["results"][0][
        "sessionId"
    ] == other
    assert (await daemon.run("deskmate.searchSessions", {"query": '"file config"'}))["total"] == 0
    assert (await daemon.run("deskmate.searchSessions", {"query": "GRÖßE", "role": "user"}))["total"] == 1
    assert (await daemon.run("deskmate.searchSessions", {"query": "config", "tag": "work"}))["total"] == 0

    async def check(client) -> None:
        listed = (await client.run("deskmate.listSessions", {}))["sessions"]
        assert listed[0]["sessionId"] == parser  # pinned first, though not the latest
        assert (listed[0]["title"], listed[0]["tags"], listed[0]["pinned"]) == (
            "Parser notes",
            ["cli", "Work"],
            True,
        )
        assert [
            s["sessionId"] for s in (await client.run("deskmate.listSessions", {"tag": "cli"}))["sessions"]
        ] == [parser]
        hits = await client.run("deskmate.searchSessions", {"query": "verbose", "role": "user"})
        assert [(h["sessionId"], h["messageId"]) for h in hits["results"]] == [(parser, question_id)]

    await check(daemon)
    await daemon.stop()
    for index in (data_dir / "search").glob("*.sqlite3*"):
        index.unlink()  # derived data: the next daemon rebuilds it from the sessions
    restarted = await start_daemon(folders=[project], settings=store_settings)
    await check(restarted)

    await restarted.run("deskmate.deleteSession", {"sessionId": parser})
    assert (await restarted.run("deskmate.searchSessions", {"query": "verbose", "all": True}))["total"] == 0


async def test_bad_arguments_and_unknown_sessions(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    for name, arguments, code in (
        ("deskmate.renameSession", {"sessionId": "nope", "title": "t"}, -32803),
        ("deskmate.tagSession", {"sessionId": "nope", "add": ["t"]}, -32803),
        ("deskmate.pinSession", {"sessionId": "nope", "pinned": True}, -32803),
        ("deskmate.renameSession", {"sessionId": "nope", "title": "x" * 201}, -32602),
        ("deskmate.tagSession", {"sessionId": "nope", "add": ["a b"]}, -32602),
        ("deskmate.searchSessions", {"query": ""}, -32602),
    ):
        with pytest.raises(JsonRpcException) as failure:
            await daemon.run(name, arguments)
        assert failure.value.code == code, (name, failure.value.message)


async def test_automatic_titles_never_replace_a_users_title_on_every_store(
    start_daemon, project, store_settings
):
    settings = {**store_settings, "autoTitle": True}
    daemon = await start_daemon(folders=[project], settings=settings)
    first = await new_session(daemon, "How do I read a file?\nSecond line")

    async def titled(session_id: str, expected: str) -> bool:
        listed = (await daemon.run("deskmate.listSessions", {"all": True}))["sessions"]
        return any(s["sessionId"] == session_id and s["title"] == expected for s in listed)

    # The test model answers "You asked: …": that is the title it gives, in the background.
    model_title = "You asked: How do I read a file?\nSecond line. I see 0 earlier messages."
    await eventually(lambda: titled(first, clean_title(model_title)), timeout=15, interval=0.1)

    named = await new_session(daemon)
    await daemon.run("deskmate.renameSession", {"sessionId": named, "title": "Mine"})
    await daemon.ask("What is this project?")
    await daemon.stop()
    restarted = await start_daemon(folders=[project], settings=settings)
    listed = {s["sessionId"]: s for s in (await restarted.run("deskmate.listSessions", {}))["sessions"]}
    assert listed[named]["title"] == "Mine"  # the user's title survives the automatic one and a restart
    assert listed[first]["title"] == clean_title(model_title)


async def test_pages_list_what_the_whole_listing_lists_on_every_store(start_daemon, project, store_settings):
    daemon = await start_daemon(folders=[project], settings=store_settings)
    made = [await new_session(daemon, f"question {i}") for i in range(5)]
    await daemon.run("deskmate.pinSession", {"sessionId": made[1], "pinned": True})
    await daemon.run("deskmate.tagSession", {"sessionId": made[3], "add": ["Odd"]})
    await daemon.run("deskmate.tagSession", {"sessionId": made[1], "add": ["odd"]})
    await daemon.run("deskmate.newSession", {})  # the folder's active session, not stored yet
    await daemon.run("deskmate.searchSessions", {"query": "question"})  # the index has caught up

    async def paged(arguments: dict) -> list[dict]:
        sessions, cursor = [], None
        while True:
            page = await daemon.run(
                "deskmate.listSessions", {**arguments, "limit": 2, **({"cursor": cursor} if cursor else {})}
            )
            assert len(page["sessions"]) <= 2
            sessions += page["sessions"]
            cursor = page["nextCursor"]
            if cursor is None:
                return sessions

    for arguments in ({}, {"all": True}, {"tag": "ODD"}, {"pinned": True}, {"pinned": False}):
        whole = (await daemon.run("deskmate.listSessions", arguments))["sessions"]
        assert [s["sessionId"] for s in await paged(arguments)] == [s["sessionId"] for s in whole], arguments
    whole = (await daemon.run("deskmate.listSessions", {}))["sessions"]
    assert whole[0]["sessionId"] == made[1] and len(whole) == 6
    assert [
        s["sessionId"] for s in (await daemon.run("deskmate.listSessions", {"tag": "odd"}))["sessions"]
    ] == [
        made[1],
        made[3],
    ]


async def test_rebuilding_the_index_shows_progress(start_daemon, project, data_dir):
    daemon = await start_daemon(folders=[project])
    for i in range(3):
        await new_session(daemon, f"rebuild me {i}")
    await daemon.stop()
    for index in (data_dir / "search").glob("*.sqlite3*"):
        index.unlink()
    restarted = await start_daemon(folders=[project])
    found = await restarted.run("deskmate.searchSessions", {"query": "rebuild"})
    assert found["total"] == 6  # each question, and the answer repeating it

    def indexing_ended():
        for reports in restarted.client.progress_reports.values():
            titles = [getattr(r, "title", None) for r in reports]
            if (
                "deskmate: indexing sessions for search" in titles
                and type(reports[-1]).__name__ == "WorkDoneProgressEnd"
            ):
                return reports
        return None

    reports = await eventually(indexing_ended, timeout=10)
    assert reports[0].message.endswith("/3")
