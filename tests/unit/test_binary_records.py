"""Records kept as bytes (Redis): an encrypted or compressed record is MessagePack with its data
raw, a plain one stays JSON, and a batch mixing both forms (records written before, and after)
reads back in order; a damaged binary record is named by its index."""

from __future__ import annotations

import json

import msgspec
import pytest

from deskmate.memory import codec, sealing
from deskmate.memory.codec import BadRecord
from deskmate.memory.models import Message

pytestmark = pytest.mark.usefixtures("encryption_key")

QUESTION = Message(
    role="user",
    content="Why does parse_config raise?",
    context={"uri": "file:///p/a.py", "languageId": "python", "text": "def parse_config():\n    pass\n" * 40},
)
ANSWER = Message(role="assistant", content="Because the file is empty.\n```python\nreturn {}\n```", model="m")
ENCODINGS = [sealing.AES_MP, sealing.ZSTD_AES_MP, sealing.ZSTD]


@pytest.mark.parametrize("name", ENCODINGS)
def test_an_encoded_record_is_messagepack_with_raw_data(name):
    with codec.writing_with(sealing.ENCODINGS[name]):
        stored = codec.record_bytes(QUESTION, binary=True)
        as_json = codec.record_bytes(QUESTION)
    assert stored[0] >= 0x80  # a MessagePack map: no JSON text starts so
    record = msgspec.msgpack.decode(stored)
    assert record["enc"] == name and isinstance(record["data"], bytes)
    assert len(stored) < len(as_json) * 0.8  # no base64
    assert json.loads(as_json)["enc"] == name  # the JSON form, for stores that keep text
    assert codec.decode_messages([stored]) == [QUESTION]


def test_a_plain_record_stays_json():
    assert codec.record_bytes(QUESTION, binary=True) == codec.dumps_bytes(QUESTION.to_dict())


@pytest.mark.parametrize("name", ENCODINGS)
def test_a_batch_of_both_forms_reads_in_order(name):
    plain = codec.record_bytes(ANSWER, binary=True)
    with codec.writing_with(sealing.ENCODINGS[name]):
        earlier = codec.record_bytes(QUESTION)  # as written before records were kept as bytes
        packed = [codec.record_bytes(message, binary=True) for message in (QUESTION, ANSWER)]
    assert codec.decode_messages([plain, earlier, *packed, plain]) == [
        ANSWER,
        QUESTION,
        QUESTION,
        ANSWER,
        ANSWER,
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda packed: packed[:-5],  # cut short
        lambda packed: packed + b"\x00",  # more than one value
        lambda packed: msgspec.msgpack.encode([1, 2]),  # not a record
        lambda packed: msgspec.msgpack.encode({"role": "robot", "content": "x"}),
    ],
)
def test_a_damaged_binary_record_is_named_by_its_index(damage):
    with codec.writing_with(sealing.ENCODINGS[sealing.AES_MP]):
        packed = [codec.record_bytes(message, binary=True) for message in (QUESTION, ANSWER, QUESTION)]
    packed[1] = damage(packed[1])
    with pytest.raises(BadRecord) as caught:
        codec.decode_messages(packed)
    assert caught.value.index == 1


def test_a_store_of_bytes_gets_the_faster_compression_and_text_stores_level_3():
    import zstandard

    plain = codec.dumps_bytes(QUESTION.to_dict())
    with codec.writing_with(sealing.ENCODINGS[sealing.ZSTD]):
        as_bytes = msgspec.msgpack.decode(codec.record_bytes(QUESTION, binary=True))["data"]
        as_text = codec.encode_message(QUESTION)["data"]
    fast = zstandard.ZstdCompressionParameters.from_level(1, hash_log=12)
    assert as_bytes == zstandard.ZstdCompressor(compression_params=fast).compress(plain)
    assert as_text == zstandard.ZstdCompressor(level=3).compress(plain)
    assert zstandard.ZstdDecompressor().decompress(as_bytes) == plain
