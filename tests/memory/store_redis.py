"""The RedisBackend, in the conformance suite: a key prefix of its own per test.

The server is ``$DESKMATE_TEST_REDIS_URL``, by default ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from deskmate.memory.urls import redact

from . import services

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def server_url() -> str:
    return os.environ.get("DESKMATE_TEST_REDIS_URL", DEFAULT_URL)


def with_options(url: str, **options: str) -> str:
    """``url`` with query ``options`` added (replacing any of the same name)."""
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name not in options]
    return urlunsplit(parts._replace(query=urlencode(query + list(options.items()))))


def client() -> redis.Redis:
    """A synchronous client of the test server, for looking at keys directly."""
    parts = urlsplit(server_url())
    plain = urlunsplit(parts._replace(query=""))  # without deskmate's own prefix/ttl
    return redis.Redis.from_url(plain, socket_connect_timeout=2)


def require_server() -> None:
    """Skip (or fail, on CI) unless the test server answers."""
    try:
        with client() as connection:
            reachable = bool(connection.ping())
    except redis.RedisError:
        reachable = False
    services.require(
        reachable,
        f"Redis at {redact(server_url())}",
        "start it (redis-server --daemonize yes --save '' --appendonly no) or set DESKMATE_TEST_REDIS_URL",
    )


def url_for(namespace: str, tmp_path: Path) -> str:
    require_server()
    return with_options(server_url(), prefix=namespace)


def cleanup(namespace: str) -> None:
    """Delete every key under the prefix (SCAN, which never blocks the server as KEYS can)."""
    try:
        with client() as connection:
            keys = list(connection.scan_iter(match=f"{namespace}:*", count=500))
            if keys:
                connection.unlink(*keys)
    except redis.ConnectionError:
        pass  # the test was skipped: nothing was stored


def stored_bytes(namespace: str, tmp_path: Path | None = None) -> bytes:
    """Every key under the prefix and every value it holds, whatever its type."""
    out: list[bytes] = []
    with client() as connection:
        for key in sorted(connection.scan_iter(match=f"{namespace}:*", count=500)):
            kind = connection.type(key)
            out.append(key)
            if kind == b"string":
                out.append(connection.get(key) or b"")
            elif kind == b"hash":
                out += [item for pair in sorted(connection.hgetall(key).items()) for item in pair]
            elif kind == b"list":
                out += connection.lrange(key, 0, -1)
            elif kind == b"zset":
                out += [member for member, _ in connection.zrange(key, 0, -1, withscores=True)]
            elif kind == b"set":
                out += list(connection.smembers(key))
            else:
                out.append(connection.dump(key) or b"")
    return b"\n".join(out)
