"""Encryption and compression on every store: sessions round-trip exactly, nothing a person
could read is left in the stored bytes (files, rows, values, objects, outbox), and a missing
key is a clear error that changes nothing."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid

import msgspec
import pytest

from deskmate.memory import codec, keys, sealing
from deskmate.memory.codec import MissingKey
from deskmate.memory.models import Message, Session, SessionMeta
from deskmate.memory.sealed import SealedLabels
from deskmate.memory.urls import backend_for_url, daemon_store
from helpers import free_port

from .conftest import STORES

MODES = {
    "encrypted": (True, False),
    "compressed": (False, True),
    "encrypted+compressed": (True, True),
}
MARKERS = ["TITLEMARK", "WSMARK", "TAGMARK", "CONTENTMARK", "CONTEXTMARK", "RENAMEMARK", "APPENDMARK"]
CODE = "".join(
    f"def handler_{i}(request):\n    return render(request, 'page_{i}.html')\n\n" for i in range(60)
)


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture
def use_key(monkeypatch):
    """Give deskmate these keys (the first seals) through DESKMATE_ENCRYPTION_KEY."""

    def use(*given: str) -> None:
        monkeypatch.setenv(keys.ENV_KEY, ",".join(given))
        keys.forget_loaded_keys()

    yield use
    keys.forget_loaded_keys()


@pytest.fixture(params=sorted(MODES))
def mode(request, use_key):
    encrypt, compress = MODES[request.param]
    use_key(new_key())
    codec.set_writing(sealing.encoding_for(encrypt=encrypt, compress=compress))
    yield request.param
    codec.set_writing(None)


@pytest.fixture
def namespace(store_kind):
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    STORES[store_kind].cleanup(name)


def open_store(store_kind, namespace, tmp_path, *, seal: bool) -> SealedLabels:
    store = STORES[store_kind]
    url = store.url_for(namespace, tmp_path)
    inner = (
        store.backend_for_url(url, tmp_path) if hasattr(store, "backend_for_url") else backend_for_url(url)
    )
    return SealedLabels(inner, seal=seal)


_CONVERSATIONS: dict[int, list[Message]] = {}


def conversation(i: int) -> list[Message]:
    """Turn ``i``: the same messages (ids, times) at every call."""
    if i not in _CONVERSATIONS:
        _CONVERSATIONS[i] = _turn(i)
    return _CONVERSATIONS[i]


def _turn(i: int) -> list[Message]:
    return [
        Message(
            role="user",
            content=f"CONTENTMARK question {i}: why does this fail?",
            context={"uri": "file:///p/app.py", "languageId": "python", "text": f"# CONTEXTMARK\n{CODE}"},
        ),
        Message(
            role="assistant",
            content=f"APPENDMARK answer {i}\n```python\n{CODE[:1500]}```\n",
            model="m",
            usage={"promptTokens": 1, "completionTokens": 2, "totalTokens": 3},
        ),
    ]


async def test_sessions_round_trip_exactly_and_leave_no_plaintext(store_kind, namespace, tmp_path, mode):
    encrypt = MODES[mode][0]
    backend = open_store(store_kind, namespace, tmp_path, seal=encrypt)
    try:
        saved = Session(
            id="saved",
            title="TITLEMARK saved",
            workspace_uri="file:///home/me/WSMARK",
            meta=SessionMeta(tags=["TAGMARK"], pinned=True, extra={"futureField": "TAGMARK-extra"}),
            messages=conversation(0),
        )
        await backend.save(saved)
        await backend.append("saved", conversation(1))
        await backend.append(
            "grown", conversation(2), title="TITLEMARK grown", workspace_uri="file:///WSMARK/2"
        )
        await backend.append("grown", [Message(role="user", content="short APPENDMARK")])
        info = await backend.update("saved", lambda info: ("RENAMEMARK " + info.title, info.meta))
        assert info.title == "RENAMEMARK TITLEMARK saved" and info.meta.tags == ["TAGMARK"]
        fork = Session(
            id="fork",
            title="TITLEMARK fork",
            workspace_uri="file:///home/me/WSMARK",
            meta=SessionMeta(tags=["TAGMARK"], forked_from={"sessionId": "saved", "messageId": "TAGMARK"}),
            messages=conversation(0),
        )
        await backend.save_copy(fork, "saved")  # a fork: a store may copy the records inside itself
    finally:
        await backend.close()

    reader = open_store(store_kind, namespace, tmp_path, seal=encrypt)
    try:
        loaded = await reader.load("saved")
        expected = conversation(0) + conversation(1)
        assert [m.to_dict() for m in loaded.messages] == [m.to_dict() for m in expected]
        assert (loaded.title, loaded.workspace_uri) == (
            "RENAMEMARK TITLEMARK saved",
            "file:///home/me/WSMARK",
        )
        assert loaded.meta == saved.meta
        forked = await reader.load("fork")
        assert [m.to_dict() for m in forked.messages] == [m.to_dict() for m in conversation(0)]
        assert (forked.title, forked.meta) == ("TITLEMARK fork", fork.meta)
        grown = await reader.load("grown")
        assert [m.content for m in grown.messages][-1] == "short APPENDMARK"
        assert (grown.title, grown.workspace_uri) == ("TITLEMARK grown", "file:///WSMARK/2")
        listed = {info.id: info for info in await reader.list()}
        assert listed["saved"].title == "RENAMEMARK TITLEMARK saved" and listed["saved"].message_count == 4
        assert (
            listed["saved"].meta.tags == ["TAGMARK"] and listed["grown"].workspace_uri == "file:///WSMARK/2"
        )
    finally:
        await reader.close()

    stored = STORES[store_kind].stored_bytes(namespace, tmp_path)
    assert stored, "the helper found the stored bytes"
    if encrypt:
        found = [marker for marker in MARKERS if marker.encode() in stored]
        assert not found, f"readable in the store: {found}"
        assert b"handler_1" not in stored and b"page_" not in stored
    else:
        assert b"page_59.html" not in stored  # the code-heavy records were compressed


async def test_a_missing_key_is_named_and_nothing_changes(store_kind, namespace, tmp_path, use_key):
    first = new_key()
    use_key(first)
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=False))
    try:
        backend = open_store(store_kind, namespace, tmp_path, seal=True)
        await backend.append("locked", conversation(0), title="TITLEMARK", workspace_uri="file:///WSMARK")
        await backend.close()
        before = STORES[store_kind].stored_bytes(namespace, tmp_path)

        use_key(new_key())  # another key only: as on a machine set up without the first
        reader = open_store(store_kind, namespace, tmp_path, seal=True)
        with pytest.raises(MissingKey, match=keys.key_id(base64.urlsafe_b64decode(first))) as refused:
            await reader.load("locked")
        assert "Nothing was changed" in str(refused.value)
        listed = {info.id: info for info in await reader.list()}  # listed, not hidden nor "damaged"
        assert (
            listed["locked"].title == f"(encrypted with key {keys.key_id(base64.urlsafe_b64decode(first))})"
        )
        assert listed["locked"].message_count == 2
        await reader.close()
        assert STORES[store_kind].stored_bytes(namespace, tmp_path) == before

        use_key(new_key(), first)  # the first key back, as an old key
        reader = open_store(store_kind, namespace, tmp_path, seal=True)
        loaded = await reader.load("locked")
        assert [m.content for m in loaded.messages] == [m.content for m in conversation(0)]
        assert loaded.title == "TITLEMARK" and not loaded.quarantined_to
        await reader.close()
    finally:
        codec.set_writing(None)


async def begun_plain_then_sealed(
    store_kind,
    namespace,
    tmp_path,
    use_key,
    session_id: str,
    title: str,
    workspace_uri: str,
    *,
    compress: bool,
) -> SealedLabels:
    """Session ``session_id``: turn 0 stored plain, then encryption turned on (a new key; the
    caller sets the writing encoding back) and turn 1 stored sealed. The sealing store."""
    plain = open_store(store_kind, namespace, tmp_path, seal=False)
    await plain.append(session_id, conversation(0), title=title, workspace_uri=workspace_uri)
    await plain.close()
    use_key(new_key())
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=compress))
    store = open_store(store_kind, namespace, tmp_path, seal=True)
    await store.append(session_id, conversation(1))
    return store


async def test_plain_sessions_written_before_encryption_still_load(store_kind, namespace, tmp_path, use_key):
    try:
        backend = await begun_plain_then_sealed(
            store_kind, namespace, tmp_path, use_key, "mixed", "plain title", "file:///plain", compress=True
        )
        loaded = await backend.load("mixed")
        assert [m.to_dict() for m in loaded.messages] == [
            m.to_dict() for m in conversation(0) + conversation(1)
        ]
        assert (loaded.title, loaded.workspace_uri) == ("plain title", "file:///plain")
        await backend.close()
    finally:
        codec.set_writing(None)


async def test_sealing_again_finds_plain_records_under_sealed_labels(
    store_kind, namespace, tmp_path, use_key
):
    """A session begun before encryption was turned on, then answered and renamed after: its
    title and labels are sealed, and so is its last turn, but its first turn is not. `sessions
    migrate --encrypt` must seal that turn too, on every store, whichever way a load decodes it."""
    from deskmate.memory.reseal import reseal

    try:
        store = await begun_plain_then_sealed(
            store_kind, namespace, tmp_path, use_key, "begun", "Begun", "file:///p", compress=False
        )
        await store.update("begun", lambda info: ("TITLEMARK renamed", info.meta))
        report = await reseal(store)
        assert report.ok and report.resealed == ["begun"], (report.resealed, report.already_sealed)
        loaded = await store.load("begun")
        assert [m.to_dict() for m in loaded.messages] == [
            m.to_dict() for m in conversation(0) + conversation(1)
        ]
        await store.close()
        stored = STORES[store_kind].stored_bytes(namespace, tmp_path)
        found = [marker for marker in MARKERS if marker.encode() in stored]
        assert not found, f"readable in the store after sealing again: {found}"
    finally:
        codec.set_writing(None)


async def test_records_sealed_as_json_by_earlier_versions_still_load(
    store_kind, namespace, tmp_path, use_key
):
    # Before MessagePack went under the seal, records were sealed JSON: a history holds both.
    use_key(new_key())
    backend = open_store(store_kind, namespace, tmp_path, seal=True)
    try:
        written = []
        for i, name in enumerate([sealing.AES, sealing.ZSTD_AES, sealing.AES_MP, sealing.ZSTD_AES_MP]):
            codec.set_writing(sealing.ENCODINGS[name])
            await backend.append("eras", conversation(10 + i), title="TITLEMARK")
            written += conversation(10 + i)
        codec.set_writing(None)
        reader = open_store(store_kind, namespace, tmp_path, seal=True)
        loaded = await reader.load("eras")
        await reader.close()
        assert [m.to_dict() for m in loaded.messages] == [m.to_dict() for m in written]
        stored = STORES[store_kind].stored_bytes(namespace, tmp_path)
        for name in [sealing.AES, sealing.ZSTD_AES, sealing.AES_MP, sealing.ZSTD_AES_MP]:
            # The tag as JSON writes it, or as MessagePack (a store of bytes: Redis)
            tags = (f'"{name}"'.encode(), msgspec.msgpack.encode(name))
            assert any(tag in stored for tag in tags), f"a record tagged {name} is stored"
    finally:
        codec.set_writing(None)
        await backend.close()


async def test_the_outbox_keeps_turns_sealed_while_the_store_is_away(tmp_path, use_key):
    use_key(new_key())
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=False))
    try:
        away = daemon_store(f"redis://127.0.0.1:{free_port()}/0?prefix=gone", tmp_path / "data")
        backend = SealedLabels(away, seal=True)
        await backend.append("waiting", conversation(0), title="TITLEMARK", workspace_uri="file:///WSMARK")
        outbox = b"".join(p.read_bytes() for p in (tmp_path / "data" / "outbox").rglob("*") if p.is_file())
        assert b"waiting" in outbox  # the turn waits there
        assert not [marker for marker in MARKERS if marker.encode() in outbox]
        loaded = await backend.load("waiting")  # from the outbox, opened
        assert [m.content for m in loaded.messages] == [m.content for m in conversation(0)]
        await backend.close()
    finally:
        codec.set_writing(None)


async def test_sealing_again_never_loses_a_turn_stored_meanwhile(store_kind, namespace, tmp_path, use_key):
    """`sessions migrate --encrypt` rewrites sessions whole while daemons keep answering in
    them: a turn stored between its read and its write must survive (the write is refused and
    the session read again)."""
    from deskmate.memory.reseal import reseal

    plain = open_store(store_kind, namespace, tmp_path, seal=False)
    for i in range(6):
        await plain.append("busy", conversation(i), title="Busy")
    use_key(new_key())
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=False))
    try:
        sealer = open_store(store_kind, namespace, tmp_path, seal=True)
        writer = open_store(store_kind, namespace, tmp_path, seal=True)  # another daemon
        turns = [conversation(i) for i in range(6, 30)]

        async def keep_answering() -> None:
            for messages in turns:
                await writer.append("busy", messages)

        report, _ = await asyncio.gather(reseal(sealer), keep_answering())
        assert report.ok, report.refused
        await reseal(sealer)  # the turns stored after the seal are sealed too
        loaded = await sealer.load("busy")
        expected = [m.id for i in range(30) for m in conversation(i)]
        assert [m.id for m in loaded.messages] == expected
        for store in (plain, sealer, writer):
            await store.close()
    finally:
        codec.set_writing(None)


async def test_live_sessions_through_sealed_labels(store_kind, namespace, tmp_path, use_key):
    """A watch and the answering lease pass through SealedLabels: a sealed rename by another
    process is reported as an update, its new title never in a change."""
    use_key(new_key())
    codec.set_writing(sealing.encoding_for(encrypt=True, compress=False))
    watcher = open_store(store_kind, namespace, tmp_path, seal=True)
    writer = open_store(store_kind, namespace, tmp_path, seal=True)
    try:
        await writer.append("sealed-live", conversation(0), title="secret title")
        watch = watcher.watch()
        await watch.follow("sealed-live")
        changes = watch.changes()
        first = asyncio.ensure_future(anext(changes))
        await asyncio.wait_for(watch.ready.wait(), 10)
        await writer.update("sealed-live", lambda info: ("another secret", info.meta))
        change = await asyncio.wait_for(first, 10)
        assert (change.session_id, change.change, change.message_count) == ("sealed-live", "updated", 2)
        await watch.close()
        await changes.aclose()
        assert await writer.claim_answer("sealed-live", "writer", 10)
        assert not await watcher.claim_answer("sealed-live", "watcher", 10)
        await writer.release_answer("sealed-live", "writer")
    finally:
        codec.set_writing(None)
        await watcher.close()
        await writer.close()
