"""Compaction, done openly: summaries of earlier turns that can be shown and undone, and pins.

When a session's history no longer fits the prompt budget, the oldest turns that do not
fit are summarized by the model (or ``summaryModel``). The summary is stored beside the
messages, in the session's metadata record (``SessionMeta.summaries``), naming the range
it stands for; the messages are never changed, deleted or rewritten, and listings,
exports and search still show every one of them. Undo (``uncompact``) drops the summary
and the next ask sends the originals again as far as they fit.

Each summary covers the session from its first message: a later one is written from the
earlier summary and the turns after it, so the prompt needs one summary only, and undoing
the latest falls back to the one before. At most MAX_SUMMARIES are kept.

Storing one is one compare-and-set ``update`` of the metadata, never a rewrite of the
history per turn: an automatic compaction summarizes enough that the turns kept take half
the budget (KEEP_SHARE), so the next one comes only after that much more conversation.

A compaction that fails (a model error, a timeout, a cancel) stores nothing: the caller is
told, and an ask goes on with the turns that fit. An ask waits for one summarization at
most (``summaryTimeout`` seconds), its own: while another summary of the session is being
written (``compactSession``), the ask does not wait for it and goes on with the turns that fit.

Summaries are written by the model the session's folder uses (or ``summaryModel``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..memory import Message, Session, SessionInfo, SessionNotFound, SessionStoreError
from ..memory.models import SessionMeta
from .errors import EngineError, InvalidArgument
from .history import Fitted, Summary, active_summary, sendable
from .model_client import ModelClient, ModelError
from .sessions import SessionRef, Sessions
from .settings import Settings
from .tokens import TokenCounter, context_window, prompt_limit

log = logging.getLogger(__name__)

SUMMARY_TOKENS = 1024  # the longest summary the model is asked to write (max_tokens)
MIN_SUMMARY_TOKENS = 64
MAX_SUMMARY_CHARS = 6000  # a longer answer is cut: the metadata record stays small
MAX_SUMMARIES = 4
MAX_PINNED = 100
MAX_INSTRUCTIONS = 2000  # characters
KEEP_SHARE = 0.5  # of the history budget: what the turns kept after an automatic compaction may take
INSTRUCTION = (
    "You condense the start of a conversation between a developer and their coding assistant, so "
    "the conversation can go on without it. Write compact notes in Markdown: the user's goals; every "
    "rule, preference or constraint they stated (word for word where it matters); decisions made and "
    "why; names of files, functions, APIs, commands and settings; errors met and how they were "
    "fixed; what is still open. Leave out greetings and anything repeated. If an earlier summary is "
    "given, fold it in. At most 400 words. Answer with the notes alone."
)


class CompactionFailed(EngineError):
    """A summary could not be made; nothing was stored."""


@dataclass(frozen=True)
class Compacted:
    session_id: str
    summary: Summary


def summary_prompt(
    previous: Summary | None, messages: list[Message], instructions: str | None
) -> list[dict[str, str]]:
    """What the summarizing model is sent: the instruction, then one message holding the
    earlier summary and the transcript (so the model writes notes rather than answering)."""
    system = INSTRUCTION
    if instructions:
        system += f"\n\nThe user asks you to: {instructions}"
    parts = []
    if previous is not None:
        parts.append(f"Earlier summary:\n{previous.text}")
    lines = [f"{'User' if m.role == 'user' else 'Assistant'}: {sendable(m)}" for m in messages]
    parts.append("Conversation:\n" + "\n\n".join(lines))
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


async def model_summary(model: ModelClient, settings: Settings, prompt: list[dict[str, str]]) -> str:
    """The model's summary (cut to MAX_SUMMARY_CHARS); ModelError when it fails or says nothing."""
    pieces: list[str] = []
    stream = model.stream(prompt, settings=settings)
    try:
        async for item in stream:
            if isinstance(item, str):
                pieces.append(item)
                if sum(map(len, pieces)) > MAX_SUMMARY_CHARS:
                    break
    finally:
        await stream.aclose()
    text = "".join(pieces).strip()
    if not text:
        raise ModelError("the model answered with an empty summary")
    return text if len(text) <= MAX_SUMMARY_CHARS else text[: MAX_SUMMARY_CHARS - 1] + "…"


