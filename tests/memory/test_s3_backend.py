"""S3Backend-specific guarantees, against a real moto server: layout, bounded loads, racing
writers, crashes between the segment and the manifest, and errors that name the store."""

import asyncio
import json
import socket
import time
import uuid
from collections import Counter

import pytest

from deskmate.memory import Message, Session, StorageError
from deskmate.memory.backends.s3 import AFTER_SEGMENT_PUT, BEFORE_MANIFEST_SWAP, Hooks, S3Backend
from deskmate.memory.backends.s3.layout import Damaged
from deskmate.memory.errors import BackendUnavailable
from deskmate.memory.models import SessionMeta
from deskmate.memory.urls import backend_for_url
from memory import store_s3


class Crash(Exception):
    """Stands in for a writer killed at an exact point."""


@pytest.fixture
def namespace():
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    store_s3.cleanup(name)


def open_s3(namespace: str, **options) -> S3Backend:
    """An S3Backend on ``namespace``; ``options``: compaction sizes, ``hooks``."""
    return S3Backend.from_url(store_s3.url_for(namespace), **options)


@pytest.fixture
async def backend(namespace):
    """These tests are about S3 objects: an S3Backend only."""
    opened = open_s3(namespace)
    yield opened
    await opened.close()


def turn(tag: str, i: int) -> list[Message]:
    return [
        Message(role="user", content=f"{tag}-{i} q", id=f"{tag}-{i}-q"),
        Message(role="assistant", content=f"{tag}-{i} a", id=f"{tag}-{i}-a"),
    ]


def objects(namespace: str) -> dict[str, str]:
    """Every object under the namespace: key -> ETag."""
    pages = (
        store_s3.client().get_paginator("list_objects_v2").paginate(Bucket=store_s3.BUCKET, Prefix=namespace)
    )
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


def count_requests(backend: S3Backend) -> Counter:
    """Counts the requests ``backend`` sends from now on, by operation."""
    counts: Counter = Counter()
    backend.client.boto().meta.events.register(
        "before-call.s3", lambda event_name, **_: counts.update([event_name.rsplit(".", 1)[1]])
    )
    return counts


def manifest(namespace: str, session_id: str) -> dict:
    key = f"{namespace}/sessions/{session_id}/manifest.json"
    return json.loads(store_s3.client().get_object(Bucket=store_s3.BUCKET, Key=key)["Body"].read())


def put(key: str, body: bytes) -> None:
    store_s3.client().put_object(Bucket=store_s3.BUCKET, Key=key, Body=body)


def check_turns(ids: list[str]) -> list[tuple[str, int]]:
    """The (writer, number) of each turn in ``ids``; asserts every turn is whole and appears once."""
    assert len(ids) == len(set(ids)), "a message was stored twice"
    turns = []
    for position in range(0, len(ids), 2):
        question, answer = ids[position], ids[position + 1]
        assert question.endswith("-q") and answer == question[:-1] + "a"
        tag, number, _ = question.split("-")
        turns.append((tag, int(number)))
    return turns


def on_loop(coroutine_function):
    """A hook action that, from the request thread the hook runs in, runs ``coroutine_function()``
    on the test's event loop and waits for it: a writer racing there. Call it in the test."""
    loop = asyncio.get_running_loop()
    return lambda session_id: asyncio.run_coroutine_threadsafe(coroutine_function(), loop).result()


# -- layout ------------------------------------------------------------------------


async def test_append_writes_one_object_and_rewrites_no_segment(backend, namespace):
    await backend.append("grow", turn("w", 0), title="Grow")
    before = objects(namespace)
    for i in range(1, 6):
        requests = count_requests(backend)
        await backend.append("grow", turn("w", i))
        after = objects(namespace)
        added = set(after) - set(before)
        assert len(added) == 1 and added.pop().endswith(f"/s{i:010d}.json")
        changed = {key for key in before if after[key] != before[key]}
        assert changed == {f"{namespace}/sessions/grow/manifest.json"}  # no segment is ever rewritten
        assert requests == {"PutObject": 2}  # the segment, then the manifest: no GET, no history
        before = after
    assert manifest(namespace, "grow")["messageCount"] == 12


