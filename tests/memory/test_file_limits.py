"""FileBackend: what one oversized value costs a listing (bounded), and old files still read.

A listing reads at most LIST_HEAD_LIMIT bytes of a header and LIST_TAIL_LIMIT
from a file's end; a message line says its count and time in its last bytes.
"""

import json
import logging
import os
import tracemalloc

import pytest

from deskmate.memory import FileBackend, Message, Session
from deskmate.memory.backends.file.store import LIST_HEAD_LIMIT, LIST_TAIL_LIMIT
from deskmate.memory.limits import MAX_TITLE_LENGTH

HUGE = 64 * 1024 * 1024
HEADER = {
    "deskmate": "session",
    "version": 1,
    "id": "x",
    "title": "Old",
    "createdAt": "2026-01-01T00:00:00.000Z",
}


@pytest.fixture
def backend(data_dir):
    return FileBackend(data_dir)


def old_style_line(n: int, content: str, more: bool = False, **extra: object) -> str:
    """A message line as deskmate wrote them before: "timestamp" after "content", then the rest, then "n"."""
    record = {"id": f"m{n}", "role": "user", "content": content, "timestamp": f"2026-01-01T00:00:0{n}.000Z"}
    record.update(extra)
    record["n"] = n
    if more:
        record["more"] = True
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


async def test_titles_are_clipped_when_read_and_written(backend):
    long = "t" * 1000
    backend.directory.mkdir(parents=True)
    backend.path_of("by-hand").write_text(json.dumps({**HEADER, "title": long}) + "\n")
    await backend.save(Session(id="saved", title=long))
    for session_id in ("by-hand", "saved"):
        loaded = await backend.load(session_id)
        assert len(loaded.title) == MAX_TITLE_LENGTH and loaded.title.endswith("…")
    assert [len(info.title) for info in await backend.list()] == [MAX_TITLE_LENGTH] * 2
    assert len(json.loads(backend.path_of("saved").read_text().splitlines()[0])["title"]) == MAX_TITLE_LENGTH


async def test_a_header_too_long_to_list_is_listed_untitled_and_still_loads(backend, caplog):
    backend.directory.mkdir(parents=True)
    header = {**HEADER, "title": "x" * (10 * 1024 * 1024)}
    path = backend.path_of("big-title")
    path.write_text(json.dumps(header) + "\n" + old_style_line(1, "q") + "\n")
    with caplog.at_level(logging.WARNING):
        [info] = await backend.list()
    assert (info.id, info.title, info.message_count) == ("big-title", "", 1)
    assert f"header line over {LIST_HEAD_LIMIT} bytes" in caplog.text
    loaded = await backend.load("big-title")
    assert len(loaded.title) == MAX_TITLE_LENGTH and [m.content for m in loaded.messages] == ["q"]
    assert path.exists() and loaded.quarantined_to is None


async def test_new_lines_end_with_their_time_and_count(backend):
    await backend.append("s", [Message(role="user", content="q", context={"uri": "file:///p", "text": "t"})])
    line = backend.path_of("s").read_text().splitlines()[1]
    assert list(json.loads(line))[-2:] == ["timestamp", "n"]


async def test_listing_and_appending_after_a_64_mb_line_read_only_its_end(backend):
    big = Message(role="assistant", content="x" * HUGE, timestamp="2026-05-05T05:05:05.000Z")
    await backend.append("big", [Message(role="user", content="q"), big], title="Big")
    del big
    await backend.append("small", [Message(role="user", content="q")], title="Small")
    tracemalloc.start()
    try:
        infos = {info.id: info for info in await FileBackend(backend.root).list()}
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        # A new backend, as a new process: it does not know where its last append ended.
        await FileBackend(backend.root).append("big", [Message(role="user", content="after")])
        _, append_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (infos["big"].title, infos["big"].message_count) == ("Big", 2)
    assert infos["big"].updated_at == "2026-05-05T05:05:05.000Z"
    assert infos["small"].title == "Small"
    assert peak < 4 * 1024 * 1024 and append_peak < 4 * 1024 * 1024  # the line is 64 MiB
    assert (await FileBackend(backend.root).list())[0].message_count == 3


async def test_old_files_still_load_list_and_append(backend):
    backend.directory.mkdir(parents=True)
    path = backend.path_of("old")
    path.write_text(
        json.dumps(HEADER) + "\n" + old_style_line(1, "q", more=True) + "\n" + old_style_line(2, "a") + "\n"
    )
    [info] = await backend.list()
    assert (info.title, info.message_count, info.updated_at) == ("Old", 2, "2026-01-01T00:00:02.000Z")
    await backend.append("old", [Message(role="user", content="new")])
    loaded = await FileBackend(backend.root).load("old")
    assert [m.content for m in loaded.messages] == ["q", "a", "new"]
    assert (await backend.list())[0].message_count == 3


@pytest.mark.parametrize("length", [100_000, 2 * LIST_TAIL_LIMIT])
async def test_an_old_long_last_line_lists_its_count_and_a_time(backend, length):
    """Its time is read from the line up to LIST_TAIL_LIMIT; past that the file's time stands in."""
    backend.directory.mkdir(parents=True)
    path = backend.path_of("old")
    path.write_text(json.dumps(HEADER) + "\n" + old_style_line(1, "y" * length, model="m") + "\n")
    os.utime(path, ns=(1_800_000_000_000_000_000, 1_800_000_000_000_000_000))
    [info] = await backend.list()
    expected = "2026-01-01T00:00:01.000Z" if length < LIST_TAIL_LIMIT else "2027-01-15T08:00:00.000Z"
    assert (info.title, info.message_count, info.updated_at) == ("Old", 1, expected)


async def test_a_long_last_line_in_another_shape_is_listed_without_reading_it(backend, caplog):
    backend.directory.mkdir(parents=True)
    line = json.dumps(
        {"n": 1, "role": "user", "timestamp": "2026-01-01T00:00:01Z", "content": "z" * (2 * LIST_TAIL_LIMIT)}
    )
    backend.path_of("shuffled").write_text(json.dumps(HEADER) + "\n" + line + "\n")
    with caplog.at_level(logging.WARNING):
        [info] = await backend.list()
    assert (info.title, info.message_count) == ("Old", 0)
    assert "listed without its message count" in caplog.text
    assert [m.content[:1] for m in (await backend.load("shuffled")).messages] == ["z"]
    await backend.append("shuffled", [Message(role="user", content="next")])  # an append reads it whole
    assert [m.content for m in (await backend.load("shuffled")).messages][1:] == ["next"]


async def test_an_unfinished_transaction_after_a_long_line_is_skipped(backend):
    await backend.append("torn", [Message(role="user", content="w" * 100_000)])
    path = backend.path_of("torn")
    good = path.read_bytes()
    unfinished = old_style_line(2, "v" * 100_000, more=True)
    path.write_bytes(good + unfinished.encode() + b"\n" + b'{"role": "assistant", "content": "cut')
    [info] = await backend.list()
    assert info.message_count == 1
    await FileBackend(backend.root).append("torn", [Message(role="user", content="next")])
    assert path.read_bytes().startswith(good) and b"cut" not in path.read_bytes()
    assert [m.content[:1] for m in (await backend.load("torn")).messages] == ["w", "n"]
