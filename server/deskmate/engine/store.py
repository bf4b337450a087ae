"""Opening the session store the settings name, and putting the autoSave-off overlay in front of it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ..memory import MemoryBackend, StorageError, codec, default_data_dir
from ..memory.holding import HoldingBackend
from ..memory.indexing import IndexedBackend, Progress
from ..memory.sealed import SealedLabels
from ..memory.unsaved import UnsavedOverlay
from ..memory.urls import daemon_store
from .settings import Settings

SCRATCH_ID = ""  # the conversation of a window with no folder: never stored


def data_dir_of(settings: Settings) -> Path:
    return Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()


def index_path_of(data_dir: Path, storage_url: str | None) -> Path:
    """The search index of a store: in the data dir, one file per store (named by a hash of
    its URL, so no secret is in a file name)."""
    if not storage_url:
        return data_dir / "search" / "files.sqlite3"
    digest = hashlib.sha256(storage_url.encode()).hexdigest()[:16]
    return data_dir / "search" / f"store-{digest}.sqlite3"


def apply_record_encoding(settings: Settings) -> str | None:
    """Records written from now on are encrypted and/or compressed as the settings say (every
    store, the outbox included, encodes message records through memory/codec.py). Returns a
    problem to tell the user: encryption on without a key (every write then fails, naming
    it, rather than store anything in the clear)."""
    from ..memory import keys, sealing

    encrypt, compress = settings.encryption == "on", settings.compression == "zstd"
    codec.set_writing(sealing.encoding_for(encrypt=encrypt, compress=compress))
    if not encrypt:
        return None
    try:
        ring = keys.keys()
    except keys.KeysUnavailable as exc:
        return f"deskmate: encryption is on, but {exc} Nothing will be stored until a key is there."
    if ring.current is None:
        return (
            "deskmate: encryption is on but there is no key: run `deskmate keys init`, or set "
            f"{keys.ENV_KEY} or {keys.ENV_KEY_FILE}. Nothing will be stored until a key is there."
        )
    return None


class SessionStore:
    """Where the engine's sessions live.

    ``backend`` is the store the settings name (files under the data dir, or
    ``storageUrl``'s), opened on first use so a bad URL fails a request rather than
    start-up, and wrapped so a full disk holds turns in memory. While autoSave is
    off, ``sessions`` is an UnsavedOverlay over it. A store given by the caller is
    used as it is and never closed here.
    """

    def __init__(
        self, settings: Settings, *, backend: MemoryBackend | None, warn: Callable[[str], None]
    ) -> None:
        self.data_dir = data_dir_of(settings)
        self._settings = settings
        self._given = backend is not None
        self._backend = backend
        self._warn = warn
        self.overlay: UnsavedOverlay | None = None if settings.auto_save else UnsavedOverlay(None)
        self.scratch = UnsavedOverlay(None)
        self.index_progress: Progress | None = None  # told how a search index catch-up goes

    @property
    def backend(self) -> MemoryBackend:
        """The real store; raises StorageError if the settings name one that cannot be opened."""
        if self._backend is None:
            self._apply_encoding(self._settings)
            opened = daemon_store(self._settings.storage_url, self.data_dir, notify=self._warn)
            sealed = SealedLabels(opened, seal=self._settings.encryption == "on")
            self._backend = IndexedBackend(
                HoldingBackend(sealed, notify=self._warn),
                index_path_of(self.data_dir, self._settings.storage_url),
                progress=self._index_progress,
                # Encrypted sessions are indexed in memory only, never in the clear on disk.
                in_memory=self._settings.encryption == "on",
                on_damaged=lambda session_id, moved_to: self._warn(
                    f'deskmate: the history of session "{session_id}" was damaged; it was moved to '
                    f"{moved_to} and a new history starts."
                ),
            )
        return self._backend

    def _index_progress(self, done: int, total: int) -> None:
        if self.index_progress is not None:
            self.index_progress(done, total)

    @property
    def searchable(self) -> IndexedBackend:
        """The store's search index (opening the store, and the index, on first use)."""
        backend = self.backend
        if not isinstance(backend, IndexedBackend):
            raise StorageError("This store was given without a search index.")
        return backend

    @property
    def opened(self) -> MemoryBackend | None:
        """The real store if it is open already (for status: never opens it)."""
        return self._backend

    @property
    def sessions(self) -> MemoryBackend:
        """What requests read and write: the overlay while autoSave is off, else the real store."""
        if self.overlay is None:
            return self.backend
        self.overlay.inner = self.backend
        return self.overlay

    def for_session(self, session_id: str | None) -> tuple[MemoryBackend, str]:
        """The store a session id lives in, and the id to use there (None: the scratch conversation)."""
        if session_id is None:
            return self.scratch, SCRATCH_ID
        return self.sessions, session_id

    def unsaved(self, session_id: str | None) -> bool:
        """Whether the session holds turns the store does not have (autoSave off, not saved yet)."""
        return session_id is None or (self.overlay is not None and self.overlay.has_changes(session_id))

    async def reconfigure(self, settings: Settings) -> None:
        """Follow new settings: reopen the store if they moved it; save what is in memory when
        autoSave is turned on."""
        old, self._settings = self._settings, settings
        moved = settings.data_dir != old.data_dir or settings.storage_url != old.storage_url
        encoding_changed = (settings.encryption, settings.compression) != (old.encryption, old.compression)
        if encoding_changed and not moved and self._backend is not None and not self._given:
            self._apply_encoding(settings)
            self._sealed().seal = settings.encryption == "on"
            if isinstance(self._backend, IndexedBackend):  # no index in the clear of encrypted sessions
                await self._backend.keep_in_memory(settings.encryption == "on")
        if moved and not self._given:
            self.data_dir = data_dir_of(settings)
            if self._backend is not None:
                await self._backend.close()
            self._backend = None
        if settings.auto_save and self.overlay is not None:
            self.overlay.inner = self.backend
            await self.overlay.commit_all()
            self.overlay = None
        elif not settings.auto_save and self.overlay is None:
            self.overlay = UnsavedOverlay(None)

    def _apply_encoding(self, settings: Settings) -> None:
        problem = apply_record_encoding(settings)
        if problem:
            self._warn(problem)

    def _sealed(self) -> SealedLabels:
        indexed = self._backend
        assert isinstance(indexed, IndexedBackend) and isinstance(indexed.inner, HoldingBackend)
        assert isinstance(indexed.inner.inner, SealedLabels)
        return indexed.inner.inner

    async def close(self) -> None:
        if self._backend is not None and not self._given:
            await self._backend.close()
