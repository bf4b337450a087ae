"""A batch of plain JSON records (a Redis list, PostgreSQL rows) decodes straight into messages,
and to exactly what ``decode_message`` makes of each record: anything that path would treat
otherwise (a tagged record, a record it repairs or refuses) still goes through it."""

from __future__ import annotations

import json

import pytest

from deskmate.memory import codec, sealing
from deskmate.memory.codec import BadRecord
from deskmate.memory.models import Message

MESSAGES = [
    Message(role="user", content="Größe? 😀", context={"uri": "file:///p/a.py", "text": "x = 1\n"}),
    Message(
        role="assistant",
        content="Half an answer",
        model="m",
        usage={"promptTokens": 3, "completionTokens": 4, "totalTokens": 7},
        status="interrupted",
        error="the connection was lost",
    ),
    Message(role="system", content=""),
]


def one_by_one(items: list[str]) -> list[Message]:
    return [codec.decode_message(json.loads(item)) for item in items]


@pytest.mark.parametrize("as_bytes", [False, True])
def test_plain_records_decode_as_each_one_would(as_bytes):
    items = [codec.dumps(m.to_dict()) for m in MESSAGES]
    batch = [item.encode() for item in items] if as_bytes else items
    assert codec.decode_messages(batch) == one_by_one(items) == MESSAGES


@pytest.mark.parametrize(
    "record",
    [
        {"role": "user", "content": "no id or time"},  # made for it
        {"role": "user", "content": "empty id", "id": "", "timestamp": ""},  # made for it too
        {"role": "user", "content": "an extra key", "more": True},
    ],
)
def test_records_the_loader_completes_read_as_before(record):
    items = [codec.dumps(MESSAGES[0].to_dict()), json.dumps(record)]
    decoded = codec.decode_messages(items)
    assert decoded[0] == MESSAGES[0]
    assert (decoded[1].role, decoded[1].content) == (record["role"], record["content"])
    assert decoded[1].id and decoded[1].timestamp


@pytest.mark.parametrize(
    "item, wording",
    [
        ('{"role": "robot", "content": "x"}', "role"),
        ('{"role": "user", "content": 5}', "content"),
        ('{"role": "user", "content": "x", "context": {"text": 5}}', "context"),
        ('{"role": "user", "content": "x"}, {"role": "user", "content": "y"}', ""),
        ("not json", ""),
    ],
)
def test_a_bad_record_is_named_by_its_index(item, wording):
    items = [codec.dumps(MESSAGES[0].to_dict()), item]
    with pytest.raises(BadRecord) as failed:
        codec.decode_messages(items)
    assert failed.value.index == 1 and wording in str(failed.value)


def test_json_only_the_json_module_reads_still_loads():
    item = '{"role": "user", "content": "\\ud800 lone", "id": "a", "timestamp": "t"}'  # a lone surrogate
    assert codec.decode_messages([item]) == one_by_one([item])


def test_observing_sees_plain_records(encryption_key):
    plain = codec.dumps(MESSAGES[0].to_dict())
    with codec.observing() as seen:
        codec.decode_messages([plain, plain])
    assert seen == {("plain", None)}
    with codec.writing_with(sealing.ENCODINGS[sealing.AES_MP]):
        sealed = codec.dumps(codec.encode_message(MESSAGES[1]))
    with codec.observing() as seen:
        assert codec.decode_messages([plain, sealed]) == [MESSAGES[0], MESSAGES[1]]
    assert ("plain", None) in seen and len(seen) == 2


def test_only_a_wholly_plain_batch_takes_the_direct_path(encryption_key):
    plain = codec.dumps(MESSAGES[0].to_dict())
    assert codec._plain_messages(f"[{plain},{plain}]", 2) == [MESSAGES[0], MESSAGES[0]]
    with codec.writing_with(sealing.ENCODINGS[sealing.AES_MP]):
        sealed = codec.dumps(codec.encode_message(MESSAGES[1]))
    assert codec._plain_messages(f"[{plain},{sealed}]", 2) is None  # opened by decode_records
    assert codec._plain_messages(f"[{plain},{plain}]", 1) is None  # an item held two values
