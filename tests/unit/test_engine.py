"""The engine in-process: asking, cancelling, deleting and resolving sessions, with the fake model."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.engine import Assistant, EngineError, ModelError, SessionBusy, Settings
from deskmate.engine.workspaces import GLOBAL_SESSION_ID
from deskmate.memory import FileBackend, StorageError

from .fakes import WatchedStore


@pytest.fixture
async def watched(tmp_path, model, project):
    """An Assistant whose file store's appends are watched (and can be held or failed)."""
    store = WatchedStore(FileBackend(tmp_path / "store"))

    def factory(settings: Settings):
        model.settings = settings
        return model

    assistant = Assistant(
        Settings(data_dir=str(tmp_path / "data")), backend=store, warn=lambda _: None, model_factory=factory
    )
    assistant.sessions.workspaces.set_folders([project.as_uri()])
    yield assistant, store
    await assistant.close()


async def until(condition, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


async def test_an_ask_stores_the_question_and_the_answer(engine, model):
    ref = engine.sessions.resolve()
    result = await engine.asks.ask("what is this?", ref=ref)
    assert result.answer == "fake answer" and not result.interrupted
    session = (await engine.sessions.get(ref)).session
    assert [(m.role, m.content) for m in session.messages] == [
        ("user", "what is this?"),
        ("assistant", "fake answer"),
    ]
    assert session.title == "what is this?"
    assert session.messages[1].usage == {"promptTokens": 2, "completionTokens": 2, "totalTokens": 4}


async def test_the_history_goes_into_the_next_prompt(engine, model):
    ref = engine.sessions.resolve()
    await engine.asks.ask("first", ref=ref)
    await engine.asks.ask("second", ref=ref)
    assert [m["content"] for m in model.prompts[-1][1:]] == ["first", "fake answer", "second"]


async def test_a_cancelled_answer_keeps_what_was_seen(engine, model):
    model.answer, model.gate = "one two three", asyncio.Event()
    ref = engine.sessions.resolve()
    seen: list[str] = []
    asking = asyncio.ensure_future(engine.asks.ask("q", ref=ref, ask_id="a1", on_delta=seen.append))
    await model.started.wait()
    assert engine.asks.cancel("a1") and not engine.asks.cancel("nope")
    result = await asking
    assert result.interrupted and result.answer == "one " == "".join(seen)
    stored = (await engine.sessions.get(ref)).session.messages[-1]
    assert stored.status == "interrupted" and stored.content == "one "


async def test_a_second_ask_in_a_busy_session_is_refused(engine, model):
    model.gate = asyncio.Event()
    ref = engine.sessions.resolve()
    first = asyncio.ensure_future(engine.asks.ask("q", ref=ref, ask_id="first"))
    await model.started.wait()
    with pytest.raises(SessionBusy, match="still answering"):
        await engine.asks.ask("again", ref=ref)
    with pytest.raises(EngineError, match="already running"):
        await engine.asks.ask("again", ref=engine.sessions.resolve(session_id="other"), ask_id="first")
    model.gate.set()
    await first


async def test_a_failed_answer_is_stored_interrupted_and_raised(engine, model):
    model.answer, model.fail = "partial", "the server fell over"
    ref = engine.sessions.resolve()
    with pytest.raises(ModelError, match="fell over"):
        await engine.asks.ask("q", ref=ref)
    stored = (await engine.sessions.get(ref)).session.messages
    assert [(m.content, m.status) for m in stored] == [("q", "complete"), ("partial", "interrupted")]


async def test_deleting_while_answering_leaves_nothing_behind(engine, model):
    model.gate = asyncio.Event()
    ref = engine.sessions.resolve(session_id="doomed")
    asking = asyncio.ensure_future(engine.asks.ask("q", ref=ref, ask_id="d"))
    await model.started.wait()
    deleting = asyncio.ensure_future(engine.delete_session("doomed", permanent=True))
    result = await asyncio.wait_for(asking, 5)
    assert (await deleting).deleted is True and result.interrupted
    assert await engine.store.backend.load("doomed") is None
    assert "doomed" not in {info.id for info, _ in await engine.sessions.list(all=True)}


async def test_trashing_while_answering_keeps_the_question_and_stores_no_answer(engine, model):
    model.gate = asyncio.Event()
    ref = engine.sessions.resolve(session_id="binned")
    asking = asyncio.ensure_future(engine.asks.ask("q", ref=ref, ask_id="b"))
    await model.started.wait()
    deleting = asyncio.ensure_future(engine.delete_session("binned"))
    result = await asyncio.wait_for(asking, 5)
    done = await deleting
    assert (done.deleted, done.trashed) == (True, True) and result.interrupted
    stored = await engine.store.backend.load("binned")
    assert [m.content for m in stored.messages] == ["q"] and stored.meta.deleted_at


def test_resolve_picks_the_session_a_request_means(engine, project, tmp_path):
    folder = project.as_uri()
    default = engine.sessions.resolve()
    assert default.workspace_uri == folder and default.id.startswith("project-")
    assert engine.sessions.resolve(session_id="mine").id == "mine"
    inside = engine.sessions.resolve(context_uri=(project / "main.py").as_uri())
    assert inside.id == default.id
    assert engine.sessions.resolve(context_uri=(tmp_path / "elsewhere.py").as_uri()).id == GLOBAL_SESSION_ID
    engine.sessions.workspaces.set_folders([])
    assert engine.sessions.resolve().id is None  # no folder: the unsaved conversation


async def test_new_and_switch_change_the_active_session(engine):
    fresh = await engine.sessions.new(title="A plan")
    listed = {info.id: active for info, active in await engine.sessions.list()}
    assert listed[fresh.id] is True
    await engine.asks.ask("in the fresh one", ref=engine.sessions.resolve())
    default_id = engine.sessions.resolve().id
    assert default_id == fresh.id
    other = await engine.sessions.new()
    await engine.sessions.switch(fresh.id)
    assert engine.sessions.resolve().id == fresh.id != other.id
    session = (await engine.sessions.get(engine.sessions.resolve())).session
    assert session.title == "A plan"  # a title given by the user is kept


async def test_autosave_off_keeps_sessions_in_memory_until_saved(engine, model):
    await engine.update_settings(engine.settings.merged({"autoSave": False})[0])
    ref = engine.sessions.resolve()
    await engine.asks.ask("unsaved", ref=ref)
    assert await engine.store.backend.load(ref.id) is None
    view = await engine.sessions.get(ref)
    assert not view.persisted and len(view.session.messages) == 2
    await engine.sessions.save(ref)
    assert len((await engine.store.backend.load(ref.id)).messages) == 2


async def test_changing_the_model_lets_a_streaming_answer_finish(engine, model):
    model.answer, model.gate = "still streaming", asyncio.Event()
    asking = asyncio.ensure_future(engine.asks.ask("q", ref=engine.sessions.resolve()))
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
    engine._settings = engine.settings.merged({"baseUrl": "http://me:Zx81pw@proxy:8080/v1"})[0]
    assert engine.status().base_url == "http://me:***@proxy:8080/v1"


async def test_autosave_off_a_saved_session_reads_as_persisted_until_changed(engine, model):
    await engine.update_settings(engine.settings.merged({"autoSave": False})[0])
    ref = engine.sessions.resolve()
    await engine.asks.ask("one", ref=ref)
    assert not (await engine.sessions.get(ref)).persisted
    await engine.sessions.save(ref)
    assert (await engine.sessions.get(ref)).persisted
    await engine.asks.ask("two", ref=ref)
    assert not (await engine.sessions.get(ref)).persisted  # a new turn, not saved yet
    await engine.sessions.load(ref)  # back to what is stored
    view = await engine.sessions.get(ref)
    assert view.persisted and len(view.session.messages) == 2


@pytest.mark.parametrize("auto_save", [True, False])
async def test_a_new_untitled_session_takes_its_first_questions_title(engine, model, auto_save):
    # The title rule lives in the engine (sessions.first_title); stores only keep what they are given.
    if not auto_save:
        await engine.update_settings(engine.settings.merged({"autoSave": False})[0])
    fresh = await engine.sessions.new()
    ref = engine.sessions.resolve()
    assert ref.id == fresh.id
    await engine.asks.ask("How do the tests start the model server?\nsecond line", ref=ref)
    await engine.asks.ask("a later question", ref=ref)
    session = (await engine.sessions.get(ref)).session
    assert session.title == "How do the tests start the model server?"
    assert len(session.messages) == 4
    listed = {info.id: info for info, _ in await engine.sessions.list()}
    assert listed[fresh.id].title == "How do the tests start the model server?"


async def test_the_answer_streams_while_the_question_is_written_and_is_stored_after_it(watched, model):
    engine, store = watched
    store.question_gate = asyncio.Event()  # the question's write does not finish until we say so
    model.answer = "the whole answer"
    ref = engine.sessions.resolve()
    seen: list[str] = []
    asking = asyncio.ensure_future(engine.asks.ask("q", ref=ref, on_delta=seen.append))
    await until(lambda: "".join(seen) == "the whole answer")
    # The model was asked and streamed all of it beside the question's write (which starts
    # once the first piece is out: a few turns of the loop later, on a loaded machine)...
    await until(lambda: store.events == ["user write starts"])
    # ...but no byte of the answer is stored, and no result returned, before the question is.
    await asyncio.sleep(0.05)
    assert not asking.done() and store.events == ["user write starts"]
    store.question_gate.set()
    result = await asyncio.wait_for(asking, 5)
    assert result.answer == "the whole answer"
    assert store.events == ["user write starts", "user stored", "assistant write starts", "assistant stored"]
    stored = await store.inner.load(ref.id)
    assert [(m.role, m.content) for m in stored.messages] == [
        ("user", "q"),
        ("assistant", "the whole answer"),
    ]


async def test_a_failed_question_write_fails_the_ask_and_stops_the_answer(watched, model):
    engine, store = watched
    store.question_gate = asyncio.Event()
    store.question_error = StorageError("the disk is on fire")
    model.answer, model.pause = " ".join(f"w{i}" for i in range(200)), 0.005
    ref = engine.sessions.resolve()
    asking = asyncio.ensure_future(engine.asks.ask("q", ref=ref))
    await model.started.wait()
    store.question_gate.set()
    with pytest.raises(StorageError, match="the disk is on fire"):
        await asyncio.wait_for(asking, 5)
    assert model.sent < 200, "the answer went on streaming after its question could not be stored"
    assert "assistant write starts" not in store.events
    assert await store.inner.load(ref.id) is None
    assert engine.asks.running() == []  # the session is free again
    store.question_error = None
    assert (await engine.asks.ask("again", ref=ref)).answer == model.answer
