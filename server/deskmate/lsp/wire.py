"""The protocol's result objects (docs/protocol.md), built from the engine's and the store's models.

The wire format is the LSP layer's own: camelCase keys, ``null`` for what is
absent, nothing a store keeps for itself. A change to how sessions are stored
never changes what a client receives, and the other way round.
"""

from __future__ import annotations

from typing import Any

from ..engine import AskResult, EngineStatus, Usage
from ..engine.asking import NextPrompt
from ..engine.forks import ForkInfo, Lineage
from ..engine.history import Summary, active_summary, summaries_of
from ..engine.projects import ProjectIdentity
from ..memory import Message, Session, SessionInfo
from ..memory.limits import clip_title
from ..memory.models import SessionMeta
from ..memory.search_index import Hit


def usage_result(usage: Usage) -> dict[str, int]:
    return {
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }


def message_result(message: Message) -> dict[str, Any]:
    """``{id, role, content, timestamp, model?, usage?, status?, context?, error?}``."""
    result: dict[str, Any] = {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "timestamp": message.timestamp,
    }
    if message.model is not None:
        result["model"] = message.model
    if message.usage is not None:
        result["usage"] = dict(message.usage)
    if message.status != "complete":
        result["status"] = message.status
    if message.context is not None:
        result["context"] = dict(message.context)
    if message.error is not None:
        result["error"] = message.error
    return result


def listing_entry(info: SessionInfo, active: bool) -> dict[str, Any]:
    """One ``deskmate.listSessions`` entry."""
    return {
        "sessionId": info.id,
        "title": info.title,
        "workspaceUri": info.workspace_uri,
        "createdAt": info.created_at,
        "updatedAt": info.updated_at,
        "messageCount": info.message_count,
        "tags": list(info.meta.tags),
        "pinned": info.meta.pinned,
        "forkedFrom": lineage_result(Lineage.of(info.meta)),
        "projectId": info.meta.project,
        "active": active,
    }


def search_hit(hit: Hit) -> dict[str, Any]:
    """One ``deskmate.searchSessions`` result; ``messageId`` and ``role`` are null for a title match."""
    return {
        "sessionId": hit.session_id,
        "title": clip_title(hit.title),
        "messageId": hit.message_id,
        "role": hit.role,
        "timestamp": hit.timestamp,
        "snippet": hit.snippet,
    }


def trash_entry(info: SessionInfo, purge_after: str | None) -> dict[str, Any]:
    """One ``deskmate.listSessions {trash: true}`` entry: a listing entry, and when it went to the
    trash and when it will be purged."""
    return {**listing_entry(info, False), "deletedAt": info.meta.deleted_at, "purgeAfter": purge_after}


def lineage_result(lineage: Lineage | None) -> dict[str, str] | None:
    """``forkedFrom``: ``{sessionId, messageId}``, or null for a session that is no fork."""
    return {"sessionId": lineage.session_id, "messageId": lineage.message_id} if lineage else None


def fork_entry(fork: ForkInfo) -> dict[str, str]:
    """One of ``getSession``'s ``forks``."""
    return {"sessionId": fork.session_id, "messageId": fork.message_id, "title": fork.title}


def fork_result(session: Session, lineage: Lineage) -> dict[str, Any]:
    """``deskmate.forkSession``'s result."""
    return {
        "sessionId": session.id,
        "title": session.title,
        "messageCount": len(session.messages),
        "forkedFrom": lineage_result(lineage),
    }


def summary_result(summary: Summary, meta: SessionMeta, active: bool | None = None) -> dict[str, Any]:
    """A summary: ``{summaryId, covers: {fromMessageId, toMessageId}, summary, messageCount,
    createdAt, model, instructions, active?}``."""
    result: dict[str, Any] = {
        "summaryId": summary.id,
        "covers": {"fromMessageId": summary.from_id, "toMessageId": summary.to_id},
        "summary": summary.text,
        "messageCount": summary.covered,
        "createdAt": summary.created_at,
        "model": summary.model,
        "instructions": summary.instructions,
    }
    if active is not None:
        result["active"] = active
    return result


