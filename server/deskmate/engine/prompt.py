"""Building the messages sent to the model: system prompt, trimmed history, question with context."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from ..memory import Message, context_items

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
# Of a known context window, what an answer may use when maxTokens does not say (a quarter);
# how much of the window a prompt may fill is engine/tokens.py's (by how surely it counts).
ANSWER_SHARE = 4


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token), good enough to budget a prompt."""
    return len(text) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def display_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def with_context(question: str, context: dict[str, Any] | None) -> str:
    """The question as the model sees it: followed by the editor context and the files the user
    added (``attachments``), if any."""
    pieces = [_context_block(item) for item in context_items(context)]
    if not pieces:
        return question
    return "\n\n".join([question, *pieces])


def _context_block(context: dict[str, Any]) -> str:
    if not context.get("text"):
        if context.get("uri"):
            return f"(The user is looking at `{display_path(context['uri'])}`.)"
        return ""
    path = display_path(context.get("uri", "")) if context.get("uri") else "the editor"
    language = context.get("languageId") or ""
    where = f"`{path}`"
    selection = context.get("range")
    if selection:
        first, last = selection["start"]["line"] + 1, selection["end"]["line"] + 1
        where += f", line {first}" if first == last else f", lines {first}-{last}"
    if language:
        where += f" ({language})"
    fence = "````" if "```" in context["text"] else "```"
    suffix = PurePosixPath(path).suffix.lstrip(".")
    note = f"\n({context['note']}.)" if context.get("note") else ""
    return f"Context from {where}:\n{fence}{language or suffix}\n{context['text']}\n{fence}{note}"


def failed_turns(history: list[Message]) -> set[int]:
    """Indexes of failed turns that produced nothing: an empty interrupted answer and the
    question it answered. The model never sees them (a question without an answer reads as
    though the user asked twice)."""
    skipped: set[int] = set()
    for index, message in enumerate(history):
        if message.role == "assistant" and message.status == "interrupted" and not message.content:
            skipped.add(index)
            if index and history[index - 1].role == "user":
                skipped.add(index - 1)
    return skipped


def build_messages(
    system_prompt: str,
    history: list[Message],
    question: Message,
    max_history_tokens: int,
) -> list[dict[str, str]]:
    """System prompt, then as much recent history as fits the budget, then the question
    (estimated at 4 characters a token; no summary, no pins: ``history.fit`` does those).

    History is trimmed oldest first in whole messages; the stored history is untouched.
    """
    from ..memory.models import SessionMeta
    from .history import fit  # history.py builds on this module

    return fit(system_prompt, history, question, SessionMeta(), max_history_tokens, estimate_tokens).messages
