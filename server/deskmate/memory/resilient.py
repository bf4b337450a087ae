"""ResilientBackend: a shared backend that may go away for a while without costing a turn.

While the wrapped backend is unreachable (it raises ``BackendUnavailable``):

- ``append`` queues the messages in a local ``Outbox`` (fsynced) and returns, so
  the answer goes on; a background task retries with backoff and stores the
  queue, oldest first, once the backend answers again. A daemon killed
  meanwhile loses nothing: the next one to start with that backend replays it.
- ``load`` serves the last copy it read, plus what waits in the outbox.
- ``list`` serves the last listing it read, updated with what it saw since. While the
  backend answers, ``list`` is the backend's own (plus what waits in the outbox), so a
  daemon sees what the others wrote.
- ``delete``, and an ``update`` given as a ``MetaPatch`` (moving a session to the trash),
  of a session this daemon knows are queued in the outbox like appends and replayed in
  order; the copies kept for the outage show them at once.
- ``save`` and other updates raise: the user asked for them and must know they failed.

``notify`` hears once when the backend goes away and once when it is back.
Replays skip messages already stored (by message id), so replaying twice after
a crash stores nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .backend import MemoryBackend, MetaChange
from .errors import BackendUnavailable, StorageError
from .ids import validate_session_id
from .locking import LockTimeout, exclusive_lock
from .models import Message, Session, SessionInfo
from .outbox import Outbox, PendingAppend, pending_for
from .patches import MetaPatch
from .watching import SessionWatch

log = logging.getLogger(__name__)

CACHED_SESSIONS = 32


class ResilientBackend:
    """Wraps ``inner``; appends it cannot take wait in ``<outbox_dir>/<hash of name>.jsonl``.

    ``name`` identifies the backend without secrets (a redacted URL): it names
    the outbox file, so every daemon using that backend shares one queue.
    """

    def __init__(
        self,
        inner: MemoryBackend,
        outbox_dir: Path,
        *,
        name: str,
        notify: Callable[[str], None] | None = None,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
    ) -> None:
        self.inner = inner
        self.name = name
        self.notify = notify or (lambda message: log.warning("%s", message))
        self.outbox = Outbox(outbox_dir, name, warn=lambda message: self.notify(message))
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # last copies read, for outages
        self._listing: dict[str, SessionInfo] | None = None
        self._memories: dict[str, list[Message]] = {}  # each project's last read, for outages
        self._down: BackendUnavailable | None = None
        self._waiting = False  # the outbox may hold entries
        self._started = False
        self._retry_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._probe_id: str | None = None  # a session to load to see whether the backend is back
        self._flush_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ResilientBackend({self.inner!r})"

    @property
    def unavailable(self) -> BackendUnavailable | None:
        """The error that took the backend away, or None while it answers."""
        return self._down

    # -- MemoryBackend ----------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        validate_session_id(session_id, "load")  # before it can become the probe
        await self._start()
        self._probe_id = session_id
        try:
            session = await self._unless_down(self.inner.load(session_id))
        except BackendUnavailable as exc:
            self._went_down(exc)
            session = _copy(self._sessions.get(session_id))
        else:
            # A session not stored yet is remembered as empty, so its turns can be served in an outage.
            self._remember(session_id, session or Session(id=session_id))
            session = _copy(session)
            self._poke()
        if self._waiting:
            waiting = pending_for(await asyncio.to_thread(self.outbox.read), session_id)
            session = _with_messages(session, session_id, waiting)
        return session

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        validate_session_id(session_id, "append")  # never queue what the store would refuse
        await self._start()
        if not messages:
            return
        self._probe_id = session_id
        if not self._waiting and self._down is None:  # nothing queued: straight to the backend, in order
            try:
                await self.inner.append(session_id, messages, title=title, workspace_uri=workspace_uri)
            except BackendUnavailable as exc:
                self._went_down(exc)
            else:
                self._remember_append(session_id, messages, title, workspace_uri)
                return
        self._waiting = True  # from here on, later appends queue behind this one
        entry = PendingAppend(session_id, list(messages), title, workspace_uri)
        await asyncio.to_thread(self.outbox.add, entry)
        self._waiting = True  # again: a flush may have found the outbox empty while we wrote
        self._remember_append(session_id, messages, title, workspace_uri)
        self._start_retrying()

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        await self._start()
        try:
            await self.inner.save(session, expected_messages=expected_messages)
        except BackendUnavailable as exc:
            self._went_down(exc)
            raise
        self._remember(session.id, session)
        self._poke()

    async def save_copy(self, session: Session, source_id: str) -> None:
        await self._start()
        try:
            await self.inner.save_copy(session, source_id)
        except BackendUnavailable as exc:
            self._went_down(exc)
            raise
        self._remember(session.id, session)
        self._poke()

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        validate_session_id(session_id, "update")
        await self._start()
        try:
            info = await self._unless_down(self.inner.update(session_id, change))
        except BackendUnavailable as exc:
            self._went_down(exc)
            if isinstance(change, MetaPatch):
                return await self._queue_patch(session_id, change, exc)
            raise
        if (
            info is None
            and self._waiting
            and pending_for(await asyncio.to_thread(self.outbox.read), session_id)
        ):
            # Born during an outage, its first turns still wait: it is not stored yet.
            unstored = StorageError(
                f"Session {session_id!r} is not in {self.name} yet: its first turns wait in "
                f"{self.outbox.path} until they are stored. Try again once they are."
            )
            if isinstance(change, MetaPatch):  # a patch can wait behind them
                return await self._queue_patch(session_id, change, unstored)
            raise unstored
        if info is not None:
            cached = self._sessions.get(session_id)
            if cached is not None:
                cached.title, cached.meta = info.title, info.meta.copy()
            if self._listing is not None and session_id in self._listing:
                self._listing[session_id] = info
        self._poke()
        return info

    async def delete(self, session_id: str) -> bool:
        await self._start()
        validate_session_id(session_id, "delete")
        async with self._flush_lock:  # a replay running now must not bring the session back
            try:
                existed = await self.inner.delete(session_id)
            except BackendUnavailable as exc:
                self._went_down(exc)
                # Queued like an append: stored once the backend is back, after what waits before it.
                existed = await self._known(session_id) is not None
                await asyncio.to_thread(self.outbox.discard, session_id)
                self._waiting = True
                await asyncio.to_thread(self.outbox.add, PendingAppend.delete(session_id))
                self._waiting = True
                self._start_retrying()
            else:
                if self._waiting:
                    await asyncio.to_thread(self.outbox.discard, session_id)
        self._sessions.pop(session_id, None)
        if self._listing is not None:
            self._listing.pop(session_id, None)
        if self._down is None:
            self._poke()
        return existed

    async def list(self) -> list[SessionInfo]:
        """The store's listing as it is now (other daemons' writes included), plus the turns
        waiting in the outbox; while the store is down, the last listing read, updated with
        the sessions this daemon saw since."""
        await self._start()
        # Read before the listing, so a replay that stores them meanwhile only counts them twice
        # for one listing; read after, it could hide them.
        waiting = await asyncio.to_thread(self.outbox.read) if self._waiting else []
        try:
            infos = await self._unless_down(self.inner.list())
        except BackendUnavailable as exc:
            self._went_down(exc)
            if self._listing is None:
                raise exc from None
            infos = self._last_seen()
        else:
            self._listing = {info.id: info for info in infos}
            self._poke()
            infos = _with_pending(infos, waiting)
        infos.sort(key=lambda info: info.updated_at, reverse=True)
        return infos

    def _last_seen(self) -> list[SessionInfo]:
        """The last listing, each session replaced by the copy this daemon holds when that is newer."""
        listed = dict(self._listing or {})
        for session in self._sessions.values():
            known = listed.get(session.id)
            mine = session.info()
            if known is None:
                if session.messages:  # e.g. born during the outage
                    listed[session.id] = mine
            elif (mine.updated_at, mine.message_count) > (known.updated_at, known.message_count):
                listed[session.id] = mine
        return list(listed.values())

    async def load_memories(self, project: str) -> list[Message]:
        """The store's memories of ``project``; while it is down, the last ones read (an ask goes
        on with them), or BackendUnavailable when this daemon has read none yet."""
        await self._start()
        try:
            memories = await self._unless_down(self.inner.load_memories(project))
        except BackendUnavailable as exc:
            self._went_down(exc)
            if project not in self._memories:
                raise exc from None
            return list(self._memories[project])
        self._memories[project] = list(memories)
        self._poke()
        return memories

    async def memory_projects(self) -> list[str]:
        await self._start()
        try:
            projects = await self._unless_down(self.inner.memory_projects())
        except BackendUnavailable as exc:
            self._went_down(exc)
            raise
        self._poke()
        return projects

    # Remembering and forgetting are asked for: while the store is down they fail, saying so,
    # as a rename does (nothing waits in the outbox).
    async def add_memory(self, project: str, memory: Message) -> None:
        await self._start()
        try:
            await self._unless_down(self.inner.add_memory(project, memory))
        except BackendUnavailable as exc:
            self._went_down(exc)
            raise
        cached = self._memories.get(project)
        if cached is not None:
            self._memories[project] = [m for m in cached if m.id != memory.id] + [memory]
        self._poke()

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        await self._start()
        try:
            found = await self._unless_down(self.inner.delete_memory(project, memory_id))
        except BackendUnavailable as exc:
            self._went_down(exc)
            raise
        cached = self._memories.get(project)
        if cached is not None:
            self._memories[project] = [m for m in cached if m.id != memory_id]
        self._poke()
        return found

    def watch(self) -> SessionWatch:
        """The store's own: while it is unreachable the watch keeps trying to reconnect."""
        return self.inner.watch()

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        """The store's lease; BackendUnavailable while it is away (the caller decides)."""
        try:
            return await self._unless_down(self.inner.claim_answer(session_id, holder, seconds))
        except BackendUnavailable as exc:
            self._went_down(exc)
            raise

    async def release_answer(self, session_id: str, holder: str) -> None:
        try:
            await self._unless_down(self.inner.release_answer(session_id, holder))
        except BackendUnavailable as exc:
            self._went_down(exc)  # the lease expires by itself

    async def close(self) -> None:
        """Stop retrying (what still waits stays in the outbox for the next start) and close ``inner``."""
        if self._retry_task is not None:
            self._retry_task.cancel()
            await asyncio.gather(self._retry_task, return_exceptions=True)
        await self.inner.close()

    async def flush(self) -> bool:
        """Try once to store everything that waits; True if the outbox is empty afterwards."""
        await self._start()
        try:
            stored = await self._flush()
        except BackendUnavailable as exc:
            self._went_down(exc)
            return False
        return stored is not None and not self._waiting

    async def _unless_down(self, call):
        """Await ``call``, unless the backend is known to be down: then raise at once rather than
        wait for its timeouts on every question (the retry task finds out when it is back)."""
        if self._down is not None:
            call.close()
            raise self._down
        return await call

    # -- the outbox -------------------------------------------------------------

    async def _start(self) -> None:
        """On first use: replay what a previous run left waiting."""
        if self._started:
            return
        self._started = True
        if await asyncio.to_thread(self.outbox.read):
            self._waiting = True
            self._start_retrying(at_once=True)

    def _start_retrying(self, at_once: bool = False) -> None:
        """Make sure a retry task runs; ``at_once`` skips its wait (the backend looks back)."""
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop(at_once))
        elif at_once:
            self._wake.set()

    def _poke(self) -> None:
        """The backend just answered: retry the outbox now rather than after the backoff."""
        if self._waiting:
            self._start_retrying(at_once=True)
        elif self._down is not None:
            self._came_back(0)

    async def _retry_loop(self, at_once: bool) -> None:
        delay = self.retry_initial
        total = 0
        while True:
            if not at_once:  # the backend just failed: give it a moment (or until it answers a call)
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, self.retry_max)
            self._wake.clear()
            at_once = False
            try:
                if self._down is not None:
                    await self._probe()
                stored = await self._flush()
            except BackendUnavailable as exc:
                self._went_down(exc)
                continue
            except Exception:  # a bad entry or a backend error: keep it, report, try later
                log.exception("Storing the outbox %s failed; retrying in %.0f s", self.outbox.path, delay)
                continue
            if stored is None:  # another process is storing the outbox: look again later
                continue
            total += stored
            if self._waiting:
                at_once = True  # more arrived while we stored: go on
                continue
            self._came_back(total)
            return

    async def _probe(self) -> None:
        """One cheap call that raises BackendUnavailable while the backend is still away."""
        if self._probe_id is not None:
            await self.inner.load(self._probe_id)
        else:
            await self.inner.list()

    async def _flush(self) -> int | None:
        """Store the outbox, oldest first; the number of entries stored, or None if another
        process is storing it right now (it will finish the job)."""
        async with self._flush_lock:
            if not self.outbox.path.parent.is_dir():
                return 0  # nothing was ever queued here (its lock file would have nowhere to go)
            try:
                with exclusive_lock(str(self.outbox.path) + ".flush", 0):
                    return await self._flush_claimed()
            except LockTimeout:
                return None

    async def _flush_claimed(self) -> int:
        stored = 0
        stored_ids: dict[str, set[str]] = {}
        while entries := await asyncio.to_thread(self.outbox.read):
            for entry in entries:
                if entry.kind == "delete":
                    await self.inner.delete(entry.session_id)
                    stored_ids[entry.session_id] = set()
                    continue
                if entry.kind == "update" and entry.patch is not None:
                    await self.inner.update(entry.session_id, entry.patch)
                    continue
                ids = stored_ids.get(entry.session_id)
                if ids is None:  # what a replay cut short by a crash already stored
                    session = await self.inner.load(entry.session_id)
                    ids = stored_ids[entry.session_id] = (
                        {m.id for m in session.messages} if session else set()
                    )
                fresh = [m for m in entry.messages if m.id not in ids]
                if fresh:
                    await self.inner.append(
                        entry.session_id, fresh, title=entry.title, workspace_uri=entry.workspace_uri
                    )
                    ids.update(m.id for m in fresh)
            await asyncio.to_thread(self.outbox.remove, entries)
            stored += len(entries)
        self._waiting = False
        return stored

    async def _queue_patch(self, session_id: str, patch: MetaPatch, exc: Exception) -> SessionInfo:
        """Queue ``patch`` for a session this daemon knows (else raise ``exc``: it may not
        exist), and show it at once in the copies kept for the outage."""
        known = await self._known(session_id)
        if known is None:
            raise exc
        self._waiting = True
        await asyncio.to_thread(self.outbox.add, PendingAppend.update(session_id, patch))
        self._waiting = True
        info = replace(known, meta=patch.apply(known.meta))
        cached = self._sessions.get(session_id)
        if cached is not None:
            cached.meta = info.meta.copy()
        if self._listing is not None and session_id in self._listing:
            self._listing[session_id] = info
        self._start_retrying()
        return info

    async def _known(self, session_id: str) -> SessionInfo | None:
        """What this daemon last saw of a session (its copy, the last listing, the outbox)."""
        cached = self._sessions.get(session_id)
        if cached is not None and (cached.messages or cached.title):
            return cached.info()
        if self._listing is not None and session_id in self._listing:
            return self._listing[session_id]
        waiting = await asyncio.to_thread(self.outbox.read)
        listed = {info.id: info for info in _with_pending([], waiting)}
        return listed.get(session_id)

    # -- outages and the copies kept for them -------------------------------------

    def _went_down(self, exc: BackendUnavailable) -> None:
        if self._down is None:
            self.notify(
                f"deskmate: {exc}. Answers go on; new turns wait in {self.outbox.path} "
                "and are stored when it is back."
            )
        self._down = exc
        self._start_retrying()  # also when nothing waits: it is what notices the backend is back

    def _came_back(self, stored: int) -> None:
        if self._down is not None:
            waited = f"; {stored} waiting append{'s' if stored != 1 else ''} stored" if stored else ""
            self.notify(f"deskmate: {self.name} is reachable again{waited}.")
        self._down = None

    def _remember(self, session_id: str, session: Session | None) -> None:
        if session is None:
            self._sessions.pop(session_id, None)
            return
        self._sessions[session_id] = session.copy()
        self._sessions.move_to_end(session_id)
        while len(self._sessions) > CACHED_SESSIONS:
            self._sessions.popitem(last=False)

    def _remember_append(
        self, session_id: str, messages: Sequence[Message], title: str, workspace_uri: str | None
    ) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            if self._down is None:
                return  # nothing cached to keep current; the backend has it
            session = Session(id=session_id, title=title, workspace_uri=workspace_uri)
        session.add(list(messages))
        self._remember(session_id, session)


