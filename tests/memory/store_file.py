"""The FileBackend, in the conformance suite: a fresh directory per test."""

from __future__ import annotations

from pathlib import Path


def url_for(namespace: str, tmp_path: Path) -> str:
    return (tmp_path / namespace).as_uri()


def cleanup(namespace: str) -> None:
    """Nothing to do: pytest removes tmp_path."""


def stored_bytes(namespace: str, tmp_path: Path) -> bytes:
    """Every byte the store keeps: each file under its directory, locks included."""
    root = tmp_path / namespace
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())
