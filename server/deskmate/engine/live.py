"""Live sessions: the sessions a daemon has open, watched for what other processes do to them.

A chat shows a session; another editor's daemon, or the terminal CLI, asks in it, renames it
or deletes it. The store reports the change (``memory/watching.py``) and ``on_change`` hears
it, so the editor can show it without a reload. What this process did itself is not reported
back to it: its asks run ``quiet`` (the chat already shows the turn it streamed), and once an
ask ends the watch takes the stored state as seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from ..memory import MemoryBackend
from ..memory.watching import SessionChange, SessionWatch
from .store import SessionStore

log = logging.getLogger(__name__)

MAX_FOLLOWED = 64  # the sessions a daemon watches at once: the most recently opened


class LiveSessions:
    """Follows the sessions this process opens; ``start`` reports their changes to ``on_change``."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._on_change: Callable[[SessionChange], None] | None = None
        self._watch: SessionWatch | None = None
        self._watched: MemoryBackend | None = None
        self._task: asyncio.Task[None] | None = None
        self._followed: OrderedDict[str, None] = OrderedDict()
        self._quiet: dict[str, int] = {}

    @property
    def mechanism(self) -> str | None:
        """How the store reports changes (None: not watching)."""
        return self._watch.mechanism if self._watch is not None else None

    def start(self, on_change: Callable[[SessionChange], None]) -> None:
        """Report changes of the sessions opened from now on (and before) to ``on_change``."""
        self._on_change = on_change

    async def open(self, session_id: str | None) -> None:
        """A client shows (or asks in) ``session_id``: follow it. Never fails the request: a store
        that cannot be watched now only means no live updates."""
        if session_id is None or self._on_change is None:
            return
        self._followed.pop(session_id, None)
        self._followed[session_id] = None
        try:
            watch = await self._current_watch()
            while len(self._followed) > MAX_FOLLOWED:
                oldest, _ = self._followed.popitem(last=False)
                watch.unfollow(oldest)
            await watch.follow(session_id)
        except Exception as exc:
            log.info("Cannot watch session %r for changes: %s", session_id, exc)

    @asynccontextmanager
    async def quiet(self, session_id: str | None) -> AsyncIterator[None]:
        """This process writes ``session_id`` in the block: its own changes are not reported."""
        if session_id is None:
            yield
            return
        self._quiet[session_id] = self._quiet.get(session_id, 0) + 1
        try:
            yield
        finally:
            try:
                # Our writes: seen. Not while the store is known to be away (its outbox holds
                # them): the read would only wait out the store's timeout (PostgreSQL's pool: 10 s).
                if self._watch is not None and getattr(self._watched, "unavailable", None) is None:
                    await asyncio.shield(self._watch.recheck(session_id))
            except Exception as exc:
                log.info("Could not read session %r after answering: %s", session_id, exc)
            finally:
                self._quiet[session_id] -= 1
                if not self._quiet[session_id]:
                    del self._quiet[session_id]

    async def _current_watch(self) -> SessionWatch:
        """The watch on the store in use, started (again, after the settings moved the store)."""
        backend = self.store.backend
        if self._watch is None or self._watched is not backend:
            await self._stop()
            self._watch, self._watched = backend.watch(), backend
            for session_id in self._followed:
                await self._watch.follow(session_id)
            self._task = asyncio.ensure_future(self._report(self._watch))
        return self._watch

    async def _report(self, watch: SessionWatch) -> None:
        try:
            async for change in watch.changes():
                if change.session_id in self._quiet or self._on_change is None:
                    continue
                try:
                    self._on_change(change)
                except Exception:
                    log.exception("Reporting a change of session %r failed", change.session_id)
        except Exception:
            log.exception("Watching sessions for changes stopped")

    async def _stop(self) -> None:
        watch, task = self._watch, self._task
        self._watch = self._task = self._watched = None
        if watch is not None:
            await watch.close()
        if task is not None:
            try:
                await asyncio.wait_for(task, 5.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                task.cancel()

    async def close(self) -> None:
        self._on_change = None
        await self._stop()
