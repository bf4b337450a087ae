"""HoldingBackend: turns a full disk cannot take are kept in memory and stored once space returns.

When an append fails because the disk (or quota) is full, the answer the user
just read must not vanish. The wrapper keeps the messages in memory, tells the
user once in plain words, and retries in the background, oldest first; later
turns of that session queue behind, so the stored order never changes. Loads and
listings include what is held, so the conversation reads whole meanwhile. What is
held is lost only if the daemon stops before space returns, and the warning says so.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .backend import MemoryBackend, MetaChange
from .errors import StorageFull
from .models import Message, Session, SessionInfo
from .passing import PassesThrough

log = logging.getLogger(__name__)

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, StorageFull) or (isinstance(exc, OSError) and exc.errno in FULL_ERRNOS)


@dataclass
class _Held:
    session_id: str
    messages: list[Message]
    title: str
    workspace_uri: str | None


class HoldingBackend(PassesThrough):
    """Wraps ``inner``; appends that fail on a full disk wait in memory and are retried."""

    def __init__(
        self,
        inner: MemoryBackend,
        *,
        notify: Callable[[str], None] | None = None,
        retry_initial: float = 2.0,
        retry_max: float = 30.0,
    ) -> None:
        self.inner = inner
        self.notify = notify or (lambda message: log.warning("%s", message))
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._held: list[_Held] = []
        self._retry_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one flush, save or delete of held entries at a time

    def __repr__(self) -> str:
        return f"HoldingBackend({self.inner!r})"

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # e.g. ResilientBackend.unavailable

    @property
    def held_messages(self) -> int:
        """How many messages wait in memory for space."""
        return sum(len(entry.messages) for entry in self._held)

    # -- MemoryBackend ----------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        session = await self.inner.load(session_id)
        waiting = [m for entry in self._held if entry.session_id == session_id for m in entry.messages]
        if not waiting:
            return session
        if session is None or session.quarantined_to:
            first = next(entry for entry in self._held if entry.session_id == session_id)
            session = Session(id=session_id, title=first.title, workspace_uri=first.workspace_uri)
        session.add_unseen(waiting)
        return session

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        if not messages:
            return
        entry = _Held(session_id, list(messages), title, workspace_uri)
        if any(held.session_id == session_id for held in self._held):
            self._held.append(entry)  # behind the turns already waiting: order is kept
            return
        # No lock on the way through: a session's appends come one after another, and a
        # flush keeps an entry listed until it is stored, so later turns queue behind it.
        try:
            await self.inner.append(session_id, messages, title=title, workspace_uri=workspace_uri)
            return
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            first = not self._held
            self._held.append(entry)
            if first:
                self.notify(
                    f"deskmate: {_reason(exc)} Until then it is kept in memory only: it would be "
                    "lost if deskmate stopped first."
                )
        self._start_retrying()

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        async with self._lock:
            if expected_messages is not None:
                # The count loaded includes the turns held here; the store has not seen them.
                held = sum(len(e.messages) for e in self._held if e.session_id == session.id)
                expected_messages -= held
            await self.inner.save(session, expected_messages=expected_messages)
            # The whole session was written, held turns of it included or superseded.
            self._held = [entry for entry in self._held if entry.session_id != session.id]

    async def save_copy(self, session: Session, source_id: str) -> None:
        if any(entry.session_id == source_id for entry in self._held):
            await self.save(session)  # the source's last turns are not in the store to copy
            return
        async with self._lock:
            await self.inner.save_copy(session, source_id)
            self._held = [entry for entry in self._held if entry.session_id != session.id]

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        info = await self.inner.update(session_id, change)
        if info is None and any(entry.session_id == session_id for entry in self._held):
            raise StorageFull(
                f"Session {session_id} is not stored yet (the disk is full): it cannot be changed until "
                "its turns are saved."
            )
        return info

    async def delete(self, session_id: str) -> bool:
        async with self._lock:
            had = any(entry.session_id == session_id for entry in self._held)
            self._held = [entry for entry in self._held if entry.session_id != session_id]
            return await self.inner.delete(session_id) or had

    async def list(self) -> list[SessionInfo]:
        infos = await self.inner.list()
        if not self._held:
            return infos
        by_id = {info.id: info for info in infos}
        for entry in self._held:
            info = by_id.get(entry.session_id)
            if info is None:
                info = by_id[entry.session_id] = SessionInfo(
                    id=entry.session_id,
                    title=entry.title,
                    workspace_uri=entry.workspace_uri,
                    created_at=entry.messages[0].timestamp,
                )
            info.message_count += len(entry.messages)
            info.updated_at = entry.messages[-1].timestamp
        return sorted(by_id.values(), key=lambda info: info.updated_at, reverse=True)

    async def close(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            await asyncio.gather(self._retry_task, return_exceptions=True)
        if self._held and not await self.flush():
            log.error(
                "deskmate is stopping with %d messages it could not save (the disk is still full); "
                "they are lost.",
                self.held_messages,
            )
        await self.inner.close()

    # -- retrying ---------------------------------------------------------------

    async def flush(self) -> bool:
        """Try once to store everything held, oldest first; True when nothing is left."""
        stored = 0
        async with self._lock:
            while self._held:
                entry = self._held[0]
                try:
                    await self.inner.append(
                        entry.session_id, entry.messages, title=entry.title, workspace_uri=entry.workspace_uri
                    )
                except Exception as exc:
                    if is_disk_full(exc):
                        return False
                    log.warning("Storing a held turn of session %r failed: %s", entry.session_id, exc)
                    return False
                self._held.pop(0)
                stored += len(entry.messages)
        if stored:
            self.notify(f"deskmate: there is space again; {stored} held message(s) were saved.")
        return True

    def _start_retrying(self) -> None:
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop())

    async def _retry_loop(self) -> None:
        delay = self.retry_initial
        while self._held:
            await asyncio.sleep(delay)
            if await self.flush():
                return
            delay = min(delay * 2, self.retry_max)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, StorageFull):
        return str(exc).rstrip(".") + "."
    strerror = getattr(exc, "strerror", None) or exc
    return (
        f"The disk is full ({strerror}): the turn could not be saved. Free some space; "
        "deskmate keeps the turn and saves it when it can."
    )
