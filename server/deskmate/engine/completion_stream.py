"""Reading a streamed chat completion from its raw bytes: server-sent events, decoded with msgspec.

The openai SDK would decode every event in Python and build a typed
``ChatCompletionChunk`` for it, which at thousands of chunks a second costs most of
a CPU core. Only four things of a chunk matter here: the delta text, the finish
reason, the usage and an error, so each event's JSON is decoded by msgspec straight into the small
structs below (unknown fields are skipped without being built).
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Chunk(msgspec.Struct):
    """What deskmate reads of one ``chat.completion.chunk``."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: Any = None

    def text(self) -> str:
        if not self.choices:
            return ""
        return "".join(c.delta.content for c in self.choices if c.delta is not None and c.delta.content)

    def finish_reason(self) -> str | None:
        """Why the answer ended (``stop``, ``length``...), on the chunk that ends it."""
        for choice in self.choices or ():
            if choice.finish_reason:
                return choice.finish_reason
        return None


decode_chunk = msgspec.json.Decoder(Chunk).decode

DONE = b"[DONE]"


class EventSplitter:
    """Splits a byte stream into the data of its server-sent events (the WHATWG rules).

    Lines end in LF, CRLF or CR; an empty line ends an event; several ``data:`` lines
    of one event are joined with LF; comments (``:``) and ``id``/``retry`` are skipped.
    ``event:`` is kept, so an ``error`` event can be told apart.
    """

    def __init__(self) -> None:
        self._rest = b""  # an unfinished line
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next one belongs to it
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """The (event name, data) of every event that ``chunk`` completes, in order."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        text = self._rest + chunk if self._rest else chunk
        if b"\r" in text:
            if text.endswith(b"\r"):
                self._skip_lf = True
                text = _lf(text[:-1]) + b"\n"
            else:
                text = _lf(text)
        lines = text.split(b"\n")
        self._rest = lines.pop()
        return self._events(lines)

    def _events(self, lines: list[bytes]) -> list[tuple[bytes | None, bytes]]:
        events = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                self._data, self._event = [], None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
            # comments (":"), id, retry and unknown fields carry nothing deskmate uses
        return events


def _lf(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