async def test_save_switches_generations_and_leaves_no_old_objects(backend, namespace):
    await backend.append("s", turn("w", 0))
    await backend.save(Session(id="s", title="Saved", messages=turn("x", 0), meta=SessionMeta(tags=["t"])))
    await backend.append("s", turn("w", 1))
    generation = manifest(namespace, "s")["generation"]
    directory = f"{namespace}/sessions/s/"
    assert sorted(objects(namespace)) == [
        f"{directory}{generation}/base.json",
        f"{directory}{generation}/s0000000000.json",
        f"{directory}manifest.json",
    ]
    loaded = await backend.load("s")
    assert [m.id for m in loaded.messages] == ["x-0-q", "x-0-a", "w-1-q", "w-1-a"]
    assert (loaded.title, loaded.meta.tags) == ("Saved", ["t"])


async def test_delete_removes_every_object(backend, namespace):
    await backend.save(Session(id="gone", messages=turn("x", 0)))
    for i in range(70):  # past one compaction, so chunks are there too
        await backend.append("gone", turn("w", i))
    await backend.append("kept", turn("w", 0))
    assert await backend.delete("gone") is True
    assert not [key for key in objects(namespace) if "/sessions/gone/" in key]
    assert await backend.delete("gone") is False
    assert [info.id for info in await backend.list()] == ["kept"]


# -- bounded loads -------------------------------------------------------------------------


async def test_compaction_keeps_objects_and_loads_small(backend, namespace):
    for i in range(300):
        await backend.append("long", turn("w", i))
    stored = objects(namespace)
    # 300 segments: 4 chunks of 64, 44 segments and the manifest.
    assert len(stored) == 49
    reader = open_s3(namespace)
    requests = count_requests(reader)
    loaded = await reader.load("long")
    assert check_turns([m.id for m in loaded.messages]) == [("w", i) for i in range(300)]
    assert requests == {"GetObject": 49, "ListObjectsV2": 1}
    requests.clear()
    await backend.append("long", turn("w", 300))
    await reader.load("long")  # a daemon's next load reads only what is new
    assert requests == {"GetObject": 2, "ListObjectsV2": 1}
    await reader.close()


async def test_chunks_merge_so_load_cost_grows_slowly(namespace):
    backend = open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4)
    for i in range(300):
        await backend.append("long", turn("w", i))
    # 300 = 256 + 16 + 16 + 4 + 4 + 4: six chunks, no loose segment, and the manifest.
    assert [tuple(c) for c in manifest(namespace, "long")["chunks"]] == [
        (0, 256),
        (256, 272),
        (272, 288),
        (288, 292),
        (292, 296),
        (296, 300),
    ]
    assert len(objects(namespace)) == 7
    reader = open_s3(namespace)
    requests = count_requests(reader)
    loaded = await reader.load("long")
    assert check_turns([m.id for m in loaded.messages]) == [("w", i) for i in range(300)]
    assert requests == {"GetObject": 7, "ListObjectsV2": 1}
    assert next(i for i in await reader.list() if i.id == "long").message_count == 600
    await reader.close()
    await backend.close()


# -- racing writers ----------------------------------------------------------------------------


async def test_two_backends_racing_appends_and_compaction_lose_nothing(namespace):
    # Small chunks, so compactions and merges race the appends all the time.
    writers = [open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4) for _ in range(3)]

    async def write(backend: S3Backend, tag: str) -> None:
        for i in range(50):
            await backend.append("shared", turn(tag, i))

    await asyncio.gather(*(write(backend, f"w{n}") for n, backend in enumerate(writers)))
    loaded = await open_s3(namespace).load("shared")
    turns = check_turns([m.id for m in loaded.messages])
    for tag in ("w0", "w1", "w2"):
        assert [i for t, i in turns if t == tag] == list(range(50))
    assert manifest(namespace, "shared")["messageCount"] == 300
    # Whatever raced, only chunks, a few loose segments and the manifest remain.
    assert len(objects(namespace)) < 20
    for backend in writers:
        await backend.close()


