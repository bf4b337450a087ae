"""A session's manifest: its fields and their checks (``Manifest``), and ``Manifests``, which
reads them, keeps the last one seen per session, and replaces one only by compare and swap."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ...codec import decode_meta, dumps_bytes, encode_meta
from ...models import SessionInfo, SessionMeta
from .client import S3Client
from .hooks import BEFORE_MANIFEST_SWAP, Hooks
from .layout import FORMAT_VERSION, Damaged, Keys, read, shown

_CACHED_MANIFESTS = 128

# A segment's (message count, last timestamp), as counted into a manifest.
Summary = tuple[int, str]


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _field(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """Manifest field ``name``, ``default`` when absent or null; ValueError when of another type."""
    value = data.get(name)
    if value is None:
        return default
    if not (_is_count(value) if kind is int else isinstance(value, kind)):
        expected = "a count" if kind is int else {str: "a string", list: "a list"}[kind]
        raise ValueError(f"field {name!r} is not {expected}: {shown(value)}")
    return value


@dataclass(frozen=True)
class Manifest:
    """A session's manifest as read (``etag`` set) or about to be written over ``etag``."""

    generation: str
    title: str = ""
    workspace_uri: str | None = None
    created_at: str = ""
    updated_at: str = ""
    meta: SessionMeta = field(default_factory=SessionMeta)
    message_count: int = 0
    base_messages: int = 0
    chunks: tuple[tuple[int, int], ...] = ()  # segment ranges [from, to), in order, from 0
    next: int = 0
    etag: str | None = field(default=None, compare=False)

    @property
    def compacted(self) -> int:
        return self.chunks[-1][1] if self.chunks else 0

    def counting(self, summaries: Iterable[Summary], next_seq: int) -> Manifest:
        """This manifest once the segments summarised are counted, as append defines it."""
        count, updated_at = self.message_count, self.updated_at
        for n, last in summaries:
            if n:
                count += n
                updated_at = last or updated_at
        return replace(self, message_count=count, updated_at=updated_at, next=next_seq)

    def encode(self, session_id: str) -> bytes:
        return dumps_bytes(
            {
                "deskmate": "manifest",
                "version": FORMAT_VERSION,
                "id": session_id,
                "title": self.title,
                "workspaceUri": self.workspace_uri,
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "tags": list(self.meta.tags),  # as a deskmate before the metadata record reads them
                "meta": encode_meta(self.meta),
                "messageCount": self.message_count,
                "generation": self.generation,
                "baseMessages": self.base_messages,
                "chunks": [list(chunk) for chunk in self.chunks],
                "next": self.next,
            }
        )

    @classmethod
    def decode(cls, data: dict[str, Any], etag: str) -> Manifest:
        """Raises ValueError naming the first field that is missing or of the wrong type."""
        if "generation" not in data:
            raise ValueError("field 'generation' is missing")
        generation = data["generation"]
        if not isinstance(generation, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", generation):
            raise ValueError(f"generation {shown(generation)} is not a generation name")
        chunks = data.get("chunks") or []
        if not isinstance(chunks, list) or not all(
            isinstance(chunk, list) and len(chunk) == 2 and all(_is_count(n) for n in chunk)
            for chunk in chunks
        ):
            raise ValueError("field 'chunks' is not a list of [from, to] ranges")
        chunks = [tuple(chunk) for chunk in chunks]
        if any(end <= start for start, end in chunks):
            raise ValueError("a chunk range is empty")
        created_at = _field(data, "createdAt", str, "")
        if "meta" in data:
            meta = decode_meta(data["meta"])
        else:  # written before the metadata record: only tags
            tags = _field(data, "tags", list, [])
            if not all(isinstance(tag, str) for tag in tags):
                raise ValueError(f"field 'tags' is not a list of strings: {shown(tags)}")
            meta = SessionMeta(tags=list(tags))
        return cls(
            generation=generation,
            title=_field(data, "title", str, ""),
            workspace_uri=_field(data, "workspaceUri", str, None),
            created_at=created_at,
            updated_at=_field(data, "updatedAt", str, "") or created_at,
            meta=meta,
            message_count=_field(data, "messageCount", int, 0),
            base_messages=_field(data, "baseMessages", int, 0),
            chunks=tuple(chunks),
            next=_field(data, "next", int, 0),
            etag=etag,
        )

    def info(self, session_id: str) -> SessionInfo:
        return SessionInfo(
            id=session_id,
            title=self.title,
            workspace_uri=self.workspace_uri,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=self.message_count,
            meta=self.meta.copy(),
        )


class Manifests:
    """Reads and replaces manifests, remembering the last one seen per session.

    An append starts from the remembered one without a GET; a stale one only costs a retry,
    since every write it leads to is conditional.
    """

    def __init__(self, client: S3Client, keys: Keys, hooks: Hooks) -> None:
        self._client = client
        self._keys = keys
        self._hooks = hooks
        self._known: OrderedDict[str, Manifest] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str, *, cached: bool = False) -> Manifest | None:
        """The session's manifest (the last one seen, when ``cached``), or None."""
        if cached:
            with self._lock:
                known = self._known.get(session_id)
            if known is not None:
                return known
        key = self._keys.manifest(session_id)
        try:
            found = read(self._client, key, "manifest")
        except Damaged as exc:
            raise Damaged(f"Session {session_id!r}: {exc}") from None
        if found is None:
            self.forget(session_id)
            return None
        try:
            manifest = Manifest.decode(*found)
        except ValueError as exc:
            raise Damaged(
                f"Session {session_id!r}: stored object s3://{self._client.bucket}/{key} cannot be read: {exc}. "
                "It was left as it is."
            ) from None
        self._remember(session_id, manifest)
        return manifest

    def swap(self, session_id: str, manifest: Manifest) -> Manifest:
        """Write ``manifest`` over the version it was derived from (``etag``; None: over none).

        Declined when that version is no longer the stored one.
        """
        body = manifest.encode(session_id)
        key = self._keys.manifest(session_id)
        self._hooks.fire(BEFORE_MANIFEST_SWAP, session_id)
        if manifest.etag is None:
            etag = self._client.put(key, body, create=True)
        else:
            etag = self._client.put(key, body, if_match=manifest.etag)
        written = replace(manifest, etag=etag)
        self._remember(session_id, written)
        return written

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._known.pop(session_id, None)

    def _remember(self, session_id: str, manifest: Manifest) -> None:
        with self._lock:
            self._known.pop(session_id, None)
            self._known[session_id] = manifest
            if len(self._known) > _CACHED_MANIFESTS:
                del self._known[next(iter(self._known))]
