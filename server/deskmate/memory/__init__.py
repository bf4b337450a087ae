"""Session storage. Knows nothing of models or editors."""

from __future__ import annotations

import os
from pathlib import Path

from .backend import MemoryBackend
from .backends.file import FileBackend
from .errors import (
    BackendUnavailable,
    InvalidSessionId,
    SessionIdRequired,
    SessionNotFound,
    SessionStoreError,
    StorageError,
    StorageFull,
)
from .ids import validate_session_id
from .models import Message, Session, SessionInfo, context_items, now_iso

_DATA_DIR_ENV = "DESKMATE_DATA_DIR"


def default_data_dir() -> Path:
    """Where deskmate keeps its data: ``$DESKMATE_DATA_DIR``, else the platform's user data dir."""
    configured = os.environ.get(_DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs  # imported here: only needed when no directory is configured

    return Path(platformdirs.user_data_dir("deskmate", appauthor=False))


__all__ = [
    "BackendUnavailable",
    "FileBackend",
    "InvalidSessionId",
    "MemoryBackend",
    "Message",
    "Session",
    "SessionIdRequired",
    "SessionInfo",
    "SessionNotFound",
    "SessionStoreError",
    "StorageError",
    "StorageFull",
    "context_items",
    "default_data_dir",
    "now_iso",
    "validate_session_id",
]
