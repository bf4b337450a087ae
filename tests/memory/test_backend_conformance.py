"""Behaviour every MemoryBackend must show. Backends are added to the ``backend`` fixture."""

import asyncio
import json
import sys
from pathlib import Path

import pytest

from deskmate.memory import (
    InvalidSessionId,
    MemoryBackend,
    Message,
    Session,
    SessionIdRequired,
)
from deskmate.memory.codec import RecordEncoding, UnknownEncoding, forget_encoding, writing_with
from deskmate.memory.errors import SessionChanged
from deskmate.memory.models import SessionMeta
from helpers import turn

WRITER = Path(__file__).with_name("append_writer.py")


def test_is_a_memory_backend(backend):
    assert isinstance(backend, MemoryBackend)


async def test_save_and_load(backend):
    session = Session(
        id="alpha",
        title="Alpha",
        workspace_uri="file:///p",
        messages=turn(1, metadata=True),
        meta=SessionMeta(tags=["x"]),
    )
    await backend.save(session)
    loaded = await backend.load("alpha")
    assert loaded is not None
    assert [m.to_dict() for m in loaded.messages] == [m.to_dict() for m in session.messages]
    assert (loaded.title, loaded.workspace_uri, loaded.meta.tags) == ("Alpha", "file:///p", ["x"])


async def test_load_missing_session_returns_none(backend):
    assert await backend.load("never-saved") is None


async def test_append_creates_then_extends(backend):
    await backend.append("s", turn(0, metadata=True), title="First", workspace_uri="file:///w")
    await backend.append("s", turn(1, metadata=True), title="ignored")
    loaded = await backend.load("s")
    assert [m.content for m in loaded.messages] == ["q0", "a0", "q1", "a1"]
    assert loaded.title == "First"
    assert loaded.updated_at == loaded.messages[-1].timestamp


async def test_interrupted_status_and_metadata_survive(backend):
    partial = Message(role="assistant", content="half an ans", status="interrupted", model="m1")
    await backend.append("s", [Message(role="user", content="q"), partial])
    loaded = await backend.load("s")
    assert loaded.messages[1].status == "interrupted"
    assert loaded.messages[1].model == "m1"
    assert loaded.messages[1].id == partial.id


async def test_a_failed_answer_keeps_its_reason(backend):
    failed = Message(
        role="assistant", content="", status="interrupted", error="Cannot reach the model server."
    )
    await backend.append("s", [Message(role="user", content="q"), failed])
    loaded = (await backend.load("s")).messages[1]
    assert (loaded.status, loaded.error, loaded.content) == (
        "interrupted",
        "Cannot reach the model server.",
        "",
    )


async def test_delete(backend):
    await backend.append("gone", turn(0, metadata=True))
    assert await backend.delete("gone") is True
    assert await backend.load("gone") is None
    assert "gone" not in [info.id for info in await backend.list()]


async def test_delete_missing_session_returns_false(backend):
    assert await backend.delete("nothing-here") is False


async def test_list(backend):
    await backend.append("one", turn(0, metadata=True), title="One", workspace_uri="file:///a")
    await backend.append("two", turn(0, metadata=True) + turn(1, metadata=True), title="Two")
    await backend.save(Session(id="empty", title="Empty"))
    infos = {info.id: info for info in await backend.list()}
    assert set(infos) == {"one", "two", "empty"}
    assert infos["one"].message_count == 2
    assert infos["one"].workspace_uri == "file:///a"
    assert infos["two"].message_count == 4
    assert infos["two"].title == "Two"
    assert infos["empty"].message_count == 0


async def test_list_is_most_recent_first(backend):
    await backend.append("older", turn(0, metadata=True))
    await asyncio.sleep(0.01)
    await backend.append("newer", turn(0, metadata=True))
    assert [info.id for info in await backend.list()][:2] == ["newer", "older"]


async def test_list_before_anything_is_stored(backend):
    assert await backend.list() == []


