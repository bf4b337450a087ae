"""The engine: answers questions in sessions and manages those sessions.

Shared by the LSP daemon and the terminal CLI; knows nothing of either. The
Assistant wires the parts, each with one job: the store (``store.py``), the
sessions of the open folders (``sessions.py``), the asks (``asking.py``), and
the settings in force.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..logs import register_secret, register_url_secrets
from ..memory import MemoryBackend, SessionInfo
from ..memory.urls import redact
from .asking import AskRunner, ModelClients
from .compaction import Compaction
from .forks import Edit, Forks
from .labels import Labels
from .live import LiveSessions
from .model_choice import WorkspaceModels, for_folder
from .model_client import ModelClient, ModelError
from .project_memory import ProjectMemories
from .search import Search
from .sessions import SessionRef, Sessions
from .settings import Settings
from .store import SessionStore
from .tokens import TokenCounter
from .trash import (
    Clock,
    DailyWarning,
    SweepReport,
    Trash,
    describe_expiring,
    describe_trashed,
    iso,
    purge_after,
    utc_now,
)

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
    retention_days: int | None = None
    trash_days: int = 30


@dataclass(frozen=True)
class Deletion:
    """What ``delete_session`` did: ``trashed`` (restorable until ``purge_after``) or deleted for good."""

    deleted: bool
    trashed: bool
    purge_after: str | None = None


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
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self.warn = warn or (lambda message: log.warning("%s", message))
        _register_secrets(settings)
        self.store = SessionStore(settings, backend=backend, warn=self.warn)
        self.sessions = Sessions(lambda: self._settings, self.store, self.warn)
        self.project_memory = ProjectMemories(self.sessions, lambda: self._settings)
        self.live = LiveSessions(self.store)  # started by the daemon: the CLI reports no changes
        models = ModelClients(model_factory)
        self.tokens = TokenCounter()
        self.compaction = Compaction(self.sessions, models.get, self.folder_settings, self.tokens)
        self.asks = AskRunner(
            self.sessions,
            models,
            self.folder_settings,
            project_settings=self.project_memory.settings_for,
            counter=self.tokens,
            compaction=self.compaction,
            live=self.live,
        )
        self.forks = Forks(self.sessions, self.live)
        self.labels = Labels(self.sessions)
        self.search = Search(self.sessions)
        self.trash = Trash(lambda session_id: self.asks.running_ask(session_id) is not None, clock)

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
        if (old.data_dir, old.storage_url) != (settings.data_dir, settings.storage_url):
            self.sessions.moved()

    async def fork_for_edit(
        self, ref: SessionRef, edit_message_id: str, question: str | None, context: dict[str, Any] | None
    ) -> Edit:
        """The fork an edited (``question`` given) or regenerated (None) question
        ``edit_message_id`` of ``ref`` is asked in: it holds what came before that question,
        and the source session is untouched. Ask ``edit.question`` in ``edit.ref``."""
        self.asks.models.get(self._settings).check_configured()  # no fork for a request never sent
        return await self.forks.edit(ref, edit_message_id, question, context)

    async def delete_session(self, session_id: str, *, permanent: bool = False) -> Deletion:
        """Move a session to the trash, or (``permanent``) delete it everywhere at once; an
        answer running in it is cancelled and not stored. Other windows hear of it; this
        one's client, which asked for it, is not told back."""
        async with self.live.quiet(session_id):
            return await self._delete_session(session_id, permanent)

    async def _delete_session(self, session_id: str, permanent: bool) -> Deletion:
        await self.asks.stop(session_id)
        if permanent:
            return Deletion(await self.sessions.delete(session_id), trashed=False)
        info = await self.sessions.move_to_trash(session_id, self.trash.clock())
        if info is None:
            return Deletion(False, trashed=False)
        due = purge_after(info, self._settings.trash_days)
        return Deletion(True, trashed=True, purge_after=iso(due) if due else None)

    async def restore_session(self, session_id: str) -> SessionInfo:
        """Take a session out of the trash with all it held."""
        return await self.sessions.restore(session_id, self.trash.clock())

    def purge_after(self, info: SessionInfo) -> str | None:
        due = purge_after(info, self._settings.trash_days)
        return iso(due) if due else None

    async def sweep(self, *, dry_run: bool = False) -> SweepReport:
        """Apply retention and empty the trash of what is due (``dry_run``: only say what)."""
        settings = self._settings
        report = await self.trash.sweep(
            self.store.backend,
            retention_days=settings.retention_days,
            trash_days=settings.trash_days,
            dry_run=dry_run,
        )
        if not dry_run:
            overlay = self.store.overlay
            for info in report.trashed:
                if overlay is not None:
                    overlay.follow(info)
                await asyncio.to_thread(self.sessions.leave, info.id)
            for info in report.purged:
                await asyncio.to_thread(self.sessions.forget, info.id)
        return report

    async def sweep_and_tell(self) -> SweepReport:
        """A sweep, as the daemon runs it: the user hears what retention moved to the trash,
        and (once a day) what it is about to."""
        report = await self.sweep()
        settings = self._settings
        if report.trashed and settings.retention_days is not None:
            self.warn(describe_trashed(report.trashed, settings.retention_days, settings.trash_days))
        now = self.trash.clock()
        warning = DailyWarning(self.store.data_dir / "retention-warned.json")
        if report.expiring and settings.retention_days is not None and warning.due(now):
            self.warn(describe_expiring(report.expiring, settings.retention_days, settings.trash_days, now))
            await asyncio.to_thread(warning.shown, now)
        return report

    async def expiring_soon(self) -> list[tuple[SessionInfo, datetime]]:
        """Sessions retention moves to the trash within 7 days (none unless retentionDays is set)."""
        if self._settings.retention_days is None:
            return []
        infos = await self.store.backend.list()
        return self.trash.expiring(infos, self._settings.retention_days)

    async def close(self) -> None:
        await self.forks.close()
        await self.live.close()
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

    def folder_settings(self, workspace_uri: str | None) -> Settings:
        """The settings of asks in the folder: with the model chosen for it, if one was."""
        return for_folder(self._settings, self.store.data_dir, workspace_uri)

    def model_for(self, workspace_uri: str | None) -> str:
        """The model asks in the folder use: the folder's chosen one, else the model setting."""
        return self.folder_settings(workspace_uri).model

    async def list_models(self, workspace_uri: str | None) -> tuple[list[str], str]:
        """The models the server lists, and the one the folder uses."""
        served = await self.asks.models.get(self._settings).list_models()
        return served, self.model_for(workspace_uri)

    async def set_model(self, workspace_uri: str, model: str | None) -> str:
        """Use ``model`` for the folder's asks from now on (None: the model setting again);
        returns the model the folder now uses."""
        await asyncio.to_thread(WorkspaceModels(self.store.data_dir).set, workspace_uri, model)
        return self.model_for(workspace_uri)

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
            retention_days=settings.retention_days,
            trash_days=settings.trash_days,
        )


def _current_key_id() -> str | None:
    from ..memory import keys

    try:
        return keys.keys().current_id
    except keys.KeysUnavailable:
        return None
