"""The PostgreSQL store as a daemon uses it, wrapped in a ResilientBackend, in the conformance suite.

The namespace and cleanup are store_postgres's; the outbox lives under the test's tmp_path.
"""

from __future__ import annotations

from pathlib import Path

from deskmate.memory.backend import MemoryBackend
from deskmate.memory.urls import daemon_store

from . import store_postgres

url_for = store_postgres.url_for
cleanup = store_postgres.cleanup


def backend_for_url(url: str, tmp_path: Path) -> MemoryBackend:
    """What the daemon opens for ``url``: the backend inside a ResilientBackend."""
    return daemon_store(url, tmp_path / "data")


def stored_bytes(namespace: str, tmp_path: Path) -> bytes:
    """The store's bytes and the outbox's (under the data dir)."""
    outbox = tmp_path / "data"
    local = (
        b"".join(p.read_bytes() for p in sorted(outbox.rglob("*")) if p.is_file()) if outbox.exists() else b""
    )
    return store_postgres.stored_bytes(namespace, tmp_path) + local