async def test_concurrent_appends_lose_nothing(backend):
    # 10 tasks x 20 appends to one session.
    async def writer(w: int) -> None:
        for i in range(20):
            await backend.append("busy", [Message(role="user", content=f"{w}-{i}")])

    await asyncio.gather(*(writer(w) for w in range(10)))
    loaded = await backend.load("busy")
    contents = [m.content for m in loaded.messages]
    assert sorted(contents) == sorted(f"{w}-{i}" for w in range(10) for i in range(20))
    for w in range(10):  # each writer's own order is kept
        mine = [c for c in contents if c.startswith(f"{w}-")]
        assert mine == [f"{w}-{i}" for i in range(20)]
    info = next(i for i in await backend.list() if i.id == "busy")
    assert info.message_count == 200


async def test_concurrent_saves_leave_one_whole_version(backend):
    async def saver(w: int) -> None:
        for i in range(20):
            await backend.save(Session(id="saved", messages=[Message(role="user", content=f"{w}-{i}")] * 3))

    await asyncio.gather(*(saver(w) for w in range(10)))
    loaded = await backend.load("saved")
    assert len(loaded.messages) == 3
    assert len({m.content for m in loaded.messages}) == 1


async def test_a_conditional_save_writes_over_the_history_it_read(backend):
    await backend.append("cond", turn(0, metadata=True))
    session = await backend.load("cond")
    session.title = "Rewritten"
    await backend.save(session, expected_messages=2)
    loaded = await backend.load("cond")
    assert (loaded.title, [m.content for m in loaded.messages]) == ("Rewritten", ["q0", "a0"])


async def test_a_conditional_save_never_drops_a_turn_stored_after_the_read(backend):
    await backend.append("cond", turn(0, metadata=True))
    session = await backend.load("cond")
    await backend.append("cond", turn(1, metadata=True))  # another process's turn
    session.title = "Stale"
    with pytest.raises(SessionChanged, match="'cond'.*had 2 messages and now holds 4"):
        await backend.save(session, expected_messages=2)
    loaded = await backend.load("cond")
    assert [m.content for m in loaded.messages] == ["q0", "a0", "q1", "a1"]
    assert loaded.title != "Stale"


async def test_a_conditional_save_does_not_bring_back_a_deleted_session(backend):
    await backend.append("gone", turn(0, metadata=True))
    session = await backend.load("gone")
    await backend.delete("gone")
    with pytest.raises(SessionChanged, match="no longer exists"):
        await backend.save(session, expected_messages=2)
    assert await backend.load("gone") is None
    assert "gone" not in {info.id for info in await backend.list()}


async def test_conditional_rewrites_racing_appends_lose_no_turn(backend):
    await backend.append("race", turn(0, metadata=True))
    appended = asyncio.Event()

    async def appender() -> None:
        for i in range(1, 16):
            await backend.append("race", turn(i, metadata=True))
            await asyncio.sleep(0)
        appended.set()

    async def rewriter() -> int:
        written = 0
        while not appended.is_set():
            session = await backend.load("race")
            try:
                await backend.save(session, expected_messages=len(session.messages))
                written += 1
            except SessionChanged:
                pass
            await asyncio.sleep(0)
        return written

    await asyncio.gather(appender(), rewriter())
    loaded = await backend.load("race")
    assert [m.content for m in loaded.messages] == [c for i in range(16) for c in (f"q{i}", f"a{i}")]


async def test_concurrent_loads(backend):
    await backend.append("read-me", turn(0, metadata=True) + turn(1, metadata=True))
    results = await asyncio.gather(*(backend.load("read-me") for _ in range(50)))
    assert all(len(r.messages) == 4 for r in results)


@pytest.mark.parametrize("operation", ["load", "delete", "append"])
async def test_empty_session_id_is_refused(backend, operation):
    with pytest.raises(SessionIdRequired, match="session id is required"):
        if operation == "append":
            await backend.append("", turn(0, metadata=True))
        else:
            await getattr(backend, operation)("")


