"""The engine: answers questions in sessions and manages those sessions.

Shared by the LSP daemon and the terminal CLI; knows nothing of either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..logs import register_secret, register_url_secrets
from ..memory import (
    MemoryBackend,
    Message,
    Session,
    SessionIdRequired,
    SessionInfo,
    SessionNotFound,
    default_data_dir,
    validate_session_id,
)
from ..memory.holding import HoldingBackend
from ..memory.limits import clip_title
from ..memory.urls import open_store, redact
from .export import session_to_markdown
from .model_client import ModelClient, ModelError, Usage
from .prompt import build_messages
from .settings import Settings
from .workspaces import GLOBAL_SESSION_ID, Workspaces, folder_key, fresh_session_id

log = logging.getLogger(__name__)

TITLE_LENGTH = 60


class EngineError(Exception):
    """A request the engine refuses; the message is meant for the user."""


class SessionBusy(EngineError):
    pass


@dataclass
class SessionRef:
    """Which session a request is about. ``id`` None: the unsaved in-memory conversation."""

    id: str | None
    folder: str | None = None


@dataclass
class AskResult:
    session_id: str | None
    ask_id: str
    answer: str
    usage: Usage | None
    interrupted: bool


@dataclass
class _RunningAsk:
    ask_id: str
    session_id: str | None
    cancelled: bool = False
    discarded: bool = False  # its session is being deleted: store nothing more
    task: asyncio.Task[Any] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


@dataclass
class SessionView:
    session: Session
    active: bool
    persisted: bool


async def _close_after(model: ModelClient, running: list[Any]) -> None:
    await asyncio.gather(*running)
    await model.close()


def _register_secrets(settings: Settings) -> None:
    """Keep the settings' secrets out of every log line from now on."""
    register_secret(settings.api_key)
    register_secret(settings.resolved_api_key())
    register_url_secrets(settings.storage_url)


def title_from(question: str) -> str:
    first_line = question.strip().splitlines()[0] if question.strip() else ""
    return first_line if len(first_line) <= TITLE_LENGTH else first_line[: TITLE_LENGTH - 1] + "…"


@dataclass
class _State:
    settings: Settings
    data_dir: Path
    backend: MemoryBackend | None  # opened on first use, so a bad storage URL fails a request, not start-up
    workspaces: Workspaces
    model: ModelClient | None = None
    # In-memory histories: every session while autoSave is off, and the unsaved one (key None).
    memory: dict[str | None, Session] = field(default_factory=dict)


