"""Turning encryption and compression on and off in a running engine: what is written next
follows the settings, and what was written before keeps reading."""

from __future__ import annotations

import dataclasses

import pytest

from deskmate.memory import codec, keys


@pytest.fixture
def key(encryption_key):
    return encryption_key


def session_bytes(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in (tmp_path / "data" / "sessions").glob("*.jsonl"))


async def test_encryption_turned_on_then_off_in_a_running_engine(engine, tmp_path, key):
    ref = engine.sessions.resolve()
    await engine.asks.ask("PLAINQUESTION first", ref=ref)
    await engine.update_settings(dataclasses.replace(engine.settings, encryption="on", compression="zstd"))
    await engine.asks.ask("SEALEDQUESTION second", ref=ref)
    stored = session_bytes(tmp_path)
    assert b"PLAINQUESTION" in stored  # written before: stays as it was until migrate --encrypt
    assert b"SEALEDQUESTION" not in stored and f'"kid":"{key}"'.encode() in stored
    await engine.update_settings(dataclasses.replace(engine.settings, encryption="off", compression="off"))
    await engine.asks.ask("PLAINAGAIN third", ref=ref)
    session = (await engine.sessions.get(ref)).session
    assert [m.content for m in session.messages if m.role == "user"] == [
        "PLAINQUESTION first",
        "SEALEDQUESTION second",
        "PLAINAGAIN third",
    ]
    assert b"PLAINAGAIN" in session_bytes(tmp_path)


async def test_encryption_on_without_a_key_stores_nothing_and_warns(engine, tmp_path, monkeypatch):
    monkeypatch.setenv(keys.ENV_KEY_FILE, str(tmp_path / "missing.key"))
    monkeypatch.delenv(keys.ENV_KEY, raising=False)
    keys.forget_loaded_keys()
    try:
        ref = engine.sessions.resolve()
        await engine.asks.ask("before", ref=ref)
        await engine.update_settings(dataclasses.replace(engine.settings, encryption="on"))
        assert any("encryption is on" in warning for warning in engine.warnings)
        before = session_bytes(tmp_path)
        with pytest.raises(keys.KeysUnavailable):
            await engine.asks.ask("NEVERSTORED", ref=ref)
        assert session_bytes(tmp_path) == before
    finally:
        keys.forget_loaded_keys()
        codec.set_writing(None)


async def test_a_fork_of_an_encrypted_session_is_sealed_too(engine, tmp_path, key):
    await engine.update_settings(dataclasses.replace(engine.settings, encryption="on"))
    ref = engine.sessions.resolve()
    await engine.asks.ask("FORKSOURCE question", ref=ref)
    source = (await engine.sessions.get(ref)).session
    fork, _ = await engine.forks.fork(ref, source.messages[-1].id, "FORKTITLE")
    stored = session_bytes(tmp_path)
    assert b"FORKSOURCE" not in stored and b"FORKTITLE" not in stored and b"forkedFrom" not in stored
    listed = {info.id: info for info in await engine.store.sessions.list()}
    assert listed[fork.id].title == "FORKTITLE" and listed[fork.id].meta.forked_from["sessionId"] == source.id


def test_sealed_labels_defines_every_store_method_itself():
    """A MemoryBackend method SealedLabels lacked would reach the store through __getattr__ with
    its labels in the clear (as save_copy once did): each must be written here, or deliberately
    passed through (memory/passing.py: records the codec seals itself, watches, leases)."""
    from deskmate.memory.backend import MemoryBackend
    from deskmate.memory.sealed import SealedLabels

    methods = {
        name
        for name in vars(MemoryBackend)
        if not name.startswith("_") and callable(getattr(MemoryBackend, name))
    }
    defined = {name for klass in SealedLabels.__mro__ if klass is not object for name in vars(klass)}
    assert methods and methods <= defined, methods - defined
