"""Reading: a whole session (its base, chunks, then the segments past them, in parallel) and
the listing of every session, with the parsed objects cached, since an object never changes."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from ...codec import decode_message
from ...errors import SessionStoreError, StorageError
from ...ids import validate_session_id
from ...models import Message, Session, SessionInfo
from .client import S3Client, pause
from .layout import SEGMENT, Damaged, Keys, Stale, read, shown
from .manifest import Manifest, Manifests

log = logging.getLogger(__name__)

LOAD_ATTEMPTS = 10  # a load retries only when compaction or a save moved objects under it
CACHED_MESSAGES = 50_000  # parsed messages of immutable objects kept for the next load

# A parsed object's messages, and the title and workspace its append carried (segments only).
Part = list[Message]


def _is_session_id(name: str) -> bool:
    try:
        validate_session_id(name)
    except SessionStoreError:
        return False
    return True


class Reader:
    """Loads sessions and lists them."""

    def __init__(self, client: S3Client, keys: Keys, manifests: Manifests) -> None:
        self._client = client
        self._keys = keys
        self._manifests = manifests
        # Parsed chunks, bases and segments by (key, ETag): objects never change under a key.
        self._parts: OrderedDict[tuple[str, str], Part] = OrderedDict()
        self._cached_messages = 0
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def load(self, session_id: str) -> Session | None:
        """The stored session, or None; StorageError naming an object that does not parse."""
        for attempt in range(LOAD_ATTEMPTS):
            manifest = self._manifests.get(session_id)
            if manifest is None:
                return None
            try:
                return self._read(session_id, manifest)
            except Stale:
                pause(attempt)  # compaction or a save moved objects since the manifest was read
        raise StorageError(
            f"Session {session_id!r} could not be read from {self._client.name}: an object its manifest "
            f"names stayed missing (s3://{self._client.bucket}/{self._keys.directory(session_id)})."
        )

    def list(self) -> list[SessionInfo]:
        """Summaries from one small manifest per session, most recently updated first."""
        root = self._keys.sessions
        ids = [item["Prefix"][len(root) : -1] for item in self._client.listing(root, delimiter="/")]
        for name in ids:
            if not _is_session_id(name):
                self._warn(
                    f"Skipped s3://{self._client.bucket}/{root}{shown(name)}/ in {self._client.name}: "
                    "not a session id."
                )
        infos = self._client.map(self._info, [i for i in ids if _is_session_id(i)])
        found = [info for info in infos if info is not None]
        found.sort(key=lambda info: info.updated_at, reverse=True)
        return found

    def _read(self, session_id: str, manifest: Manifest) -> Session:
        """The whole session ``manifest`` describes; Stale if its objects moved meanwhile."""
        keys = self._keys
        generation = manifest.generation
        start = manifest.compacted
        listed = self._client.listing(
            f"{keys.directory(session_id)}{generation}/s",
            start_after=keys.segment(session_id, generation, start - 1) if start else "",
        )
        segments = []
        for item in listed:
            match = SEGMENT.fullmatch(item["Key"].rsplit("/", 1)[1])
            if match:
                segments.append((int(match.group(1)), item["Key"], item["ETag"]))
        # Numbers from `compacted` up are never freed, so any gap means compaction ran meanwhile.
        if [seq for seq, _, _ in segments] != list(range(start, start + len(segments))):
            raise Stale
        if start + len(segments) < manifest.next:
            raise Stale
        wanted = [(keys.chunk(session_id, generation, chunk), "", "chunk") for chunk in manifest.chunks]
        if manifest.base_messages:
            wanted.insert(0, (keys.base(session_id, generation), "", "base"))
        wanted += [(key, etag, "segment") for _, key, etag in segments]
        parts = self._client.map(lambda item: self._part(*item), wanted)
        uncounted = parts[len(parts) - (start + len(segments) - manifest.next) :]
        # Segments past `next` (a writer in flight, or one that crashed) count as append would.
        counted = manifest.counting(
            ((len(m), m[-1].timestamp if m else "") for m in uncounted), manifest.next
        )
        return Session(
            id=session_id,
            title=counted.title,
            workspace_uri=counted.workspace_uri,
            created_at=manifest.created_at,
            meta=manifest.meta.copy(),
            messages=[message for messages in parts for message in messages],
        )

    def _part(self, key: str, etag: str, kind: str) -> Part:
        """The parsed messages of a base, chunk or segment object, cached: objects never change."""
        with self._lock:
            part = self._parts.get((key, etag))
            if part is not None:
                self._parts.move_to_end((key, etag))
                return part
        found = read(self._client, key, kind)
        if found is None:
            raise Stale
        data = found[0]
        records = data["segments"] if kind == "chunk" else [data]
        messages: list[Message] = []
        try:
            for record in records:
                messages += map(decode_message, record["messages"])
        except (ValueError, TypeError, KeyError) as exc:
            raise Damaged(
                f"Stored object s3://{self._client.bucket}/{key} cannot be read: message {len(messages) + 1}: "
                f"{exc}. It was left as it is."
            ) from None
        part = messages
        with self._lock:
            self._parts[(key, etag)] = part
            self._cached_messages += len(messages)
            while self._cached_messages > CACHED_MESSAGES and len(self._parts) > 1:
                _, dropped = self._parts.popitem(last=False)
                self._cached_messages -= len(dropped)
        return part

    def summary(self, session_id: str) -> SessionInfo | None:
        """The session's summary from its manifest, read now; None if there is none."""
        manifest = self._manifests.get(session_id)
        return None if manifest is None else manifest.info(session_id)

    def _info(self, session_id: str) -> SessionInfo | None:
        try:
            manifest = self._manifests.get(session_id)
        except Damaged as exc:
            self._warn(f"{exc} It is listed as '(damaged session manifest)'.")
            return SessionInfo(id=session_id, title="(damaged session manifest)")
        return None if manifest is None else manifest.info(session_id)

    def _warn(self, message: str) -> None:
        """Log ``message`` once: a listing read every few seconds must not flood the log."""
        with self._lock:
            if message in self._warned:
                return
            self._warned.add(message)
        log.warning("%s", message)