async def test_save_overwrites(backend):
    await backend.save(Session(id="ow", messages=turn(0, metadata=True) + turn(1, metadata=True)))
    await backend.save(Session(id="ow", title="Second", messages=turn(7, metadata=True)))
    loaded = await backend.load("ow")
    assert [m.content for m in loaded.messages] == ["q7", "a7"]
    assert loaded.title == "Second"


async def test_append_after_save_continues_the_count(backend):
    await backend.save(Session(id="mix", messages=turn(0, metadata=True)))
    await backend.append("mix", turn(1, metadata=True))
    info = next(i for i in await backend.list() if i.id == "mix")
    assert info.message_count == 4
    assert len((await backend.load("mix")).messages) == 4


async def test_large_conversation(backend):
    messages = [
        Message(role="user" if i % 2 == 0 else "assistant", content=f"m{i} " * 20) for i in range(1000)
    ]
    await backend.save(Session(id="big", messages=messages))
    loaded = await backend.load("big")
    assert len(loaded.messages) == 1000
    assert loaded.messages[999].content == messages[999].content
    assert next(i for i in await backend.list() if i.id == "big").message_count == 1000


async def test_unicode_content_round_trips(backend):
    text = 'naïve — 日本語 😀 "quotes" \\ back\nslash\u2028line'
    await backend.append("uni", [Message(role="user", content=text)])
    assert (await backend.load("uni")).messages[0].content == text


@pytest.mark.parametrize(
    "bad_id",
    [
        "../x",
        "../../etc/passwd",
        "/abs/path",
        "a/b",
        "a\\b",
        "nul\0byte",
        "tab\tid",
        "new\nline",
        ".hidden",
        "-dash",
        "x" * 129,
        "sp ace",
        "é",
    ],
)
async def test_unsafe_session_ids_are_refused(backend, bad_id):
    for call in (
        lambda: backend.load(bad_id),
        lambda: backend.append(bad_id, turn(0, metadata=True)),
        lambda: backend.save(Session(id=bad_id)),
        lambda: backend.delete(bad_id),
        lambda: backend.update(bad_id, lambda info: (info.title, info.meta)),
    ):
        with pytest.raises(InvalidSessionId, match="Invalid session id"):
            await call()


async def test_append_keeps_the_title_of_an_existing_session(backend):
    # Titles are the engine's to decide (engine.sessions.first_title), through update.
    await backend.save(Session(id="fresh", workspace_uri="file:///w"))
    await backend.append("fresh", turn(0, metadata=True), title="First question", workspace_uri="file:///x")
    loaded = await backend.load("fresh")
    assert (loaded.title, loaded.workspace_uri, len(loaded.messages)) == ("", "file:///w", 2)


async def test_update_of_a_missing_session_changes_nothing(backend):
    def change(info):
        raise AssertionError("change must not be called for a session that does not exist")

    assert await backend.update("nobody", change) is None
    assert await backend.load("nobody") is None


async def test_update_changes_title_and_metadata_only(backend):
    await backend.append("u", turn(0, metadata=True), title="Old", workspace_uri="file:///w")
    await backend.append("u", turn(1, metadata=True))
    before = await backend.load("u")
    seen = []

    def change(info):
        seen.append((info.title, info.message_count, info.meta))
        return "New ünïcode title", SessionMeta(tags=["a", "b"], pinned=True, extra={"later": 1})

    info = await backend.update("u", change)
    assert seen[-1] == ("Old", 4, SessionMeta())
    assert (info.title, info.message_count, info.meta.tags, info.meta.pinned) == (
        "New ünïcode title",
        4,
        ["a", "b"],
        True,
    )
    after = await backend.load("u")
    assert [m.to_dict() for m in after.messages] == [m.to_dict() for m in before.messages]
    assert (after.title, after.workspace_uri, after.created_at) == (
        "New ünïcode title",
        "file:///w",
        before.created_at,
    )
    assert after.updated_at == before.updated_at  # a rename does not reorder listings
    assert after.meta == SessionMeta(tags=["a", "b"], pinned=True, extra={"later": 1})
    listed = next(i for i in await backend.list() if i.id == "u")
    assert (listed.title, listed.message_count, listed.meta.pinned) == ("New ünïcode title", 4, True)
    await backend.append("u", turn(2, metadata=True))  # appends go on after an update
    again = await backend.load("u")
    assert len(again.messages) == 6 and again.title == "New ünïcode title" and again.meta.pinned


