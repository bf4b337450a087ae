"""Forks in-process: the engine's fork, edit and regenerate, and their commands, with the fake model."""

from __future__ import annotations

import pytest

from deskmate.engine import EngineError
from deskmate.memory import SessionNotFound

from .test_handlers import wire  # noqa: F401  (the in-process LSP fixture)


async def _conversation(engine, model, *questions: str):
    ref = engine.sessions.resolve()
    for question in questions:
        model.answer = f"answer to {question}"
        await engine.asks.ask(question, ref=ref)
    return ref, (await engine.sessions.get(ref)).session


def _turns(session) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in session.messages]


async def test_a_fork_copies_the_history_up_to_the_message_and_becomes_active(engine, model):
    ref, source = await _conversation(engine, model, "one", "two", "three")
    fork, lineage = await engine.forks.fork(ref, source.messages[3].id)
    assert _turns(fork) == _turns(source)[:4]
    assert [m.id for m in fork.messages] == [m.id for m in source.messages[:4]]
    assert (lineage.session_id, lineage.message_id) == (source.id, source.messages[3].id)
    assert fork.title == "one (fork)" and fork.id != source.id
    assert engine.sessions.resolve().id == fork.id  # the folder's active session now
    stored = await engine.sessions.stored(fork.id)
    assert _turns(stored) == _turns(fork) and stored.meta.forked_from == lineage.to_record()
    assert _turns(await engine.sessions.stored(source.id)) == _turns(source)  # untouched
    forks = await engine.forks.of(source.id)
    assert [(f.session_id, f.message_id, f.title) for f in forks] == [
        (fork.id, lineage.message_id, fork.title)
    ]


async def test_a_fork_never_takes_a_stored_sessions_id_and_a_fork_of_a_fork_keeps_one_suffix(
    engine, model, monkeypatch
):
    ref, source = await _conversation(engine, model, "one")
    first, _ = await engine.forks.fork(ref, source.messages[1].id)
    offered = iter([first.id, source.id, "project-fresh-1"])  # two taken ids, then a free one
    monkeypatch.setattr("deskmate.engine.forks.fresh_session_id", lambda folder: next(offered))
    second, _ = await engine.forks.fork(engine.sessions.resolve(session_id=first.id), first.messages[0].id)
    assert second.id == "project-fresh-1" and second.title == "one (fork)"
    assert _turns(await engine.sessions.stored(first.id)) == _turns(first)  # not replaced
    assert _turns(await engine.sessions.stored(source.id)) == _turns(source)


async def test_a_fork_can_be_titled_and_unknown_sessions_or_messages_are_refused(engine, model):
    ref, source = await _conversation(engine, model, "one")
    fork, _ = await engine.forks.fork(ref, source.messages[0].id, "my branch")
    assert fork.title == "my branch" and _turns(fork) == [("user", "one")]
    with pytest.raises(EngineError, match='has no message "nope"'):
        await engine.forks.fork(engine.sessions.resolve(session_id=source.id), "nope")
    with pytest.raises(SessionNotFound):
        await engine.forks.fork(engine.sessions.resolve(session_id="never-there"), source.messages[0].id)


async def test_edit_forks_before_the_question_and_asks_the_new_text(engine, model):
    ref, source = await _conversation(engine, model, "one", "two")
    edit = await engine.fork_for_edit(ref, source.messages[2].id, "two, better", None)
    model.answer = "better answer"
    result = await engine.asks.ask(edit.question, ref=edit.ref)
    fork = await engine.sessions.stored(edit.fork.id)
    assert result.session_id == fork.id
    assert _turns(fork) == _turns(source)[:2] + [("user", "two, better"), ("assistant", "better answer")]
    assert edit.lineage.message_id == source.messages[2].id
    assert [m["content"] for m in model.prompts[-1][1:]] == ["one", "answer to one", "two, better"]
    assert _turns(await engine.sessions.stored(source.id)) == _turns(source)


async def test_regenerate_asks_the_same_question_from_the_question_or_its_answer(engine, model):
    ref, source = await _conversation(engine, model, "one", "two")
    for message in (source.messages[2], source.messages[3]):  # the question, or the answer to it
        edit = await engine.fork_for_edit(
            engine.sessions.resolve(session_id=source.id), message.id, None, None
        )
        assert edit.question == "two" and edit.lineage.message_id == source.messages[2].id
        assert _turns(edit.fork) == _turns(source)[:2]
    with pytest.raises(EngineError, match="not a question"):
        await engine.fork_for_edit(ref, source.messages[1].id, "new text", None)


async def test_fork_session_command_and_lineage_on_the_wire(wire, model):  # noqa: F811
    await wire.command("deskmate.ask", {"question": "first"})
    session = (await wire.command("deskmate.getSession"))["result"]
    assert session["forkedFrom"] is None and session["forks"] == []
    at = session["messages"][1]["id"]
    reply = (await wire.command("deskmate.forkSession", {"messageId": at, "title": "branch"}))["result"]
    assert reply["title"] == "branch" and reply["messageCount"] == 2
    assert reply["forkedFrom"] == {"sessionId": session["sessionId"], "messageId": at}
    fork = (await wire.command("deskmate.getSession"))["result"]
    assert fork["sessionId"] == reply["sessionId"] and fork["forkedFrom"] == reply["forkedFrom"]
    source = (await wire.command("deskmate.getSession", {"sessionId": session["sessionId"]}))["result"]
    assert source["forks"] == [{"sessionId": reply["sessionId"], "messageId": at, "title": "branch"}]
    listed = {s["sessionId"]: s for s in (await wire.command("deskmate.listSessions"))["result"]["sessions"]}
    assert listed[reply["sessionId"]]["forkedFrom"] == reply["forkedFrom"]
    assert listed[session["sessionId"]]["forkedFrom"] is None


async def test_fork_and_resend_arguments_are_checked(wire):  # noqa: F811
    for name, arguments, code, fragment in (
        ("deskmate.forkSession", {}, -32602, '"messageId" is required'),
        ("deskmate.forkSession", {"messageId": 3}, -32602, '"messageId" must be'),
        ("deskmate.forkSession", {"messageId": "m", "sessionId": "none-such"}, -32803, "does not exist"),
        ("deskmate.ask", {"regenerate": True}, -32602, '"editMessageId" is required'),
        (
            "deskmate.ask",
            {"regenerate": True, "editMessageId": "m", "question": "q"},
            -32602,
            '"question" must be',
        ),
        ("deskmate.ask", {"question": "q", "editMessageId": "missing"}, -32803, "does not exist"),
    ):
        reply = await wire.command(name, arguments)
        assert reply["error"]["code"] == code and fragment in reply["error"]["message"], reply


async def test_ask_with_edit_message_id_answers_in_a_fork(wire, model):  # noqa: F811
    first = (await wire.command("deskmate.ask", {"question": "first"}))["result"]
    assert first["forkedFrom"] is None
    session = (await wire.command("deskmate.getSession"))["result"]
    question = session["messages"][0]["id"]
    model.answer = "again"
    again = (await wire.command("deskmate.ask", {"regenerate": True, "editMessageId": question}))["result"]
    assert again["forkedFrom"] == {"sessionId": first["sessionId"], "messageId": question}
    assert again["sessionId"] != first["sessionId"] and again["answer"] == "again"
    deltas = [d for d in wire.notifications("deskmate/askDelta") if d["sessionId"] == again["sessionId"]]
    assert "".join(d["delta"] for d in deltas) == "again"
    fork = (await wire.command("deskmate.getSession"))["result"]
    assert [m["content"] for m in fork["messages"]] == ["first", "again"]
