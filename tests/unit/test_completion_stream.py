"""Reading a streamed answer from raw bytes: server-sent events split on every line ending, however
the bytes are cut, and chunks decoded to text, usage and errors."""

from __future__ import annotations

import json

import pytest

from deskmate.engine import ModelError, Settings, Usage
from deskmate.engine.completion_stream import EventSplitter, decode_chunk
from deskmate.engine.model_client import _read_answer


def chunk(content: str | None = None, **extra) -> dict:
    delta = {} if content is None else {"content": content}
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra}


STREAM = (
    b": a comment, then an event in two data lines\n"
    b"data: first\ndata: second\n\n"
    b'id: 7\r\nretry: 10\r\ndata: {"choices":[{"delta":{"content":"caf\xc3\xa9"}}]}\r\n\r\n'
    b'event: error\rdata: {"error":{"message":"boom"}}\r\r'
    b"data:no-space\n\n"
    b"data: [DONE]\n\n"
)
EVENTS = [
    (None, b"first\nsecond"),
    (None, '{"choices":[{"delta":{"content":"café"}}]}'.encode()),
    (b"error", b'{"error":{"message":"boom"}}'),
    (None, b"no-space"),
    (None, b"[DONE]"),
]


def test_events_are_the_same_however_the_bytes_are_cut():
    for cut in range(len(STREAM) + 1):
        splitter = EventSplitter()
        assert splitter.feed(STREAM[:cut]) + splitter.feed(STREAM[cut:]) == EVENTS, cut
    splitter = EventSplitter()  # one byte at a time: every CR / LF / CRLF boundary
    assert [event for i in range(len(STREAM)) for event in splitter.feed(STREAM[i : i + 1])] == EVENTS


def test_a_chunk_gives_its_text_and_unknown_fields_are_skipped():
    decoded = decode_chunk(json.dumps({**chunk("hi"), "system_fingerprint": "x", "logprobs": None}))
    assert decoded.text() == "hi" and decoded.usage is None and decoded.error is None
    assert decode_chunk(json.dumps(chunk())).text() == ""
    assert decode_chunk(json.dumps({"choices": [], "usage": {"prompt_tokens": 3}})).usage.prompt_tokens == 3


async def body(*parts: bytes):
    for part in parts:
        yield part


def sse(*payloads) -> bytes:
    return b"".join(
        b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads
    )


async def read(*parts: bytes) -> list:
    return [item async for item in _read_answer(body(*parts), Settings(base_url="http://m/v1"))]


async def test_text_then_usage_and_nothing_after_done():
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    stream = sse(chunk(""), chunk("a"), chunk("b"), {"choices": [], "usage": usage}, b"[DONE]")
    cut = len(stream) // 2
    assert await read(stream[:cut], stream[cut:], sse(chunk("after done"))) == ["a", "b", Usage(5, 2, 7)]


async def test_an_error_in_the_stream_is_a_model_error_naming_it():
    with pytest.raises(ModelError, match="failed in the middle of the answer: overloaded"):
        await read(sse(chunk("a"), {"error": {"message": "overloaded", "type": "server_error"}}))


async def test_a_chunk_that_is_not_json_is_a_model_error():
    with pytest.raises(ModelError, match="sent a chunk deskmate cannot read"):
        await read(sse(chunk("a"), b"{not json"))
