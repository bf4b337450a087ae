"""FileBackend: a damaged field is a damaged file, never an exception that breaks every listing.

A load moves such a file aside (``Session.quarantined_to``); a listing logs it,
shows it as "(damaged session file)" and lists the rest.
"""

import json
from pathlib import Path

import pytest

from deskmate.memory import FileBackend, Message
from helpers import write_jsonl

DAMAGED = "(damaged session file)"
GOOD_HEADER = {
    "deskmate": "session",
    "version": 1,
    "id": "x",
    "title": "T",
    "createdAt": "2026-01-01T00:00:00.000Z",
}
GOOD_MESSAGE = {"id": "m1", "role": "user", "content": "q", "timestamp": "2026-01-01T00:00:01.000Z", "n": 1}


@pytest.fixture
def backend(data_dir):
    return FileBackend(data_dir)


def write_session(backend: FileBackend, session_id: str, *records: object) -> bytes:
    return write_jsonl(backend.path_of(session_id), records)


async def a_good_session(backend: FileBackend) -> None:
    await backend.append("good", [Message(role="user", content="fine")], title="Good")


BAD_HEADERS = {
    "tags-a-number": {**GOOD_HEADER, "tags": 5},
    "tags-not-strings": {**GOOD_HEADER, "tags": ["ok", 7]},
    "tags-an-object": {**GOOD_HEADER, "tags": {"a": 1}},
    "version-a-string": {**GOOD_HEADER, "version": "2"},
    "version-a-list": {**GOOD_HEADER, "version": [1]},
    "version-newer": {**GOOD_HEADER, "version": 2},
    "title-a-number": {**GOOD_HEADER, "title": 5},
    "title-an-object": {**GOOD_HEADER, "title": {"text": "T"}},
    "workspace-a-list": {**GOOD_HEADER, "workspaceUri": ["file:///p"]},
    "created-a-number": {**GOOD_HEADER, "createdAt": 1767225600},
    "header-a-list": [GOOD_HEADER],
    "header-a-string": "deskmate session",
    "header-null": None,
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
async def test_a_header_field_of_the_wrong_type_is_damage(backend, header):
    await a_good_session(backend)
    data = write_session(backend, "bad", header, GOOD_MESSAGE)
    infos = {info.id: info for info in await backend.list()}
    assert infos["bad"].title == DAMAGED and infos["good"].title == "Good"
    assert backend.path_of("bad").read_bytes() == data  # a listing moves nothing
    loaded = await backend.load("bad")
    assert loaded.messages == [] and loaded.quarantined_to is not None
    assert Path(loaded.quarantined_to).read_bytes() == data
    assert not backend.path_of("bad").exists()


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
async def test_a_damaged_header_only_file_is_listed_as_damaged_and_moved_aside_on_append(backend, header):
    data = write_session(backend, "bare", header)
    assert [(i.id, i.title) for i in await backend.list()] == [("bare", DAMAGED)]
    await backend.append("bare", [Message(role="user", content="again")], title="Again")
    loaded = await backend.load("bare")
    assert [m.content for m in loaded.messages] == ["again"] and loaded.title == "Again"
    moved = list(backend.directory.glob("bare.jsonl.corrupt-*"))
    assert [p.read_bytes() for p in moved] == [data]


BAD_MESSAGES = {
    "a-number": 5,
    "a-list": [GOOD_MESSAGE],
    "a-string": "user: q",
    "no-role": {"content": "q", "n": 2},
    "content-a-number": {**GOOD_MESSAGE, "content": 5, "n": 2},
    "context-a-string": {**GOOD_MESSAGE, "context": "def parse(", "n": 2},
    "context-a-list": {**GOOD_MESSAGE, "context": [1, 2], "n": 2},
    "usage-a-number": {**GOOD_MESSAGE, "usage": 12, "n": 2},
    "status-unknown": {**GOOD_MESSAGE, "status": "half", "n": 2},
}


@pytest.mark.parametrize("message", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
@pytest.mark.parametrize("position", ["last", "middle"])
async def test_a_message_of_the_wrong_shape_is_damage(backend, message, position):
    await a_good_session(backend)
    records = (
        [GOOD_HEADER, GOOD_MESSAGE, message] if position == "last" else [GOOD_HEADER, message, GOOD_MESSAGE]
    )
    data = write_session(backend, "bad", *records)
    infos = {info.id: info for info in await backend.list()}
    assert infos["good"].title == "Good"
    if position == "last":  # a listing reads the last line only
        assert infos["bad"].title == DAMAGED
    loaded = await backend.load("bad")
    assert loaded.quarantined_to is not None and Path(loaded.quarantined_to).read_bytes() == data


async def test_an_append_after_a_last_line_that_is_not_a_message_keeps_the_history(backend):
    """A hand-added line without a role is not a header: the history must not be rewritten away."""
    header = {**GOOD_HEADER, "title": ""}
    data = write_session(backend, "edited", header, GOOD_MESSAGE, {"note": "added by hand"})
    await backend.append("edited", [Message(role="user", content="next")], title="Next")
    moved = list(backend.directory.glob("edited.jsonl.corrupt-*"))
    assert [p.read_bytes() for p in moved] == [data]  # the old history is kept, byte for byte


@pytest.mark.parametrize("count", ["7", [1], None, -3, True, 1.5])
async def test_a_last_line_whose_count_is_not_a_number_lists_and_appends(backend, count):
    later = "2026-01-01T00:00:02.000Z"
    second = {**GOOD_MESSAGE, "id": "m2", "role": "assistant", "content": "a", "timestamp": later, "n": count}
    if count is None:
        del second["n"]
    write_session(backend, "counted", GOOD_HEADER, GOOD_MESSAGE, second)
    [info] = await backend.list()
    assert (info.id, info.title, info.updated_at) == ("counted", "T", later)
    await backend.append("counted", [Message(role="user", content="next")])
    loaded = await backend.load("counted")
    assert [m.content for m in loaded.messages] == ["q", "a", "next"] and loaded.quarantined_to is None
    last = json.loads(backend.path_of("counted").read_text().splitlines()[-1])
    assert last["n"] == 3  # counted from the messages themselves
    assert (await backend.list())[0].message_count == 3


@pytest.mark.parametrize("where", ["header", "message"])
async def test_json_nested_too_deeply_is_damage(backend, where):
    await a_good_session(backend)
    backend.directory.mkdir(parents=True, exist_ok=True)
    deep = "[" * 100_000 + "]" * 100_000
    header = json.dumps(GOOD_HEADER)
    if where == "header":
        header = header[:-1] + ', "extra": ' + deep + "}"
    message = json.dumps(GOOD_MESSAGE)[:-1] + ', "extra": ' + deep + "}"
    backend.path_of("deep").write_text(header + "\n" + message + "\n")
    infos = {info.id: info for info in await backend.list()}
    assert infos["deep"].title == DAMAGED and infos["good"].title == "Good"
    loaded = await backend.load("deep")
    assert loaded.quarantined_to is not None