class Assistant:
    """Answers questions and keeps each conversation in its session.

    ``warn`` receives user-facing warnings (e.g. a damaged history moved aside).
    ``backend`` replaces the store the settings name; ``model_factory`` builds the
    model client from the settings (tests inject a fake model here).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: MemoryBackend | None = None,
        warn: Callable[[str], None] | None = None,
        model_factory: Callable[[Settings], ModelClient] = ModelClient,
    ) -> None:
        data_dir = Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()
        self._custom_backend = backend is not None
        self._state = _State(
            settings=settings,
            data_dir=data_dir,
            backend=backend,
            workspaces=Workspaces(data_dir),
        )
        self.warn = warn or (lambda message: log.warning("%s", message))
        self._model_factory = model_factory
        self._retiring: set[asyncio.Future[None]] = set()  # old model clients closing once idle
        _register_secrets(settings)
        self._busy: dict[str | None, _RunningAsk] = {}
        self._asks: dict[str, _RunningAsk] = {}

    # -- configuration --------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._state.settings

    @property
    def backend(self) -> MemoryBackend:
        """The session store the settings name; raises StorageError if it cannot be opened."""
        state = self._state
        if state.backend is None:
            store = open_store(state.settings.storage_url, state.data_dir, notify=self.warn)
            state.backend = HoldingBackend(store, notify=self.warn)
        return state.backend

    @property
    def workspaces(self) -> Workspaces:
        return self._state.workspaces

    @property
    def data_dir(self) -> Path:
        return self._state.data_dir

    async def update_settings(self, settings: Settings) -> None:
        """Apply new settings; unsaved in-memory histories are saved when autoSave is turned on."""
        state, old = self._state, self._state.settings
        _register_secrets(settings)
        if old.model_changed(settings) and state.model:
            # New asks get a new client; answers streaming now finish on the old one.
            retired, state.model = state.model, None
            running = [ask.finished.wait() for ask in self._asks.values()]
            self._retiring.add(asyncio.ensure_future(_close_after(retired, running)))
        moved = settings.data_dir != old.data_dir or settings.storage_url != old.storage_url
        if moved and not self._custom_backend:
            if settings.data_dir != old.data_dir:
                state.data_dir = (
                    Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()
                )
                folders = state.workspaces.folders
                state.workspaces = Workspaces(state.data_dir)
                state.workspaces.set_folders(folders)
            if state.backend is not None:
                await state.backend.close()
            state.backend = None
        state.settings = settings
        if settings.auto_save and not old.auto_save:
            for key, session in list(state.memory.items()):
                if key is not None:
                    await self.backend.save(session)
                    del state.memory[key]

    def _model(self) -> ModelClient:
        if self._state.model is None:
            self._state.model = self._model_factory(self.settings)
        # Per-request settings (temperature, maxTokens) apply at once; the connection is
        # rebuilt only when a connection setting changes (Settings.model_changed).
        self._state.model.settings = self.settings
        return self._state.model

    async def close(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._state.model is not None:
            await self._state.model.close()
        if self._state.backend is not None and not self._custom_backend:
            await self._state.backend.close()

    # -- resolving sessions ---------------------------------------------------

    def resolve(
        self, session_id: str | None = None, workspace_uri: str | None = None, context_uri: str | None = None
    ) -> SessionRef:
        """Pick the session a request means (see docs/protocol.md, "Sessions")."""
        workspaces = self.workspaces
        folder = None
        if workspace_uri:
            folder = workspaces.folder_of(workspace_uri) or folder_key(workspace_uri)
        elif context_uri:
            folder = workspaces.folder_of(context_uri)
            if folder is None and not session_id:
                return SessionRef(GLOBAL_SESSION_ID)
        elif workspaces.folders:
            folder = workspaces.folders[0]
        if session_id:
            return SessionRef(validate_session_id(session_id), folder)
        if folder is None:
            return SessionRef(None)
        return SessionRef(self.settings.session_id or workspaces.active_session(folder), folder)

    def _active_ids(self) -> set[str]:
        if self.settings.session_id:
            return {self.settings.session_id}
        return {self.workspaces.active_session(folder) for folder in self.workspaces.folders}

    async def _stored(self, session_id: str) -> Session | None:
        session = await self.backend.load(session_id)
        if session is not None and session.quarantined_to:
            self.warn(
                f'deskmate: the history of session "{session_id}" was damaged; it was moved to '
                f"{session.quarantined_to} and a new history starts."
            )
        return session

    async def _session(self, ref: SessionRef) -> tuple[Session, bool]:
        """The session's current history and whether it is stored (not only in memory)."""
        memory = self._state.memory
        if ref.id in memory:
            return memory[ref.id], False
        if ref.id is None:
            return memory.setdefault(None, Session(id="")), False
        session = await self._stored(ref.id)
        persisted = session is not None and not session.quarantined_to
        if session is None:
            session = Session(id=ref.id, workspace_uri=ref.folder)
        if not self.settings.auto_save:
            memory[ref.id] = session  # auto-load once; from now on the memory copy is the truth
        return session, persisted

    # -- asking -----------------------------------------------------------------

    async def ask(
        self,
        question: str,
        *,
        ref: SessionRef,
        context: dict[str, Any] | None = None,
        ask_id: str | None = None,
        on_delta: Callable[[str], None] = lambda delta: None,
    ) -> AskResult:
        """Answer ``question`` in the session ``ref``, streaming pieces to ``on_delta``.

        The question is stored as soon as it is asked (without delaying the
        stream) and the answer once it ends; both are stored before this returns.
        A cancelled answer returns ``interrupted=True``; a failed one is stored as
        interrupted and raises ModelError.
        """
        ask_id = ask_id or uuid.uuid4().hex
        if ref.id in self._busy:
            raise SessionBusy(
                f'Session "{ref.id or "(unsaved)"}" is still answering another question '
                f"(askId {self._busy[ref.id].ask_id}). Wait for it or cancel it."
            )
        if ask_id in self._asks:
            raise EngineError(f"An ask with askId {ask_id!r} is already running.")
        running = _RunningAsk(ask_id, ref.id)
        self._busy[ref.id] = running
        self._asks[ask_id] = running
        try:
            return await self._ask(question, ref, context, running, on_delta)
        finally:
            del self._busy[ref.id]
            del self._asks[ask_id]
            running.finished.set()

    async def _ask(
        self,
        question_text: str,
        ref: SessionRef,
        context: dict[str, Any] | None,
        running: _RunningAsk,
        on_delta: Callable[[str], None],
    ) -> AskResult:
        settings = self.settings
        model = self._model()
        model.check_configured()  # before anything is stored: nothing to keep from a request never sent
        session, _ = await self._session(ref)
        question = Message(role="user", content=question_text, context=context or None)
        prompt = build_messages(
            settings.system_prompt, session.messages, question, settings.max_history_tokens
        )
        title = session.title or title_from(question_text)
        in_memory = ref.id is None or ref.id in self._state.memory
        if in_memory:
            session.messages.append(question)
            session.title = title
            stored_question = None
        else:
            stored_question = asyncio.ensure_future(
                self.backend.append(ref.id, [question], title=title, workspace_uri=ref.folder)
            )

        pieces: list[str] = []
        usage: Usage | None = None
        failure: ModelError | None = None
        outer_cancel: asyncio.CancelledError | None = None
        running.task = asyncio.ensure_future(self._pump(model, prompt, pieces, on_delta))
        if running.cancelled:
            running.task.cancel()
        try:
            usage = await running.task
        except asyncio.CancelledError as exc:
            if not running.cancelled:
                outer_cancel = exc  # the ask itself was cancelled: store what we have, then stop
        except ModelError as exc:
            failure = exc
        interrupted = running.cancelled or failure is not None or outer_cancel is not None
        answer = Message(
            role="assistant",
            content="".join(pieces),
            model=settings.model,
            usage=usage.to_dict() if usage else None,
            status="interrupted" if interrupted else "complete",
        )
        if running.discarded:
            # The session is being deleted: the question must be stored (or have failed) before
            # the delete runs, and the answer must not bring the session back.
            if stored_question is not None:
                await asyncio.gather(asyncio.shield(stored_question), return_exceptions=True)
        elif in_memory:
            session.messages.append(answer)
        else:
            assert stored_question is not None and ref.id is not None
            # Shielded: a cancelled ask must still finish storing what the user saw.
            await asyncio.shield(stored_question)
            await asyncio.shield(self.backend.append(ref.id, [answer]))
        if outer_cancel is not None:
            raise outer_cancel
        if failure is not None:
            raise failure
        return AskResult(ref.id, running.ask_id, answer.content, usage, interrupted)

    @staticmethod
    async def _pump(
        model: ModelClient, prompt: list[dict[str, str]], pieces: list[str], on_delta: Callable[[str], None]
    ) -> Usage | None:
        usage = None
        async for item in model.stream(prompt):
            if isinstance(item, str):
                pieces.append(item)
                on_delta(item)
            else:
                usage = item
        return usage

    def cancel(self, ask_id: str) -> bool:
        """Stop a running ask; its partial answer is kept. False if no such ask runs."""
        running = self._asks.get(ask_id)
        if running is None:
            return False
        running.cancel()
        return True

    def running_ask(self, session_id: str | None) -> str | None:
        running = self._busy.get(session_id)
        return running.ask_id if running else None

    # -- sessions -----------------------------------------------------------------

    async def list_sessions(
        self, workspace_uri: str | None = None, all: bool = False
    ) -> list[tuple[SessionInfo, bool]]:
        """Sessions with an ``active`` flag, most recent first; by default only this workspace's."""
        infos = {info.id: info for info in await self.backend.list()}
        for key, session in self._state.memory.items():
            if key is not None:
                infos[key] = session.info()
        active = self._active_ids()
        if workspace_uri:
            ref = self.resolve(workspace_uri=workspace_uri)
            folders = {ref.folder} if ref.folder else set()
            if ref.id:
                active = {ref.id}
        else:
            folders = set(self.workspaces.folders)
        for folder in folders:  # a folder's active session is listed even before its first question
            session_id = self.settings.session_id or self.workspaces.active_session(folder)
            infos.setdefault(session_id, SessionInfo(id=session_id, workspace_uri=folder))
        chosen = [
            info
            for info in infos.values()
            if all or info.id in active or (info.workspace_uri and folder_key(info.workspace_uri) in folders)
        ]
        chosen.sort(key=lambda info: info.updated_at, reverse=True)
        for info in chosen:  # whatever a store holds, a listing stays small
            info.title = clip_title(info.title)
        return [(info, info.id in active) for info in chosen]

    async def get_session(self, ref: SessionRef) -> SessionView:
        session, persisted = await self._session(ref)
        return SessionView(session, ref.id is not None and ref.id in self._active_ids(), persisted)

    def _check_folder_may_change_session(self, ref: SessionRef, action: str) -> None:
        if ref.folder is None:
            raise EngineError(f"There is no workspace folder to {action} in; open a folder first.")
        if self.settings.session_id:
            raise EngineError(
                f'The deskmate.sessionId setting pins every folder to session "{self.settings.session_id}"; '
                f"clear it to {action}."
            )

    async def new_session(self, workspace_uri: str | None = None, title: str = "") -> Session:
        """Start an empty session and make it the folder's active one."""
        ref = self.resolve(workspace_uri=workspace_uri)
        self._check_folder_may_change_session(ref, "start a new session")
        session = Session(id=fresh_session_id(ref.folder), title=title, workspace_uri=ref.folder)
        if self.settings.auto_save:
            await self.backend.save(session)
        else:
            self._state.memory[session.id] = session
        await asyncio.to_thread(self.workspaces.set_active, ref.folder, session.id)
        return session

    async def switch_session(self, session_id: str, workspace_uri: str | None = None) -> Session:
        """Make an existing session the folder's active one."""
        ref = self.resolve(session_id=session_id, workspace_uri=workspace_uri)
        self._check_folder_may_change_session(ref, "switch sessions")
        session = self._state.memory.get(session_id) or await self._stored(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        await asyncio.to_thread(self.workspaces.set_active, ref.folder, session_id)
        return session

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session everywhere; folders using it go back to their default session."""
        validate_session_id(session_id, "deleteSession")
        running = self._busy.get(session_id)
        if running is not None:  # stop it, and let it finish storing nothing before deleting
            running.discarded = True
            running.cancel()
            await running.finished.wait()
        in_memory = self._state.memory.pop(session_id, None) is not None
        stored = await self.backend.delete(session_id)
        await asyncio.to_thread(self.workspaces.forget_session, session_id)
        return stored or in_memory

    async def save_session(self, ref: SessionRef) -> Session:
        """Write the session's in-memory history over the stored one."""
        if ref.id is None:
            raise SessionIdRequired(
                "saving a session (no workspace folder is open and no sessionId was given)"
            )
        session, _ = await self._session(ref)
        await self.backend.save(session)
        return session

    async def load_session(self, ref: SessionRef) -> Session:
        """Replace the in-memory history with the stored one."""
        if ref.id is None:
            raise SessionIdRequired(
                "loading a session (no workspace folder is open and no sessionId was given)"
            )
        session = await self._stored(ref.id)
        if session is None:
            raise SessionNotFound(ref.id)
        if not self.settings.auto_save:
            self._state.memory[ref.id] = session
        return session

    async def export_session(self, ref: SessionRef) -> tuple[Session, str]:
        session, _ = await self._session(ref)
        return session, session_to_markdown(session)

    def _storage_problem(self) -> str | None:
        """Why the shared store cannot be reached right now, if it cannot."""
        down = getattr(self._state.backend, "unavailable", None)
        return str(down) if down else None

    def status(self) -> dict[str, Any]:
        settings = self.settings
        data_dir = self.data_dir
        probe = data_dir
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return {
            "version": __version__,
            "model": settings.model,
            "baseUrl": redact(settings.base_url) if settings.base_url else None,
            "apiKeyConfigured": settings.resolved_api_key() is not None,
            "dataDir": str(data_dir),
            "dataDirWritable": os.access(probe, os.W_OK),
            "storage": redact(settings.storage_url) if settings.storage_url else f"file://{data_dir}",
            "storageUnavailable": self._storage_problem(),
            "unsavedMessages": getattr(self._state.backend, "held_messages", 0),
            "autoSave": settings.auto_save,
        }


__all__ = [
    "AskResult",
    "Assistant",
    "EngineError",
    "ModelError",
    "SessionBusy",
    "SessionRef",
    "SessionView",
]
