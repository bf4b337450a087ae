"""S3Backend: sessions in an S3-compatible object store; an append never rewrites the history.

Objects under ``<prefix>sessions/<id>/`` (described for users in docs/storage.md):

- ``manifest.json``: title, workspaceUri, createdAt, updatedAt, tags, messageCount, and where
  the history is: ``generation`` (a directory that ``save`` replaces whole), ``baseMessages``
  (how many messages its ``base.json`` holds), ``chunks`` and ``next``.
- ``<generation>/base.json``: the messages a ``save`` wrote.
- ``<generation>/s<n>.json``: segment n, the messages of one append (a turn is one object, so
  all or nothing). Created with ``If-None-Match: *``: a writer that loses a number takes the next.
- ``<generation>/c<from>-<to>.json``: segments from..to-1 compacted into one object once 64 are
  counted; 16 chunks of one size merge into one, so a load is a few dozen GETs.

The manifest is only replaced with ``If-Match`` (compare and swap). ``next`` is the first segment
its counts leave out: a writer that crashed after writing its segment left it at or past
``next``, where a load finds it by listing and the next append counts it. Compaction deletes
what it merged only once the manifest names the chunk, so a writer holding an old manifest may
re-create a freed number below the compacted range; each segment carries a random token, and
that writer sees the chunk holds another token there, deletes its copy and appends again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..codec import dumps_bytes
from ..errors import BackendUnavailable, SessionStoreError, StorageError
from ..ids import validate_session_id
from ..models import Message, Session, SessionInfo
from ..urls import redact

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SEGMENTS_PER_CHUNK = 64
CHUNKS_PER_MERGE = 16
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 30.0
MAX_ATTEMPTS = 200  # compare-and-swap rounds before a write gives up
LOAD_ATTEMPTS = 10  # a load retries only when compaction or a save moved objects under it
GARBAGE_AGE_SECONDS = 3600.0  # a generation no manifest names, this old, is a crashed save's
CACHED_MESSAGES = 50_000  # parsed messages of immutable objects kept for the next load
_CACHED_MANIFESTS = 128

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_GENERATION = re.compile(r"g[0-9a-f]{12}[0-9a-z]*")
_SEGMENT = re.compile(r"s(\d{10})\.json")
_OPTIONS = ("endpoint", "region", "addressing")
_REFUSED = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
_DECLINED = {"PreconditionFailed", "412", "ConditionalRequestConflict"}

T = TypeVar("T")
R = TypeVar("R")
# A parsed object's messages, and the title and workspace its append carried (segments only).
_Part = tuple[list[Message], str, "str | None"]


class _Declined(Exception):
    """The store declined a conditional request: the object exists, changed, or is gone."""

    def __init__(self, retried: bool) -> None:
        super().__init__("precondition failed")
        self.retried = retried  # botocore resent it: the first try may have landed


class _Stale(Exception):
    """An object the manifest we hold names is gone: read the manifest again."""


class _Damaged(StorageError):
    """A stored object does not parse; the message names it. Nothing is deleted."""


def _new_generation() -> str:
    # Milliseconds first: the age of a generation nobody names is readable from its name.
    return f"g{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def _generation_age(name: str) -> float:
    if not _GENERATION.fullmatch(name):
        return float("inf")
    return time.time() - int(name[1:13], 16) / 1000


def _pause(attempt: int) -> None:
    """Back off a little after losing a race, more the more often we lose."""
    time.sleep(random.uniform(0, min(0.2, 0.004 * (attempt + 1))))


def _check(kind: str, data: Any) -> dict[str, Any]:
    """``data`` if it has the shape of a deskmate ``kind`` object; ValueError saying why not."""
    if not isinstance(data, dict) or data.get("deskmate") != kind:
        raise ValueError(f"it is not a deskmate {kind} object")
    version = data.get("version", 1)
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"format version {_shown(version)} is not one this deskmate understands (up to {FORMAT_VERSION}): "
            "a newer deskmate wrote it, or it is damaged"
        )
    records = data.get("segments") if kind == "chunk" else [data]
    if kind != "manifest" and not (
        isinstance(records, list)
        and all(isinstance(r, dict) and isinstance(r.get("messages"), list) for r in records)
    ):
        raise ValueError("it has no list of messages")
    return data


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _field(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """Manifest field ``name``, ``default`` when absent or null; ValueError when of another type."""
    value = data.get(name)
    if value is None:
        return default
    if not (_is_count(value) if kind is int else isinstance(value, kind)):
        expected = "a count" if kind is int else {str: "a string", list: "a list"}[kind]
        raise ValueError(f"field {name!r} is not {expected}: {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """``value`` safe to put in a message or log line: repr'd (no control characters) and short."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _summary(record: dict[str, Any]) -> tuple[int, str, str, str | None]:
    """(message count, last timestamp, title, workspace) of a segment record, for the manifest."""
    messages = record["messages"]
    last = messages[-1].get("timestamp") if messages and isinstance(messages[-1], dict) else ""
    return len(messages), str(last or ""), str(record.get("title") or ""), record.get("workspaceUri")


