"""Errors the engine raises; their messages are meant for the user."""


class EngineError(Exception):
    """A request the engine refuses; the message is meant for the user."""


class SessionBusy(EngineError):
    """The session is still answering another question."""
