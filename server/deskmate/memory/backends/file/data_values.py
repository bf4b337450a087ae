"""Encoded message lines (encrypted, compressed) with their base64 ``data`` cut out, so that a
load's JSON decoder reads only the few short fields around it and a SIMD base64 decoder reads
the rest straight from the file's bytes.

An encoded line is ``{"enc":…,"kid":…,"data":"<base64>","timestamp":…,"n":…}``: nearly all of it
is the base64. Skipping that string costs msgspec more than the rest of the line, and decoding it
there (into bytes) more again; ``bytes.find`` steps over it at memory speed. A JSON string cannot
hold an unescaped quote, so ``"data":"`` never matches inside one, and base64 holds no quote, so
the next quote ends the value. Whatever does not fit this shape (a blank line, an escape in the
value, a "data" key nested in a plain message) is left for the caller's line-by-line decoder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

DATA_KEY = b'"data":"'  # as deskmate writes it: compact JSON
ENCODING_KEY = b'{"enc":'  # what an encoded line starts with
# How far into its line the "data" key is looked for: deskmate writes it after "enc" and "kid"
# (about 50 bytes in); a line with it further on (written by hand) is kept whole.
KEY_WITHIN = 256
CHUNK_BYTES = 256 * 1024  # well within a core's L2 cache


@functools.cache
def base64_decoder() -> Callable[..., bytes] | None:
    """pybase64's decoder (SIMD; call it with ``validate=True``), or None when it is not installed:
    the standard library's is several times slower than msgspec's own, so without pybase64 the
    caller leaves the base64 to msgspec."""
    try:
        import pybase64
    except ImportError:
        return None
    return pybase64.b64decode


def cut_data_values(data: bytes, start: int, end: int) -> tuple[bytes, list[tuple[int, int] | None]]:
    """The lines of ``data[start:end]`` (whole lines, the last ending with a newline), each with its
    ``"data"`` string value cut out (left as ``""``), joined as they were; and for each line, the
    (start, end) of its cut value in ``data``, or None for a line kept whole. Empty lines are left
    out, as a line decoder skips them.

    A line is read about once: the key near its start, the value's closing quote, no newline
    before it (else the key or the quote is on a later line: kept whole), the newline just after.
    """
    find = data.find
    parts: list[bytes] = []
    spans: list[tuple[int, int] | None] = []
    position = start
    while position < end:
        value = find(DATA_KEY, position, min(position + KEY_WITHIN, end))
        if value >= 0:
            value += len(DATA_KEY)
            close = find(b'"', value, end)
            if close >= 0 and find(b"\n", position, close) < 0:
                line_end = find(b"\n", close, end)
                if line_end < 0:
                    line_end = end - 1  # not a whole line: kept, for the decoder to refuse
                parts.append(data[position:value])
                parts.append(data[close : line_end + 1])
                spans.append((value, close))
                position = line_end + 1
                continue
        line_end = find(b"\n", position, end)
        if line_end < 0:
            line_end = end - 1
        if line_end > position:
            parts.append(data[position : line_end + 1])
            spans.append(None)
        position = line_end + 1
    return b"".join(parts), spans


def cut_chunks(
    data: bytes, start: int, end: int, size: int = CHUNK_BYTES
) -> Iterator[tuple[bytes, list[tuple[int, int] | None]]]:
    """``cut_data_values`` of ``data[start:end]`` a chunk of about ``size`` bytes of whole lines at
    a time: what is cut is then decoded while the chunk is still in the CPU's cache (one pass over
    the file from memory instead of two: 10% of an encrypted load)."""
    while start < end:
        stop = data.find(b"\n", min(start + size, end) - 1, end) + 1 or end
        yield cut_data_values(data, start, stop)
        start = stop


def last_line_encoded(data: bytes, start: int, end: int) -> bool:
    """Whether the last line of ``data[start:end]`` is an encoded record: the encoding new lines
    are written in, so the lines worth cutting (a history from before encryption was turned on
    is read as it was)."""
    line_start = max(data.rfind(b"\n", start, end - 1) + 1, start)
    return data.startswith(ENCODING_KEY, line_start, end)
