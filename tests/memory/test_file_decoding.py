"""The file store's fast decoder (msgspec) never accepts what the checked path (json + Message.from_dict)
refuses, and reads everything it accepts the same way."""

from __future__ import annotations

import json

import pytest

from deskmate.memory.backends.file.store import (
    CorruptSessionFile,
    _committed_messages,
    _decode_records,
    _fast_messages,
)

GOOD = {"id": "m", "role": "user", "content": "hi", "timestamp": "2026-01-01T00:00:00.000Z", "n": 1}
VARIANTS = [
    GOOD,
    {**GOOD, "model": "m1", "usage": {"totalTokens": 3}, "status": "interrupted"},
    {**GOOD, "status": "interrupted", "error": "The model server failed (HTTP 500)."},
    {**GOOD, "error": 5},
    {**GOOD, "error": None},
    {
        **GOOD,
        "context": {
            "uri": "file:///a.py",
            "text": "x",
            "languageId": "python",
            "note": "cut",
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
        },
    },
    {**GOOD, "id": ""},
    {**GOOD, "timestamp": ""},
    {**GOOD, "id": 7},
    {**GOOD, "role": "robot"},
    {**GOOD, "content": 5},
    {**GOOD, "status": "done"},
    {**GOOD, "model": 3},
    {**GOOD, "usage": [1]},
    {**GOOD, "context": {"uri": "file:///a", "text": 5}},
    {
        **GOOD,
        "context": {"uri": "file:///a", "text": "x", "attachments": [{"uri": "file:///b", "text": "y"}]},
    },
    {**GOOD, "context": {"uri": "file:///a", "attachments": {"uri": "file:///b"}}},
    {**GOOD, "context": {"uri": "file:///a", "attachments": [{"uri": "file:///b", "text": 5}]}},
    {**GOOD, "context": {"attachments": [{"uri": "file:///b", "attachments": []}]}},
    {**GOOD, "context": {"uri": "file:///a", "range": {"start": 1}}},
    {**GOOD, "context": "file:///a"},
    {**GOOD, "more": True},
    [1, 2],
    "text",
]


def checked(body: bytes):
    try:
        return _committed_messages(_decode_records(body), 1)
    except CorruptSessionFile:
        return "damaged"


@pytest.mark.parametrize("record", VARIANTS, ids=[json.dumps(v)[:60] for v in VARIANTS])
def test_the_fast_decoder_agrees_with_the_checked_path(record):
    body = (json.dumps(record) + "\n" + json.dumps({**GOOD, "id": "last"}) + "\n").encode()
    fast, slow = _fast_messages(body), checked(body)
    if fast is None:
        return  # the store then takes the checked path: nothing to compare
    assert slow != "damaged", f"the fast decoder accepted a record the checked path refuses: {record}"
    fast_messages, fast_pending = fast
    slow_messages, slow_pending = slow
    assert fast_pending == slow_pending
    strip = lambda ms: [(m.role, m.content, m.model, m.usage, m.status, m.context) for m in ms]  # noqa: E731
    assert strip(fast_messages) == strip(slow_messages)
    assert [m.id for m in fast_messages if record.get("id")] == [
        m.id for m in slow_messages if record.get("id")
    ]


@pytest.mark.parametrize("tail", [[{**GOOD, "more": True}], [{**GOOD, "more": True}, {**GOOD, "more": True}]])
def test_an_unfinished_transaction_at_the_end_is_left_out_by_both_paths(tail):
    records = [GOOD, {**GOOD, "id": "done"}, *tail]
    body = "".join(json.dumps(record) + "\n" for record in records).encode()
    fast, slow = _fast_messages(body), checked(body)
    assert fast is not None and slow != "damaged"
    assert [m.id for m in fast[0]] == [m.id for m in slow[0]] == ["m", "done"]
    assert fast[1] == slow[1] == len(tail)