def added(summary: Summary) -> Callable[[SessionInfo], tuple[str, SessionMeta]]:
    """The metadata change storing ``summary`` (the oldest dropped past MAX_SUMMARIES)."""

    def change(info: SessionInfo) -> tuple[str, SessionMeta]:
        records = [*info.meta.summaries, summary.to_record()][-MAX_SUMMARIES:]
        return info.title, dataclasses.replace(info.meta, summaries=records)

    return change


class Compaction:
    """Summarizing, un-summarizing and pinning the messages of the engine's sessions."""

    def __init__(
        self,
        sessions: Sessions,
        model: Callable[[Settings], ModelClient],
        folder_settings: Callable[[str | None], Settings],
        counter: TokenCounter,
    ) -> None:
        self.sessions = sessions
        self._model = model
        self._folder_settings = folder_settings  # the settings of asks in a folder (its model)
        self.counter = counter
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def _stored(self, ref: SessionRef) -> Session:
        if ref.id is None:
            raise EngineError(
                "This conversation is not stored (no workspace folder is open), so it cannot be "
                "compacted or pinned; open a folder or give a sessionId."
            )
        session, _ = await self.sessions.current(ref)
        if not session.messages and await self.sessions.stored(ref.id) is None:
            raise SessionNotFound(ref.id)
        return session

    # -- compacting ------------------------------------------------------------------

    async def compact(self, ref: SessionRef, instructions: str | None = None) -> Compacted:
        """Summarize the session up to (not including) its latest turn, on demand."""
        if instructions is not None and len(instructions) > MAX_INSTRUCTIONS:
            raise InvalidArgument(
                "instructions", f"is {len(instructions):,} characters long; the limit is {MAX_INSTRUCTIONS:,}"
            )
        session = await self._stored(ref)
        last_question = max(
            (i for i, m in enumerate(session.messages) if m.role == "user"), default=len(session.messages)
        )
        found = active_summary(session.meta, session.messages)
        covered_until = found[1] if found else -1
        if last_question - 1 <= covered_until:
            raise EngineError(
                f'Session "{session.id}" has nothing to compact: every turn before the latest one '
                "is summarized already (or there is only one turn)."
            )
        settings = self._folder_settings(ref.workspace_uri)
        return await self._summarize(session, last_question - 1, instructions, settings, timeout=None)

    async def for_ask(
        self, session: Session, fitted: Fitted, keep: Fitted, room: int, settings: Settings
    ) -> Compacted:
        """The automatic compaction before an ask (with ``settings``) whose prompt ``fitted``
        left turns out: summarizes up to the turns ``keep`` (the prompt fitted to KEEP_SHARE of
        the budget) sends, in at most ``room`` tokens. Waits summaryTimeout seconds at most;
        CompactionFailed when it fails, or at once when a summary of the session is being
        written already (the ask never waits for two)."""
        if self._lock(session.id).locked():
            raise CompactionFailed(
                "The earlier messages were not summarized for this answer: a summary of this session "
                "is being written already (compactSession). Nothing was changed; the next ask uses it."
            )
        until = keep.recent[0] - 1 if keep.recent else len(session.messages) - 1
        until = max(until, fitted.dropped[-1])
        length = max(MIN_SUMMARY_TOKENS, min(SUMMARY_TOKENS, room))
        return await self._summarize(
            session, until, None, settings, timeout=settings.summary_timeout, length=length
        )

    async def _summarize(
        self,
        session: Session,
        until: int,
        instructions: str | None,
        settings: Settings,
        *,
        timeout: float | None,
        length: int = SUMMARY_TOKENS,
    ) -> Compacted:
        """Summarize ``session`` from its first message through index ``until`` with the model
        ``settings`` name (or their summaryModel), store the summary, and return it;
        CompactionFailed (nothing stored) when the model fails."""
        found = active_summary(session.meta, session.messages)
        previous, start = (found[0], found[1] + 1) if found else (None, 0)
        pinned = set(session.meta.pinned_messages)
        chosen = [
            m
            for m in session.messages[start : until + 1]
            if m.content and m.role != "system" and m.id not in pinned
        ]
        summary_settings = dataclasses.replace(
            settings, model=settings.summary_model or settings.model, max_tokens=length
        )
        model = self._model(settings)
        if not chosen:
            raise CompactionFailed(f'Session "{session.id}" has nothing to summarize there.')
        chosen = await self._what_fits(model, summary_settings, previous, chosen, instructions)
        if not chosen:
            raise CompactionFailed(
                f"The earlier messages could not be summarized: the oldest one not summarized yet is "
                f"longer than model {summary_settings.model!r} can read at once. Nothing was changed; "
                "set deskmate.summaryModel to a model with a larger context, or pin or fork around it."
            )
        until = session.messages.index(chosen[-1])
        prompt = summary_prompt(previous, chosen, instructions)
        async with self._lock(session.id):
            try:
                work = model_summary(model, summary_settings, prompt)
                text = await (asyncio.wait_for(work, timeout) if timeout else work)
            except asyncio.TimeoutError:
                raise CompactionFailed(
                    f"The earlier messages could not be summarized: the model took longer than "
                    f"{timeout:g} s (setting deskmate.summaryTimeout). Nothing was changed."
                ) from None
            except ModelError as exc:
                raise CompactionFailed(
                    f"The earlier messages could not be summarized ({exc}). Nothing was changed."
                ) from None
            summary = Summary.new(
                session.messages[0],
                session.messages[until],
                text,
                until + 1,
                model=summary_settings.model,
                instructions=instructions,
            )
            try:
                info = await self.sessions.change(session.id, added(summary))
            except SessionStoreError as exc:
                raise CompactionFailed(
                    f"The summary of the earlier messages could not be stored ({exc}). Nothing was changed."
                ) from None
            if info is None:
                raise SessionNotFound(session.id)
        session.meta = info.meta
        log.info("Session %s: %d messages summarized (summary %s)", session.id, until + 1, summary.id)
        return Compacted(session.id, summary)

    async def _what_fits(
        self,
        model: ModelClient,
        settings: Settings,
        previous: Summary | None,
        messages: list[Message],
        instructions: str | None,
    ) -> list[Message]:
        """The oldest of ``messages`` that fit one summary request in the summarizing model's
        window (all of them when it is unknown): the rest waits for the next compaction."""
        limit = prompt_limit(
            settings, self.counter, await context_window(settings, model), settings.max_tokens
        )
        if limit is None:
            return messages
        room = limit - self.counter.prompt(settings, summary_prompt(previous, [], instructions))
        fitting: list[Message] = []
        for message in messages:
            room -= self.counter.message(settings, f"Assistant: {sendable(message)}")
            if room < 0:
                break
            fitting.append(message)
        return fitting

    async def uncompact(self, session_id: str, summary_id: str) -> SessionInfo:
        """Drop a summary: the next ask sends the messages it stood for again, as far as they fit."""
        missing: list[bool] = []

        def change(info: SessionInfo) -> tuple[str, SessionMeta]:
            kept = [r for r in info.meta.summaries if r.get("id") != summary_id]
            missing[:] = [len(kept) == len(info.meta.summaries)]
            return info.title, dataclasses.replace(info.meta, summaries=kept)

        info = await self.sessions.change(session_id, change)
        if info is None:
            raise SessionNotFound(session_id)
        if missing and missing[0]:
            raise EngineError(f'Session "{session_id}" has no summary "{summary_id}".')
        return info

    # -- pins ----------------------------------------------------------------------

    async def pin(self, ref: SessionRef, message_id: str, pinned: bool) -> SessionInfo:
        """Pin a message (always sent, never summarized away) or unpin it."""
        session = await self._stored(ref)
        if all(m.id != message_id for m in session.messages):
            raise EngineError(f'Session "{session.id}" has no message "{message_id}".')

        def change(info: SessionInfo) -> tuple[str, SessionMeta]:
            ids = [i for i in info.meta.pinned_messages if i != message_id]
            if pinned:
                ids.append(message_id)
            if len(ids) > MAX_PINNED:
                raise InvalidArgument(
                    "messageId", f"cannot be pinned: a session holds {MAX_PINNED} pins at most"
                )
            return info.title, dataclasses.replace(info.meta, pinned_messages=ids)

        info = await self.sessions.change(session.id, change)
        if info is None:
            raise SessionNotFound(session.id)
        return info
