"""Compaction: segments merged into chunks, and chunks of one size into a bigger one, so a load
stays a few dozen GETs. What is merged is deleted only once the manifest names its chunk."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial

from ...codec import dumps_bytes
from ...errors import StorageError
from .client import MAX_ATTEMPTS, Declined, S3Client, pause
from .layout import FORMAT_VERSION, Keys, Stale, read
from .manifest import Manifest, Manifests

log = logging.getLogger(__name__)

SEGMENTS_PER_CHUNK = 64
CHUNKS_PER_MERGE = 16

# (generation, "chunk" or "merge", the segment range of the new chunk, how many chunks it merges)
Plan = tuple[str, str, tuple[int, int], int]


class Compactor:
    """Writes the chunks a manifest calls for: one per ``segments_per_chunk`` segments, and one
    for every ``chunks_per_merge`` chunks of one size."""

    def __init__(
        self,
        client: S3Client,
        keys: Keys,
        manifests: Manifests,
        *,
        segments_per_chunk: int = SEGMENTS_PER_CHUNK,
        chunks_per_merge: int = CHUNKS_PER_MERGE,
    ) -> None:
        self._client = client
        self._keys = keys
        self._manifests = manifests
        self.segments_per_chunk = segments_per_chunk
        self.chunks_per_merge = chunks_per_merge

    def plan(self, manifest: Manifest) -> Plan | None:
        """The next compaction ``manifest`` calls for, or None."""
        tail = manifest.chunks[-self.chunks_per_merge :]
        size = tail[-1][1] - tail[-1][0] if tail else 0
        if len(tail) == self.chunks_per_merge and all(end - start == size for start, end in tail):
            return manifest.generation, "merge", (tail[0][0], tail[-1][1]), len(tail)
        if manifest.next - manifest.compacted >= self.segments_per_chunk:
            start = manifest.compacted
            return manifest.generation, "chunk", (start, start + self.segments_per_chunk), 0
        return None

    def compact_quietly(self, session_id: str, manifest: Manifest) -> None:
        """Compact what ``manifest`` calls for; the append is durable already, so only log failures."""
        if self.plan(manifest) is None:
            return
        try:
            self.compact(session_id, manifest)
        except StorageError as exc:
            log.warning(
                "Compacting session %r in %s failed (%s); the next append tries again.",
                session_id,
                self._client.name,
                exc,
            )

    def compact(self, session_id: str, manifest: Manifest | None) -> None:
        """Write chunks until the manifest calls for none; inputs are deleted once it names their chunk."""
        keys = self._keys
        for attempt in range(MAX_ATTEMPTS):
            plan = None if manifest is None else self.plan(manifest)
            if manifest is None or plan is None:
                return
            generation, kind, chunk, merged = plan
            if kind == "merge":
                inputs = [keys.chunk(session_id, generation, c) for c in manifest.chunks[-merged:]]
            else:
                inputs = [keys.segment(session_id, generation, n) for n in range(*chunk)]
            try:
                self._write_chunk(keys.chunk(session_id, generation, chunk), kind, inputs)
                manifest = self._name_chunk(session_id, manifest, plan)
            except Stale:
                pause(attempt)
                manifest = self._manifests.get(session_id)
                continue
            self._client.map(self._client.remove, inputs)

    def _write_chunk(self, key: str, kind: str, inputs: list[str]) -> None:
        found = self._client.map(
            partial(read, self._client, kind="chunk" if kind == "merge" else "segment"), inputs
        )
        if any(item is None for item in found):
            raise Stale  # another compactor got there first
        records = [
            r for data, _ in filter(None, found) for r in (data["segments"] if kind == "merge" else [data])
        ]
        segments = [{"token": record.get("token"), "messages": record["messages"]} for record in records]
        body = dumps_bytes({"deskmate": "chunk", "version": FORMAT_VERSION, "segments": segments})
        try:
            self._client.put(key, body, create=True)
        except Declined:
            pass  # another compactor wrote it, from the same inputs: they never change

    def _name_chunk(self, session_id: str, manifest: Manifest | None, plan: Plan) -> Manifest:
        """Swap the manifest to name the planned chunk in place of its inputs; Stale if that is moot."""
        generation, kind, chunk, merged = plan
        for attempt in range(MAX_ATTEMPTS):
            if manifest is None or manifest.generation != generation:
                raise Stale  # a save or delete replaced the generation
            if chunk in manifest.chunks:
                return (
                    manifest  # named already: by another compactor, or by our request whose answer was lost
                )
            if self.plan(manifest) != plan:
                raise Stale
            kept = manifest.chunks[:-merged] if kind == "merge" else manifest.chunks
            try:
                return self._manifests.swap(session_id, replace(manifest, chunks=(*kept, chunk)))
            except Declined:
                pause(attempt)
            manifest = self._manifests.get(session_id)
        raise Stale
