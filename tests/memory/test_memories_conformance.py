"""Project memories on every store (files, PostgreSQL, Redis, S3, the resilient wrapper), and
sealed by encryption: what ``MemoryBackend.load_memories``, ``add_memory`` and
``delete_memory`` promise."""

from __future__ import annotations

import asyncio

import pytest

from deskmate.memory import Message
from deskmate.memory.project_memories import InvalidMemoryKey
from helpers import turn

from .conftest import STORES
from .test_encrypted_stores import MODES, mode, namespace, new_key, open_store, use_key  # noqa: F401


def memory(text: str, memory_id: str, at: str) -> Message:
    return Message(role="system", content=text, id=memory_id, timestamp=at)


async def test_a_project_without_memories_has_none(backend):
    assert await backend.load_memories("proj-1a2b3c4d") == []


async def test_memories_come_back_oldest_first_exactly_as_added(backend, reopen):
    second = memory("Use tabs 🙂, not spaces\nand\u0000NUL", "m2", "2026-12-01T10:00:00.002Z")
    first = memory("The API is versioned in /v2", "m1", "2026-12-01T10:00:00.001Z")
    await backend.add_memory("proj", second)
    await backend.add_memory("proj", first)
    for store in (backend, reopen()):  # another daemon reads the same
        loaded = await store.load_memories("proj")
        assert [m.to_dict() for m in loaded] == [first.to_dict(), second.to_dict()]


async def test_memories_belong_to_one_project(backend):
    await backend.add_memory("alpha", memory("alpha fact", "a1", "2026-12-01T10:00:00.000Z"))
    await backend.add_memory("beta", memory("beta fact", "b1", "2026-12-01T10:00:00.000Z"))
    assert [m.content for m in await backend.load_memories("alpha")] == ["alpha fact"]
    assert [m.content for m in await backend.load_memories("beta")] == ["beta fact"]
    assert await backend.delete_memory("alpha", "b1") is False  # another project's id
    assert [m.content for m in await backend.load_memories("beta")] == ["beta fact"]


async def test_forgetting_removes_one_memory_and_says_whether_it_was_there(backend, reopen):
    await backend.add_memory("proj", memory("keep", "k", "2026-12-01T10:00:00.000Z"))
    await backend.add_memory("proj", memory("drop", "d", "2026-12-01T10:00:01.000Z"))
    assert await backend.delete_memory("proj", "d") is True
    assert await backend.delete_memory("proj", "d") is False
    assert await backend.delete_memory("other", "k") is False
    assert [m.content for m in await reopen().load_memories("proj")] == ["keep"]


async def test_the_projects_with_memories_are_listed(backend, reopen):
    assert await backend.memory_projects() == []
    for project in ("zeta-1", "alpha-2", "zeta-1"):
        await backend.add_memory(
            project, memory(f"{project} fact", f"m-{project}", "2026-12-01T10:00:00.000Z")
        )
    await backend.append("a-session", turn(0))  # sessions are not projects
    assert await reopen().memory_projects() == ["alpha-2", "zeta-1"]


async def test_the_same_id_again_replaces_the_memory(backend):
    await backend.add_memory("proj", memory("old text", "m", "2026-12-01T10:00:00.000Z"))
    await backend.add_memory("proj", memory("new text", "m", "2026-12-01T10:00:00.000Z"))
    assert [m.content for m in await backend.load_memories("proj")] == ["new text"]


async def test_memories_are_not_sessions(backend):
    await backend.append("s", turn(0), title="A session", workspace_uri="file:///p")
    await backend.add_memory("s", memory("a fact", "m", "2026-12-01T10:00:00.000Z"))
    assert [info.id for info in await backend.list()] == ["s"]
    assert len((await backend.load("s")).messages) == 2
    await backend.delete("s")  # deleting a session leaves the project's memories
    assert [m.content for m in await backend.load_memories("s")] == ["a fact"]
    assert await backend.list() == []


async def test_daemons_remembering_at_once_keep_every_memory(backend, reopen):
    others = [reopen() for _ in range(3)]
    stores = [backend, *others]
    await asyncio.gather(
        *(
            store.add_memory("proj", memory(f"fact {i}", f"m{i}", f"2026-12-01T10:00:00.{i:03d}Z"))
            for i, store in enumerate(stores * 3)
        )
    )
    assert [m.content for m in await backend.load_memories("proj")] == [f"fact {i}" for i in range(12)]


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "con"])
async def test_bad_project_keys_and_memory_ids_are_refused(backend, bad):
    with pytest.raises(InvalidMemoryKey):
        await backend.load_memories(bad)
    with pytest.raises(InvalidMemoryKey):
        await backend.add_memory("proj", memory("x", bad or "", "2026-12-01T10:00:00.000Z"))
    with pytest.raises(InvalidMemoryKey):
        await backend.delete_memory("proj", bad)


async def test_memories_are_sealed_like_turns(store_kind, namespace, tmp_path, mode):  # noqa: F811
    encrypt = MODES[mode][0]
    backend = open_store(store_kind, namespace, tmp_path, seal=encrypt)
    try:
        await backend.add_memory(
            "proj", memory("MEMORYMARK the deploy key lives in vault", "m1", "2026-12-01T10:00:00.000Z")
        )
        await backend.append("s", turn(0), title="t")
    finally:
        await backend.close()
    reader = open_store(store_kind, namespace, tmp_path, seal=encrypt)
    try:
        assert [m.content for m in await reader.load_memories("proj")] == [
            "MEMORYMARK the deploy key lives in vault"
        ]
    finally:
        await reader.close()
    stored = STORES[store_kind].stored_bytes(namespace, tmp_path)
    assert (b"MEMORYMARK" in stored) is not encrypt
