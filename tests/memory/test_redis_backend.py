"""RedisBackend-specific behaviour, against the real test server (see store_redis.py): expiry,
unreachable servers and refused credentials, secrets kept out of messages, URL checking,
damaged data, and the key layout."""

import asyncio
import json
import time

import msgspec
import pytest
import redis
from redis.crc import key_slot

from deskmate.memory import Message, Session, StorageError, codec, sealing
from deskmate.memory.backends.redis import RedisBackend
from deskmate.memory.errors import BackendUnavailable
from deskmate.memory.models import SessionMeta
from deskmate.memory.urls import backend_for_url
from helpers import free_port, namespace_in, turn

from . import store_redis

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def namespace():
    store_redis.require_server()
    with namespace_in(store_redis) as name:
        yield name


@pytest.fixture
def server():
    """A synchronous client, to look at and damage keys directly."""
    with store_redis.client() as client:
        yield client


def url(namespace: str, **options: str) -> str:
    return store_redis.with_options(store_redis.server_url(), prefix=namespace, **options)


@pytest.fixture
async def backend(namespace):
    opened = RedisBackend.from_url(url(namespace))
    yield opened
    await opened.close()


# -- expiry -------------------------------------------------------------------------


async def test_sessions_expire_after_ttl_without_writes(namespace, server):
    backend = RedisBackend.from_url(url(namespace, ttl="1"))
    try:
        await backend.append("brief", turn(0))
        await backend.save(Session(id="empty", title="no messages"))
        keeper = RedisBackend.from_url(url(namespace))  # same store, no ttl
        await keeper.append("lasting", turn(0))
        await keeper.close()
        assert 0 < server.pttl(f"{namespace}:session:{{brief}}:messages") <= 1000
        assert {info.id for info in await backend.list()} == {"brief", "empty", "lasting"}

        await asyncio.sleep(1.5)
        assert await backend.load("brief") is None
        assert await backend.load("empty") is None
        assert [info.id for info in await backend.list()] == ["lasting"]
        # list() pruned the listing of what expired
        assert server.zrange(f"{namespace}:sessions", 0, -1) == [b"lasting"]
        assert await backend.delete("brief") is False
    finally:
        await backend.close()


async def test_every_write_refreshes_the_ttl(namespace):
    backend = RedisBackend.from_url(url(namespace, ttl="2"))
    try:
        await backend.append("kept", turn(0), title="Kept")
        await asyncio.sleep(1.2)
        await backend.append("kept", turn(1))  # 2 s from now, not from the first write
        await asyncio.sleep(1.2)
        loaded = await backend.load("kept")
        assert loaded is not None and len(loaded.messages) == 4 and loaded.title == "Kept"
        await backend.save(loaded)  # so does a save
        await asyncio.sleep(1.2)
        assert await backend.load("kept") is not None
        await asyncio.sleep(1.2)
        assert await backend.load("kept") is None
        assert await backend.list() == []
    finally:
        await backend.close()


async def test_a_write_without_ttl_keeps_the_session_for_good(namespace, server):
    expiring = RedisBackend.from_url(url(namespace, ttl="60"))
    await expiring.append("s", turn(0))
    await expiring.close()
    assert server.ttl(f"{namespace}:session:{{s}}") > 0
    backend = RedisBackend.from_url(url(namespace))
    await backend.append("s", turn(1))
    await backend.close()
    assert server.ttl(f"{namespace}:session:{{s}}") == -1
    assert server.ttl(f"{namespace}:session:{{s}}:messages") == -1


# -- unreachable servers and credentials ----------------------------------------------


async def test_unreachable_server_is_backend_unavailable_naming_it_without_the_password():
    port = free_port()
    backend = backend_for_url(f"redis://deskmate:{PASSWORD}@127.0.0.1:{port}/3?prefix=x")
    calls = {
        "load": lambda: backend.load("s"),
        "append": lambda: backend.append("s", turn(0)),
        "save": lambda: backend.save(Session(id="s")),
        "delete": lambda: backend.delete("s"),
        "list": lambda: backend.list(),
    }
    try:
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(BackendUnavailable) as caught:
                await call()
            assert time.monotonic() - started < 3, f"{name} did not fail fast"
            assert caught.value.backend == f"Redis at 127.0.0.1:{port}/3"
            assert str(caught.value).startswith(f"Redis at 127.0.0.1:{port}/3 is unreachable: ")
            assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
    finally:
        await backend.close()


def test_constructing_never_connects():
    backend = RedisBackend.from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert backend.name.startswith("Redis at 127.0.0.1:")


