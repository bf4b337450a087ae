"""The engine: answers questions in sessions and manages those sessions.

Shared by the LSP daemon and the terminal CLI; knows nothing of either. The
Assistant wires the parts, each with one job: the store (``store.py``), the
sessions of the open folders (``sessions.py``), the asks (``asking.py``), and
the settings in force.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..logs import register_secret, register_url_secrets
from ..memory import MemoryBackend
from ..memory.urls import redact
from .asking import AskRunner, ModelClients
from .forks import Edit, Forks
from .labels import Labels
from .model_client import ModelClient, ModelError
from .search import Search
from .sessions import SessionRef, Sessions
from .settings import Settings
from .store import SessionStore

log = logging.getLogger(__name__)


def _register_secrets(settings: Settings) -> None:
    """Keep the settings' secrets out of every log line from now on."""
    register_secret(settings.api_key)
    register_secret(settings.resolved_api_key())
    register_url_secrets(settings.storage_url)


@dataclass(frozen=True)
class EngineStatus:
    version: str
    model: str
    base_url: str | None
    api_key_configured: bool
    data_dir: Path
    data_dir_writable: bool
    storage: str | None  # the storageUrl, secrets masked; None: files in data_dir
    storage_unavailable: str | None
    unsaved_messages: int
    auto_save: bool
    encryption: str = "off"
    encryption_key_id: str | None = None  # the key that seals new records; None: off, or no key
    compression: str = "off"


class Assistant:
    """Answers questions and keeps each conversation in its session.

    ``sessions`` resolves, lists and changes sessions; ``asks`` runs and cancels
    asks. ``warn`` receives user-facing warnings (e.g. a damaged history moved
    aside). ``backend`` replaces the store the settings name; ``model_factory``
    builds the model client from the settings (tests inject a fake model here).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: MemoryBackend | None = None,
        warn: Callable[[str], None] | None = None,
        model_factory: Callable[[Settings], ModelClient] = ModelClient,
    ) -> None:
        self._settings = settings
        self.warn = warn or (lambda message: log.warning("%s", message))
        _register_secrets(settings)
        self.store = SessionStore(settings, backend=backend, warn=self.warn)
        self.sessions = Sessions(lambda: self._settings, self.store, self.warn)
        self.asks = AskRunner(self.sessions, ModelClients(model_factory), lambda: self._settings)
        self.forks = Forks(self.sessions)
        self.labels = Labels(self.sessions)
        self.search = Search(self.sessions)

    @property
    def settings(self) -> Settings:
        return self._settings

    async def update_settings(self, settings: Settings) -> None:
        """Apply new settings: a new model client, store or data dir where they changed;
        sessions held in memory are saved when autoSave is turned on."""
        old = self._settings
        _register_secrets(settings)
        if old.model_changed(settings):
            self.asks.models.retire(self.asks.running())  # answers streaming now finish on the old one
        self._settings = settings
        await self.store.reconfigure(settings)
        self.sessions.moved()

    async def fork_for_edit(
        self, ref: SessionRef, edit_message_id: str, question: str | None, context: dict[str, Any] | None
    ) -> Edit:
        """The fork an edited (``question`` given) or regenerated (None) question
        ``edit_message_id`` of ``ref`` is asked in: it holds what came before that question,
        and the source session is untouched. Ask ``edit.question`` in ``edit.ref``."""
        self.asks.models.get(self._settings).check_configured()  # no fork for a request never sent
        return await self.forks.edit(ref, edit_message_id, question, context)

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session everywhere; an answer running in it is cancelled and not stored."""
        await self.asks.stop(session_id)
        return await self.sessions.delete(session_id)

    async def close(self) -> None:
        await self.asks.close()
        await self.asks.models.close()
        await self.store.close()

    async def check_model(self) -> tuple[bool, str]:
        """Whether the configured model server answers, quickly (a health check), and what
        was found or failed; the same sentence as an ask would give when it is not configured."""
        try:
            return await self.asks.models.get(self._settings).check_server()
        except ModelError as exc:
            return False, str(exc)

    def status(self) -> EngineStatus:
        """Facts for health checks; URLs come with their secrets masked."""
        settings = self._settings
        data_dir = self.store.data_dir
        probe = data_dir
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        opened = self.store.opened
        down = getattr(opened, "unavailable", None)  # why a shared store cannot be reached now
        return EngineStatus(
            version=__version__,
            model=settings.model,
            base_url=redact(settings.base_url) if settings.base_url else None,
            api_key_configured=settings.resolved_api_key() is not None,
            data_dir=data_dir,
            data_dir_writable=os.access(probe, os.W_OK),
            storage=redact(settings.storage_url) if settings.storage_url else None,
            storage_unavailable=str(down) if down else None,
            unsaved_messages=getattr(opened, "held_messages", 0),
            auto_save=settings.auto_save,
            encryption=settings.encryption,
            encryption_key_id=_current_key_id() if settings.encryption == "on" else None,
            compression=settings.compression,
        )


def _current_key_id() -> str | None:
    from ..memory import keys

    try:
        return keys.keys().current_id
    except keys.KeysUnavailable:
        return None
