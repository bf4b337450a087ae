"""The commands of compaction and pins: ``deskmate.compactSession``, ``deskmate.uncompactSession``
and ``deskmate.pinMessage`` (docs/protocol.md, "Compaction, summaries and pins")."""

from __future__ import annotations

from typing import Any

from ..memory.models import SessionMeta
from .arguments import Arguments
from .commands import command, session_ref
from .server import DeskmateServer
from .wire import summary_result

MAX_INSTRUCTIONS_LENGTH = 2000


@command("deskmate.compactSession")
async def compact_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Summarize the session's turns before its latest one now (``instructions``: what to keep)."""
    instructions = arguments.text("instructions", max_length=MAX_INSTRUCTIONS_LENGTH)
    done = await ls.assistant.compaction.compact(session_ref(ls, arguments), instructions)
    return {"sessionId": done.session_id, **summary_result(done.summary, SessionMeta())}


@command("deskmate.uncompactSession")
async def uncompact_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Drop a summary: the next ask sends the messages it stood for again, as far as they fit."""
    session_id = arguments.session_id(required=True)
    summary_id = arguments.text("summaryId", required=True)
    info = await ls.assistant.compaction.uncompact(session_id, summary_id)
    return {"sessionId": info.id, "summaryId": summary_id, "removed": True}


@command("deskmate.pinMessage")
async def pin_message(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Pin a message (always sent to the model, never summarized away), or unpin it."""
    message_id = arguments.text("messageId", required=True)
    pinned = arguments.boolean("pinned", required=True)
    ref = ls.assistant.sessions.resolve(session_id=arguments.session_id(required=True))
    info = await ls.assistant.compaction.pin(ref, message_id, pinned)
    return {
        "sessionId": info.id,
        "messageId": message_id,
        "pinned": message_id in info.meta.pinned_messages,
        "pinnedMessages": list(info.meta.pinned_messages),
    }