def test_password_never_in_repr():
    backend = RedisBackend.from_url(f"rediss://user:{PASSWORD}@cache.internal:6380/2?prefix=p&ttl=30")
    assert PASSWORD not in repr(backend)
    assert "user:***@cache.internal:6380" in repr(backend)
    assert backend.name == "Redis at cache.internal:6380/2"


@pytest.fixture
def acl_user(namespace, server):
    """A user allowed only what the storage docs list, for the namespace's keys."""
    user = f"deskmate-test-{namespace}"
    try:
        server.execute_command(
            "ACL",
            "SETUSER",
            user,
            "on",
            f">{PASSWORD}",
            f"~{namespace}:*",
            "resetchannels",
            f"&{namespace}:*",
            "-@all",
            *"+select +multi +exec +evalsha +script|load +hgetall +hmget "
            "+lrange +llen +zrevrange +hset +hget +exists +rpush +zadd +zrem +expire +persist "
            "+unlink +copy +ltrim +lindex +hdel +sadd +smembers +publish +subscribe +get +set +del".split(),
        )
    except redis.ResponseError as exc:
        pytest.skip(f"the test server does not allow ACL SETUSER: {exc}")
    yield user
    server.execute_command("ACL", "DELUSER", user)


def user_url(user: str, password: str | None, namespace: str) -> str:
    parts = store_redis.server_url().split("://", 1)
    host = parts[1].split("@")[-1].split("?")[0]
    login = f"{user}:{password}" if password is not None else user
    return f"{parts[0]}://{login}@{host}?prefix={namespace}"


async def test_the_documented_acl_rules_are_enough(namespace, acl_user, server):
    backend = RedisBackend.from_url(user_url(acl_user, PASSWORD, namespace))
    try:
        server.script_flush()  # so the first call needs SCRIPT LOAD too
        await backend.append("s", turn(0), title="T")
        await backend.save(Session(id="t", messages=turn(1)))
        assert len((await backend.load("s")).messages) == 2
        server.delete(f"{namespace}:session:{{t}}", f"{namespace}:session:{{t}}:messages")
        assert [info.id for info in await backend.list()] == ["s"]  # pruned "t"
        assert await backend.claim_answer("s", "me", 10) is True  # live sessions: the lease...
        await backend.release_answer("s", "me")
        watch = backend.watch()  # ... and the changes channel
        await watch.follow("s")
        changes = watch.changes()
        first = asyncio.ensure_future(anext(changes))
        await asyncio.wait_for(watch.ready.wait(), 5)
        assert await backend.delete("s") is True
        assert (await asyncio.wait_for(first, 5)).change == "deleted"
        await watch.close()
        await changes.aclose()
        await backend.add_memory("p", Message(role="system", content="Tabs, not spaces", id="m1"))
        assert [m.content for m in await backend.load_memories("p")] == ["Tabs, not spaces"]
        assert await backend.memory_projects() == ["p"]
        assert await backend.delete_memory("p", "m1") is True
    finally:
        await backend.close()


async def test_a_fork_is_copied_inside_redis(namespace, acl_user):
    """The fork's messages are not sent: what is stored is the source's list (a middle message
    given differently proves it), checked by its first and last message."""
    backend = RedisBackend.from_url(user_url(acl_user, PASSWORD, namespace))
    try:
        await backend.append("src", turn(0) + turn(1) + turn(2))
        stored = (await backend.load("src")).messages
        given = list(stored[:4])
        given[1] = Message(id=given[1].id, role="assistant", content="not what the source holds")
        await backend.save_copy(Session(id="fork", title="Fork", messages=given), "src")
        copied = await backend.load("fork")
        assert [m.content for m in copied.messages] == [m.content for m in stored[:4]]
        assert copied.title == "Fork" and len((await backend.load("src")).messages) == 6
    finally:
        await backend.close()


async def test_a_fork_is_saved_whole_where_copy_is_not_allowed(namespace, server):
    """A user the older documented rules made (no COPY): the fork is sent and stored as given."""
    user = f"deskmate-test-{namespace}"
    try:
        server.execute_command(
            "ACL", "SETUSER", user, "on", f">{PASSWORD}", "~*", "allchannels", "+@all", "-copy"
        )
    except redis.ResponseError as exc:
        pytest.skip(f"the test server does not allow ACL SETUSER: {exc}")
    backend = RedisBackend.from_url(user_url(user, PASSWORD, namespace))
    try:
        await backend.append("src", turn(0) + turn(1))
        stored = (await backend.load("src")).messages
        await backend.save_copy(Session(id="fork", messages=stored[:2]), "src")
        assert [m.id for m in (await backend.load("fork")).messages] == [m.id for m in stored[:2]]
    finally:
        await backend.close()
        server.execute_command("ACL", "DELUSER", user)


