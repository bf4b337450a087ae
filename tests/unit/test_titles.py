"""Automatic titles: the model names a session after its first answer; the first line stays
when the model fails or is slow, and a user's title is never replaced."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.engine import Assistant, ModelError, Settings
from deskmate.engine import titles as titles_module
from deskmate.engine.titles import clean_title, give_title

from .fakes import FakeModel


@pytest.fixture
async def titled(tmp_path, project):
    """An engine with autoTitle on (its default) and a fake model whose answers a test sets."""
    model = FakeModel(Settings(), "Parser walkthrough")

    def factory(settings):
        model.settings = settings
        return model

    assistant = Assistant(Settings(data_dir=str(tmp_path / "data")), model_factory=factory)
    assistant.sessions.workspaces.set_folders([project.as_uri()])
    assistant.model = model  # type: ignore[attr-defined]
    yield assistant
    await assistant.close()


async def first_answer(engine, question: str = "How does the parser work?\nIt is slow.") -> str:
    ref = engine.sessions.resolve()
    await engine.asks.ask(question, ref=ref)
    await asyncio.gather(*engine.asks.titling)
    return ref.id


async def title_of(engine, session_id: str) -> str:
    return (await engine.sessions.stored(session_id)).title


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Parser walkthrough."', "Parser walkthrough"),
        ("Title: **Fixing the cache**\nmore text", "Fixing the cache"),
        ("\n\n  A   spaced   title  ", "A spaced title"),
        ("x" * 100, "x" * 59 + "…"),
    ],
)
def test_the_models_answer_becomes_one_clean_line(answer, title):
    assert clean_title(answer) == title


async def test_after_the_first_answer_the_model_names_the_session(titled):
    session_id = await first_answer(titled)
    assert await title_of(titled, session_id) == "Parser walkthrough"
    asked = titled.model.prompts[-1]
    assert asked[0]["role"] == "system" and asked[1]["content"].startswith("How does the parser work?")
    await titled.asks.ask("a second question", ref=titled.sessions.resolve())
    assert not titled.asks.titling  # only after the first answer
    assert await title_of(titled, session_id) == "Parser walkthrough"


async def test_a_failing_model_leaves_the_first_line(titled, monkeypatch):
    session_id = await first_answer(titled)

    async def failing(model, question):
        raise ModelError("the model is down")

    monkeypatch.setattr(titles_module, "model_title", failing)
    await titled.sessions.new()
    other = await first_answer(titled, "Why is the build red?")
    assert await title_of(titled, other) == "Why is the build red?"
    assert await title_of(titled, session_id) == "Parser walkthrough"


async def test_a_slow_model_leaves_the_first_line(titled, monkeypatch):
    monkeypatch.setattr(titles_module, "TITLE_TIMEOUT", 0.05)
    titled.model.gate = asyncio.Event()  # the model never finishes
    ref = titled.sessions.resolve()
    ask = asyncio.ensure_future(titled.asks.ask("Why so slow?", ref=ref))
    await titled.model.started.wait()
    titled.model.gate.set()  # the answer may finish…
    await ask
    titled.model.gate = asyncio.Event()  # …but the title request hangs
    await asyncio.gather(*titled.asks.titling)
    assert await title_of(titled, ref.id) == "Why so slow?"


async def test_a_users_title_is_never_replaced(titled):
    await titled.sessions.new(title="")
    ref = titled.sessions.resolve()
    await titled.asks.ask("Where is the config?", ref=ref)
    await asyncio.gather(*titled.asks.titling)
    await titled.labels.rename(ref.id, "My config notes")
    # An automatic title arriving after the rename finds the user's title and leaves it.
    store = titled.sessions.store.sessions
    assert (
        await give_title(store, ref.id, titled.model, "Where is the config?", "Where is the config?") is None
    )
    assert await title_of(titled, ref.id) == "My config notes"


async def test_a_session_named_before_its_first_answer_keeps_its_name(titled):
    session = await titled.sessions.new(title="Named up front")
    await titled.asks.ask("What now?", ref=titled.sessions.resolve())
    await asyncio.gather(*titled.asks.titling)
    assert await title_of(titled, session.id) == "Named up front"


async def test_the_setting_turns_it_off(titled):
    await titled.update_settings(titled.settings.merged({"autoTitle": False})[0])
    session_id = await first_answer(titled, "Plain title please")
    assert await title_of(titled, session_id) == "Plain title please"
