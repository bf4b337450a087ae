"""The file store: ``FileBackend`` (``store.py``) over atomic writes (``atomic.py``) and
per-session lock files (``locking.py``)."""

from __future__ import annotations

from .store import FileBackend

__all__ = ["FileBackend"]
