"""``deskmate/sessionChanged``: telling the client that another process changed a session it shows.

The engine's LiveSessions follows the sessions this daemon's client opened (getSession, ask);
each change another daemon or the CLI makes reaches the client as one notification, and the
client reads what is new with ``deskmate.getSession {sinceMessageId}``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..memory.watching import SessionChange

if TYPE_CHECKING:
    from .server import DeskmateServer

log = logging.getLogger(__name__)

SESSION_CHANGED = "deskmate/sessionChanged"


def change_params(change: SessionChange) -> dict[str, Any]:
    return {"sessionId": change.session_id, "change": change.change, "messageCount": change.message_count}


def start_live_sessions(ls: DeskmateServer) -> None:
    """From now on, changes of the sessions the client opens are sent to it."""

    def tell(change: SessionChange) -> None:
        if ls.stopping:
            return
        ls.protocol.notify(SESSION_CHANGED, change_params(change))

    ls.assistant.live.start(tell)


def live_result(result: dict[str, Any], since_id: str | None) -> dict[str, Any]:
    """``getSession``'s result with ``messageCount``; with ``since_id``, only the messages after
    it and ``sinceMessageId``, or, when the session no longer holds that message (it was
    replaced or rewritten), all of them and ``reset: true``: show them in place of the old ones."""
    messages = result["messages"]
    result["messageCount"] = len(messages)
    if since_id is None:
        return result
    result["sinceMessageId"] = since_id
    for position, message in enumerate(messages):
        if message["id"] == since_id:
            result["messages"] = messages[position + 1 :]
            result["reset"] = False
            return result
    result["reset"] = True
    return result