async def test_writer_with_a_stale_manifest_does_not_reuse_a_compacted_number(namespace):
    stale = open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4)
    other = open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4)
    await stale.append("s", turn("a", 0))  # it now remembers next = 1
    for i in range(20):  # segment 1 onwards is written, compacted and deleted
        await other.append("s", turn("b", i))
    assert manifest(namespace, "s")["chunks"][0] == [0, 16]
    await stale.append(
        "s", turn("a", 1)
    )  # re-creates s0000000001 first, sees it is not the chunk's, moves on
    loaded = await other.load("s")
    assert check_turns([m.id for m in loaded.messages]) == (
        [("a", 0)] + [("b", i) for i in range(20)] + [("a", 1)]
    )
    assert not [key for key in objects(namespace) if key.endswith("/s0000000001.json")]
    assert manifest(namespace, "s")["messageCount"] == 44


async def test_segment_counted_by_another_writer_is_not_appended_twice(namespace):
    second = open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4)

    async def others_count_and_compact_it() -> None:
        for i in range(10):
            await second.append("s", turn("b", i))

    hooks = Hooks()
    first = open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4, hooks=hooks)
    await first.append("s", turn("a", 0))
    hooks.once(AFTER_SEGMENT_PUT, on_loop(others_count_and_compact_it))
    await first.append("s", turn("a", 1))
    loaded = await second.load("s")
    assert check_turns([m.id for m in loaded.messages]) == [("a", 0), ("a", 1)] + [
        ("b", i) for i in range(10)
    ]
    assert manifest(namespace, "s")["messageCount"] == 24


@pytest.mark.parametrize("include_the_turn", [False, True])
async def test_save_between_segment_and_manifest(namespace, include_the_turn):
    hooks = Hooks()
    appender, saver = open_s3(namespace, hooks=hooks), open_s3(namespace)
    await appender.append("s", turn("a", 0))

    async def save_meanwhile() -> None:
        messages = [Message(role="system", content="reset", id="reset")]
        if include_the_turn:  # the saver had loaded the turn being written
            messages += (await saver.load("s")).messages[2:]
        await saver.save(Session(id="s", title="Saved", messages=messages))

    hooks.once(AFTER_SEGMENT_PUT, on_loop(save_meanwhile))
    await appender.append("s", turn("a", 1))
    loaded = await saver.load("s")
    assert [m.id for m in loaded.messages] == ["reset", "a-1-q", "a-1-a"]  # once, either way
    assert loaded.title == "Saved"
    generation = manifest(namespace, "s")["generation"]
    assert all(f"/{generation}/" in key for key in objects(namespace) if not key.endswith("manifest.json"))


async def test_delete_between_segment_and_manifest_leaves_the_new_turn(namespace):
    hooks = Hooks()
    appender, deleter = open_s3(namespace, hooks=hooks), open_s3(namespace)
    await appender.append("s", turn("a", 0), title="Old")
    hooks.once(AFTER_SEGMENT_PUT, on_loop(lambda: deleter.delete("s")))
    await appender.append("s", turn("a", 1), title="New")
    loaded = await deleter.load("s")
    assert [m.id for m in loaded.messages] == ["a-1-q", "a-1-a"]
    assert loaded.title == "New"
    assert len(objects(namespace)) == 2  # the manifest and that one segment


