"""Live sessions: telling a process when another one changed a session it has open.

Every store tells it in its own way (``nudges``: the ids that may have changed) and says
what a session looks like now (``read``: its summary, None when there is none); the rules
of what counts as a change live here once, so they cannot drift between stores:

- ``appended``: the session has more messages than when last seen (or was created with some;
  one created empty is reported with its first turn);
- ``updated``: its title, metadata record (tags, pin, trash...), times or history changed
  otherwise (a rename, a save over it, fewer messages);
- ``deleted``: it is gone.

A watch only reports the sessions it follows, and compares each with what it saw last, so a
nudge that changed nothing (or an echo of a change already reported) says nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from .codec import dumps, encode_meta
from .models import SessionInfo

log = logging.getLogger(__name__)

ChangeKind = Literal["appended", "updated", "deleted"]
# How long a lease on answering lasts without a renewal, by default: a daemon that dies
# holding one frees the session this long after its last renewal at the latest.
LEASE_SECONDS = 10.0

ReadSummary = Callable[[str], Awaitable[SessionInfo | None]]


@dataclass(frozen=True)
class SessionChange:
    """Session ``session_id`` changed: ``change`` says how; ``message_count`` is its count now."""

    session_id: str
    change: ChangeKind
    message_count: int


def _seen(info: SessionInfo | None) -> tuple | None:
    """What a watch compares: everything a summary shows."""
    if info is None:
        return None
    return (
        info.message_count,
        info.title,
        info.workspace_uri,
        info.created_at,
        info.updated_at,
        dumps(encode_meta(info.meta)),
    )


def classify(before: tuple | None, after: tuple | None) -> ChangeKind | None:
    """The change from ``before`` to ``after`` (two ``_seen`` values), or None if there is none."""
    if before == after:
        return None
    if after is None:
        return "deleted"
    if before is None:
        # Created empty (S3 writes a new session's manifest before its first turn; newSession):
        # nothing to show yet, so its first turn is what is reported, as an append.
        return "appended" if after[0] > 0 else None
    return "appended" if after[0] > before[0] else "updated"


class SessionWatch:
    """Reports changes to the sessions it follows, whichever process (this one too) made them.

    ``read`` gives a session's summary now; a store's subclass supplies ``_nudges``. Iterate
    ``changes()`` in one task; ``follow``/``unfollow`` from any task of the same loop.
    """

    # How the store learns of changes, for documentation and status ("inotify", "LISTEN/NOTIFY"...).
    mechanism = "polling"

    def __init__(self, read: ReadSummary) -> None:
        self._read = read
        self._known: dict[str, tuple | None] = {}
        self._lock = asyncio.Lock()  # one comparison at a time: "last seen" never goes back
        self._closed = asyncio.Event()
        self.ready = asyncio.Event()  # set once the store reports changes: none is missed after it

    @property
    def following(self) -> frozenset[str]:
        return frozenset(self._known)

    async def follow(self, session_id: str) -> None:
        """Report ``session_id``'s changes from now on (nothing changes if it is followed already)."""
        if session_id in self._known:
            return
        async with self._lock:
            if session_id not in self._known:
                self._known[session_id] = _seen(await self._read(session_id))

    def unfollow(self, session_id: str) -> None:
        self._known.pop(session_id, None)

    async def recheck(self, session_id: str) -> SessionChange | None:
        """Compare the followed session with what was seen last, remember it, and return the change."""
        async with self._lock:
            if session_id not in self._known:
                return None
            info = await self._read(session_id)
            if session_id not in self._known:  # unfollowed while it was read
                return None
            after = _seen(info)
            kind = classify(self._known[session_id], after)
            self._known[session_id] = after
        if kind is None:
            return None
        return SessionChange(session_id, kind, info.message_count if info is not None else 0)

    async def changes(self) -> AsyncIterator[SessionChange]:
        """The followed sessions' changes, as the store reports them, until ``close``."""
        async for nudged in self._nudges():
            if self._closed.is_set():
                return
            ids = list(self._known) if nudged is None else [i for i in nudged if i in self._known]
            for session_id in ids:
                try:
                    change = await self.recheck(session_id)
                except Exception as exc:  # an unreadable store now: the next nudge tries again
                    log.info("Could not read session %r after a change: %s", session_id, exc)
                    continue
                if change is not None:
                    yield change

    async def close(self) -> None:
        """Stop: ``changes()`` ends, connections and threads it holds are released."""
        self._closed.set()

    def _nudges(self) -> AsyncIterator[set[str] | None]:
        """Sets of session ids that may have changed; None: any may have."""
        raise NotImplementedError

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True if the watch was closed meanwhile."""
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True


class PollingWatch(SessionWatch):
    """For a store that cannot tell: every followed session is read again each ``interval`` seconds."""

    mechanism = "polling"

    def __init__(self, read: ReadSummary, interval: float) -> None:
        super().__init__(read)
        self.interval = interval

    async def _nudges(self) -> AsyncIterator[set[str] | None]:
        self.ready.set()
        while not await self._sleep(self.interval):
            if self._known:
                yield None
