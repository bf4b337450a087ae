"""Errors raised by session stores, with messages meant for the user."""

from __future__ import annotations


class SessionStoreError(Exception):
    """Base class of every session-store error."""


class SessionIdRequired(SessionStoreError):
    def __init__(self, operation: str = "this operation") -> None:
        super().__init__(f"A session id is required for {operation}.")


class InvalidSessionId(SessionStoreError):
    def __init__(self, session_id: object, reason: str) -> None:
        self.session_id = session_id
        super().__init__(f"Invalid session id {session_id!r}: {reason}.")


class SessionNotFound(SessionStoreError):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"Session {session_id!r} does not exist.")


class StorageError(SessionStoreError):
    """The backend could not read or write; the message says which file and why."""


class SessionChanged(StorageError):
    """A conditional save found the session changed since it was read: nothing was written."""

    def __init__(self, session_id: str, expected: int, found: int | None) -> None:
        self.session_id = session_id
        held = "no longer exists" if found is None else f"now holds {found} messages"
        super().__init__(
            f"Session {session_id!r} changed while it was being rewritten (it had {expected} "
            f"messages and {held}); nothing was written."
        )


class StorageFull(StorageError):
    """The disk (or quota) holding the store is full: nothing was written.

    Callers may keep the work in memory and write it once space returns.
    """


class BackendUnavailable(StorageError):
    """The backend could not be reached (server down, network, credentials refused).

    ``backend`` names it without secrets, e.g. ``PostgreSQL at db.internal:5432``.
    Callers may keep the work and retry later: nothing was written.
    """

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"{backend} is unreachable: {reason}")