@pytest.mark.parametrize("snapshot", [False, True])
async def test_appends_racing_saves(namespace, snapshot):
    appender, saver = open_s3(namespace, segments_per_chunk=4, chunks_per_merge=4), open_s3(namespace)
    await appender.append("s", turn("a", 0))
    started: dict[int, float] = {}

    async def append() -> None:
        for i in range(1, 40):
            started[i] = time.monotonic()
            await appender.append("s", turn("a", i))

    async def save() -> float:
        while len(started) < 12:
            await asyncio.sleep(0.002)
        session = await saver.load("s") if snapshot else Session(id="s")
        session.messages.insert(0, Message(role="system", content="reset", id="reset"))
        await saver.save(session)
        return time.monotonic()

    _, saved_at = await asyncio.gather(append(), save())
    ids = [m.id for m in (await saver.load("s")).messages]
    assert ids[0] == "reset"
    numbers = [i for _, i in check_turns(ids[1:])]
    assert numbers == sorted(numbers)
    assert {i for i, t in started.items() if t > saved_at} <= set(numbers)  # none lost after the save
    assert manifest(namespace, "s")["messageCount"] == len(ids)


# -- crashes -------------------------------------------------------------------------------------


async def test_segment_written_by_a_writer_that_crashed_is_loaded_then_counted(backend, namespace):
    await backend.append("s", turn("a", 0))
    generation = manifest(namespace, "s")["generation"]
    # What a writer killed between its two requests leaves: segment 1, not counted in the manifest.
    segment = {
        "deskmate": "segment",
        "version": 1,
        "token": "crashed",
        "messages": [m.to_dict() for m in turn("c", 0)],
    }
    put(f"{namespace}/sessions/s/{generation}/s0000000001.json", json.dumps(segment).encode())
    assert manifest(namespace, "s")["messageCount"] == 2
    fresh = open_s3(namespace)
    assert [m.id for m in (await fresh.load("s")).messages] == ["a-0-q", "a-0-a", "c-0-q", "c-0-a"]
    await backend.append("s", turn("a", 1))  # the next append counts it
    assert manifest(namespace, "s")["messageCount"] == 6
    assert check_turns([m.id for m in (await fresh.load("s")).messages]) == [("a", 0), ("c", 0), ("a", 1)]
    await fresh.close()


async def test_crash_before_the_manifest_update_loses_no_written_turn(namespace):
    hooks = Hooks()
    crashing = open_s3(namespace, hooks=hooks)
    await crashing.append("s", turn("a", 0), title="T")

    def crash(session_id: str) -> None:
        raise Crash

    hooks.once(AFTER_SEGMENT_PUT, crash)
    with pytest.raises(Crash):
        await crashing.append("s", turn("a", 1))
    survivor = open_s3(namespace)
    assert check_turns([m.id for m in (await survivor.load("s")).messages]) == [("a", 0), ("a", 1)]
    await survivor.append("s", turn("b", 0))
    assert manifest(namespace, "s")["messageCount"] == 6
    assert next(i for i in await survivor.list() if i.id == "s").message_count == 6


async def test_crash_before_the_manifest_swap_of_a_save_keeps_the_session_as_it_was(namespace):
    hooks = Hooks()
    crashing = open_s3(namespace, hooks=hooks)
    await crashing.append("s", turn("a", 0), title="Old")

    def crash(session_id: str) -> None:
        raise Crash

    hooks.once(BEFORE_MANIFEST_SWAP, crash)
    with pytest.raises(Crash):
        await crashing.save(Session(id="s", title="New", messages=turn("x", 0)))
    survivor = open_s3(namespace)
    loaded = await survivor.load("s")
    assert ([m.id for m in loaded.messages], loaded.title) == (["a-0-q", "a-0-a"], "Old")
    await survivor.append("s", turn("a", 1))
    assert check_turns([m.id for m in (await survivor.load("s")).messages]) == [("a", 0), ("a", 1)]
    await survivor.close()