@dataclass(frozen=True)
class _Manifest:
    """A session's manifest as read (``etag`` set) or about to be written over ``etag``."""

    generation: str
    title: str = ""
    workspace_uri: str | None = None
    created_at: str = ""
    updated_at: str = ""
    tags: tuple[str, ...] = ()
    message_count: int = 0
    base_messages: int = 0
    chunks: tuple[tuple[int, int], ...] = ()  # segment ranges [from, to), in order, from 0
    next: int = 0
    etag: str | None = field(default=None, compare=False)

    @property
    def compacted(self) -> int:
        return self.chunks[-1][1] if self.chunks else 0

    def counting(self, summaries: Iterable[tuple[int, str, str, str | None]], next_seq: int) -> _Manifest:
        """This manifest once the segments summarised are counted, as append defines it."""
        title, workspace_uri, count, updated_at = (
            self.title,
            self.workspace_uri,
            self.message_count,
            self.updated_at,
        )
        for n, last, segment_title, segment_workspace in summaries:
            if not n:
                continue
            if count == 0 and not title and segment_title:
                # An empty, untitled session takes the first question's title.
                title, workspace_uri = segment_title, workspace_uri or segment_workspace
            count += n
            updated_at = last or updated_at
        return replace(
            self,
            title=title,
            workspace_uri=workspace_uri,
            message_count=count,
            updated_at=updated_at,
            next=next_seq,
        )

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
                "tags": list(self.tags),
                "messageCount": self.message_count,
                "generation": self.generation,
                "baseMessages": self.base_messages,
                "chunks": [list(chunk) for chunk in self.chunks],
                "next": self.next,
            }
        )

    @classmethod
    def decode(cls, data: dict[str, Any], etag: str) -> _Manifest:
        """Raises ValueError naming the first field that is missing or of the wrong type."""
        if "generation" not in data:
            raise ValueError("field 'generation' is missing")
        generation = data["generation"]
        if not isinstance(generation, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", generation):
            raise ValueError(f"generation {_shown(generation)} is not a generation name")
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
        tags = _field(data, "tags", list, [])
        if not all(isinstance(tag, str) for tag in tags):
            raise ValueError(f"field 'tags' is not a list of strings: {_shown(tags)}")
        return cls(
            generation=generation,
            title=_field(data, "title", str, ""),
            workspace_uri=_field(data, "workspaceUri", str, None),
            created_at=created_at,
            updated_at=_field(data, "updatedAt", str, "") or created_at,
            tags=tuple(tags),
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
            tags=list(self.tags),
        )


class S3Backend:
    """Sessions in an S3 bucket (AWS, MinIO, Cloudflare R2, ...) that supports conditional writes.

    Safe for many tasks, threads and processes (on many machines) at once: writers in
    different processes take no locks, they race with conditional requests and the loser
    retries. ``from_url`` builds one from a storage URL; constructing one never connects.
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
    ) -> None:
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint = endpoint
        self.region = region
        self.addressing = addressing or ("path" if endpoint else "auto")
        self.segments_per_chunk = segments_per_chunk
        self.chunks_per_merge = chunks_per_merge
        where = redact(endpoint) if endpoint else f"AWS{f' ({region})' if region else ''}"
        self.name = f"S3 bucket {bucket!r} at {where}"  # for messages: never the credentials
        self._credentials = (access_key_id, secret_access_key)
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._client_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        # The last manifest seen per session: an append starts from it without a GET, and a
        # stale one only costs a retry (every write it leads to is conditional).
        self._manifests: OrderedDict[str, _Manifest] = OrderedDict()
        # Parsed chunks, bases and segments by (key, ETag): objects never change under a key.
        self._parts: OrderedDict[tuple[str, str], _Part] = OrderedDict()
        self._cached_messages = 0
        # Writes to one session from this process take turns: racing ourselves would only
        # cost requests. Other processes are still raced, with conditional requests.
        self._writing: dict[str, asyncio.Lock] = {}
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        endpoint = f"?endpoint={redact(self.endpoint)}" if self.endpoint else ""
        return f"S3Backend('s3://{self.bucket}/{self.prefix}{endpoint}')"

    @classmethod
    def from_url(cls, url: str) -> S3Backend:
        """``s3://[KEY:SECRET@]bucket[/prefix][?endpoint=URL&region=NAME&addressing=path|virtual]``.

        Without credentials in the URL, boto3's usual chain applies (environment,
        AWS_PROFILE, instance roles). Raises StorageError naming what is wrong.
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
        )

    # -- MemoryBackend -----------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        """Return the stored session, or None. An object that does not parse raises StorageError naming it."""
        validate_session_id(session_id)
        return await asyncio.to_thread(self._load, session_id)

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
                await asyncio.to_thread(self._append, session_id, list(messages), title, workspace_uri)

    async def save(self, session: Session) -> None:
        """Replace the session whole: a new generation, switched to in one manifest write."""
        validate_session_id(session.id)
        async with self._writer(session.id):
            await asyncio.to_thread(self._save, session)

    async def delete(self, session_id: str) -> bool:
        """Remove the session's every object; return False if there was no session."""
        validate_session_id(session_id)
        async with self._writer(session_id):
            return await asyncio.to_thread(self._delete, session_id)

    async def list(self) -> list[SessionInfo]:
        """Summaries from one small manifest per session, most recently updated first."""
        return await asyncio.to_thread(self._list)

    async def close(self) -> None:
        """Close the HTTP connections and the threads of parallel requests."""
        with self._client_lock:
            client, pool = self._client, self._pool
            self._client = self._pool = None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown)
        if client is not None:
            client.close()

    def _warn(self, message: str) -> None:
        """Log ``message`` once per backend: a listing read every few seconds must not flood the log."""
        with self._cache_lock:
            if message in self._warned:
                return
            self._warned.add(message)
        log.warning("%s", message)

    def _writer(self, session_id: str) -> asyncio.Lock:
        return self._writing.setdefault(session_id, asyncio.Lock())

    # -- keys ----------------------------------------------------------------------

    def _directory(self, session_id: str) -> str:
        return f"{self.prefix}sessions/{session_id}/"

    def _manifest_key(self, session_id: str) -> str:
        return f"{self._directory(session_id)}manifest.json"

    def _base_key(self, session_id: str, generation: str) -> str:
        return f"{self._directory(session_id)}{generation}/base.json"

    def _segment_key(self, session_id: str, generation: str, seq: int) -> str:
        return f"{self._directory(session_id)}{generation}/s{seq:010d}.json"

    def _chunk_key(self, session_id: str, generation: str, chunk: tuple[int, int]) -> str:
        return f"{self._directory(session_id)}{generation}/c{chunk[0]:010d}-{chunk[1]:010d}.json"

    # -- requests --------------------------------------------------------------------

    def _s3(self) -> Any:
        with self._client_lock:
            if self._client is None:
                key_id, secret = self._credentials
                session = boto3.session.Session(
                    aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=self.region
                )
                config = Config(
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"total_max_attempts": 2, "mode": "standard"},  # a dead endpoint fails fast
                    max_pool_connections=32,
                    s3={"addressing_style": self.addressing},
                    # Newer default checksums that some S3-compatible stores reject: only where required.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                self._client = session.client("s3", endpoint_url=self.endpoint, config=config)
            return self._client

    def _map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``function`` over ``items``, in parallel for independent requests, results in order."""
        if len(items) < 2:
            return [function(item) for item in items]
        with self._client_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="deskmate-s3")
            pool = self._pool
        return list(pool.map(function, items))

    def _call(self, operation: str, key: str, **params: Any) -> Any:
        """One S3 request. None for a GET of a missing object; _Declined for a failed condition."""
        conditional = "IfMatch" in params or "IfNoneMatch" in params
        try:
            return getattr(self._s3(), operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _DECLINED or (conditional and code in ("NoSuchKey", "404")):
                retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
                raise _Declined(retried) from None
            if code in ("NoSuchKey", "404") and operation == "get_object":
                return None
            raise self._failure(exc, key) from None
        except BotoCoreError as exc:
            raise self._failure(exc, key) from None

    def _failure(self, exc: Exception, key: str) -> StorageError:
        """The user-facing error for a failed request, without credentials."""
        where = f"s3://{self.bucket}/{key}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code == "NoSuchBucket":
                return BackendUnavailable(self.name, "the bucket does not exist")
            if code in _REFUSED:
                return BackendUnavailable(self.name, f"the credentials were refused ({code})")
            if code in _WRONG_REGION:
                return BackendUnavailable(
                    self.name, f"the bucket is in another region ({code}); set ?region= in the storage URL"
                )
            if code == "AccessDenied" or status == 403:
                return BackendUnavailable(self.name, f"access to {where} was denied ({code})")
            if code == "NotImplemented":
                return StorageError(
                    f"{self.name} does not support a request deskmate needs on {where} "
                    "(conditional writes: If-None-Match and If-Match)."
                )
            if status >= 500:
                return BackendUnavailable(self.name, f"the server answered {status} {code}")
            message = self._scrub(f"{code} {error.get('Message') or ''}".strip())
            return StorageError(f"S3 request on {where} failed: {message}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return BackendUnavailable(
                self.name,
                "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE, or write KEY:SECRET@ in the storage URL)",
            )
        if isinstance(exc, ConnectTimeoutError):
            return BackendUnavailable(self.name, f"connecting timed out after {CONNECT_TIMEOUT_SECONDS:g} s")
        if isinstance(exc, ReadTimeoutError):
            return BackendUnavailable(self.name, f"no answer within {READ_TIMEOUT_SECONDS:g} s")
        if isinstance(exc, EndpointConnectionError):
            # botocore's own text names the whole request URL; the OS reason is what helps.
            found = re.search(r"\[Errno -?\d+\][^'\")]*", str(exc.kwargs.get("error", "")))
            return BackendUnavailable(self.name, f"cannot connect ({found.group(0) if found else exc})")
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return BackendUnavailable(self.name, self._scrub(str(exc)))
        return StorageError(f"S3 request on {where} failed: {self._scrub(str(exc))}")

    def _scrub(self, text: str) -> str:
        """``text`` without the secret key, decoded or as written in a URL."""
        secret = self._credentials[1]
        for form in sorted({secret, quote(secret or "", safe="")} - {None, ""}, key=len, reverse=True):
            text = text.replace(form, "***")
        return text

    def _get(self, key: str, kind: str) -> tuple[dict[str, Any], str] | None:
        """The object at ``key`` parsed as a deskmate ``kind`` object, and its ETag; None if missing."""
        response = self._call("get_object", key, Key=key)
        if response is None:
            return None
        try:
            body = response["Body"].read()
        except BotoCoreError as exc:
            raise self._failure(exc, key) from None
        finally:
            response["Body"].close()
        try:
            data = _check(kind, json.loads(body))
        except ValueError as exc:
            raise _Damaged(
                f"Stored object s3://{self.bucket}/{key} cannot be read: {exc}. It was left as it is."
            ) from None
        return data, response["ETag"]

    def _put(self, key: str, body: bytes, *, if_match: str | None = None, create: bool = False) -> str:
        """Write ``key``; return the new ETag. _Declined when the condition fails."""
        params: dict[str, Any] = {"Key": key, "Body": body, "ContentType": "application/json"}
        if if_match is not None:
            params["IfMatch"] = if_match
        if create:
            params["IfNoneMatch"] = "*"
        return self._call("put_object", key, **params)["ETag"]

    def _remove(self, key: str, if_match: str | None = None) -> None:
        """Delete ``key``; with ``if_match``, only that version of it (else nothing happens)."""
        try:
            if if_match is None:
                self._call("delete_object", key, Key=key)
            else:
                self._call("delete_object", key, Key=key, IfMatch=if_match)
        except _Declined:
            pass

    def _listing(self, prefix: str, *, start_after: str = "", delimiter: str = "") -> list[dict[str, Any]]:
        """Every object (with ``delimiter``: every common prefix) under ``prefix``, in key order."""
        params: dict[str, Any] = {"Prefix": prefix}
        if start_after:
            params["StartAfter"] = start_after
        if delimiter:
            params["Delimiter"] = delimiter
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("list_objects_v2", prefix, **params)
            found += page.get("CommonPrefixes" if delimiter else "Contents") or []
            if not page.get("IsTruncated"):
                return found
            params["ContinuationToken"] = page["NextContinuationToken"]

    # -- manifests -----------------------------------------------------------------

    def _manifest(self, session_id: str, *, cached: bool = False) -> _Manifest | None:
        """The session's manifest (the last one seen, when ``cached``), or None."""
        if cached:
            with self._cache_lock:
                known = self._manifests.get(session_id)
            if known is not None:
                return known
        key = self._manifest_key(session_id)
        try:
            found = self._get(key, "manifest")
        except _Damaged as exc:
            raise _Damaged(f"Session {session_id!r}: {exc}") from None
        if found is None:
            self._forget(session_id)
            return None
        try:
            manifest = _Manifest.decode(*found)
        except ValueError as exc:
            raise _Damaged(
                f"Session {session_id!r}: stored object s3://{self.bucket}/{key} cannot be read: {exc}. "
                "It was left as it is."
            ) from None
        self._remember(session_id, manifest)
        return manifest

    def _swap(self, session_id: str, manifest: _Manifest) -> _Manifest:
        """Write ``manifest`` over the version it was derived from (``etag``; None: over none)."""
        body = manifest.encode(session_id)
        key = self._manifest_key(session_id)
        if manifest.etag is None:
            etag = self._put(key, body, create=True)
        else:
            etag = self._put(key, body, if_match=manifest.etag)
        written = replace(manifest, etag=etag)
        self._remember(session_id, written)
        return written

    def _remember(self, session_id: str, manifest: _Manifest) -> None:
        with self._cache_lock:
            self._manifests.pop(session_id, None)
            self._manifests[session_id] = manifest
            if len(self._manifests) > _CACHED_MANIFESTS:
                del self._manifests[next(iter(self._manifests))]

    def _forget(self, session_id: str) -> None:
        with self._cache_lock:
            self._manifests.pop(session_id, None)

    # -- reading -------------------------------------------------------------------

    def _load(self, session_id: str) -> Session | None:
        for attempt in range(LOAD_ATTEMPTS):
            manifest = self._manifest(session_id)
            if manifest is None:
                return None
            try:
                return self._read(session_id, manifest)
            except _Stale:
                _pause(attempt)  # compaction or a save moved objects since the manifest was read
        raise StorageError(
            f"Session {session_id!r} could not be read from {self.name}: an object its manifest "
            f"names stayed missing (s3://{self.bucket}/{self._directory(session_id)})."
        )

    def _read(self, session_id: str, manifest: _Manifest) -> Session:
        """The whole session ``manifest`` describes; _Stale if its objects moved meanwhile."""
        generation = manifest.generation
        start = manifest.compacted
        listed = self._listing(
            f"{self._directory(session_id)}{generation}/s",
            start_after=self._segment_key(session_id, generation, start - 1) if start else "",
        )
        segments = []
        for item in listed:
            match = _SEGMENT.fullmatch(item["Key"].rsplit("/", 1)[1])
            if match:
                segments.append((int(match.group(1)), item["Key"], item["ETag"]))
        # Numbers from `compacted` up are never freed, so any gap means compaction ran meanwhile.
        if [seq for seq, _, _ in segments] != list(range(start, start + len(segments))):
            raise _Stale
        if start + len(segments) < manifest.next:
            raise _Stale
        wanted = [(self._chunk_key(session_id, generation, chunk), "", "chunk") for chunk in manifest.chunks]
        if manifest.base_messages:
            wanted.insert(0, (self._base_key(session_id, generation), "", "base"))
        wanted += [(key, etag, "segment") for _, key, etag in segments]
        parts = self._map(lambda item: self._part(*item), wanted)
        uncounted = parts[len(parts) - (start + len(segments) - manifest.next) :]
        # Segments past `next` (a writer in flight, or one that crashed) count as append would.
        counted = manifest.counting(
            ((len(m), m[-1].timestamp if m else "", t, w) for m, t, w in uncounted), manifest.next
        )
        return Session(
            id=session_id,
            title=counted.title,
            workspace_uri=counted.workspace_uri,
            created_at=manifest.created_at,
            tags=list(manifest.tags),
            messages=[message for messages, _, _ in parts for message in messages],
        )

    def _part(self, key: str, etag: str, kind: str) -> _Part:
        """The parsed messages of a base, chunk or segment object, cached: objects never change."""
        with self._cache_lock:
            part = self._parts.get((key, etag))
            if part is not None:
                self._parts.move_to_end((key, etag))
                return part
        found = self._get(key, kind)
        if found is None:
            raise _Stale
        data = found[0]
        records = data["segments"] if kind == "chunk" else [data]
        messages: list[Message] = []
        try:
            for record in records:
                messages += map(Message.from_dict, record["messages"])
        except (ValueError, TypeError, KeyError) as exc:
            raise _Damaged(
                f"Stored object s3://{self.bucket}/{key} cannot be read: message {len(messages) + 1}: {exc}. "
                "It was left as it is."
            ) from None
        part = (messages, str(data.get("title") or ""), data.get("workspaceUri"))
        with self._cache_lock:
            self._parts[(key, etag)] = part
            self._cached_messages += len(messages)
            while self._cached_messages > CACHED_MESSAGES and len(self._parts) > 1:
                _, (dropped, _, _) = self._parts.popitem(last=False)
                self._cached_messages -= len(dropped)
        return part

    def _list(self) -> list[SessionInfo]:
        root = f"{self.prefix}sessions/"
        ids = [item["Prefix"][len(root) : -1] for item in self._listing(root, delimiter="/")]
        for name in ids:
            if not _is_session_id(name):
                self._warn(
                    f"Skipped s3://{self.bucket}/{root}{_shown(name)}/ in {self.name}: not a session id."
                )
        infos = self._map(self._info, [i for i in ids if _is_session_id(i)])
        found = [info for info in infos if info is not None]
        found.sort(key=lambda info: info.updated_at, reverse=True)
        return found

    def _info(self, session_id: str) -> SessionInfo | None:
        try:
            manifest = self._manifest(session_id)
        except _Damaged as exc:
            self._warn(f"{exc} It is listed as '(damaged session manifest)'.")
            return SessionInfo(id=session_id, title="(damaged session manifest)")
        return None if manifest is None else manifest.info(session_id)

    # -- appending -------------------------------------------------------------------

    def _append(
        self, session_id: str, messages: list[Message], title: str, workspace_uri: str | None
    ) -> None:
        record: dict[str, Any] = {"token": uuid.uuid4().hex, "messages": [m.to_dict() for m in messages]}
        if title:
            record["title"] = title
        if workspace_uri:
            record["workspaceUri"] = workspace_uri
        body = dumps_bytes({"deskmate": "segment", "version": FORMAT_VERSION, **record})
        for attempt in range(MAX_ATTEMPTS):
            manifest = self._manifest(session_id, cached=True)
            if manifest is None:
                manifest = self._create(session_id, title, workspace_uri, messages[0].timestamp)
                if manifest is None:
                    continue  # another writer created it first
            placed = self._place(session_id, manifest, body, record["token"])
            if placed is None:
                continue  # the generation was replaced before we wrote: start again in the new one
            seq, etag, manifest = placed
            outcome, current = self._commit(session_id, seq, etag, record, manifest)
            if outcome == "done":
                self._compact_quietly(session_id, current)
                return
            if outcome == "replaced" and current is not None and self._holds(session_id, messages[0].id):
                return  # a save replaced the session with a history that already has this turn
            _pause(attempt)  # otherwise append again, after the save (or delete) that won
        raise StorageError(
            f"Could not append to session {session_id!r} in {self.name}: other writers won {MAX_ATTEMPTS} times."
        )

    def _create(
        self, session_id: str, title: str, workspace_uri: str | None, created_at: str
    ) -> _Manifest | None:
        manifest = _Manifest(
            _new_generation(),
            title=title,
            workspace_uri=workspace_uri,
            created_at=created_at,
            updated_at=created_at,
        )
        try:
            return self._swap(session_id, manifest)
        except _Declined:
            return None

    def _place(
        self, session_id: str, manifest: _Manifest, body: bytes, token: str
    ) -> tuple[int, str, _Manifest] | None:
        """Create the segment at the first free number from ``manifest.next``: (number, ETag, the
        newest manifest seen, whose ``next`` is at most that number), or None if the generation went."""
        seq = manifest.next
        for _ in range(MAX_ATTEMPTS):
            key = self._segment_key(session_id, manifest.generation, seq)
            try:
                return seq, self._put(key, body, create=True), manifest
            except _Declined as declined:
                if declined.retried:
                    # Our first try may have landed before its answer was lost: is it ours?
                    found = self._get(key, "segment")
                    if found is not None and found[0].get("token") == token:
                        return seq, found[1], manifest
            fresh = self._manifest(session_id)
            if fresh is None or fresh.generation != manifest.generation:
                return None
            manifest, seq = fresh, max(seq + 1, fresh.next)
        raise StorageError(
            f"Could not append to session {session_id!r} in {self.name}: no free segment number."
        )

    def _commit(
        self, session_id: str, seq: int, etag: str, record: dict[str, Any], placed: _Manifest
    ) -> tuple[str, _Manifest | None]:
        """Count our segment ``seq`` (and any uncounted before it) in the manifest.

        Returns ("done", manifest), or ("replaced", current manifest or None) when a save or
        delete replaced the generation, or ("orphan", ...) when ``seq`` was a number compaction
        had freed; in both of those our segment is deleted and the caller appends again.
        """
        generation = placed.generation
        key = self._segment_key(session_id, generation, seq)
        manifest: _Manifest | None = placed
        for attempt in range(MAX_ATTEMPTS):
            if manifest is None or manifest.generation != generation:
                self._remove(key, if_match=etag)  # in a generation nobody reads any more
                return "replaced", manifest
            try:
                if seq < manifest.next:
                    # Counted by another writer; below `compacted` it may instead be a freed number.
                    if seq >= manifest.compacted or self._chunk_holds(
                        session_id, manifest, seq, record["token"]
                    ):
                        return "done", manifest
                    self._remove(key, if_match=etag)
                    return "orphan", manifest
                # Count every segment from `next` to ours: the writers of the others may have crashed.
                others = self._map(
                    lambda n: self._segment_record(session_id, generation, n), range(manifest.next, seq)
                )
                counted = manifest.counting(map(_summary, [*others, record]), seq + 1)
                return "done", self._swap(session_id, counted)
            except (_Declined, _Stale):
                _pause(attempt)
            manifest = self._manifest(session_id)
        raise StorageError(
            f"Could not append to session {session_id!r} in {self.name}: other writers won {MAX_ATTEMPTS} times."
        )

    def _segment_record(self, session_id: str, generation: str, seq: int) -> dict[str, Any]:
        found = self._get(self._segment_key(session_id, generation, seq), "segment")
        if found is None:
            raise _Stale
        return found[0]

    def _chunk_holds(self, session_id: str, manifest: _Manifest, seq: int, token: str) -> bool:
        """Whether the chunk covering ``seq`` holds the segment with ``token`` there."""
        for chunk in manifest.chunks:
            if chunk[0] <= seq < chunk[1]:
                key = self._chunk_key(session_id, manifest.generation, chunk)
                found = self._get(key, "chunk")
                if found is None:
                    raise _Stale  # merged into a bigger chunk meanwhile
                segments = found[0]["segments"]
                if len(segments) != chunk[1] - chunk[0]:
                    raise _Damaged(f"Stored object s3://{self.bucket}/{key} does not hold segments {chunk}.")
                return segments[seq - chunk[0]].get("token") == token
        return False

    def _holds(self, session_id: str, message_id: str) -> bool:
        session = self._load(session_id)
        return session is not None and any(message.id == message_id for message in session.messages)

    # -- compaction ----------------------------------------------------------------------

    def _plan(self, manifest: _Manifest) -> tuple[str, str, tuple[int, int], int] | None:
        """The next compaction ``manifest`` calls for: (generation, kind, range, inputs), or None."""
        tail = manifest.chunks[-self.chunks_per_merge :]
        size = tail[-1][1] - tail[-1][0] if tail else 0
        if len(tail) == self.chunks_per_merge and all(end - start == size for start, end in tail):
            return manifest.generation, "merge", (tail[0][0], tail[-1][1]), len(tail)
        if manifest.next - manifest.compacted >= self.segments_per_chunk:
            start = manifest.compacted
            return manifest.generation, "chunk", (start, start + self.segments_per_chunk), 0
        return None

    def _compact_quietly(self, session_id: str, manifest: _Manifest) -> None:
        """Compact what ``manifest`` calls for; the append is durable already, so only log failures."""
        if self._plan(manifest) is None:
            return
        try:
            self._compact(session_id, manifest)
        except StorageError as exc:
            log.warning(
                "Compacting session %r in %s failed (%s); the next append tries again.",
                session_id,
                self.name,
                exc,
            )

    def _compact(self, session_id: str, manifest: _Manifest | None) -> None:
        """Write chunks until the manifest calls for none; inputs are deleted once it names their chunk."""
        for attempt in range(MAX_ATTEMPTS):
            plan = None if manifest is None else self._plan(manifest)
            if manifest is None or plan is None:
                return
            generation, kind, chunk, merged = plan
            if kind == "merge":
                inputs = [self._chunk_key(session_id, generation, c) for c in manifest.chunks[-merged:]]
            else:
                inputs = [self._segment_key(session_id, generation, n) for n in range(*chunk)]
            try:
                self._write_chunk(self._chunk_key(session_id, generation, chunk), kind, inputs)
                manifest = self._name_chunk(session_id, manifest, plan)
            except _Stale:
                _pause(attempt)
                manifest = self._manifest(session_id)
                continue
            self._map(self._remove, inputs)

    def _write_chunk(self, key: str, kind: str, inputs: list[str]) -> None:
        found = self._map(partial(self._get, kind="chunk" if kind == "merge" else "segment"), inputs)
        if any(item is None for item in found):
            raise _Stale  # another compactor got there first
        records = [
            r for data, _ in filter(None, found) for r in (data["segments"] if kind == "merge" else [data])
        ]
        segments = [{"token": record.get("token"), "messages": record["messages"]} for record in records]
        body = dumps_bytes({"deskmate": "chunk", "version": FORMAT_VERSION, "segments": segments})
        try:
            self._put(key, body, create=True)
        except _Declined:
            pass  # another compactor wrote it, from the same inputs: they never change

    def _name_chunk(self, session_id: str, manifest: _Manifest | None, plan: tuple) -> _Manifest:
        """Swap the manifest to name the planned chunk in place of its inputs; _Stale if that is moot."""
        generation, kind, chunk, merged = plan
        for attempt in range(MAX_ATTEMPTS):
            if manifest is None or manifest.generation != generation:
                raise _Stale  # a save or delete replaced the generation
            if chunk in manifest.chunks:
                return (
                    manifest  # named already: by another compactor, or by our request whose answer was lost
                )
            if self._plan(manifest) != plan:
                raise _Stale
            kept = manifest.chunks[:-merged] if kind == "merge" else manifest.chunks
            try:
                return self._swap(session_id, replace(manifest, chunks=(*kept, chunk)))
            except _Declined:
                _pause(attempt)
            manifest = self._manifest(session_id)
        raise _Stale

    # -- replacing and deleting ----------------------------------------------------------

    def _save(self, session: Session) -> None:
        generation = _new_generation()
        if session.messages:
            base = {
                "deskmate": "base",
                "version": FORMAT_VERSION,
                "messages": [m.to_dict() for m in session.messages],
            }
            self._put(self._base_key(session.id, generation), dumps_bytes(base))
        replaced: set[str] = set()
        for attempt in range(MAX_ATTEMPTS):
            current = self._manifest(session.id)
            if current is not None and current.generation == generation:
                break  # our write landed though its answer was lost
            if current is not None:
                replaced.add(current.generation)
            manifest = _Manifest(
                generation,
                title=session.title,
                workspace_uri=session.workspace_uri,
                created_at=session.created_at,
                updated_at=session.messages[-1].timestamp if session.messages else session.created_at,
                tags=tuple(session.tags),
                message_count=len(session.messages),
                base_messages=len(session.messages),
                etag=None if current is None else current.etag,
            )
            try:
                self._swap(session.id, manifest)
                break
            except _Declined:
                _pause(attempt)
        else:
            raise StorageError(
                f"Could not save session {session.id!r} in {self.name}: other writers won {MAX_ATTEMPTS} times."
            )
        self._collect_garbage(session.id, keep=generation, dead=replaced)

    def _delete(self, session_id: str) -> bool:
        key = self._manifest_key(session_id)
        dead: set[str] = set()
        for attempt in range(MAX_ATTEMPTS):
            try:
                manifest = self._manifest(session_id)
            except _Damaged:
                self._remove(key)  # deleting is what one does with a damaged session
                dead.add("*")
                break
            if manifest is None:
                break  # gone: deleted by another writer, or by our own request whose answer was lost
            dead.add(manifest.generation)
            try:
                self._call("delete_object", key, Key=key, IfMatch=manifest.etag)
                break
            except _Declined:
                _pause(attempt)  # replaced meanwhile: delete the newer one
        self._forget(session_id)
        if dead:
            self._collect_garbage(session_id, keep=None, dead=dead)
        return bool(dead)

    def _collect_garbage(self, session_id: str, *, keep: str | None, dead: set[str]) -> None:
        """Delete the objects of the ``dead`` generations (``*``: of all) and of crashed saves.

        A recent generation no manifest names may be a save or create still in flight: kept.
        """
        directory = self._directory(session_id)
        doomed = []
        for item in self._listing(directory):
            generation, slash, _ = item["Key"][len(directory) :].partition("/")
            if not slash or generation == keep:
                continue
            if "*" in dead or generation in dead or _generation_age(generation) > GARBAGE_AGE_SECONDS:
                doomed.append(item["Key"])
        self._map(self._remove, doomed)


def _is_session_id(name: str) -> bool:
    try:
        validate_session_id(name)
    except SessionStoreError:
        return False
    return True
