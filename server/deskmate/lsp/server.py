"""The deskmate language server: lifecycle, settings, workspace folders.

``create_server`` builds and wires one; commands live in ``commands.py``, the work in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from .. import __version__
from ..engine import Assistant, ModelClient, Settings, SettingsError, settings_from_environment
from ..engine.model_client import preload as preload_model_client
from ..engine.trash import FileClock, clock_from_environment
from ..logs import SecretMasker
from ..memory import MemoryBackend
from .errors import quiet_expected_errors

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 3600.0  # seconds between sweeps of retention and the trash
PRELOAD_AFTER = 3.0  # seconds after start the model SDK is imported, unless a question needs it first


class DeskmateProtocol(LanguageServerProtocol):
    """Adds what pygls leaves out: ``$/cancelRequest`` reaching a running ask."""

    def _handle_cancel_notification(self, msg_id):
        super()._handle_cancel_notification(msg_id)
        server: DeskmateServer = self._server  # type: ignore[assignment]
        ask_id = server.asks_by_request.get(msg_id)
        if ask_id is not None:
            server.assistant.asks.cancel(ask_id)


class ClientLogHandler(logging.Handler):
    """Forwards warnings and errors to the client's log (``window/logMessage``)."""

    LEVELS = {logging.ERROR: types.MessageType.Error, logging.WARNING: types.MessageType.Warning}

    def __init__(self, server: DeskmateServer, *, tracebacks: bool = False) -> None:
        super().__init__(logging.WARNING)
        self.server = server
        self._sending = threading.local()  # per thread: is this thread forwarding a record now
        self.addFilter(SecretMasker(tracebacks))

    def emit(self, record: logging.LogRecord) -> None:
        if not self.server.initialized or self.server.stopping or getattr(self._sending, "active", False):
            return
        # Once the client is gone, sending fails and pygls logs that failure: forwarding that
        # record would fail and log again, without end (a daemon spinning after exit).
        self._sending.active = True
        try:
            kind = self.LEVELS.get(record.levelno, types.MessageType.Warning)
            self.server.window_log_message(types.LogMessageParams(type=kind, message=self.format(record)))
        except Exception:  # never let logging break the server
            pass
        finally:
            self._sending.active = False


class DeskmateServer(LanguageServer):
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: MemoryBackend | None = None,
        model_factory: Callable[[Settings], ModelClient] = ModelClient,
    ) -> None:
        super().__init__(
            "deskmate",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=DeskmateProtocol,
        )
        self.assistant = Assistant(
            settings or settings_from_environment(),
            backend=backend,
            warn=self.warn_user,
            model_factory=model_factory,
            clock=clock_from_environment(),  # the real time unless DESKMATE_TEST_CLOCK_FILE (tests)
        )
        self.asks_by_request: dict[Any, str] = {}
        self.initialized = False
        self.stopping = False  # shutdown received: nothing more is sent unasked
        self._preloading: asyncio.Future[None] | None = None
        # New settings being applied (the store may be reopening): commands wait for them, so a
        # command sent after a settings change sees the new settings, as the editor expects.
        self._settling: asyncio.Future[None] | None = None
        self._sweep_now = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    # -- talking to the user ---------------------------------------------------

    def warn_user(self, message: str) -> None:
        log.warning("%s", message)
        if self.stopping:
            return
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    def inform_user(self, message: str) -> None:
        """A notification (never a modal) the editor shows: window/showMessage, type Info."""
        log.info("%s", message)
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=message))

    # -- retention and the trash ----------------------------------------------------

    def start_sweeping(self) -> None:
        """Sweep the store now and every SWEEP_INTERVAL: retention, warnings, purging the trash;
        and, with a FileClock (tests), soon after its file moves the time."""
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_loop())

    def sweep_soon(self) -> None:
        self._sweep_now.set()

    def preload_soon(self) -> None:
        """Import the model SDK off the event loop a moment after start, so the first question
        does not wait for it; a daemon stopped sooner (a window closed at once, a health check)
        never pays its half second of CPU, nor waits for it to exit."""

        async def preload() -> None:
            await asyncio.sleep(PRELOAD_AFTER)
            if not self.stopping:
                await asyncio.to_thread(preload_model_client)

        self._preloading = asyncio.ensure_future(preload())

    def cancel_preload(self) -> None:
        """Not begun yet: not begun at all (an import under way goes on)."""
        if self._preloading is not None:
            self._preloading.cancel()

    async def stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def _sweep_loop(self) -> None:
        clock = self.assistant.trash.clock
        while True:
            self._sweep_now.clear()
            time_read = clock.reading() if isinstance(clock, FileClock) else None
            try:
                await self.assistant.sweep_and_tell()
            except Exception as exc:  # an unreachable store or a bad URL: try again next time
                log.info("Sweeping the trash and retention failed: %s", exc)
            waits = [asyncio.ensure_future(self._sweep_now.wait())]
            if isinstance(clock, FileClock):
                waits.append(asyncio.ensure_future(clock.moved(time_read)))
            try:
                await asyncio.wait(waits, timeout=SWEEP_INTERVAL, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    def supports_work_done_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    # -- settings -------------------------------------------------------------------

    async def settled(self) -> None:
        """Return once every settings change received so far is applied."""
        while self._settling is not None:
            await asyncio.shield(self._settling)

    async def apply_settings(self, raw: Any) -> None:
        """Merge editor settings; a bad value is reported and the old one kept. Changes apply in
        the order they came, and commands wait for them (``settled``)."""
        if raw is None or raw == []:  # Lua clients encode an empty table as []
            return
        previous = self._settling
        applying: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settling = applying
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await self._apply_settings(raw)
        finally:
            applying.set_result(None)
            if self._settling is applying:
                self._settling = None

    async def _apply_settings(self, raw: Any) -> None:
        try:
            updated, problems = self.assistant.settings.merged(raw)
        except SettingsError as exc:
            self.warn_user(f"deskmate: {exc}; keeping the current settings.")
            return
        for problem in problems:
            self.warn_user(f"deskmate: {problem}; keeping the previous value.")
        old = self.assistant.settings
        await self.assistant.update_settings(updated)
        if (old.retention_days, old.trash_days, old.storage_url, old.data_dir) != (
            updated.retention_days,
            updated.trash_days,
            updated.storage_url,
            updated.data_dir,
        ):
            self.sweep_soon()

    async def pull_settings(self) -> None:
        """Ask the client for the ``deskmate`` section (clients that send ``settings: null``)."""
        workspace = self.client_capabilities.workspace
        if not (workspace and workspace.configuration):
            return
        try:
            result = await self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="deskmate")])
            )
        except Exception as exc:
            log.info("workspace/configuration failed: %s", exc)
            return
        if result and isinstance(result[0], dict):
            await self.apply_settings(result[0])


