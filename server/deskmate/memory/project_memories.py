"""What every store shares about project memories: their ids, their record, their order.

A memory is stored as a message record (``codec.encode_message``), so the settings'
encryption and compression apply to it as to any turn; see ``MemoryBackend.load_memories``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .codec import decode_message, dumps, encode_message
from .errors import SessionStoreError, StorageError
from .ids import validate_session_id
from .models import Message


class InvalidMemoryKey(SessionStoreError):
    """A project key or memory id that breaks the session id rules; the message says which."""


def _checked(value: object, what: str) -> str:
    try:
        return validate_session_id(value, what)
    except SessionStoreError as exc:
        reason = str(exc).split(": ", 1)[-1] if value else "it is empty."
        raise InvalidMemoryKey(f"Invalid {what} {value!r}: {reason}") from None


def validate_project(project: object, operation: str = "") -> str:
    """A project key follows the session id rules (it names files and keys in every store)."""
    return _checked(project, "project key")


def validate_memory_id(memory_id: object) -> str:
    """A memory id follows the session id rules too (S3 keeps one object per memory)."""
    return _checked(memory_id, "memory id")


def encode_memory(memory: Message) -> str:
    """The JSON text a store keeps for ``memory``."""
    return dumps(encode_message(memory))


def decode_memory(raw: str | bytes | Any, where: str) -> Message:
    """The memory a stored record holds; StorageError naming ``where`` when it cannot be read."""
    try:
        record = json.loads(raw) if isinstance(raw, (str, bytes, bytearray)) else raw
        return decode_message(record)
    except StorageError as exc:
        raise StorageError(f"A project memory in {where} cannot be read: {exc}") from exc
    except ValueError as exc:
        raise StorageError(f"A project memory in {where} cannot be read: {exc}") from exc


def ordered(memories: Iterable[Message]) -> list[Message]:
    """Oldest first, ties by id: the order every store returns and every prompt sends."""
    return sorted(memories, key=lambda memory: (memory.timestamp, memory.id))