# -- errors ------------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def every_operation(backend: S3Backend) -> list[Exception]:
    errors = []
    for call in (
        lambda: backend.load("s"),
        lambda: backend.append("s", turn("a", 0)),
        lambda: backend.save(Session(id="s")),
        lambda: backend.delete("s"),
        lambda: backend.list(),
    ):
        with pytest.raises(BackendUnavailable) as caught:
            await call()
        errors.append(caught.value)
    await backend.close()
    return errors


async def test_unreachable_endpoint_is_unavailable_fast_and_named_without_the_secret():
    port = closed_port()
    started = time.monotonic()
    backend = backend_for_url(f"s3://AKIAKEY:Top%2Fsecret@deskmate-test/p?endpoint=http://127.0.0.1:{port}")
    assert "secret" not in repr(backend)
    for error in await every_operation(backend):
        assert error.backend == f"S3 bucket 'deskmate-test' at http://127.0.0.1:{port}"
        assert "Connection refused" in error.reason
        assert "secret" not in str(error) and "AKIAKEY" not in str(error)
    assert time.monotonic() - started < 10


async def test_unknown_host_is_unavailable():
    backend = backend_for_url("s3://k:secret@deskmate-test/p?endpoint=http://deskmate-test-host.invalid:9000")
    for error in await every_operation(backend):
        assert "deskmate-test-host.invalid" in error.backend and "secret" not in str(error)


async def test_missing_bucket_is_unavailable(namespace):
    url = store_s3.url_for(namespace).replace(store_s3.BUCKET, "no-such-deskmate-bucket")
    for error in await every_operation(backend_for_url(url)):
        assert error.reason == "the bucket does not exist"
        assert "'no-such-deskmate-bucket'" in error.backend and store_s3.SECRET not in str(error)


async def test_refused_credentials_are_unavailable():
    # A second moto server that checks signatures: the dummy key is unknown to it.
    _, endpoint = store_s3.start_server(INITIAL_NO_AUTH_ACTION_COUNT="0")
    backend = backend_for_url(f"s3://AKIAUNKNOWN:wrong-secret@deskmate-test/p?endpoint={endpoint}")
    for error in await every_operation(backend):
        assert error.reason == "the credentials were refused (InvalidAccessKeyId)"
        assert "wrong-secret" not in str(error)


async def test_missing_credentials_are_unavailable(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    backend = backend_for_url(f"s3://deskmate-test/p?endpoint={store_s3.endpoint()}")
    with pytest.raises(BackendUnavailable, match="no AWS credentials found"):
        await backend.load("s")
    await backend.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://", "not a valid S3 bucket name"),
        ("s3://ab/p", "not a valid S3 bucket name"),
        ("s3://Upper-Case/p", "not a valid S3 bucket name"),
        ("s3://bucket/p?endpoint=ftp://host", "must be an http:// or https:// URL"),
        ("s3://bucket/p?addressing=sideways", "must be path or virtual"),
        ("s3://bucket/p?timeout=3", "Unknown option 'timeout'"),
        ("s3://justakey@bucket/p", "must be written KEY:SECRET@bucket"),
        ("s3://AKIA:half/s3cr3t@bucket/p", "percent-encoded"),
    ],
)
def test_bad_urls_are_refused_saying_why(url, problem):
    with pytest.raises(StorageError, match=problem) as caught:
        backend_for_url(url)
    assert "s3cr3t" not in str(caught.value) and "AKIA" not in str(caught.value)


def test_url_options():
    backend = S3Backend.from_url("s3://K%2B:S%2F@my.bucket/a/b/?endpoint=https://minio:9000&region=eu-west-1")
    assert (backend.bucket, backend.prefix, backend.endpoint) == ("my.bucket", "a/b/", "https://minio:9000")
    assert (backend.region, backend.addressing) == ("eu-west-1", "path")
    assert backend.client.credentials == ("K+", "S/")
    assert repr(backend) == "S3Backend('s3://my.bucket/a/b/?endpoint=https://minio:9000')"
    aws = S3Backend.from_url("s3://bucket")
    assert (aws.prefix, aws.addressing, aws.name) == ("", "auto", "S3 bucket 'bucket' at AWS")
    assert S3Backend.from_url("s3://b-1/p?endpoint=http://h&addressing=virtual").addressing == "virtual"


