"""The engine in-process: asking, cancelling, deleting and resolving sessions, with the fake model."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.engine import EngineError, ModelError, SessionBusy
from deskmate.engine.workspaces import GLOBAL_SESSION_ID


async def test_an_ask_stores_the_question_and_the_answer(engine, model):
    ref = engine.resolve()
    result = await engine.ask("what is this?", ref=ref)
    assert result.answer == "fake answer" and not result.interrupted
    session = (await engine.get_session(ref)).session
    assert [(m.role, m.content) for m in session.messages] == [
        ("user", "what is this?"),
        ("assistant", "fake answer"),
    ]
    assert session.title == "what is this?"
    assert session.messages[1].usage == {"promptTokens": 2, "completionTokens": 2, "totalTokens": 4}


async def test_the_history_goes_into_the_next_prompt(engine, model):
    ref = engine.resolve()
    await engine.ask("first", ref=ref)
    await engine.ask("second", ref=ref)
    assert [m["content"] for m in model.prompts[-1][1:]] == ["first", "fake answer", "second"]


async def test_a_cancelled_answer_keeps_what_was_seen(engine, model):
    model.answer, model.gate = "one two three", asyncio.Event()
    ref = engine.resolve()
    seen: list[str] = []
    asking = asyncio.ensure_future(engine.ask("q", ref=ref, ask_id="a1", on_delta=seen.append))
    await model.started.wait()
    assert engine.cancel("a1") and not engine.cancel("nope")
    result = await asking
    assert result.interrupted and result.answer == "one " == "".join(seen)
    stored = (await engine.get_session(ref)).session.messages[-1]
    assert stored.status == "interrupted" and stored.content == "one "


async def test_a_second_ask_in_a_busy_session_is_refused(engine, model):
    model.gate = asyncio.Event()
    ref = engine.resolve()
    first = asyncio.ensure_future(engine.ask("q", ref=ref, ask_id="first"))
    await model.started.wait()
    with pytest.raises(SessionBusy, match="still answering"):
        await engine.ask("again", ref=ref)
    with pytest.raises(EngineError, match="already running"):
        await engine.ask("again", ref=engine.resolve(session_id="other"), ask_id="first")
    model.gate.set()
    await first


async def test_a_failed_answer_is_stored_interrupted_and_raised(engine, model):
    model.answer, model.fail = "partial", "the server fell over"
    ref = engine.resolve()
    with pytest.raises(ModelError, match="fell over"):
        await engine.ask("q", ref=ref)
    stored = (await engine.get_session(ref)).session.messages
    assert [(m.content, m.status) for m in stored] == [("q", "complete"), ("partial", "interrupted")]


async def test_deleting_while_answering_leaves_nothing_behind(engine, model):
    model.gate = asyncio.Event()
    ref = engine.resolve(session_id="doomed")
    asking = asyncio.ensure_future(engine.ask("q", ref=ref, ask_id="d"))
    await model.started.wait()
    deleting = asyncio.ensure_future(engine.delete_session("doomed"))
    result = await asyncio.wait_for(asking, 5)
    assert await deleting is True and result.interrupted
    assert await engine.backend.load("doomed") is None
    assert "doomed" not in {info.id for info, _ in await engine.list_sessions(all=True)}


def test_resolve_picks_the_session_a_request_means(engine, project, tmp_path):
    folder = project.as_uri()
    default = engine.resolve()
    assert default.folder == folder and default.id.startswith("project-")
    assert engine.resolve(session_id="mine").id == "mine"
    inside = engine.resolve(context_uri=(project / "main.py").as_uri())
    assert inside.id == default.id
    assert engine.resolve(context_uri=(tmp_path / "elsewhere.py").as_uri()).id == GLOBAL_SESSION_ID
    engine.workspaces.set_folders([])
    assert engine.resolve().id is None  # no folder: the unsaved conversation


async def test_new_and_switch_change_the_active_session(engine):
    fresh = await engine.new_session(title="A plan")
    listed = {info.id: active for info, active in await engine.list_sessions()}
    assert listed[fresh.id] is True
    await engine.ask("in the fresh one", ref=engine.resolve())
    default_id = engine.resolve().id
    assert default_id == fresh.id
    other = await engine.new_session()
    await engine.switch_session(fresh.id)
    assert engine.resolve().id == fresh.id != other.id
    session = (await engine.get_session(engine.resolve())).session
    assert session.title == "A plan"  # a title given by the user is kept


async def test_autosave_off_keeps_sessions_in_memory_until_saved(engine, model):
    await engine.update_settings(engine.settings.merged({"autoSave": False})[0])
    ref = engine.resolve()
    await engine.ask("unsaved", ref=ref)
    assert await engine.backend.load(ref.id) is None
    view = await engine.get_session(ref)
    assert not view.persisted and len(view.session.messages) == 2
    await engine.save_session(ref)
    assert len((await engine.backend.load(ref.id)).messages) == 2


async def test_changing_the_model_lets_a_streaming_answer_finish(engine, model):
    model.answer, model.gate = "still streaming", asyncio.Event()
    asking = asyncio.ensure_future(engine.ask("q", ref=engine.resolve()))
    await model.started.wait()
    await engine.update_settings(engine.settings.merged({"model": "another"})[0])
    assert not model.closed  # the old client is not closed under a running answer
    model.gate.set()
    result = await asking
    assert result.answer == "still streaming" and not result.interrupted
    for _ in range(100):  # closed once the answer is done, a few loop turns later
        if model.closed:
            break
        await asyncio.sleep(0)
    assert model.closed


def test_status_masks_a_password_in_the_base_url(engine):
    engine._state.settings = engine.settings.merged({"baseUrl": "http://me:Zx81pw@proxy:8080/v1"})[0]
    assert engine.status()["baseUrl"] == "http://me:***@proxy:8080/v1"
