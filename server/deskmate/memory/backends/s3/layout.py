"""Where a session's objects live and what a stored object must look like: keys, generation
names, the format check, and the errors for an object that is damaged or gone."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from ...errors import StorageError
from .client import S3Client

FORMAT_VERSION = 1

GENERATION = re.compile(r"g[0-9a-f]{12}[0-9a-z]*")
SEGMENT = re.compile(r"s(\d{10})\.json")


class Damaged(StorageError):
    """A stored object does not parse; the message names it. Nothing is deleted."""


class Stale(Exception):
    """An object the manifest we hold names is gone: read the manifest again."""


class Keys:
    """The object keys under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.sessions = f"{prefix}sessions/"

    def directory(self, session_id: str) -> str:
        return f"{self.sessions}{session_id}/"

    def manifest(self, session_id: str) -> str:
        return f"{self.directory(session_id)}manifest.json"

    def base(self, session_id: str, generation: str) -> str:
        return f"{self.directory(session_id)}{generation}/base.json"

    def segment(self, session_id: str, generation: str, seq: int) -> str:
        return f"{self.directory(session_id)}{generation}/s{seq:010d}.json"

    def chunk(self, session_id: str, generation: str, chunk: tuple[int, int]) -> str:
        return f"{self.directory(session_id)}{generation}/c{chunk[0]:010d}-{chunk[1]:010d}.json"


def new_generation() -> str:
    # Milliseconds first: the age of a generation nobody names is readable from its name.
    return f"g{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def generation_age(name: str) -> float:
    """Seconds since generation ``name`` was made; infinite for a name deskmate did not make."""
    if not GENERATION.fullmatch(name):
        return float("inf")
    return time.time() - int(name[1:13], 16) / 1000


def shown(value: Any) -> str:
    """``value`` safe to put in a message or log line: repr'd (no control characters) and short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check(kind: str, data: Any) -> dict[str, Any]:
    """``data`` if it has the shape of a deskmate ``kind`` object; ValueError saying why not."""
    if not isinstance(data, dict) or data.get("deskmate") != kind:
        raise ValueError(f"it is not a deskmate {kind} object")
    version = data.get("version", 1)
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"format version {shown(version)} is not one this deskmate understands (up to {FORMAT_VERSION}): "
            "a newer deskmate wrote it, or it is damaged"
        )
    records = data.get("segments") if kind == "chunk" else [data]
    if kind != "manifest" and not (
        isinstance(records, list)
        and all(isinstance(r, dict) and isinstance(r.get("messages"), list) for r in records)
    ):
        raise ValueError("it has no list of messages")
    return data


def read(client: S3Client, key: str, kind: str) -> tuple[dict[str, Any], str] | None:
    """The object at ``key`` parsed as a deskmate ``kind`` object, and its ETag; None if missing."""
    found = client.get(key)
    if found is None:
        return None
    body, etag = found
    try:
        data = check(kind, json.loads(body))
    except ValueError as exc:
        raise Damaged(
            f"Stored object s3://{client.bucket}/{key} cannot be read: {exc}. It was left as it is."
        ) from None
    return data, etag
