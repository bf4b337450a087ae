"""Reading command arguments: one JSON object with camelCase keys, checked field by field.

Every problem becomes InvalidParams with a message naming the command and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from ..memory import InvalidSessionId, validate_session_id
from ..memory.limits import MAX_CONTEXT_LENGTH

MAX_URI_LENGTH = 8192
MAX_LANGUAGE_ID_LENGTH = 100


def invalid(command: str, message: str) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(f"{command}: {message}")


@dataclass
class Arguments:
    """The single argument object of a ``workspace/executeCommand`` call."""

    command: str
    values: dict[str, Any]

    @classmethod
    def of(cls, command: str, args: tuple[Any, ...]) -> Arguments:
        if len(args) == 0 or (len(args) == 1 and args[0] is None):
            return cls(command, {})
        if len(args) > 1 or not isinstance(args[0], dict):
            raise invalid(command, 'arguments must be a single JSON object, e.g. [{"question": "..."}]')
        return cls(command, args[0])

    def _get(self, key: str, kinds: tuple[type, ...], what: str, required: bool) -> Any:
        value = self.values.get(key)
        if value is None:
            if required:
                raise invalid(self.command, f'"{key}" is required ({what})')
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise invalid(self.command, f'"{key}" must be {what}, got {type(value).__name__}')
        return value

    def text(self, key: str, *, required: bool = False, max_length: int | None = None) -> str | None:
        value = self._get(key, (str,), "a non-empty string", required)
        if value is not None and not value.strip():
            if required:
                raise invalid(self.command, f'"{key}" is required (a non-empty string)')
            return None
        if value is not None and max_length is not None and len(value) > max_length:
            raise invalid(
                self.command, f'"{key}" is {len(value):,} characters long; the limit is {max_length:,}'
            )
        return value

    def session_id(self, key: str = "sessionId", *, required: bool = False) -> str | None:
        """A session id that is safe on every platform, or InvalidParams naming ``key`` and why."""
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return validate_session_id(value)
        except InvalidSessionId as exc:
            raise invalid(self.command, f'"{key}": {exc}') from None

    def flag(self, key: str) -> bool:
        return bool(self._get(key, (bool,), "true or false", False))

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        """true, false, or None when absent and not required."""
        return self._get(key, (bool,), "true or false", required)

    def strings(self, key: str, *, max_items: int = 100) -> list[str]:
        """A list of strings (empty when absent)."""
        value = self._get(key, (list,), "a list of strings", False) or []
        if not all(isinstance(item, str) for item in value):
            raise invalid(self.command, f'"{key}" must be a list of strings')
        if len(value) > max_items:
            raise invalid(self.command, f'"{key}" holds {len(value)} items; the limit is {max_items}')
        return value

    def integer(self, key: str, *, minimum: int, maximum: int) -> int | None:
        value = self._get(key, (int,), f"a whole number from {minimum} to {maximum}", False)
        if value is not None and not minimum <= value <= maximum:
            raise invalid(self.command, f'"{key}" must be from {minimum} to {maximum}, got {value}')
        return value

    def object(self, key: str) -> dict[str, Any] | None:
        return self._get(key, (dict,), "an object", False)


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?")


def check_time(arguments: Arguments, key: str) -> str | None:
    """A UTC date or time as stored messages carry them: ``2026-11-24`` or ``2026-11-24T04:47:16Z``."""
    value = arguments.text(key)
    if value is not None and not _TIME.fullmatch(value):
        raise invalid(
            arguments.command, f'"{key}" must be a UTC date or time such as 2026-11-24 or 2026-11-24T04:47Z'
        )
    return value.rstrip("Z") if value else None


def check_resend(arguments: Arguments) -> tuple[str | None, bool]:
    """``deskmate.ask``'s ``editMessageId`` and ``regenerate``: regenerate needs the question to
    ask again, and takes no new text."""
    edit_message_id = arguments.text("editMessageId")
    regenerate = arguments.flag("regenerate")
    if regenerate and edit_message_id is None:
        raise invalid(
            arguments.command, '"editMessageId" is required with "regenerate" (the question to ask again)'
        )
    if regenerate and arguments.values.get("question") is not None:
        raise invalid(
            arguments.command,
            '"question" must be left out with "regenerate": the question is asked again unchanged',
        )
    return edit_message_id, regenerate


def check_position(command: str, field: str, value: Any) -> dict[str, int]:
    if (
        not isinstance(value, dict)
        or not all(
            isinstance(value.get(k), int) and not isinstance(value.get(k), bool)
            for k in ("line", "character")
        )
        or value["line"] < 0
        or value["character"] < 0
    ):
        raise invalid(command, f'"{field}" must be a position {{"line": n, "character": n}} with n >= 0')
    return {"line": value["line"], "character": value["character"]}


def check_context(
    command: str, context: dict[str, Any] | None, field: str = "context"
) -> dict[str, Any] | None:
    """Validate ``context`` = {uri, range?, text?, languageId?}; returns a clean copy. Messages name
    the fields under ``field`` (``context``, or ``attachments[1]``)."""
    if context is None:
        return None
    uri = context.get("uri")
    if not isinstance(uri, str) or not uri:
        raise invalid(command, f'"{field}.uri" is required (the document\'s URI) when "{field}" is given')
    clean: dict[str, Any] = {"uri": uri}
    selection = context.get("range")
    if selection is not None:
        if not isinstance(selection, dict):
            raise invalid(command, f'"{field}.range" must be an LSP range {{"start": ..., "end": ...}}')
        start = check_position(command, f"{field}.range.start", selection.get("start"))
        end = check_position(command, f"{field}.range.end", selection.get("end"))
        if (end["line"], end["character"]) < (start["line"], start["character"]):
            raise invalid(command, f'"{field}.range" ends before it starts')
        clean["range"] = {"start": start, "end": end}
    for key in ("text", "languageId"):
        value = context.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise invalid(command, f'"{field}.{key}" must be a string')
            clean[key] = value
    if len(clean.get("text", "")) > MAX_CONTEXT_LENGTH:
        raise invalid(
            command,
            f'"{field}.text" is {len(clean["text"]):,} characters long; the limit is {MAX_CONTEXT_LENGTH:,}',
        )
    if len(clean.get("languageId", "")) > MAX_LANGUAGE_ID_LENGTH:
        raise invalid(command, f'"{field}.languageId" is longer than {MAX_LANGUAGE_ID_LENGTH} characters')
    if len(uri) > MAX_URI_LENGTH:
        raise invalid(command, f'"{field}.uri" is longer than {MAX_URI_LENGTH:,} characters')
    return clean
