"""Rename, tag and pin in-process: the engine's rules and the commands' answers and errors."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.engine import InvalidArgument
from deskmate.engine.labels import retagged
from deskmate.memory import SessionNotFound

from .test_handlers import wire  # noqa: F401  (the in-process server fixture)


async def asked(engine, question: str = "How does the parser work?") -> str:
    ref = engine.sessions.resolve()
    await engine.asks.ask(question, ref=ref)
    return ref.id


async def test_a_rename_is_kept_and_marked_as_the_users(engine):
    session_id = await asked(engine)
    info = await engine.labels.rename(session_id, "  Parser notes  ")
    assert info.title == "Parser notes" and info.meta.user_title is True
    stored = await engine.sessions.stored(session_id)
    assert stored.title == "Parser notes" and len(stored.messages) == 2


async def test_tags_are_added_and_removed_without_regard_to_case(engine):
    session_id = await asked(engine)
    assert (await engine.labels.tag(session_id, ["parser", "Bug"], [])).meta.tags == ["parser", "Bug"]
    assert (await engine.labels.tag(session_id, ["bug", "ui"], ["PARSER"])).meta.tags == ["Bug", "ui"]
    assert retagged(["a"], ["A", "b"], []) == ["a", "b"]


async def test_concurrent_tag_edits_keep_every_tag(engine):
    session_id = await asked(engine)
    await asyncio.gather(*(engine.labels.tag(session_id, [f"t{i}"], []) for i in range(8)))
    stored = await engine.sessions.stored(session_id)
    assert sorted(stored.meta.tags) == [f"t{i}" for i in range(8)]


async def test_pins_round_trip(engine):
    session_id = await asked(engine)
    assert (await engine.labels.pin(session_id, True)).meta.pinned is True
    assert (await engine.sessions.stored(session_id)).meta.pinned is True
    assert (await engine.labels.pin(session_id, False)).meta.pinned is False


@pytest.mark.parametrize(
    ("title", "problem"),
    [("   ", "must not be empty"), ("x" * 201, "the limit is 200"), ("two\nlines", "one line")],
)
async def test_bad_titles_are_refused_naming_the_problem(engine, title, problem):
    session_id = await asked(engine)
    with pytest.raises(InvalidArgument, match=problem):
        await engine.labels.rename(session_id, title)


async def test_bad_tags_and_too_many_tags_are_refused(engine):
    session_id = await asked(engine)
    for tag in ("", "two words", "a,b", "x" * 51):
        with pytest.raises(InvalidArgument):
            await engine.labels.tag(session_id, [tag], [])
    with pytest.raises(InvalidArgument, match="at most 20 tags"):
        await engine.labels.tag(session_id, [f"t{i}" for i in range(21)], [])
    assert (await engine.sessions.stored(session_id)).meta.tags == []


async def test_unknown_sessions_are_not_found(engine):
    with pytest.raises(SessionNotFound):
        await engine.labels.pin("no-such-session", True)


async def test_the_commands_answer_and_refuse_with_the_protocols_codes(wire):  # noqa: F811
    asked_reply = await wire.command("deskmate.ask", {"question": "hello"})
    session_id = asked_reply["result"]["sessionId"]
    renamed = await wire.command("deskmate.renameSession", {"sessionId": session_id, "title": "Greeting"})
    assert renamed["result"] == {"sessionId": session_id, "title": "Greeting"}
    tagged = await wire.command(
        "deskmate.tagSession", {"sessionId": session_id, "add": ["a", "b"], "remove": ["a"]}
    )
    assert tagged["result"] == {"sessionId": session_id, "tags": ["b"]}
    pinned = await wire.command("deskmate.pinSession", {"sessionId": session_id, "pinned": True})
    assert pinned["result"] == {"sessionId": session_id, "pinned": True}
    for name, arguments, fragment in (
        ("deskmate.renameSession", {"sessionId": session_id}, '"title" is required'),
        ("deskmate.renameSession", {"sessionId": session_id, "title": "a\tb"}, '"title"'),
        ("deskmate.tagSession", {"sessionId": session_id, "add": "x"}, '"add" must be a list'),
        ("deskmate.tagSession", {"sessionId": session_id, "add": ["x y"]}, '"add"'),
        ("deskmate.pinSession", {"sessionId": session_id}, '"pinned" is required'),
        ("deskmate.pinSession", {"sessionId": session_id, "pinned": "yes"}, '"pinned" must be true or false'),
        ("deskmate.pinSession", {"pinned": True}, '"sessionId" is required'),
    ):
        reply = await wire.command(name, arguments)
        assert reply["error"]["code"] == -32602 and fragment in reply["error"]["message"], (name, reply)
    missing = await wire.command("deskmate.renameSession", {"sessionId": "nope", "title": "t"})
    assert missing["error"]["code"] == -32803 and "'nope' does not exist" in missing["error"]["message"]


async def test_listings_put_pinned_first_filter_and_page(wire):  # noqa: F811
    ids = []
    for title in ("one", "two", "three"):
        made = await wire.command("deskmate.newSession", {"title": title})
        ids.append(made["result"]["sessionId"])
        await wire.command("deskmate.ask", {"question": f"q {title}"})
    await wire.command("deskmate.pinSession", {"sessionId": ids[0], "pinned": True})
    await wire.command("deskmate.tagSession", {"sessionId": ids[1], "add": ["Work"]})
    listed = (await wire.command("deskmate.listSessions", {}))["result"]
    assert [s["sessionId"] for s in listed["sessions"]][:3] == [ids[0], ids[2], ids[1]]
    assert listed["nextCursor"] is None
    tagged = (await wire.command("deskmate.listSessions", {"tag": "work"}))["result"]["sessions"]
    assert [s["sessionId"] for s in tagged] == [ids[1]]
    pinned = (await wire.command("deskmate.listSessions", {"pinned": True}))["result"]["sessions"]
    assert [s["sessionId"] for s in pinned] == [ids[0]]
    first = (await wire.command("deskmate.listSessions", {"limit": 2}))["result"]
    assert [s["sessionId"] for s in first["sessions"]] == [ids[0], ids[2]] and first["nextCursor"]
    rest = (await wire.command("deskmate.listSessions", {"limit": 2, "cursor": first["nextCursor"]}))[
        "result"
    ]
    assert rest["sessions"][0]["sessionId"] == ids[1]
    for arguments, fragment in (({"limit": 0}, '"limit"'), ({"cursor": "x"}, '"cursor"')):
        reply = await wire.command("deskmate.listSessions", arguments)
        assert reply["error"]["code"] == -32602 and fragment in reply["error"]["message"]