async def test_malformed_objects_raise_naming_the_key_and_are_kept(backend, namespace):
    await backend.append("s", turn("a", 0))
    generation = manifest(namespace, "s")["generation"]
    segment_key = f"{namespace}/sessions/s/{generation}/s0000000000.json"
    put(segment_key, b'{"deskmate": "segment", "messages": [{"role": "robot"}]}')
    with pytest.raises(StorageError, match=f"s3://deskmate-test/{segment_key} cannot be read: message 1"):
        await open_s3(namespace).load("s")
    put(segment_key, b"not json")
    with pytest.raises(StorageError, match=f"s3://deskmate-test/{segment_key} cannot be read"):
        await open_s3(namespace).load("s")
    manifest_key = f"{namespace}/sessions/s/manifest.json"
    put(manifest_key, b'{"deskmate": "manifest"}')
    with pytest.raises(StorageError, match=f"s3://deskmate-test/{manifest_key} cannot be read"):
        await open_s3(namespace).load("s")
    with pytest.raises(StorageError, match=f"s3://deskmate-test/{manifest_key} cannot be read"):
        await open_s3(namespace).append("s", turn("a", 1))
    assert set(objects(namespace)) == {manifest_key, segment_key}  # nothing was deleted or replaced
    infos = await backend.list()  # one damaged session does not hide the others
    assert [(i.id, i.title) for i in infos] == [("s", "(damaged session manifest)")]
    assert await backend.delete("s") is True  # and it can be deleted
    assert objects(namespace) == {}


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("meta", {"tags": 5}, "tags must be a list of strings, got int"),
        ("meta", {"pinned": "yes"}, "pinned must be true or false, got str"),
        ("meta", 5, "the session metadata must be a JSON object"),
        ("version", "2", "format version '2' is not one this deskmate understands"),
        ("version", 2, "format version 2 is not one this deskmate understands"),
        ("workspaceUri", 5, "field 'workspaceUri' is not a string: 5"),
        ("title", ["t"], "field 'title' is not a string"),
        ("messageCount", "2", "field 'messageCount' is not a count: '2'"),
        ("messageCount", -1, "field 'messageCount' is not a count: -1"),
        ("next", True, "field 'next' is not a count: True"),
        ("chunks", 5, "field 'chunks' is not a list of"),
        ("chunks", [[0]], "field 'chunks' is not a list of"),
        ("generation", None, "generation None is not a generation name"),
    ],
)
async def test_a_damaged_manifest_field_is_listed_as_damaged_and_refused_on_load(
    backend, namespace, field, value, why, caplog
):
    await backend.append("hurt", turn("a", 0), title="Hurt")
    await backend.append("fine", turn("b", 0), title="Fine")
    damaged = {**manifest(namespace, "hurt"), field: value}
    put(f"{namespace}/sessions/hurt/manifest.json", json.dumps(damaged).encode())
    put(f"{namespace}/sessions/not a session/manifest.json", b"{}")  # a prefix that is no session id
    infos = {i.id: i for i in await open_s3(namespace).list()}
    assert {i: (info.title, info.workspace_uri, info.meta.tags) for i, info in infos.items()} == {
        "hurt": ("(damaged session manifest)", None, []),
        "fine": ("Fine", None, []),
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Session 'hurt'" in w and why in w for w in warnings), warnings
    assert any("'not a session'" in w and "not a session id" in w for w in warnings)
    with pytest.raises(StorageError, match="Session 'hurt'") as caught:
        await open_s3(namespace).load("hurt")
    assert why in str(caught.value) and isinstance(caught.value, Damaged)
    assert len((await open_s3(namespace).load("fine")).messages) == 2
