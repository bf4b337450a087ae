"""Errors the engine raises; their messages are meant for the user."""


class EngineError(Exception):
    """A request the engine refuses; the message is meant for the user."""


class SessionBusy(EngineError):
    """The session is still answering another question."""


class InvalidArgument(EngineError):
    """A value the user gave is not acceptable; ``field`` names it (InvalidParams on the wire)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f'"{field}" {problem}')
