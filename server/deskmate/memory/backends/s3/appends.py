"""Appending: one new segment object per append, then counting it in the manifest, and what an
append does when a save, a delete or compaction got there first. The history is never rewritten."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ...codec import dumps_bytes, encode_message
from ...errors import StorageError
from ...models import Message
from .client import MAX_ATTEMPTS, Declined, S3Client, pause
from .compaction import Compactor
from .hooks import AFTER_SEGMENT_PUT, Hooks
from .layout import FORMAT_VERSION, Damaged, Keys, Stale, new_generation, read
from .manifest import Manifest, Manifests, Summary


def _summary(record: dict[str, Any]) -> Summary:
    """(message count, last timestamp) of a segment record, for the manifest."""
    messages = record["messages"]
    last = messages[-1].get("timestamp") if messages and isinstance(messages[-1], dict) else ""
    return len(messages), str(last or "")


class Appender:
    """Adds a turn to a session as one segment; racing writers in other processes lose and retry."""

    def __init__(
        self,
        client: S3Client,
        keys: Keys,
        manifests: Manifests,
        compactor: Compactor,
        hooks: Hooks,
        holds: Callable[[str, str], bool],
    ) -> None:
        self._client = client
        self._keys = keys
        self._manifests = manifests
        self._compactor = compactor
        self._hooks = hooks
        self._holds = holds  # (session id, message id): whether the stored session has that message

    def append(self, session_id: str, messages: list[Message], title: str, workspace_uri: str | None) -> None:
        """Store ``messages`` as one segment and count it; StorageError if other writers always win."""
        record: dict[str, Any] = {
            "token": uuid.uuid4().hex,
            "messages": [encode_message(m) for m in messages],
        }
        body = dumps_bytes({"deskmate": "segment", "version": FORMAT_VERSION, **record})
        for attempt in range(MAX_ATTEMPTS):
            manifest = self._manifests.get(session_id, cached=True)
            if manifest is None:
                manifest = self._create(session_id, title, workspace_uri, messages[0].timestamp)
                if manifest is None:
                    continue  # another writer created it first
            placed = self._place(session_id, manifest, body, record["token"])
            if placed is None:
                continue  # the generation was replaced before we wrote: start again in the new one
            self._hooks.fire(AFTER_SEGMENT_PUT, session_id)
            seq, etag, manifest = placed
            outcome, current = self._commit(session_id, seq, etag, record, manifest)
            if outcome == "done":
                self._compactor.compact_quietly(session_id, current)
                return
            if outcome == "replaced" and current is not None and self._holds(session_id, messages[0].id):
                return  # a save replaced the session with a history that already has this turn
            pause(attempt)  # otherwise append again, after the save (or delete) that won
        raise StorageError(
            f"Could not append to session {session_id!r} in {self._client.name}: "
            f"other writers won {MAX_ATTEMPTS} times."
        )

    def _create(
        self, session_id: str, title: str, workspace_uri: str | None, created_at: str
    ) -> Manifest | None:
        manifest = Manifest(
            new_generation(),
            title=title,
            workspace_uri=workspace_uri,
            created_at=created_at,
            updated_at=created_at,
        )
        try:
            return self._manifests.swap(session_id, manifest)
        except Declined:
            return None

    def _place(
        self, session_id: str, manifest: Manifest, body: bytes, token: str
    ) -> tuple[int, str, Manifest] | None:
        """Create the segment at the first free number from ``manifest.next``: (number, ETag, the
        newest manifest seen, whose ``next`` is at most that number), or None if the generation went."""
        seq = manifest.next
        for _ in range(MAX_ATTEMPTS):
            key = self._keys.segment(session_id, manifest.generation, seq)
            try:
                return seq, self._client.put(key, body, create=True), manifest
            except Declined as declined:
                if declined.retried:
                    # Our first try may have landed before its answer was lost: is it ours?
                    found = read(self._client, key, "segment")
                    if found is not None and found[0].get("token") == token:
                        return seq, found[1], manifest
            fresh = self._manifests.get(session_id)
            if fresh is None or fresh.generation != manifest.generation:
                return None
            manifest, seq = fresh, max(seq + 1, fresh.next)
        raise StorageError(
            f"Could not append to session {session_id!r} in {self._client.name}: no free segment number."
        )

    def _commit(
        self, session_id: str, seq: int, etag: str, record: dict[str, Any], placed: Manifest
    ) -> tuple[str, Manifest | None]:
        """Count our segment ``seq`` (and any uncounted before it) in the manifest.

        Returns ("done", manifest), or ("replaced", current manifest or None) when a save or
        delete replaced the generation, or ("orphan", ...) when ``seq`` was a number compaction
        had freed; in both of those our segment is deleted and the caller appends again.
        """
        generation = placed.generation
        key = self._keys.segment(session_id, generation, seq)
        manifest: Manifest | None = placed
        for attempt in range(MAX_ATTEMPTS):
            if manifest is None or manifest.generation != generation:
                self._client.remove(key, if_match=etag)  # in a generation nobody reads any more
                return "replaced", manifest
            try:
                if seq < manifest.next:
                    # Counted by another writer; below `compacted` it may instead be a freed number.
                    if seq >= manifest.compacted or self._chunk_holds(
                        session_id, manifest, seq, record["token"]
                    ):
                        return "done", manifest
                    self._client.remove(key, if_match=etag)
                    return "orphan", manifest
                # Count every segment from `next` to ours: the writers of the others may have crashed.
                others = self._client.map(
                    lambda n: self._segment_record(session_id, generation, n), range(manifest.next, seq)
                )
                counted = manifest.counting(map(_summary, [*others, record]), seq + 1)
                return "done", self._manifests.swap(session_id, counted)
            except (Declined, Stale):
                pause(attempt)
            manifest = self._manifests.get(session_id)
        raise StorageError(
            f"Could not append to session {session_id!r} in {self._client.name}: "
            f"other writers won {MAX_ATTEMPTS} times."
        )

    def _segment_record(self, session_id: str, generation: str, seq: int) -> dict[str, Any]:
        found = read(self._client, self._keys.segment(session_id, generation, seq), "segment")
        if found is None:
            raise Stale
        return found[0]

    def _chunk_holds(self, session_id: str, manifest: Manifest, seq: int, token: str) -> bool:
        """Whether the chunk covering ``seq`` holds the segment with ``token`` there."""
        for chunk in manifest.chunks:
            if chunk[0] <= seq < chunk[1]:
                key = self._keys.chunk(session_id, manifest.generation, chunk)
                found = read(self._client, key, "chunk")
                if found is None:
                    raise Stale  # merged into a bigger chunk meanwhile
                segments = found[0]["segments"]
                if len(segments) != chunk[1] - chunk[0]:
                    raise Damaged(
                        f"Stored object s3://{self._client.bucket}/{key} does not hold segments {chunk}."
                    )
                return segments[seq - chunk[0]].get("token") == token
        return False
