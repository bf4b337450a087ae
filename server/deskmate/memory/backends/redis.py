"""RedisBackend: sessions in Redis, for several daemons (or machines) sharing one history.

URL: ``redis://[user:password@]host[:port][/db][?prefix=deskmate&ttl=SECONDS]``
(``rediss://`` for TLS). Other query parameters redis-py understands
(``socket_timeout``, ``ssl_ca_certs``, ...) are passed on. Without a password in
the URL, ``$REDIS_PASSWORD`` is used if set.

Keys, all under ``<prefix>:``; a session's two keys share the hash tag ``{<id>}``:

- ``<prefix>:session:{<id>}`` - hash: version, title, workspaceUri, createdAt,
  updatedAt (the last message's timestamp), meta (the metadata record, JSON: tags, pinned, ...;
  sessions written before it have a `tags` JSON list instead)
- ``<prefix>:session:{<id>}:messages`` - list: one message's record per element, JSON, or
  MessagePack for an encrypted or compressed one (``codec.record_bytes``: no base64)
- ``<prefix>:sessions`` - sorted set of session ids scored by updatedAt (epoch ms),
  so ``list`` reads no histories
- ``<prefix>:memories:{<project>}`` - hash: a project's memories, memory id -> its record
  (JSON, as a message's); never expires with ``ttl``
- ``<prefix>:memory-projects`` - set of the projects that were given memories

Every write is one Lua script (EVALSHA), so it is atomic and ordered against
every other client. With ``ttl`` each write (re)sets the session's expiry; the
sorted set keeps naming expired sessions until ``list`` prunes them. Redis
Cluster is not supported: the scripts touch a session's keys and the shared
sorted set, which live in different slots.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from ..backend import MetaChange
from ..codec import (
    BadRecord,
    decode_messages,
    decode_meta,
    dumps,
    encode_meta,
    record_bytes,
    storable,
)
from ..errors import BackendUnavailable, SessionChanged, SessionStoreError, StorageError
from ..ids import validate_session_id
from ..limits import clip_title
from ..models import Message, Session, SessionInfo, SessionMeta, now_iso, updated_at_of
from ..project_memories import decode_memory, encode_memory, ordered, validate_memory_id, validate_project
from ..urls import redact
from . import redis_live

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # the scripts write it as 'version' in each session's hash
DEFAULT_PREFIX = "deskmate"
CONNECT_TIMEOUT_SECONDS = 2.0  # a dead server must fail fast: callers keep the work and retry
COMMAND_TIMEOUT_SECONDS = 10.0
PASSWORD_ENV = "REDIS_PASSWORD"
# Redis' Lua cannot unpack arbitrarily many values at once: RPUSH in slices of this many.
_PUSH_CHUNK = 1000
# No glob characters (cleanup uses SCAN MATCH) and no braces (they would move the hash tag).
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# redis-py's own query parameters, besides those it parses as numbers or booleans.
_PASSED_ON = frozenset(URL_QUERY_ARGUMENT_PARSERS) | {
    "client_name",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_ca_data",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_password",
}

# Every write script ends with a PUBLISH of the session id on the changes channel (its last
# KEY), which live sessions listen to (redis_live.py).
# KEYS: meta, messages, index, changes. ARGV: id, title, workspaceUri ('' = none), createdAt,
# updatedAt, score, ttl (0 = none), then the messages' JSON.
_APPEND = """
local meta, msgs, index = KEYS[1], KEYS[2], KEYS[3]
local title, uri = ARGV[2], ARGV[3]
if redis.call('EXISTS', meta) == 0 then
  redis.call('HSET', meta, 'version', '1', 'title', title, 'createdAt', ARGV[4], 'meta', '{}')
  if uri ~= '' then redis.call('HSET', meta, 'workspaceUri', uri) end