async def test_update_of_an_empty_session(backend):
    await backend.save(Session(id="empty", workspace_uri="file:///w"))
    info = await backend.update("empty", lambda info: ("Named", info.meta))
    assert (info.title, info.message_count) == ("Named", 0)
    await backend.append("empty", turn(0, metadata=True))
    loaded = await backend.load("empty")
    assert (loaded.title, len(loaded.messages)) == ("Named", 2)


async def test_concurrent_updates_and_appends_lose_nothing(backend):
    """Tag additions racing each other and appends: every tag and every message is kept."""
    await backend.append("race", turn(0, metadata=True), title="Race")

    def add_tag(tag):
        return lambda info: (info.title, SessionMeta(tags=[*info.meta.tags, tag], pinned=info.meta.pinned))

    await asyncio.gather(
        *(backend.update("race", add_tag(f"t{i}")) for i in range(8)),
        *(backend.append("race", turn(i + 1, metadata=True)) for i in range(8)),
    )
    loaded = await backend.load("race")
    assert sorted(loaded.meta.tags) == sorted(f"t{i}" for i in range(8))
    assert len(loaded.messages) == 18 and loaded.title == "Race"


async def test_appends_from_several_processes_keep_one_order(backend, backend_url):
    # Three daemons on three machines, say: each writer's turns stay whole and in its own order.
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), backend_url, "shared", tag, "40", stdout=asyncio.subprocess.PIPE
        )
        for tag in ("w0", "w1", "w2")
    ]
    outputs = await asyncio.gather(*(w.communicate() for w in writers))
    assert [w.returncode for w in writers] == [0, 0, 0]
    assert all(out.decode().count("ok ") == 40 for out, _ in outputs)
    loaded = await backend.load("shared")
    ids = [m.id for m in loaded.messages]
    assert len(ids) == 240 and len(set(ids)) == 240
    for position in range(0, 240, 2):  # a question is always followed by its own answer
        assert ids[position].endswith("-q") and ids[position + 1] == ids[position][:-1] + "a"
    for tag in ("w0", "w1", "w2"):
        mine = [i for i in ids if i.startswith(f"{tag}-") and i.endswith("-q")]
        assert mine == [f"{tag}-{i}-q" for i in range(40)]
    assert next(i for i in await backend.list() if i.id == "shared").message_count == 240


async def test_large_message_round_trips(backend):
    big = "x" * (4 * 1024 * 1024 - 7) + "😀 end"  # a 4 MiB answer, e.g. a pasted log
    await backend.append(
        "large", [Message(role="user", content="paste"), Message(role="assistant", content=big)]
    )
    loaded = await backend.load("large")
    assert loaded.messages[1].content == big


async def test_list_counts_and_order_after_many_sessions(backend):
    for i in range(30):
        await backend.append(f"s{i:02d}", turn(i, metadata=True)[: 1 + i % 2], title=f"Session {i}")
        await asyncio.sleep(0.002)  # timestamps have millisecond resolution
    infos = await backend.list()
    assert [info.id for info in infos] == [f"s{i:02d}" for i in reversed(range(30))]
    assert [info.message_count for info in infos] == [1 + i % 2 for i in reversed(range(30))]
    assert all(info.title == f"Session {info.id[1:].lstrip('0') or '0'}" for info in infos)


