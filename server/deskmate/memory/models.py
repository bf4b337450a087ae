"""The data a session store keeps: messages, sessions, their metadata, and session summaries.

A message converts to and from the dict every store keeps (camelCase keys); the
protocol's results are built separately, by the LSP layer (``lsp/wire.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import msgspec

Role = Literal["system", "user", "assistant"]
Status = Literal["complete", "interrupted"]
ROLES = ("system", "user", "assistant")
STATUSES = ("complete", "interrupted")


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. 2026-11-24T04:47:16.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_message_id() -> str:
    return uuid.uuid4().hex


def updated_at_of(messages: list[Message], created_at: str) -> str:
    """A session's updatedAt, as every store keeps and lists it: its last message's time, or
    its creation time while it has none. Renaming or tagging a session does not change it."""
    return messages[-1].timestamp if messages else created_at


class Message(msgspec.Struct, gc=False):
    """One message of a conversation.

    ``status`` is ``interrupted`` for an answer that was cancelled or failed
    part way: the text the user already saw is kept; ``error`` is why it failed
    (the message the user was shown), None for an answer that did not fail.

    A msgspec Struct, so a store's decoder makes messages straight from their JSON
    (a 10,000-message history loads without a Python call per message). Not tracked
    by the garbage collector: a message never refers back to what holds it.
    """

    role: Role
    content: str
    # Decoding needs an id and a time that are not empty (from_dict makes them otherwise).
    id: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(default_factory=new_message_id)
    timestamp: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(default_factory=now_iso)
    model: str | None = None
    usage: dict[str, int] | None = None
    status: Status = "complete"
    # Editor context sent with a question: {uri, range?, languageId?, text, attachments?}.
    context: dict[str, Any] | None = None
    # Why an answer failed, as the user was told (a model error, a lost connection).
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "timestamp": self.timestamp,
        }
        if self.model is not None:
            data["model"] = self.model
        if self.usage is not None:
            data["usage"] = self.usage
        if self.status != "complete":
            data["status"] = self.status
        if self.context is not None:
            data["context"] = self.context
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """Build a message from its dict form; raises ValueError naming the bad field."""
        # Runs once per stored message on every load: keep the checks cheap.
        if type(data) is not dict:
            raise ValueError("a message must be a JSON object")
        get = data.get
        role = get("role")
        if role not in ROLES:
            raise ValueError(f"message role must be one of {', '.join(ROLES)}, got {role!r}")
        content = get("content")
        if type(content) is not str:
            raise ValueError("message content must be a string")
        status = get("status", "complete")
        if status not in STATUSES:
            raise ValueError(f"message status must be complete or interrupted, got {status!r}")
        usage = get("usage")
        if usage is not None and type(usage) is not dict:
            raise ValueError("message usage must be an object")
        context = get("context")
        if context is not None:
            _check_context(context)
        model = get("model")
        if model is not None and type(model) is not str:
            raise ValueError("message model must be a string")
        error = get("error")
        if error is not None and type(error) is not str:
            raise ValueError("message error must be a string")
        return cls(
            role,
            content,
            str(get("id") or new_message_id()),
            str(get("timestamp") or now_iso()),
            model,
            usage,
            status,
            context,
            error,
        )


_CONTEXT_TEXT_FIELDS = ("uri", "text", "languageId", "note")


def context_items(context: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each piece of code a question carried, in order: the context itself (the editor's file or
    selection), then its ``attachments`` (files the user added)."""
    if not context:
        return []
    first = {key: value for key, value in context.items() if key != "attachments"}
    return ([first] if first else []) + list(context.get("attachments") or [])


def _check_context(context: Any, *, nested: bool = False) -> None:
    """A stored context is {uri, range?, text?, languageId?, note?, attachments?}: strings where
    text is expected; ``attachments`` a list of such contexts (without attachments of their own)."""
    if type(context) is not dict:
        raise ValueError("message context must be an object")
    attachments = context.get("attachments")
    if attachments is not None:
        if nested or type(attachments) is not list:
            raise ValueError("message context.attachments must be a list of contexts")
        for attachment in attachments:
            _check_context(attachment, nested=True)
    for key in _CONTEXT_TEXT_FIELDS:
        value = context.get(key)
        if value is not None and type(value) is not str:
            raise ValueError(f"message context.{key} must be a string, got {type(value).__name__}")
    selection = context.get("range")
    if selection is not None:
        if type(selection) is not dict or not all(
            type(selection.get(end)) is dict
            and all(type(selection[end].get(k)) is int for k in ("line", "character"))
            for end in ("start", "end")
        ):
            raise ValueError("message context.range must be an LSP range")