end
for i = 8, #ARGV, 1000 do
  redis.call('RPUSH', msgs, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', meta, 'updatedAt', ARGV[5])
redis.call('ZADD', index, ARGV[6], ARGV[1])
local ttl = tonumber(ARGV[7])
for _, key in ipairs({meta, msgs}) do
  if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
end
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1
"""

# KEYS: meta, messages, index, changes. ARGV: id, title, workspaceUri, createdAt, updatedAt,
# score, ttl, the metadata record (JSON), the message count expected ('-1': any), then the
# messages' JSON. Returns 1 written, or {0, count found (-1: no session)} and writes nothing.
_SAVE = """
local meta, msgs, index = KEYS[1], KEYS[2], KEYS[3]
local expected = tonumber(ARGV[9])
if expected >= 0 then
  local found = -1
  if redis.call('EXISTS', meta) == 1 then found = redis.call('LLEN', msgs) end
  if found ~= expected then return {0, found} end
end
redis.call('UNLINK', meta, msgs)
redis.call('HSET', meta, 'version', '1', 'title', ARGV[2], 'createdAt', ARGV[4],
  'updatedAt', ARGV[5], 'meta', ARGV[8])
if ARGV[3] ~= '' then redis.call('HSET', meta, 'workspaceUri', ARGV[3]) end
for i = 10, #ARGV, 1000 do
  redis.call('RPUSH', msgs, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('ZADD', index, ARGV[6], ARGV[1])
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', msgs, ttl)  -- no-op for a session without messages
end
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1
"""

# KEYS: meta, messages, index, the source's messages, changes. ARGV: id, title, workspaceUri,
# createdAt, updatedAt, score, ttl, the metadata record (JSON), n. A save whose messages are
# the source's first n, copied inside Redis (COPY, LTRIM). Returns the copy's length, first
# and last element, for the caller to check they are the ones it meant.
_SAVE_COPY = """
local meta, msgs, index, source = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n = tonumber(ARGV[9])
redis.call('UNLINK', meta, msgs)
redis.call('COPY', source, msgs)
redis.call('LTRIM', msgs, 0, n - 1)
redis.call('HSET', meta, 'version', '1', 'title', ARGV[2], 'createdAt', ARGV[4],
  'updatedAt', ARGV[5], 'meta', ARGV[8])
if ARGV[3] ~= '' then redis.call('HSET', meta, 'workspaceUri', ARGV[3]) end
redis.call('ZADD', index, ARGV[6], ARGV[1])
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', msgs, ttl)
end
redis.call('PUBLISH', KEYS[5], ARGV[1])
return {redis.call('LLEN', msgs), redis.call('LINDEX', msgs, 0), redis.call('LINDEX', msgs, n - 1)}
"""

# KEYS: meta, messages, changes. ARGV: the title and meta fields as read ('' for none), the new
# title and meta, ttl, id. Compare and set: 1 written, 0 changed since read, -1 no session.
_UPDATE = """
local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 then return -1 end
if (redis.call('HGET', meta, 'title') or '') ~= ARGV[1] or (redis.call('HGET', meta, 'meta') or '') ~= ARGV[2] then
  return 0
end
redis.call('HSET', meta, 'title', ARGV[3], 'meta', ARGV[4])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', KEYS[3], ARGV[6])
return 1
"""

# KEYS: meta, messages, index, changes. ARGV: id. Returns how many of the two keys existed.
_DELETE = """
local existed = redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if existed > 0 then redis.call('PUBLISH', KEYS[4], ARGV[1]) end
return existed
"""

# KEYS: index, then the metadata key of each id in ARGV. Drops the ids whose session
# is (still) gone, checked here so a session created meanwhile keeps its entry.
_PRUNE = """
local removed = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return removed
"""

# What a listing reads of each session's hash (the message count comes from LLEN).
_LISTED_FIELDS = ("version", "title", "workspaceUri", "createdAt", "updatedAt", "meta", "tags")
DAMAGED_TITLE = "(damaged session)"

_ENCODE_HINT = (
    "write it redis://[USER:PASSWORD@]HOST[:PORT][/DB], with '/', '?', '#', '@' and ':' in the user "
    "name and password percent-encoded (%2F, %3F, %23, %40, %3A), or leave the password out and set "
    f"${PASSWORD_ENV}."
)
_OPTION_ERROR = re.compile(r"Invalid value for '[a-z_]+' in connection URL\.?")

_REFUSED_BY_ACL = ("can't run this command", "No permissions to access")
_SCRIPTS = {
    "append": _APPEND,
    "save": _SAVE,
    "save_copy": _SAVE_COPY,
    "update": _UPDATE,
    "delete": _DELETE,
    "prune": _PRUNE,
    "claim": redis_live.CLAIM,
    "release": redis_live.RELEASE,
}
UPDATE_ATTEMPTS = 10


def _score(timestamp: str) -> int:
    """Epoch milliseconds of an ISO 8601 timestamp; now for one that does not parse."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # as the file backend's string order assumes
    return int(moment.timestamp() * 1000)


def _encoded(messages: Sequence[Message]) -> list[bytes]:
    """Each message's record as a list element: JSON as every store encodes it (lone surrogates
    become U+FFFD), or MessagePack when encrypted or compressed (no base64: Redis keeps bytes)."""
    return [record_bytes(message, binary=True) for message in messages]


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else ""


class RedisBackend:
    """Sessions in one Redis database, every key under ``prefix``.

    Constructing one never connects: the client is made on first use, in the
    running event loop (a new one if the loop changed, as with ``asyncio.run``
    called twice).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._url = url  # may hold a password: only ever shown through redact()
        self.prefix = prefix
        self.ttl = ttl
        self._options = options or {}
        try:
            parsed = parse_url(url)
        except ValueError:
            raise StorageError(f"Invalid Redis storage URL {redact(url)!r}: {_ENCODE_HINT}") from None
        host = str(parsed.get("host") or "localhost")
        if ":" in host:
            host = f"[{host}]"
        self.name = f"Redis at {host}:{parsed.get('port') or 6379}/{parsed.get('db') or 0}"
        secret = str(parsed.get("password") or self._options.get("password") or "")
        # As redis-py may quote it: decoded, and as written in the URL.
        self._secrets = sorted({secret, quote(secret, safe="")} - {""}, key=len, reverse=True)
        self._client: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisBackend({redact(self._url)!r}, prefix={self.prefix!r}, ttl={self.ttl!r})"

    @classmethod
    def from_url(cls, url: str) -> RedisBackend:
        """``redis://[user:password@]host[:port][/db][?prefix=deskmate&ttl=SECONDS]``, or ``rediss://``."""
        shown = redact(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            # Not echoed: its text may quote the login ("netloc '...' contains invalid characters").
            raise StorageError(f"Invalid Redis storage URL {shown!r}: {_ENCODE_HINT}") from None
        if parts.fragment or "#" in url or "@" in parts.path + parts.query:
            # An unencoded '#', '/', '?' or '@' in the password: the rest would leak into other parts.
            raise StorageError(f"Invalid Redis storage URL {shown!r}: {_ENCODE_HINT}")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise StorageError(
                f"Invalid Redis storage URL {shown!r}: the port must be a number from 0 to 65535."
            ) from None
        if parts.scheme not in ("redis", "rediss"):
            raise StorageError(f"A Redis storage URL starts with redis:// or rediss://, got {shown!r}.")
        if parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise StorageError(f"The database in {shown!r} must be a number, e.g. redis://host:6379/0.")
        prefix, ttl, passed = DEFAULT_PREFIX, None, []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name == "prefix":
                prefix = value
            elif name == "ttl":
                ttl = _parse_ttl(value, shown)
            elif name in _PASSED_ON:
                passed.append((name, value))
            else:
                raise StorageError(f"Unknown option {name!r} in the Redis storage URL {shown!r}.")
        if not _PREFIX.fullmatch(prefix):
            raise StorageError(
                f"The prefix {prefix!r} in {shown!r} must be 1-100 letters, digits, '.', '_', ':' or '-', "
                "starting with a letter or digit."
            )
        client_url = urlunsplit(parts._replace(query=urlencode(passed)))
        try:
            parse_url(client_url)  # bad option values, found now rather than on first use
        except ValueError as exc:
            # Only redis-py's own "Invalid value for 'socket_timeout' ..." is safe to quote.
            reason = str(exc) if _OPTION_ERROR.fullmatch(str(exc)) else _ENCODE_HINT
            raise StorageError(f"Invalid Redis storage URL {shown!r}: {reason.rstrip('.')}.") from None
        options: dict[str, Any] = {}
        if parts.password is None and os.environ.get(PASSWORD_ENV):
            options["password"] = os.environ[PASSWORD_ENV]
        return cls(client_url, prefix=prefix, ttl=ttl, options=options)

    # -- keys and the connection ------------------------------------------------

    def keys_of(self, session_id: str) -> tuple[str, str]:
        """The metadata hash and message list of ``session_id`` (validated first)."""
        meta = f"{self.prefix}:session:{{{validate_session_id(session_id)}}}"
        return meta, f"{meta}:messages"

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:sessions"

    @property
    def changes_channel(self) -> str:
        """Where every write publishes the id of the session it changed."""
        return f"{self.prefix}:changes"

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A pool's connections belong to the loop that opened them.
            client = aioredis.Redis.from_url(
                self._url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                socket_timeout=COMMAND_TIMEOUT_SECONDS,
                # No retries here: a write whose reply was lost may have happened, and only
                # the caller can tell (ResilientBackend's replay skips stored message ids).
                # The pool already replaces connections the server closed before use.
                retry=Retry(NoBackoff(), 0),
                # Off: with it on ("auto"), redis-py 8 sends an extra command on connect and
                # skips its check that a pooled connection is still open (after a server restart).
                maint_notifications_config=MaintNotificationsConfig(enabled=False),
                **self._options,
            )
            self._client, self._loop = client, loop
            self._scripts = {name: client.register_script(text) for name, text in _SCRIPTS.items()}
        return self._client

    async def _run(self, script: str, keys: list[str], args: Sequence[Any]) -> Any:
        """Run one of the scripts (EVALSHA; SCRIPT LOAD first if the server lost it)."""
        client = self._redis()
        return await self._scripts[script](keys, args, client)

    def _failure(self, exc: Exception, doing: str) -> StorageError:
        """The error to raise for ``exc``, a redis-py or socket error, with no password in it."""
        reason = str(exc).rstrip(".") or type(exc).__name__
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
            return BackendUnavailable(self.name, reason)  # includes refused credentials
        # Inside a script, a refused command is a plain error: recognise it by its text.
        if isinstance(exc, NoPermissionError) or any(words in reason for words in _REFUSED_BY_ACL):
            return StorageError(
                f"{self.name} refused to let this user {doing} ({reason}); "
                f"see the ACL rules deskmate needs in its storage documentation."
            )
        return StorageError(f"{self.name} could not {doing}: {reason}.")

    # -- MemoryBackend ---------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        """The stored session, or None; an element that does not parse raises StorageError."""
        meta_key, messages_key = self.keys_of(session_id)
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.hgetall(meta_key)
                pipe.lrange(messages_key, 0, -1)
                meta, items = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"read session {session_id!r}") from None
        if not meta:
            return None  # never stored, deleted, or expired
        fields = {_text(key): _text(value) for key, value in meta.items()}
        self._check_version(session_id, fields.get("version"))
        return Session(
            id=session_id,
            title=fields.get("title", ""),
            workspace_uri=fields.get("workspaceUri") or None,
            created_at=fields.get("createdAt") or now_iso(),
            updated_at=fields.get("updatedAt", ""),
            meta=self._meta(session_id, fields.get("meta"), fields.get("tags")),
            messages=self._messages(session_id, items),
        )

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        """Add ``messages`` in one script run: all or none, never interleaved with another append."""
        meta_key, messages_key = self.keys_of(session_id)
        if not messages:
            return
        updated_at = messages[-1].timestamp
        args = [
            session_id,
            storable(title),
            storable(workspace_uri or ""),
            storable(messages[0].timestamp),
            storable(updated_at),
            _score(updated_at),
            self.ttl or 0,
            *_encoded(messages),
        ]
        try:
            await self._run("append", [meta_key, messages_key, self.index_key, self.changes_channel], args)
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"append to session {session_id!r}") from None

    def _whole_session_args(self, session: Session) -> list[Any]:
        """The first ARGV of the save scripts: id, title, workspaceUri, createdAt, updatedAt,
        score, ttl and the metadata record."""
        updated_at = updated_at_of(session.messages, session.created_at)
        return [
            session.id,
            storable(session.title),
            storable(session.workspace_uri or ""),
            storable(session.created_at),
            storable(updated_at),
            _score(updated_at),
            self.ttl or 0,
            dumps(encode_meta(session.meta)),
        ]

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        """Replace the whole session in one script run: readers see the old or the new one."""
        meta_key, messages_key = self.keys_of(session.id)
        messages = session.messages
        args = [
            *self._whole_session_args(session),
            -1 if expected_messages is None else expected_messages,
            *_encoded(messages),
        ]
        try:
            written = await self._run(
                "save", [meta_key, messages_key, self.index_key, self.changes_channel], args
            )
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"save session {session.id!r}") from None
        if isinstance(written, list):
            found = int(written[1])
            raise SessionChanged(session.id, expected_messages or 0, None if found < 0 else found)

    async def save_copy(self, session: Session, source_id: str) -> None:
        """A save whose messages are copied inside Redis from the source's list (nothing sent),
        when the source still starts with them; else (or on a server without COPY, or a user
        not allowed it) a plain save."""
        validate_session_id(source_id, "save_copy")
        messages = session.messages
        if not messages or source_id == session.id:
            await self.save(session)
            return
        meta_key, messages_key = self.keys_of(session.id)
        args = [
            *self._whole_session_args(session),
            len(messages),
        ]
        keys = [meta_key, messages_key, self.index_key, self.keys_of(source_id)[1], self.changes_channel]
        try:
            count, first, last = await self._run("save_copy", keys, args)
        except ResponseError as exc:  # COPY unknown (Redis < 6.2) or not in the user's ACL
            log.debug("Copying session %r inside Redis failed (%s); saving it whole.", session.id, exc)
            count = first = last = None
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"save session {session.id!r}") from None
        if count == len(messages) and self._ends_are(first, last, messages):
            return
        await self.save(session)  # the source changed since it was read: send the messages

    @staticmethod
    def _ends_are(first: bytes | None, last: bytes | None, messages: Sequence[Message]) -> bool:
        try:
            ends = decode_messages([first, last])
        except (BadRecord, StorageError, TypeError, ValueError):
            return False
        return (ends[0].id, ends[1].id) == (messages[0].id, messages[-1].id)

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Read the title and metadata, then write ``change``'s only if they are still as read."""
        meta_key, messages_key = self.keys_of(session_id)
        try:
            for _ in range(UPDATE_ATTEMPTS):
                async with self._redis().pipeline(transaction=True) as pipe:
                    pipe.exists(meta_key)
                    pipe.hmget(meta_key, *_LISTED_FIELDS)
                    pipe.llen(messages_key)
                    exists, fields, count = await pipe.execute()
                if not exists:
                    return None
                version, title, uri, created_at, updated_at, meta_raw, tags = (
                    None if value is None else _text(value) for value in fields
                )
                self._check_version(session_id, version)
                info = SessionInfo(
                    id=session_id,
                    title=title or "",
                    workspace_uri=uri or None,
                    created_at=created_at or "",
                    updated_at=updated_at or "",
                    message_count=int(count),
                    meta=self._meta(session_id, meta_raw, tags),  # damaged: raises, nothing is written
                )
                title, meta = change(info)
                title = clip_title(title)
                args = [
                    info.title,
                    meta_raw or "",
                    storable(title),
                    dumps(encode_meta(meta)),
                    self.ttl or 0,
                    session_id,
                ]
                keys = [meta_key, messages_key, self.changes_channel]
                written = int(await self._run("update", keys, args))
                if written < 0:
                    return None
                if written:
                    return replace(info, title=storable(title), meta=decode_meta(encode_meta(meta)))
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"update session {session_id!r}") from None
        raise StorageError(
            f"Could not update session {session_id!r} in {self.name}: other writers changed it "
            f"{UPDATE_ATTEMPTS} times while it was updated."
        )

    async def delete(self, session_id: str) -> bool:
        """Remove the session's keys and its listing entry; False if it did not exist."""
        meta_key, messages_key = self.keys_of(session_id)
        try:
            keys = [meta_key, messages_key, self.index_key, self.changes_channel]
            existed = await self._run("delete", keys, [session_id])
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"delete session {session_id!r}") from None
        return int(existed) > 0

    @property
    def memory_projects_key(self) -> str:
        return f"{self.prefix}:memory-projects"

    async def memory_projects(self) -> list[str]:
        try:
            members = await self._redis().smembers(self.memory_projects_key)
        except (RedisError, OSError) as exc:
            raise self._failure(exc, "list the projects with memories") from None
        return sorted(_text(member) for member in members)

    def memories_key(self, project: str) -> str:
        return f"{self.prefix}:memories:{{{project}}}"

    async def load_memories(self, project: str) -> list[Message]:
        key = self.memories_key(validate_project(project, "read project memories"))
        try:
            items = await self._redis().hgetall(key)
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"read the memories of project {project!r}") from None
        return ordered(decode_memory(raw, f"{key} on {self.name}") for raw in items.values())

    async def add_memory(self, project: str, memory: Message) -> None:
        key = self.memories_key(validate_project(project, "remember"))
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.hset(key, validate_memory_id(memory.id), encode_memory(memory))
                pipe.sadd(self.memory_projects_key, project)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"store a memory of project {project!r}") from None

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        key = self.memories_key(validate_project(project, "forget a memory"))
        try:
            removed = await self._redis().hdel(key, validate_memory_id(memory_id))
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"forget a memory of project {project!r}") from None
        return int(removed) > 0

    async def list(self) -> list[SessionInfo]:
        """Summaries from the sorted set and each session's hash and list length, newest first.

        Ids whose session expired (or vanished) are dropped from the sorted set on the way.
        One bad entry never hides the others: an entry that is not a session id is skipped,
        a session whose keys cannot be read is listed as ``(damaged session)``, a field that
        cannot be read is left at its default; each with a warning in the log.
        """
        try:
            client = self._redis()
            ids = [i for i in map(self._listed_id, await client.zrevrange(self.index_key, 0, -1)) if i]
            if not ids:
                return []
            async with client.pipeline(transaction=False) as pipe:
                for session_id in ids:
                    meta_key, messages_key = self.keys_of(session_id)
                    pipe.hmget(meta_key, *_LISTED_FIELDS)
                    pipe.llen(messages_key)
                # A key of the wrong type answers with an error, kept in its place in the replies.
                replies = await pipe.execute(raise_on_error=False)
            infos, gone = [], []
            for position, session_id in enumerate(ids):
                fields, count = replies[2 * position], replies[2 * position + 1]
                if isinstance(fields, list) and all(value is None for value in fields):
                    gone.append(session_id)
                    continue
                infos.append(self._listed(session_id, fields, count))
            if gone:
                keys = [self.index_key, *(self.keys_of(session_id)[0] for session_id in gone)]
                await self._run("prune", keys, gone)
        except (RedisError, OSError) as exc:
            raise self._failure(exc, "list sessions") from None
        return infos

    def watch(self) -> redis_live.RedisWatch:
        """SUBSCRIBE to the channel every write publishes on (``redis_live.py``)."""
        return redis_live.RedisWatch(self._summary, lambda: self._redis().pubsub(), self.changes_channel)

    async def _summary(self, session_id: str) -> SessionInfo | None:
        meta_key, messages_key = self.keys_of(session_id)
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.hmget(meta_key, *_LISTED_FIELDS)
                pipe.llen(messages_key)
                fields, count = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"read session {session_id!r}") from None
        if isinstance(fields, list) and all(value is None for value in fields):
            return None
        return self._listed(session_id, fields, count)

    def _lease_key(self, session_id: str) -> str:
        return f"{self.prefix}:answering:{{{validate_session_id(session_id)}}}"

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        """SET the lease key to ``holder`` with a PX expiry, unless another holder's is there."""
        key = self._lease_key(session_id)
        try:
            return int(await self._run("claim", [key], [holder, max(1, int(seconds * 1000))])) == 1
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"claim session {session_id!r}") from None

    async def release_answer(self, session_id: str, holder: str) -> None:
        key = self._lease_key(session_id)
        try:
            await self._run("release", [key], [holder])
        except (RedisError, OSError) as exc:
            raise self._failure(exc, f"release session {session_id!r}") from None

    async def close(self) -> None:
        """Close the client and its connection pool."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    # -- decoding ------------------------------------------------------------------

    def _messages(self, session_id: str, items: list[bytes]) -> list[Message]:
        try:
            return decode_messages(items)
        except BadRecord as bad:
            raise StorageError(
                f"Session {session_id!r} in {self.name}: the message at index {bad.index} of "
                f"{self.keys_of(session_id)[1]} cannot be read ({bad.reason}). Nothing was changed; "
                "fix or remove that element."
            ) from None

    def _listed_id(self, raw: bytes) -> str | None:
        """The session id a sorted-set member names, or None (and a warning) if it names none."""
        try:
            return validate_session_id(raw.decode())
        except (UnicodeDecodeError, SessionStoreError):
            self._warn(
                f"Skipped {_shown(raw)} in {self.index_key} on {self.name}: it is not a session id. "
                "Remove it with ZREM if nothing else put it there."
            )
            return None

    def _listed(self, session_id: str, fields: Any, count: Any) -> SessionInfo:
        """A listing's summary of one session from its HMGET and LLEN replies, whatever they hold."""
        meta_key, messages_key = self.keys_of(session_id)
        for reply in (fields, count):
            if isinstance(reply, Exception) and "WRONGTYPE" not in str(reply):
                raise reply  # not this session's damage (an ACL refusal, say): the listing fails
        try:
            if isinstance(fields, Exception):
                raise StorageError(
                    f"Session {session_id!r} in {self.name}: {meta_key} cannot be read ({fields})"
                )
            if isinstance(count, Exception):
                raise StorageError(
                    f"Session {session_id!r} in {self.name}: {messages_key} cannot be read ({count})"
                )
            version, title, uri, created_at, updated_at, meta, tags = (
                None if value is None else _text(value) for value in fields
            )
            self._check_version(session_id, version or None)
        except StorageError as exc:
            self._warn(f"{exc}; it is listed as {DAMAGED_TITLE!r}.")
            return SessionInfo(id=session_id, title=DAMAGED_TITLE)
        try:
            listed_meta = self._meta(session_id, meta, tags)
        except StorageError as exc:
            self._warn(f"{exc}; it is listed without tags or pin.")
            listed_meta = SessionMeta()
        return SessionInfo(
            id=session_id,
            title=title or "",
            workspace_uri=uri or None,
            created_at=created_at or "",
            updated_at=updated_at or "",
            message_count=int(count),
            meta=listed_meta,
        )

    def _warn(self, message: str) -> None:
        """Log ``message`` once per backend: a listing read every few seconds must not flood the log."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    def _check_version(self, session_id: str, version: str | None) -> None:
        if version is None:
            return  # written before the field existed: version 1
        if not (version.isascii() and version.isdigit()) or not 1 <= int(version) <= FORMAT_VERSION:
            raise StorageError(
                f"Session {session_id!r} in {self.name} has format version {_shown(version)}, "
                f"not one this deskmate understands (up to {FORMAT_VERSION}): a newer deskmate wrote it, "
                "or it is damaged."
            )

    def _meta(self, session_id: str, raw: str | None, legacy_tags: str | None) -> SessionMeta:
        """The session's metadata record (``meta``; sessions written before it have only ``tags``)."""
        field, text = ("meta", raw) if raw is not None else ("tags", legacy_tags)
        if not text:
            return SessionMeta()
        try:
            record = json.loads(text)
            return decode_meta(record if field == "meta" else {"tags": record})
        except (ValueError, RecursionError) as exc:
            raise StorageError(
                f"Session {session_id!r} in {self.name}: its {field} field cannot be read ({exc}): "
                f"{_shown(text)}."
            ) from None


def _shown(value: str | bytes) -> str:
    """``value`` safe to put in a message or log line: repr'd (no control characters) and short."""
    shown = repr(value[:80])
    return shown + "..." if len(value) > 80 else shown


def _parse_ttl(value: str, shown_url: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise StorageError(
            f"The ttl in {shown_url!r} must be a whole number of seconds above 0, got {value!r}."
        )
    return int(value)
