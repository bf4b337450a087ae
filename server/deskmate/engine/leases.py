"""One answer at a time per session, across processes: the answering lease.

Within one process ``AskRunner`` refuses a second ask in a session that is answering. Another
daemon (another editor window) or the terminal CLI may share the store, so an ask also takes
the session's lease in the store (``MemoryBackend.claim_answer``) for as long as it runs,
renewing it every third of its length; an ask in a session whose lease another process holds
is refused the same way. A daemon that dies holding one frees the session: at once on files
(the kernel drops its lock), within LEASE_SECONDS on shared stores.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..memory import BackendUnavailable
from ..memory.watching import LEASE_SECONDS
from .errors import SessionBusy
from .store import SessionStore

log = logging.getLogger(__name__)


def holder_name(role: str = "answering") -> str:
    """A lease holder naming this process in the store: host and pid for whoever looks, a
    random part so a recycled pid is never mistaken for the process that held a lease before,
    and ``role`` (its asks and its sweeps of the trash hold leases apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{role}"


def refused(session_id: str) -> SessionBusy:
    return SessionBusy(
        f'Session "{session_id}" is still answering in another window (another deskmate, or '
        "`deskmate ask` in a terminal). Wait for that answer, or ask in a new session."
    )


class AnswerLeases:
    """Takes, renews and releases this process's answering leases in the engine's store."""

    def __init__(self, store: SessionStore, seconds: float = LEASE_SECONDS) -> None:
        self.store = store
        self.seconds = seconds
        self.holder = holder_name()

    @asynccontextmanager
    async def holding(self, session_id: str | None) -> AsyncIterator[None]:
        """Hold ``session_id``'s lease for the block; SessionBusy if another process holds it.

        The unsaved conversation (None) is this process's alone: no lease. A shared store that
        cannot be reached now cannot be asked either: the ask goes on (its turns wait in the
        outbox), as it would with no other daemon.
        """
        if session_id is None:
            yield
            return
        backend = self.store.backend
        try:
            taken = await backend.claim_answer(session_id, self.holder, self.seconds)
        except BackendUnavailable as exc:
            log.info("Answering in session %r without a lease: %s", session_id, exc)
            yield
            return
        if not taken:
            raise refused(session_id)
        renewing = asyncio.ensure_future(self._renew(backend, session_id))
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            try:
                await asyncio.shield(backend.release_answer(session_id, self.holder))
            except Exception as exc:  # it expires by itself
                log.info("Could not release the answering lease of session %r: %s", session_id, exc)

    async def _renew(self, backend, session_id: str) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                if not await backend.claim_answer(session_id, self.holder, self.seconds):
                    log.warning(
                        "The answering lease of session %r passed to another process (this one "
                        "was too slow to renew it); two answers may now run in it.",
                        session_id,
                    )
                    return
            except Exception as exc:
                log.info("Could not renew the answering lease of session %r: %s", session_id, exc)
