"""Message records sealed as MessagePack (what encryption writes): they open to the message as
written, lone surrogates as every store keeps them, and an altered or foreign record is refused
with a reason, never read as something else."""

from __future__ import annotations

import base64
import json

import pytest

from deskmate.memory import codec, sealing
from deskmate.memory.codec import UnreadableRecord
from deskmate.memory.models import Message

pytestmark = pytest.mark.usefixtures("encryption_key")


def sealed(message: Message, name: str) -> dict:
    """The record as a store keeps it: through the shared JSON encoder and back."""
    with codec.writing_with(sealing.ENCODINGS[name]):
        return json.loads(codec.dumps_bytes(codec.encode_message(message)))


@pytest.mark.parametrize("name", [sealing.AES_MP, sealing.ZSTD_AES_MP])
def test_both_json_encoders_write_a_sealed_record_alike(name):
    with codec.writing_with(sealing.ENCODINGS[name]):
        record = codec.encode_message(QUESTION)
    assert codec.dumps_bytes(record) == codec.dumps(record).encode()
    assert codec.decode_message(record) == QUESTION  # not stored yet: its data still bytes


QUESTION = Message(
    role="user",
    content="Why?\n```python\nprint('x')\n```",
    context={"uri": "file:///p/a.py", "languageId": "python", "text": "def f():\n    return 1\n" * 40},
    usage={"promptTokens": 3},
)


@pytest.mark.parametrize("name", [sealing.AES_MP, sealing.ZSTD_AES_MP])
def test_a_packed_record_opens_to_the_message_as_written(name):
    record = sealed(QUESTION, name)
    assert record["enc"] == name and b"Why?" not in base64.b64decode(record["data"])
    assert codec.decode_message(record) == QUESTION


def test_a_small_record_with_compression_on_is_sealed_uncompressed_and_says_so():
    small = Message(role="user", content="hi")
    record = sealed(small, sealing.ZSTD_AES_MP)
    assert record["enc"] == sealing.AES_MP
    assert codec.decode_message(record) == small


def test_lone_surrogates_are_sealed_as_the_replacement_character():
    odd = Message(role="user", content="half \ud83d pair", context={"uri": "file:///a", "text": "x\udfff"})
    opened = codec.decode_message(sealed(odd, sealing.AES_MP))
    assert (opened.content, opened.context["text"]) == ("half \ufffd pair", "x\ufffd")


def test_an_altered_record_is_refused():
    record = sealed(QUESTION, sealing.AES_MP)
    data = bytearray(base64.b64decode(record["data"]))
    data[20] ^= 1
    with pytest.raises(UnreadableRecord, match="does not open"):
        codec.decode_message({**record, "data": base64.b64encode(bytes(data)).decode()})


def test_a_record_moved_to_another_encoding_or_time_is_refused():
    record = sealed(QUESTION, sealing.AES_MP)
    with pytest.raises(UnreadableRecord, match="does not open"):
        codec.decode_message({**record, "enc": sealing.AES})  # same key, other encoding
    with pytest.raises(UnreadableRecord, match="does not open"):
        codec.decode_message({**record, "timestamp": "2020-01-01T00:00:00.000Z"})


def test_a_sealed_record_that_is_not_a_message_names_the_field():
    kid, data = sealing.seal_bytes(
        codec.pack_bytes({"role": "user", "content": 7}), sealing._aad(sealing.AES_MP, "t")
    )
    with pytest.raises(ValueError, match="content"):
        codec.decode_message({"enc": sealing.AES_MP, "kid": kid, "data": data, "timestamp": "t"})
    kid, data = sealing.seal_bytes(b"\xc1 not msgpack", sealing._aad(sealing.AES_MP, "t"))
    with pytest.raises(UnreadableRecord, match="not MessagePack"):
        codec.decode_message({"enc": sealing.AES_MP, "kid": kid, "data": data, "timestamp": "t"})