def summaries_result(session: Session) -> list[dict[str, Any]]:
    """``getSession``'s ``summaries``, oldest first; ``active`` marks the one prompts use."""
    found = active_summary(session.meta, session.messages)
    used = found[0].id if found else None
    return [summary_result(s, session.meta, s.id == used) for s in summaries_of(session.meta)]


def next_ask_result(prompt: NextPrompt) -> dict[str, Any]:
    """``getSession``'s ``nextAsk``: what the next ask sends before its question."""
    return {
        "tokens": prompt.tokens,
        "contextWindow": prompt.context_window,
        "limit": prompt.limit,
        "historyBudget": prompt.history_budget,
        "countedBy": prompt.counted_by,
        "summarizedMessages": prompt.summarized,
        "leftOutMessages": prompt.left_out,
    }


def session_result(
    session: Session,
    *,
    active: bool,
    persisted: bool,
    forks: list[ForkInfo] | None = None,
    next_ask: NextPrompt | None = None,
) -> dict[str, Any]:
    """``deskmate.getSession``'s result: the session's facts, lineage, messages, summaries, pins
    and what the next ask will send."""
    pinned = set(session.meta.pinned_messages)
    messages = []
    for m in session.messages:
        entry = message_result(m)
        if m.id in pinned:
            entry["pinned"] = True
        messages.append(entry)
    return {
        "sessionId": session.id or None,
        "title": session.title,
        "workspaceUri": session.workspace_uri,
        "createdAt": session.created_at,
        "updatedAt": session.messages[-1].timestamp if session.messages else session.updated_at,
        "tags": list(session.meta.tags),
        "pinned": session.meta.pinned,
        "forkedFrom": lineage_result(Lineage.of(session.meta)),
        "forks": [fork_entry(fork) for fork in forks or []],
        "active": active,
        "persisted": persisted,
        "deletedAt": session.meta.deleted_at,
        "messages": messages,
        "pinnedMessages": [
            i for i in session.meta.pinned_messages if any(m.id == i for m in session.messages)
        ],
        "summaries": summaries_result(session),
        "nextAsk": next_ask_result(next_ask) if next_ask is not None else None,
        "nextAskTokens": next_ask.tokens if next_ask is not None else None,
    }


def ask_result(result: AskResult, forked_from: Lineage | None = None) -> dict[str, Any]:
    """``deskmate.ask``'s result; ``forkedFrom`` names the fork's source when the ask made one."""
    answer: dict[str, Any] = {
        "sessionId": result.session_id,
        "askId": result.ask_id,
        "answer": result.answer,
        "interrupted": result.interrupted,
        "forkedFrom": lineage_result(forked_from),
    }
    if result.usage is not None:
        answer["usage"] = usage_result(result.usage)
    if result.redacted:
        answer["redacted"] = result.redacted.kinds()
    if result.compacted is not None:
        answer["compacted"] = summary_result(result.compacted.summary, SessionMeta())
    if result.compaction_error is not None:
        answer["compactionError"] = result.compaction_error
    return answer


def status_result(
    status: EngineStatus, expiring_soon: int | None = None, project: ProjectIdentity | None = None
) -> dict[str, Any]:
    """``deskmate.status``; ``expiring_soon``: sessions retention moves to the trash within 7 days
    (None: the store could not be listed); ``project``: the workspace folder's (None: no folder)."""
    return {
        "version": status.version,
        "model": status.model,
        "baseUrl": status.base_url,
        "apiKeyConfigured": status.api_key_configured,
        "dataDir": str(status.data_dir),
        "dataDirWritable": status.data_dir_writable,
        "storage": status.storage if status.storage else status.data_dir.absolute().as_uri(),
        "storageUnavailable": status.storage_unavailable,
        "unsavedMessages": status.unsaved_messages,
        "autoSave": status.auto_save,
        "encryption": status.encryption,
        "encryptionKeyId": status.encryption_key_id,
        "compression": status.compression,
        "retentionDays": status.retention_days,
        "trashDays": status.trash_days,
        "expiringIn7Days": expiring_soon,
        "projectId": project.id if project else None,
        "projectSource": project.source if project else None,
    }
