"""The PostgresBackend, in the conformance suite: a schema of its own per test.

The server is ``$DESKMATE_TEST_POSTGRES_URL`` (without ``?schema=``), by default
``postgresql://postgres@127.0.0.1:5432/test``; its user must be allowed to create schemas.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import psycopg
from psycopg import sql

from deskmate.memory.backends.postgres import PostgresBackend

from . import services

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("DESKMATE_TEST_POSTGRES_URL", DEFAULT_URL)


@functools.cache
def _reachable(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def require_server() -> str:
    """The server's URL; skips (or fails, on CI) the calling test when it does not answer."""
    url = server_url()
    services.require(
        _reachable(url),
        PostgresBackend.from_url(url).name,  # "PostgreSQL at host:port/db", no password
        "start it (pg_ctlcluster 15 main start) or set DESKMATE_TEST_POSTGRES_URL",
    )
    return url


def url_for(namespace: str, tmp_path: Path) -> str:
    url = require_server()
    return f"{url}{'&' if '?' in url else '?'}schema={namespace}"


def cleanup(namespace: str) -> None:
    """Drop the test's schema and everything in it."""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(namespace)))


def stored_bytes(namespace: str, tmp_path: Path | None = None) -> bytes:
    """Every row of every table in the test's schema, as PostgreSQL prints it: tables by name,
    each one's rows sorted (neither comes in a fixed order: a row updated in place moves)."""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
                (namespace,),
            )
        ]
        rows = []
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {}.{} t").format(
                sql.Identifier(namespace), sql.Identifier(table)
            )
            rows += sorted(row[0] for row in conn.execute(query))
    return "\n".join(rows).encode()
