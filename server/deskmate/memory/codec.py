"""Encoding records for storage: one JSON encoder every store and the outbox share.

Text from editors may hold lone surrogates (``"\\ud800"``), which UTF-8 cannot
carry. Every store keeps such text the same way: each lone surrogate becomes
U+FFFD, the replacement character, so what one store returns another returns too.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
COMPACT = (",", ":")


def storable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (unchanged when there is none)."""
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub(REPLACEMENT, text)


def dumps(record: Any, *, separators: tuple[str, str] = COMPACT) -> str:
    """``record`` as JSON text that UTF-8 can encode: non-ASCII kept as is, lone surrogates replaced."""
    text = json.dumps(record, ensure_ascii=False, separators=separators)
    if text.isascii():
        return text
    # Surrogates can only appear inside string literals, so replacing them in the text is safe.
    return _LONE_SURROGATE.sub(REPLACEMENT, text)


def dumps_bytes(record: Any, *, separators: tuple[str, str] = COMPACT) -> bytes:
    """``dumps`` encoded as UTF-8."""
    return dumps(record, separators=separators).encode()