async def test_refused_credentials_are_backend_unavailable_without_the_password(namespace, acl_user):
    backend = RedisBackend.from_url(user_url(acl_user, "wrong-" + PASSWORD, namespace))
    try:
        with pytest.raises(BackendUnavailable, match="Redis at .* is unreachable: .*password") as caught:
            await backend.load("s")
        assert PASSWORD not in str(caught.value)
    finally:
        await backend.close()


async def test_password_from_the_environment(namespace, acl_user, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    backend = RedisBackend.from_url(user_url(acl_user, None, namespace))
    try:
        await backend.append("s", turn(0))
        assert PASSWORD not in repr(backend)
    finally:
        await backend.close()


async def test_a_command_outside_the_acl_is_a_storage_error_naming_the_server(namespace, server):
    user = f"deskmate-test-{namespace}"
    try:
        server.execute_command("ACL", "SETUSER", user, "on", f">{PASSWORD}", "~*", "+@all", "-rpush")
    except redis.ResponseError as exc:
        pytest.skip(f"the test server does not allow ACL SETUSER: {exc}")
    backend = RedisBackend.from_url(user_url(user, PASSWORD, namespace))
    try:
        with pytest.raises(StorageError, match="Redis at .* refused to let this user append to session 's'"):
            await backend.append("s", turn(0))
    finally:
        await backend.close()
        server.execute_command("ACL", "DELUSER", user)


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_url", "complaint"),
    [
        ("redis://h/0?ttl=0", "ttl .* must be a whole number of seconds above 0, got '0'"),
        ("redis://h/0?ttl=-5", "got '-5'"),
        ("redis://h/0?ttl=1.5", "got '1.5'"),
        ("redis://h/0?ttl=soon", "got 'soon'"),
        ("redis://h/0?ttl=", "got ''"),
        ("redis://h/zero", "database .* must be a number"),
        ("redis://h:port/0", "Invalid Redis storage URL 'redis://u:\\*\\*\\*@h:port/0'"),
        ("redis://[::1/0", "Invalid Redis storage URL"),
        ("redis://h/0?prefix=", "prefix '' .* must be"),
        ("redis://h/0?prefix=a{b}", "prefix 'a{b}'"),
        ("redis://h/0?prefix=all*", "prefix 'all\\*'"),
        ("redis://h/0?prefx=typo", "Unknown option 'prefx'"),
        ("redis://h/0?socket_timeout=fast", "Invalid Redis storage URL"),
        ("http://h/0", "starts with redis:// or rediss://"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(bad_url, complaint):
    with_password = bad_url.replace("://h", f"://u:{PASSWORD}@h")
    with pytest.raises(StorageError, match=complaint) as caught:
        RedisBackend.from_url(with_password)
    assert PASSWORD not in str(caught.value)


def test_redis_options_pass_through():
    backend = RedisBackend.from_url("redis://h:7000/1?socket_timeout=3&prefix=team.a&ttl=86400")
    assert (backend.prefix, backend.ttl) == ("team.a", 86400)
    assert "socket_timeout=3" in repr(backend) and "prefix=" not in repr(backend).split(",")[0]


# -- damaged data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [b"not json", b'{"role": "robot", "content": "x"}', b"[1, 2]", b"\xff\xfe", b"1, 2", b"\x84\xa3enc"],
)
async def test_an_unreadable_element_is_a_storage_error_and_nothing_is_deleted(
    backend, server, namespace, damage
):
    await backend.append("hurt", turn(0) + turn(1), title="Hurt")
    key = f"{namespace}:session:{{hurt}}:messages"
    server.lset(key, 2, damage)
    with pytest.raises(
        StorageError, match=r"Session 'hurt' in Redis at .*: the message at index 2 of "
    ) as caught:
        await backend.load("hurt")
    assert key in str(caught.value)
    assert server.llen(key) == 4 and server.lindex(key, 2) == damage
    assert [info.title for info in await backend.list()] == ["Hurt"]


async def test_a_newer_format_is_refused(backend, server, namespace):
    await backend.append("future", turn(0))
    server.hset(f"{namespace}:session:{{future}}", "version", "2")
    with pytest.raises(
        StorageError, match="Session 'future' .* format version '2', not one this deskmate understands"
    ):
        await backend.load("future")


async def test_a_damaged_metadata_record_is_a_storage_error(backend, server, namespace):
    await backend.save(Session(id="tagged", meta=SessionMeta(tags=["a"])))
    server.hset(f"{namespace}:session:{{tagged}}", "meta", "a,b")
    with pytest.raises(StorageError, match="Session 'tagged' .* its meta field cannot be read"):
        await backend.load("tagged")
    await backend.append("fine", turn(0))
    assert {info.id: info.meta.tags for info in await backend.list()} == {"tagged": [], "fine": []}


@pytest.mark.parametrize(
    "member", [b"\xff\xfe", b"../../etc/passwd", "\u00e9t\u00e9".encode(), b"x" * 300, b"nul\0id", b"-dash"]
)
async def test_a_listing_entry_that_is_not_a_session_id_is_skipped_with_a_warning(
    backend, server, namespace, member, caplog
):
    await backend.append("good", turn(0), title="Good")
    server.zadd(f"{namespace}:sessions", {member: time.time() * 1000 + 10_000})  # listed first
    infos = await backend.list()
    assert [(i.id, i.title, i.message_count) for i in infos] == [("good", "Good", 2)]
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert repr(member[:80]) in warning.getMessage() and f"{namespace}:sessions" in warning.getMessage()
    assert "\0" not in warning.getMessage() and "\n" not in warning.getMessage()
    await backend.list()
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1  # once, not every listing


async def test_damaged_session_keys_and_fields_do_not_break_the_listing(backend, server, namespace, caplog):
    meta = f"{namespace}:session:{{{{{{}}}}}}"
    for session_id in ("ok", "meta-string", "messages-string", "newer", "garbled", "tags-int", "tags-mixed"):
        await backend.append(session_id, turn(0), title=session_id)
    server.delete(meta.format("meta-string"))
    server.set(meta.format("meta-string"), "not a hash")  # WRONGTYPE for HMGET and HGETALL
    server.delete(meta.format("messages-string") + ":messages")
    server.set(meta.format("messages-string") + ":messages", "not a list")
    server.hset(meta.format("newer"), "version", "2")
    server.hset(meta.format("garbled"), "version", "\u00b2")  # isdigit(), yet no number int() reads
    server.hset(meta.format("tags-int"), "meta", '{"tags": 5}')
    server.hset(meta.format("tags-mixed"), "meta", '{"tags": ["a", 1]}')
    server.hset(meta.format("tags-mixed"), b"\xff", b"\xfe")  # a field name that is not UTF-8

    infos = {info.id: info for info in await backend.list()}
    assert set(infos) == {
        "ok",
        "meta-string",
        "messages-string",
        "newer",
        "garbled",
        "tags-int",
        "tags-mixed",
    }
    assert (infos["ok"].title, infos["ok"].message_count) == ("ok", 2)
    for damaged in ("meta-string", "messages-string", "newer", "garbled"):
        assert infos[damaged].title == "(damaged session)"
    for session_id in ("tags-int", "tags-mixed"):
        assert (infos[session_id].title, infos[session_id].meta.tags, infos[session_id].message_count) == (
            session_id,
            [],
            2,
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for damaged in ("meta-string", "messages-string", "newer", "garbled", "tags-int", "tags-mixed"):
        assert any(f"Session {damaged!r}" in w for w in warnings), damaged

    for damaged, why in [
        ("meta-string", "WRONGTYPE"),
        ("messages-string", "WRONGTYPE"),
        ("newer", "format version '2', not one this deskmate understands"),
        ("garbled", "format version '\u00b2'"),
        ("tags-int", "its meta field cannot be read (tags must be a list of strings, got int)"),
        ("tags-mixed", "its meta field cannot be read (tags must be a list of strings, got list)"),
    ]:
        with pytest.raises(StorageError, match=f"session '{damaged}'|Session '{damaged}'") as caught:
            await backend.load(damaged)
        assert why in str(caught.value)
        assert type(caught.value) in (StorageError,)
    assert await backend.delete("meta-string") is True  # and a damaged session can be deleted
    assert "meta-string" not in {info.id for info in await backend.list()}


# -- layout ----------------------------------------------------------------------------------


async def test_keys_are_namespaced_by_prefix(namespace, server):
    other = f"{namespace}-other"
    mine, theirs = RedisBackend.from_url(url(namespace)), RedisBackend.from_url(url(other))
    try:
        await mine.append("same-id", turn(0), title="Mine", workspace_uri="file:///w")
        await theirs.save(
            Session(id="same-id", title="Theirs", meta=SessionMeta(tags=["t"]), messages=turn(5))
        )
        assert (await mine.load("same-id")).title == "Mine"
        assert (await theirs.load("same-id")).title == "Theirs"
        assert await mine.delete("same-id") is True
        assert (await theirs.load("same-id")).title == "Theirs"
        keys = {key.decode() for key in server.scan_iter(match=f"{other}:*")}
        assert keys == {
            f"{other}:sessions",
            f"{other}:session:{{same-id}}",
            f"{other}:session:{{same-id}}:messages",
        }
        assert list(server.scan_iter(match=f"{namespace}:*")) == []
    finally:
        await mine.close()
        await theirs.close()
        store_redis.cleanup(other)


async def test_stored_format(backend, server, namespace):
    first, second = turn(0)
    await backend.append("fmt", [first, second], title="Format", workspace_uri="file:///w")
    meta_key, messages_key = backend.keys_of("fmt")
    assert key_slot(meta_key.encode()) == key_slot(messages_key.encode())  # one hash slot
    meta = {k.decode(): v.decode() for k, v in server.hgetall(meta_key).items()}
    assert meta == {
        "version": "1",
        "title": "Format",
        "workspaceUri": "file:///w",
        "createdAt": first.timestamp,
        "updatedAt": second.timestamp,
        "meta": "{}",  # the metadata record (codec.encode_meta): all defaults
    }
    assert [json.loads(item) for item in server.lrange(messages_key, 0, -1)] == [
        first.to_dict(),
        second.to_dict(),
    ]
    score = server.zscore(f"{namespace}:sessions", "fmt")
    assert score == pytest.approx(time.time() * 1000, abs=60_000)


@pytest.mark.usefixtures("encryption_key")
@pytest.mark.parametrize("name", [sealing.AES_MP, sealing.ZSTD_AES_MP, sealing.ZSTD])
async def test_encrypted_or_compressed_records_are_kept_as_bytes_beside_older_json_ones(
    backend, server, name
):
    older, first, second = (
        Message(role=role, content=f"{role} MARK{i} " + "a long line to compress\n" * 40)
        for i, role in enumerate(("user", "user", "assistant"))
    )
    with codec.writing_with(sealing.ENCODINGS[name]):
        await backend.append("bytes", [older])
        _, messages_key = backend.keys_of("bytes")
        # As deskmate wrote encoded records before it kept them as bytes: JSON, data in base64.
        server.lset(messages_key, 0, codec.dumps_bytes(codec.encode_message(older)))
        await backend.append("bytes", [first, second])
    items = server.lrange(messages_key, 0, -1)
    assert json.loads(items[0])["enc"] == name
    for i, item in enumerate(items[1:], start=1):
        record = msgspec.msgpack.decode(item)
        assert record["enc"] == name and isinstance(record["data"], bytes)
        assert "aesgcm" not in name or f"MARK{i}".encode() not in item
    loaded = await backend.load("bytes")
    assert loaded.messages == [older, first, second]


async def test_connections_the_server_closed_are_replaced(namespace, server):
    name = f"deskmate-{namespace}"
    backend = RedisBackend.from_url(url(namespace, client_name=name))
    try:
        await asyncio.gather(*(backend.append(f"s{i}", turn(i)) for i in range(5)))  # several pooled
        ours = [c["id"] for c in server.client_list() if c["name"] == name]
        assert ours
        for client_id in ours:  # as a server restart or an idle timeout would
            server.client_kill_filter(_id=client_id)
        await asyncio.sleep(0.1)  # a restart happens a while before the next use, not during it
        await backend.append("s0", turn(9))
        assert len((await backend.load("s0")).messages) == 4
        assert len(await backend.list()) == 5
    finally:
        await backend.close()


def test_usable_from_one_event_loop_after_another(namespace):
    backend = RedisBackend.from_url(url(namespace))
    asyncio.run(backend.append("loops", turn(0)))
    asyncio.run(backend.append("loops", turn(1)))  # the first loop's connections are gone
    loaded = asyncio.run(backend.load("loops"))
    asyncio.run(backend.close())
    assert len(loaded.messages) == 4


async def test_a_session_from_before_the_metadata_record_keeps_its_tags(backend, server, namespace):
    await backend.append("old", turn(0), title="Old")
    key = f"{namespace}:session:{{old}}"
    server.hdel(key, "meta")
    server.hset(key, "tags", '["a", "b"]')  # as the previous release wrote it
    assert (await backend.load("old")).meta == SessionMeta(tags=["a", "b"])
    assert [(i.id, i.meta.tags) for i in await backend.list()] == [("old", ["a", "b"])]