async def test_lone_surrogates_are_stored_as_the_replacement_character(backend):
    # Editors can send half a surrogate pair; UTF-8 cannot carry it, so every store keeps U+FFFD.
    odd = "half a pair: \ud83d, and the other half \ude00 日本語"
    kept = "half a pair: \ufffd, and the other half \ufffd 日本語"
    question = Message(
        role="user", content=odd, context={"uri": "file:///a.py", "languageId": "python", "text": odd}
    )
    await backend.append("sur", [question, Message(role="assistant", content=odd)], title=odd)
    appended = await backend.load("sur")
    assert [m.content for m in appended.messages] == [kept, kept]
    assert appended.messages[0].context["text"] == kept
    assert appended.title == kept
    assert next(i for i in await backend.list() if i.id == "sur").title == kept

    await backend.save(Session(id="sur-saved", title=odd, meta=SessionMeta(tags=[odd]), messages=[question]))
    saved = await backend.load("sur-saved")
    assert (saved.title, saved.meta.tags) == (kept, [kept])
    assert saved.messages[0].content == kept and saved.messages[0].context["text"] == kept


async def test_a_question_with_attached_files_round_trips(backend):
    """The files that went along with a question (context.attachments) come back as stored."""
    context = {
        "uri": "file:///p/app.py",
        "range": {"start": {"line": 2, "character": 0}, "end": {"line": 4, "character": 0}},
        "text": "def run():\n    pass\n",
        "languageId": "python",
        "attachments": [
            {"uri": "file:///p/util.py", "text": "X = 1\n", "languageId": "python"},
            {
                "uri": "file:///p/big.txt",
                "text": "y" * 10,
                "note": "only the first 10 of 20 characters were sent",
            },
        ],
    }
    question = Message(role="user", content="how do these fit?", context=context)
    await backend.append("att", [question, Message(role="assistant", content="well")])
    assert (await backend.load("att")).messages[0].context == context
    await backend.save(Session(id="att-saved", messages=[question]))
    assert (await backend.load("att-saved")).messages[0].context == context


async def test_session_metadata_round_trips_every_field(backend):
    """Every SessionMeta field, and a field a newer deskmate wrote, survive save, load, list and append."""
    meta = SessionMeta(
        tags=["api", "ünïcode"],
        pinned=True,
        forked_from={"sessionId": "src", "messageId": "m"},
        project="git:0123abcd",
        last_fork_at="2026-01-01T00:00:00.000Z",
        extra={"colour": {"name": "teal"}},
    )
    await backend.save(Session(id="meta", title="Meta", messages=turn(0), meta=meta))
    await backend.append("meta", turn(1))  # an append keeps the record as it is
    loaded = await backend.load("meta")
    assert loaded.meta == meta and len(loaded.messages) == 4
    listed = {info.id: info for info in await backend.list()}
    assert listed["meta"].meta == meta
    await backend.append("plain", turn(0), title="Plain")  # created by an append: the defaults
    plain = await backend.load("plain")
    assert plain.meta == SessionMeta() and not plain.meta.pinned


async def test_a_fork_keeps_its_lineage_and_its_source_stays_as_it_was(backend):
    """A fork is one save of a prefix of its source with ``forkedFrom`` set: the lineage survives
    load, list, appends to the fork and to the source, and a session that is no fork has none."""
    await backend.append("source", turn(0) + turn(1) + turn(2), title="Source", workspace_uri="file:///w")
    source = await backend.load("source")
    at = source.messages[3]
    lineage = {"sessionId": "source", "messageId": at.id}
    fork = Session(
        id="source-fork",
        title="Source (fork)",
        workspace_uri="file:///w",
        meta=SessionMeta(forked_from=lineage),
        messages=source.messages[:4],
    )
    await backend.save(fork)
    await backend.append("source-fork", turn(9))
    await backend.append("source", turn(3))
    loaded = await backend.load("source-fork")
    assert loaded.meta.forked_from == lineage
    assert [m.to_dict() for m in loaded.messages[:4]] == [m.to_dict() for m in source.messages[:4]]
    assert [m.content for m in loaded.messages] == ["q0", "a0", "q1", "a1", "q9", "a9"]
    again = await backend.load("source")
    assert [m.content for m in again.messages] == ["q0", "a0", "q1", "a1", "q2", "a2", "q3", "a3"]
    assert again.meta.forked_from is None
    listed = {info.id: info for info in await backend.list()}
    assert listed["source-fork"].meta.forked_from == lineage and listed["source-fork"].message_count == 6
    assert listed["source"].meta.forked_from is None


