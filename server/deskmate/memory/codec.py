"""Encoding records for storage: one JSON encoder every store and the outbox share, and the
session metadata record every store keeps whole.

Text from editors may hold lone surrogates (``"\\ud800"``), which UTF-8 cannot
carry. Every store keeps such text the same way: each lone surrogate becomes
U+FFFD, the replacement character, so what one store returns another returns too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from .models import SessionMeta

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


# -- the session metadata record -------------------------------------------------

_META_FIELDS = [f for f in dataclasses.fields(SessionMeta) if "wire" in f.metadata]
META_KEYS = frozenset(f.metadata["wire"] for f in _META_FIELDS)


def _checked(kind: str, wire: str, value: Any) -> Any:
    """``value`` if it is the kind of JSON value the field holds, else ValueError naming the field."""
    if kind == "flag" and isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return storable(value)
    if kind == "strings" and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [storable(item) for item in value]
    if kind == "object" and isinstance(value, dict):
        return value
    expected = {
        "flag": "true or false",
        "text": "a string",
        "strings": "a list of strings",
        "object": "an object",
    }
    raise ValueError(f"{wire} must be {expected[kind]}, got {type(value).__name__}")


def encode_meta(meta: SessionMeta) -> dict[str, Any]:
    """The metadata as the JSON object stores keep (fields at their defaults left out,
    fields of newer versions kept)."""
    record = dict(meta.extra)
    for spec in _META_FIELDS:
        value = getattr(meta, spec.name)
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        if value != default:
            record[spec.metadata["wire"]] = value
    return record


def decode_meta(record: Any) -> SessionMeta:
    """The metadata of a stored record; ValueError naming the field that is not what it should be.

    Keys that are not metadata fields are kept in ``extra``, so they survive a rewrite.
    """
    if record is None:
        return SessionMeta()
    if not isinstance(record, dict):
        raise ValueError("the session metadata must be a JSON object")
    values: dict[str, Any] = {}
    for spec in _META_FIELDS:
        wire = spec.metadata["wire"]
        if record.get(wire) is not None:
            values[spec.name] = _checked(spec.metadata["kind"], wire, record[wire])
    extra = {key: value for key, value in record.items() if key not in META_KEYS}
    return SessionMeta(**values, extra=extra)
