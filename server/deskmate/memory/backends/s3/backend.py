"""``S3Backend``: the ``MemoryBackend`` over the parts of this package: its URL, the async
methods, and the whole-session writes (``save`` replaces a generation, ``delete`` removes one)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import parse_qsl, unquote, urlsplit

from ...backend import MetaChange
from ...codec import dumps_bytes, encode_message
from ...errors import SessionChanged, StorageError
from ...ids import validate_session_id
from ...limits import clip_title
from ...models import Message, Session, SessionInfo, updated_at_of
from ...project_memories import validate_memory_id, validate_project
from ...urls import redact
from . import live
from .appends import Appender
from .client import MAX_ATTEMPTS, Declined, S3Client, pause
from .compaction import CHUNKS_PER_MERGE, SEGMENTS_PER_CHUNK, Compactor
from .hooks import Hooks
from .layout import FORMAT_VERSION, Damaged, Keys, generation_age, new_generation
from .manifest import Manifest, Manifests
from .memories import S3Memories
from .reading import Reader

GARBAGE_AGE_SECONDS = 3600.0  # a generation no manifest names, this old, is a crashed save's

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_OPTIONS = ("endpoint", "region", "addressing")


class S3Backend:
    """Sessions in an S3 bucket (AWS, MinIO, Cloudflare R2, ...) that supports conditional writes.

    Safe for many tasks, threads and processes (on many machines) at once: writers in
    different processes take no locks, they race with conditional requests and the loser
    retries. ``from_url`` builds one from a storage URL; constructing one never connects.
    ``hooks`` lets a test act at named points of the work (see ``hooks.py``).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        addressing: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        segments_per_chunk: int = SEGMENTS_PER_CHUNK,
        chunks_per_merge: int = CHUNKS_PER_MERGE,
        hooks: Hooks | None = None,
    ) -> None:
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint = endpoint
        self.region = region
        self.addressing = addressing or ("path" if endpoint else "auto")
        where = redact(endpoint) if endpoint else f"AWS{f' ({region})' if region else ''}"
        self.name = f"S3 bucket {bucket!r} at {where}"  # for messages: never the credentials
        self.client = S3Client(
            bucket,
            name=self.name,
            endpoint=endpoint,
            region=region,
            addressing=self.addressing,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
        hooks = hooks or Hooks()
        self._keys = Keys(self.prefix)
        self._manifests = Manifests(self.client, self._keys, hooks)
        self._reader = Reader(self.client, self._keys, self._manifests)
        self._memories = S3Memories(self.client, self.prefix)
        compactor = Compactor(
            self.client,
            self._keys,
            self._manifests,
            segments_per_chunk=segments_per_chunk,
            chunks_per_merge=chunks_per_merge,
        )
        self._appender = Appender(self.client, self._keys, self._manifests, compactor, hooks, self._holds)
        # Writes to one session from this process take turns: racing ourselves would only
        # cost requests. Other processes are still raced, with conditional requests.
        self._writing: dict[str, asyncio.Lock] = {}
        self._leases = live.S3Leases(self.client, self.prefix)

    def __repr__(self) -> str:
        endpoint = f"?endpoint={redact(self.endpoint)}" if self.endpoint else ""
        return f"S3Backend('s3://{self.bucket}/{self.prefix}{endpoint}')"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        segments_per_chunk: int = SEGMENTS_PER_CHUNK,
        chunks_per_merge: int = CHUNKS_PER_MERGE,
        hooks: Hooks | None = None,
    ) -> S3Backend:
        """``s3://[KEY:SECRET@]bucket[/prefix][?endpoint=URL&region=NAME&addressing=path|virtual]``.

        Without credentials in the URL, boto3's usual chain applies (environment,
        AWS_PROFILE, instance roles). Raises StorageError naming what is wrong. The keyword
        arguments are for tests: compaction sizes and ``hooks``.
        """
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            parts = None  # its text may quote the credentials: not echoed
        userinfo, _, bucket = parts.netloc.rpartition("@") if parts else ("", "", "")
        if parts is None or parts.fragment or "#" in url or "@" in parts.path + parts.query or ":" in bucket:
            # Most likely a secret with an unencoded '/': do not echo any of it.
            raise StorageError(
                "The s3:// storage URL cannot be parsed: write it s3://KEY:SECRET@bucket/prefix with "
                "'/', '?', '#', '+' and '@' in the key and secret percent-encoded, and give a server as "
                "?endpoint=URL (without credentials in it)."
            )
        shown = f"s3://{bucket}{parts.path}"
        if parts.scheme.lower() != "s3":
            raise StorageError(f"{shown!r} is not an s3:// storage URL.")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise StorageError(
                f"{bucket!r} in {shown!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, '.' and '-')."
            )
        key_id = secret = None
        if userinfo:
            key_id, colon, secret = userinfo.partition(":")
            key_id, secret = unquote(key_id), unquote(secret)
            if not colon or not key_id or not secret:
                raise StorageError(f"Credentials in {shown!r} must be written KEY:SECRET@{bucket}.")
        options: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name not in _OPTIONS:
                raise StorageError(
                    f"Unknown option {name!r} in the storage URL {shown!r}; the options are {', '.join(_OPTIONS)}."
                )
            options[name] = value
        endpoint = options.get("endpoint") or None
        if endpoint is not None:
            endpoint_parts = urlsplit(endpoint)
            if endpoint_parts.scheme not in ("http", "https") or not endpoint_parts.hostname:
                raise StorageError(
                    f"The endpoint {redact(endpoint)!r} in {shown!r} must be an http:// or https:// URL."
                )
        addressing = options.get("addressing") or None
        if addressing not in (None, "path", "virtual"):
            raise StorageError(f"addressing={addressing} in {shown!r} must be path or virtual.")
        return cls(
            bucket,
            unquote(parts.path),
            endpoint=endpoint,
            region=options.get("region") or None,
            addressing=addressing,
            access_key_id=key_id,
            secret_access_key=secret,
            segments_per_chunk=segments_per_chunk,
            chunks_per_merge=chunks_per_merge,
            hooks=hooks,
        )

    # -- MemoryBackend -----------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        """Return the stored session, or None. An object that does not parse raises StorageError naming it."""
        validate_session_id(session_id)
        return await asyncio.to_thread(self._reader.load, session_id)

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        """Add ``messages`` as one new object; the history already stored is not rewritten."""
        validate_session_id(session_id)
        if messages:
            async with self._writer(session_id):
                await asyncio.to_thread(
                    self._appender.append, session_id, list(messages), title, workspace_uri
                )

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        """Replace the session whole: a new generation, switched to in one manifest write."""
        validate_session_id(session.id)
        async with self._writer(session.id):
            await asyncio.to_thread(self._save, session, expected_messages)

    async def save_copy(self, session: Session, source_id: str) -> None:
        """A save: measured, writing the copy costs about one load here (a fork stays within
        twice a load), so copying inside the store would buy little."""
        await self.save(session)

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Write a manifest with the new title and metadata over the one ``change`` saw."""
        validate_session_id(session_id)
        async with self._writer(session_id):
            return await asyncio.to_thread(self._update, session_id, change)

    async def delete(self, session_id: str) -> bool:
        """Remove the session's every object; return False if there was no session."""
        validate_session_id(session_id)
        async with self._writer(session_id):
            return await asyncio.to_thread(self._delete, session_id)

    async def list(self) -> list[SessionInfo]:
        """Summaries from one small manifest per session, most recently updated first."""
        return await asyncio.to_thread(self._reader.list)

    async def load_memories(self, project: str) -> list[Message]:
        validate_project(project, "read project memories")
        return await asyncio.to_thread(self._memories.load, project)

    async def memory_projects(self) -> list[str]:
        return await asyncio.to_thread(self._memories.projects)

    async def add_memory(self, project: str, memory: Message) -> None:
        validate_project(project, "remember")
        validate_memory_id(memory.id)
        await asyncio.to_thread(self._memories.add, project, memory)

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        validate_project(project, "forget a memory")
        validate_memory_id(memory_id)
        return await asyncio.to_thread(self._memories.delete, project, memory_id)

    def watch(self) -> live.S3Watch:
        """Polls each followed session's manifest (``live.py``): S3 tells no one of a change."""
        return live.watch(self._reader.summary)

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        """A lease object, written with conditional requests (``live.py``)."""
        validate_session_id(session_id)
        return await asyncio.to_thread(self._leases.claim, session_id, holder, seconds)

    async def release_answer(self, session_id: str, holder: str) -> None:
        validate_session_id(session_id)
        await asyncio.to_thread(self._leases.release, session_id, holder)

    async def close(self) -> None:
        """Close the HTTP connections and the threads of parallel requests."""
        await asyncio.to_thread(self.client.close)

    def _writer(self, session_id: str) -> asyncio.Lock:
        return self._writing.setdefault(session_id, asyncio.Lock())

    def _holds(self, session_id: str, message_id: str) -> bool:
        session = self._reader.load(session_id)
        return session is not None and any(message.id == message_id for message in session.messages)

    # -- replacing and deleting ----------------------------------------------------------

    def _save(self, session: Session, expected_messages: int | None = None) -> None:
        generation = new_generation()
        if session.messages:
            base = {
                "deskmate": "base",
                "version": FORMAT_VERSION,
                "messages": [encode_message(m) for m in session.messages],
            }
            self.client.put(self._keys.base(session.id, generation), dumps_bytes(base))
        replaced: set[str] = set()
        for attempt in range(MAX_ATTEMPTS):
            current = self._manifests.get(session.id)
            if current is not None and current.generation == generation:
                break  # our write landed though its answer was lost
            if expected_messages is not None:
                # Checked against the manifest the swap is conditional on (If-Match): an append
                # landing after this read makes the swap fail and this check run again.
                found = None if current is None else current.message_count
                if found != expected_messages:
                    if session.messages:  # no manifest names it: ours to remove
                        self.client.remove(self._keys.base(session.id, generation))
                    raise SessionChanged(session.id, expected_messages, found)
            if current is not None:
                replaced.add(current.generation)
            manifest = Manifest(
                generation,
                title=session.title,
                workspace_uri=session.workspace_uri,
                created_at=session.created_at,
                updated_at=updated_at_of(session.messages, session.created_at),
                meta=session.meta.copy(),
                message_count=len(session.messages),
                base_messages=len(session.messages),
                etag=None if current is None else current.etag,
            )
            try:
                self._manifests.swap(session.id, manifest)
                break
            except Declined:
                pause(attempt)
        else:
            raise StorageError(
                f"Could not save session {session.id!r} in {self.name}: other writers won {MAX_ATTEMPTS} times."
            )
        self._collect_garbage(session.id, keep=generation, dead=replaced)

    def _update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        for attempt in range(MAX_ATTEMPTS):
            manifest = self._manifests.get(session_id)
            if manifest is None:
                return None
            title, meta = change(manifest.info(session_id))
            try:
                written = self._manifests.swap(
                    session_id, replace(manifest, title=clip_title(title), meta=meta.copy())
                )
            except Declined:
                pause(attempt)  # an append or another update got there first: look again
                continue
            return written.info(session_id)
        raise StorageError(
            f"Could not update session {session_id!r} in {self.name}: other writers won {MAX_ATTEMPTS} times."
        )

    def _delete(self, session_id: str) -> bool:
        key = self._keys.manifest(session_id)
        dead: set[str] = set()
        for attempt in range(MAX_ATTEMPTS):
            try:
                manifest = self._manifests.get(session_id)
            except Damaged:
                self.client.remove(key)  # deleting is what one does with a damaged session
                dead.add("*")
                break
            if manifest is None:
                break  # gone: deleted by another writer, or by our own request whose answer was lost
            dead.add(manifest.generation)
            try:
                self.client.call("delete_object", key, Key=key, IfMatch=manifest.etag)
                break
            except Declined:
                pause(attempt)  # replaced meanwhile: delete the newer one
        self._manifests.forget(session_id)
        if dead:
            self._collect_garbage(session_id, keep=None, dead=dead)
        return bool(dead)

    def _collect_garbage(self, session_id: str, *, keep: str | None, dead: set[str]) -> None:
        """Delete the objects of the ``dead`` generations (``*``: of all) and of crashed saves.

        A recent generation no manifest names may be a save or create still in flight: kept.
        """
        directory = self._keys.directory(session_id)
        doomed = []
        for item in self.client.listing(directory):
            generation, slash, _ = item["Key"][len(directory) :].partition("/")
            if not slash or generation == keep:
                continue
            if "*" in dead or generation in dead or generation_age(generation) > GARBAGE_AGE_SECONDS:
                doomed.append(item["Key"])
        self.client.map(self.client.remove, doomed)