def workspace_folder_uris(params: types.InitializeParams) -> list[str]:
    if params.workspace_folders:
        return [folder.uri for folder in params.workspace_folders]
    if params.root_uri:
        return [params.root_uri]
    return []


async def on_initialize(ls: DeskmateServer, params: types.InitializeParams) -> None:
    """Take the editor's settings and workspace folders."""
    ls.assistant.sessions.workspaces.set_folders(workspace_folder_uris(params))
    await ls.apply_settings(params.initialization_options)


async def on_initialized(ls: DeskmateServer, params: types.InitializedParams) -> None:
    ls.initialized = True
    from .progress import IndexingReporter

    ls.assistant.store.index_progress = IndexingReporter(ls)
    ls.start_sweeping()
    # Each folder's project (git runs) found now, not in the first command's time.
    asyncio.ensure_future(ls.assistant.sessions.ready())
    from .live import start_live_sessions

    start_live_sessions(ls)
    ls.preload_soon()


async def on_configuration(ls: DeskmateServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings: pushed in the notification, or pulled when the client sends none."""
    if params.settings:
        await ls.apply_settings(params.settings)
    else:
        await ls.pull_settings()


def on_folders(ls: DeskmateServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    for folder in params.event.removed:
        ls.assistant.sessions.workspaces.remove_folder(folder.uri)
    for folder in params.event.added:
        ls.assistant.sessions.workspaces.add_folder(folder.uri)


async def on_shutdown(ls: DeskmateServer, params: None) -> None:
    ls.stopping = True
    ls.cancel_preload()
    await ls.stop_sweeping()
    await ls.assistant.close()


def create_server(
    settings: Settings | None = None,
    *,
    backend: MemoryBackend | None = None,
    model_factory: Callable[[Settings], ModelClient] = ModelClient,
) -> DeskmateServer:
    """A deskmate language server with its engine, features and commands wired, not yet started.

    ``settings`` default to the environment's; ``backend`` and ``model_factory`` replace
    the store and the model client (in-process tests inject them).
    """
    from . import models  # noqa: F401  (declares the model picker's commands)
    from .commands import register_commands  # commands need DeskmateServer: imported late

    quiet_expected_errors()
    server = DeskmateServer(settings, backend=backend, model_factory=model_factory)
    server.feature(types.INITIALIZE)(on_initialize)
    server.feature(types.INITIALIZED)(on_initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_configuration)
    server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(on_folders)
    server.feature(types.SHUTDOWN)(on_shutdown)
    register_commands(server)
    return server