# A transform as compression or encryption would be one: the record's fields, unreadable as stored.
REVERSED = RecordEncoding(
    "test-reversed",
    encode=lambda record: {"data": json.dumps(record)[::-1]},
    decode=lambda record: json.loads(record["data"][::-1]),
)


async def test_records_in_a_new_encoding_read_beside_plain_ones(backend, reopen):
    """Each record names its encoding: a history written before a transform was turned on, and
    after it was turned off again, reads whole."""
    await backend.append("enc", turn(0, metadata=True), title="Enc")
    with writing_with(REVERSED):
        await backend.append("enc", turn(1, metadata=True))
        await backend.save(Session(id="enc-saved", title="Saved", messages=turn(5, metadata=True)))
    await backend.append("enc", turn(2, metadata=True))
    for reader in (backend, reopen()):
        loaded = await reader.load("enc")
        assert [m.content for m in loaded.messages] == ["q0", "a0", "q1", "a1", "q2", "a2"]
        assert loaded.messages[3].usage and loaded.updated_at == loaded.messages[-1].timestamp
        saved = await reader.load("enc-saved")
        assert [m.content for m in saved.messages] == ["q5", "a5"] and saved.title == "Saved"
        listed = {info.id: info for info in await reader.list()}
        assert listed["enc"].message_count == 6 and listed["enc-saved"].message_count == 2


async def test_a_record_in_an_unknown_encoding_is_refused_by_name_and_left_alone(backend, reopen):
    with writing_with(REVERSED):
        await backend.append("later", turn(0, metadata=True), title="Later")
    forget_encoding(REVERSED.name)  # as a deskmate that does not know it would find it
    try:
        reader = reopen()
        with pytest.raises(UnknownEncoding, match="test-reversed"):
            await reader.load("later")
        listed = {info.id: info for info in await reader.list()}  # the listing is not broken by it
        assert listed["later"].title == "Later" and listed["later"].message_count == 2
    finally:
        with writing_with(REVERSED):  # registers it again
            pass
    loaded = await reopen().load("later")  # nothing was moved aside or changed
    assert [m.content for m in loaded.messages] == ["q0", "a0"] and not loaded.quarantined_to


async def test_save_copy_stores_what_save_would(backend):
    """A fork's save: the prefix of the source as read, whether the store copies it or writes it."""
    source = Session(id="src", title="Source", messages=turn(0, metadata=True) + turn(1, metadata=True))
    await backend.save(source)
    await backend.append("src", turn(2, metadata=True))
    stored = await backend.load("src")
    fork = Session(
        id="fork",
        title="Source (fork)",
        workspace_uri="file:///w",
        meta=SessionMeta(forked_from={"sessionId": "src", "messageId": stored.messages[3].id}),
        messages=stored.messages[:4],
    )
    await backend.save_copy(fork, "src")
    copied = await backend.load("fork")
    assert [m.to_dict() for m in copied.messages] == [m.to_dict() for m in stored.messages[:4]]
    assert (copied.title, copied.workspace_uri, copied.meta) == (fork.title, fork.workspace_uri, fork.meta)
    assert copied.updated_at == stored.messages[3].timestamp
    await backend.append("fork", turn(3, metadata=True))  # a fork goes on like any session
    assert len((await backend.load("fork")).messages) == 6
    assert len((await backend.load("src")).messages) == 6  # the source is untouched

    # The source replaced meanwhile (or never stored): what was given is what is stored.
    await backend.save(Session(id="src", messages=turn(7, metadata=True)))
    given = Session(id="fork2", messages=stored.messages[:2])
    await backend.save_copy(given, "src")
    await backend.save_copy(Session(id="fork3", messages=stored.messages[:2]), "nowhere")
    for session_id in ("fork2", "fork3"):
        loaded = await backend.load(session_id)
        assert [m.to_dict() for m in loaded.messages] == [m.to_dict() for m in stored.messages[:2]]
