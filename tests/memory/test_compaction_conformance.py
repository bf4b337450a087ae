"""Summaries and pinned messages on every store (files, PostgreSQL, Redis, S3, the resilient
wrappers, and sealed by encryption): they are records of the session's metadata, written by
one compare-and-set update each; the messages are never rewritten, and a turn after a
compaction is an append and nothing else."""

from __future__ import annotations

import base64
import dataclasses
import os

import pytest

from deskmate.engine import Assistant, Settings
from deskmate.engine.compaction import INSTRUCTION
from deskmate.engine.history import summaries_of
from deskmate.memory import codec, keys, sealing
from deskmate.memory.models import Session, SessionMeta
from deskmate.memory.sealed import SealedLabels
from helpers import turn

from .conftest import STORES

LONG = "x" * 400


class SummarizingModel:
    """A model that answers questions and writes summaries ("SUMMARYMARK of N characters")."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.summaries = 0

    async def context_window(self) -> int | None:
        return None

    def learn_window(self, window: int) -> None:
        pass

    def check_configured(self) -> None:
        pass

    async def stream(self, messages, settings=None):
        if messages[0]["content"].startswith(INSTRUCTION):
            self.summaries += 1
            yield f"SUMMARYMARK of {len(messages[1]['content'])} characters"
            return
        yield "an answer"

    async def close(self) -> None:
        pass


class CountingStore:
    """A store with its writes counted by kind: ``append`` (one turn) against ``update`` and
    ``save`` (what rewrites metadata, or the whole history)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def append(self, *args, **kw):
        self.calls.append("append")
        return await self.inner.append(*args, **kw)

    async def update(self, *args, **kw):
        self.calls.append("update")
        return await self.inner.update(*args, **kw)

    async def save(self, *args, **kw):
        self.calls.append("save")
        return await self.inner.save(*args, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
async def engine(backend, tmp_path):
    store = CountingStore(backend)
    model = SummarizingModel(Settings())
    assistant = Assistant(
        Settings(data_dir=str(tmp_path / "daemon"), auto_title=False, max_history_tokens=300),
        backend=store,
        warn=lambda message: None,
        model_factory=lambda settings: model,
    )
    assistant.store_calls = store.calls  # type: ignore[attr-defined]
    assistant.model = model  # type: ignore[attr-defined]
    yield assistant
    await assistant.close()


async def test_summaries_and_pins_survive_appends_and_a_second_daemon(backend, reopen, engine):
    ref = engine.sessions.resolve(session_id="s")
    await engine.update_settings(dataclasses.replace(engine.settings, auto_compact=False))
    for n in range(4):
        await engine.asks.ask(f"turn {n} {LONG}", ref=ref)
    first = (await backend.load("s")).messages[0]
    await engine.compaction.pin(ref, first.id, True)
    done = await engine.compaction.compact(ref, "keep the API decisions")
    await backend.append("s", turn(9))  # later turns keep the records as they are
    other = reopen()
    for store in (backend, other):
        loaded = await store.load("s")
        assert loaded.meta.pinned_messages == [first.id] and len(loaded.messages) == 10
        (summary,) = summaries_of(loaded.meta)
        assert summary == done.summary and summary.instructions == "keep the API decisions"
        listed = {info.id: info for info in await store.list()}
        assert listed["s"].meta == loaded.meta and listed["s"].message_count == 10
    await engine.compaction.uncompact("s", done.summary.id)
    await engine.compaction.pin(ref, first.id, False)
    assert (await other.load("s")).meta == SessionMeta()


async def test_a_turn_after_a_compaction_is_one_append_and_no_rewrite(engine):
    ref = engine.sessions.resolve(session_id="t")
    await engine.asks.ask(f"turn 0 {LONG}", ref=ref)
    engine.store_calls.clear()  # the first question may title the session: one update, once
    turns = 1
    while not engine.model.summaries:
        await engine.asks.ask(f"turn {turns} {LONG}", ref=ref)
        turns += 1
    assert engine.store_calls.count("update") == 1 and "save" not in engine.store_calls
    engine.store_calls.clear()
    await engine.asks.ask(f"turn {turns} {LONG}", ref=ref)  # fits beside the summary
    assert engine.store_calls == ["append", "append"]  # the question, then the answer
    session = (await engine.sessions.get(ref)).session
    assert len(session.messages) == 2 * (turns + 1) and len(summaries_of(session.meta)) == 1


async def test_summaries_are_sealed_with_the_labels(store_kind, tmp_path, monkeypatch):
    """With encryption on, a summary (which repeats the conversation) is sealed like the
    messages it stands for: no word of it is readable in the store."""
    monkeypatch.setenv(keys.ENV_KEY, base64.urlsafe_b64encode(os.urandom(32)).decode())
    keys.forget_loaded_keys()
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=False))
    namespace = f"t{os.urandom(6).hex()}"
    store = STORES[store_kind]
    url = store.url_for(namespace, tmp_path)
    from deskmate.memory.urls import backend_for_url

    def opened():
        inner = (
            store.backend_for_url(url, tmp_path)
            if hasattr(store, "backend_for_url")
            else backend_for_url(url)
        )
        return SealedLabels(inner, seal=True)

    backend = opened()
    try:
        await backend.save(Session(id="sealed", title="t", messages=turn(0)))
        summary = {"id": "s1", "from": "a", "to": "b", "text": "SUMMARYMARK words", "createdAt": "x"}
        await backend.update(
            "sealed",
            lambda info: (
                info.title,
                dataclasses.replace(info.meta, summaries=[summary], pinned_messages=["PINMARK"]),
            ),
        )
        await backend.append("sealed", turn(1))
        reader = opened()
        loaded = await reader.load("sealed")
        await reader.close()
        assert loaded.meta.summaries == [summary] and loaded.meta.pinned_messages == ["PINMARK"]
    finally:
        await backend.close()
        codec.set_writing(None)
        keys.forget_loaded_keys()
    stored = store.stored_bytes(namespace, tmp_path)
    assert stored and b"SUMMARYMARK" not in stored and b"PINMARK" not in stored
    store.cleanup(namespace)