MetaKind = Literal["flag", "text", "strings", "object", "objects"]


def meta_field(wire: str, kind: MetaKind, default: Any = None, *, factory: Any = None) -> Any:
    """A SessionMeta field: its key in the stored record and the kind of JSON value it holds
    (checked on every read by ``codec.decode_meta``)."""
    metadata = {"wire": wire, "kind": kind}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class SessionMeta:
    """What a session says about itself besides its id, title, workspace and times.

    Every store keeps it as one record (``codec.encode_meta``/``decode_meta``), so a
    new field is one line here, checked and round-tripped by every store at once.
    ``extra`` keeps fields a newer deskmate wrote, so rewriting never drops them.
    """

    tags: list[str] = meta_field("tags", "strings", factory=list)
    pinned: bool = meta_field("pinned", "flag", False)
    # Where a fork came from: {"sessionId": ..., "messageId": ...}; None for a session that is no fork.
    forked_from: dict[str, Any] | None = meta_field("forkedFrom", "object", None)
    # The user named the session (renameSession): no automatic title replaces theirs.
    user_title: bool = meta_field("userTitle", "flag", False)
    # In the trash since this time (ISO 8601); None: not deleted (engine/trash.py).
    deleted_at: str | None = meta_field("deletedAt", "text", None)
    # A daemon claimed the purge of this trashed session at this time (engine/trash.py).
    purging_at: str | None = meta_field("purgingAt", "text", None)
    # The project it belongs to (engine/projects.py): how a moved, renamed or cloned folder finds it.
    project: str | None = meta_field("project", "text", None)
    # Ids of the messages the user pinned: always sent to the model, never summarized away.
    pinned_messages: list[str] = meta_field("pinnedMessages", "strings", factory=list)
    # Summaries of earlier turns (engine/compaction.py): {id, from, to, text, ...} each. A record
    # beside the messages, which stay as they were: dropping one is the undo.
    summaries: list[dict[str, Any]] = meta_field("summaries", "objects", factory=list)
    # When a fork of it was last made (ISO 8601): the change of the source that other processes'
    # watches see (a fork writes only itself otherwise; its lineage is the fork's forkedFrom).
    last_fork_at: str | None = meta_field("lastForkAt", "text", None)
    extra: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> SessionMeta:
        forked_from = dict(self.forked_from) if self.forked_from is not None else None
        return replace(
            self,
            tags=list(self.tags),
            forked_from=forked_from,
            pinned_messages=list(self.pinned_messages),
            summaries=[dict(summary) for summary in self.summaries],
            extra=dict(self.extra),
        )


@dataclass
class SessionInfo:
    """What a listing shows of a session, without its history."""

    id: str
    title: str = ""
    workspace_uri: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = ""
    message_count: int = 0
    meta: SessionMeta = field(default_factory=SessionMeta)

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at


@dataclass
class Session:
    """A whole conversation.

    ``quarantined_to`` is set by a load that found the stored file unreadable:
    the old file was moved to that path and this session starts empty.
    """

    id: str
    title: str = ""
    workspace_uri: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = ""
    meta: SessionMeta = field(default_factory=SessionMeta)
    messages: list[Message] = field(default_factory=list)
    quarantined_to: str | None = None

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = updated_at_of(self.messages, self.created_at)

    def copy(self) -> Session:
        """A copy whose lists callers may change without touching this one (messages are never mutated)."""
        return Session(
            self.id,
            self.title,
            self.workspace_uri,
            self.created_at,
            self.updated_at,
            self.meta.copy(),
            list(self.messages),
        )

    def add(self, messages: list[Message]) -> None:
        """Append ``messages`` as a store's ``append`` does."""
        if messages:
            self.messages.extend(messages)
            self.updated_at = messages[-1].timestamp

    def add_unseen(self, messages: list[Message]) -> None:
        """Append those of ``messages`` this session does not hold yet (by id): how turns that
        wait outside the store join a history read from it."""
        held = {m.id for m in self.messages}
        fresh = [m for m in messages if m.id not in held]
        if fresh:
            self.messages.extend(fresh)
            self.updated_at = fresh[-1].timestamp

    def info(self) -> SessionInfo:
        return SessionInfo(
            id=self.id,
            title=self.title,
            workspace_uri=self.workspace_uri,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=len(self.messages),
            meta=self.meta.copy(),
        )
