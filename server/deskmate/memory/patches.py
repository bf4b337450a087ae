"""MetaPatch: a change of metadata fields written down as data, so it can wait in an outbox.

Most changes of a session's metadata are functions (``MetaChange``) the engine
builds; a function cannot be queued while a shared store is away. A patch can:
it names the fields to set (or clear) by their stored names, and is applied to
whatever the store holds when it is finally written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import decode_meta, encode_meta
from .models import SessionInfo, SessionMeta


@dataclass(frozen=True)
class MetaPatch:
    """Set metadata fields (wire name → value; None clears one). ``only_missing`` leaves a
    field that already holds a value as it is (e.g. a session already in the trash keeps
    the time it went there)."""

    values: dict[str, Any] = field(default_factory=dict)
    only_missing: bool = False

    def __call__(self, info: SessionInfo) -> tuple[str, SessionMeta]:
        return info.title, self.apply(info.meta)

    def apply(self, meta: SessionMeta) -> SessionMeta:
        record = encode_meta(meta)
        for key, value in self.values.items():
            if self.only_missing and record.get(key) is not None:
                continue
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        return decode_meta(record)

    def to_record(self) -> dict[str, Any]:
        return {"values": dict(self.values), "onlyMissing": self.only_missing}

    @classmethod
    def from_record(cls, record: Any) -> MetaPatch:
        """The patch ``record`` holds; ValueError saying why when it holds none."""
        if type(record) is not dict or type(record.get("values")) is not dict:
            raise ValueError("its patch is not an object with values")
        patch = cls(dict(record["values"]), bool(record.get("onlyMissing")))
        patch.apply(SessionMeta())  # a value of the wrong kind raises here, not at replay
        return patch


def fork_made(at: str) -> MetaPatch:
    """What a fork writes on its source, besides saving itself: the time (``at``, ISO 8601) of
    the source's latest fork. Its history stays as it was; a watch of the source (live
    sessions, on every store) sees the metadata change and reports it ``updated``, so a window
    showing the source learns of its new fork."""
    return MetaPatch({"lastForkAt": at})