def _copy(session: Session | None) -> Session | None:
    return None if session is None else session.copy()


def _with_pending(infos: list[SessionInfo], waiting: Sequence[PendingAppend]) -> list[SessionInfo]:
    """``infos`` counting the appends ``waiting`` in the outbox, as the store will once they are stored."""
    if not waiting:
        return infos
    listed = {info.id: replace(info) for info in infos}  # copies: the listing read stays as read
    for entry in waiting:
        if entry.kind == "delete":
            listed.pop(entry.session_id, None)
            continue
        if entry.kind == "update" and entry.patch is not None:
            if entry.session_id in listed:
                patched = listed[entry.session_id]
                patched.meta = entry.patch.apply(patched.meta)
            continue
        if not entry.messages:
            continue
        info = listed.get(entry.session_id)
        if info is None:
            info = listed[entry.session_id] = SessionInfo(
                id=entry.session_id,
                title=entry.title,
                workspace_uri=entry.workspace_uri,
                created_at=entry.messages[0].timestamp,
            )
        info.message_count += len(entry.messages)
        info.updated_at = max(info.updated_at, entry.messages[-1].timestamp)
    return list(listed.values())


def _with_messages(session: Session | None, session_id: str, waiting: list[Message]) -> Session | None:
    """``session`` with the ``waiting`` messages it does not hold yet added at the end."""
    if not waiting:
        return session
    if session is None:
        session = Session(id=session_id)
    session.add_unseen(waiting)
    return session
