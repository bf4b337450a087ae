"""Answering a question: prompt, model stream, deltas, cancellation, and storing both turns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..memory import Message
from .errors import EngineError, SessionBusy
from .model_client import ModelClient, ModelError, Usage
from .prompt import build_messages
from .redaction import Redaction, redact_question
from .sessions import SessionRef, Sessions, refuse_trashed
from .settings import Settings

TITLE_LENGTH = 60
# The question's durable write starts when the answer's first piece is out, or after this long.
QUESTION_WRITE_DELAY = 0.02


@dataclass
class AskResult:
    session_id: str | None
    ask_id: str
    answer: str
    usage: Usage | None
    interrupted: bool
    redacted: Redaction = field(default_factory=Redaction)  # secrets taken out of the question


@dataclass
class RunningAsk:
    ask_id: str
    session_id: str | None
    cancelled: bool = False
    discarded: bool = False  # its session is being deleted: store nothing more
    task: asyncio.Task[Any] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


def title_from(question: str) -> str:
    first_line = question.strip().splitlines()[0] if question.strip() else ""
    return first_line if len(first_line) <= TITLE_LENGTH else first_line[: TITLE_LENGTH - 1] + "…"


class ModelClients:
    """The model client for the settings in force, built by ``factory``.

    A client is rebuilt only when a connection setting changes; the one it replaces
    closes once the asks streaming on it have ended.
    """

    def __init__(self, factory: Callable[[Settings], ModelClient]) -> None:
        self._factory = factory
        self._client: ModelClient | None = None
        self._retiring: set[asyncio.Future[None]] = set()

    def get(self, settings: Settings) -> ModelClient:
        if self._client is None:
            self._client = self._factory(settings)
        self._client.settings = settings  # per-request settings (temperature, maxTokens) apply at once
        return self._client

    def retire(self, running: list[RunningAsk]) -> None:
        if self._client is not None:
            retired, self._client = self._client, None
            waits = [ask.finished.wait() for ask in running]
            self._retiring.add(asyncio.ensure_future(_close_after(retired, waits)))

    async def close(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._client is not None:
            await self._client.close()


async def _close_after(model: ModelClient, waits: list[Any]) -> None:
    await asyncio.gather(*waits)
    await model.close()


class AskRunner:
    """Runs asks: one at a time per session, any number side by side across sessions."""

    def __init__(self, sessions: Sessions, models: ModelClients, settings: Callable[[], Settings]) -> None:
        self.sessions = sessions
        self.models = models
        self._settings = settings
        self._busy: dict[str | None, RunningAsk] = {}
        self._asks: dict[str, RunningAsk] = {}

    def running(self) -> list[RunningAsk]:
        return list(self._asks.values())

    def running_ask(self, session_id: str | None) -> str | None:
        running = self._busy.get(session_id)
        return running.ask_id if running else None

    def cancel(self, ask_id: str) -> bool:
        """Stop a running ask; its partial answer is kept. False if no such ask runs."""
        running = self._asks.get(ask_id)
        if running is None:
            return False
        running.cancel()
        return True

    async def stop(self, session_id: str) -> None:
        """Cancel the session's running ask, if any, and wait until it has stored what it will:
        its question, never its answer (the session is about to be deleted)."""
        running = self._busy.get(session_id)
        if running is not None:
            running.discarded = True
            running.cancel()
            await running.finished.wait()

    async def ask(
        self,
        question: str,
        *,
        ref: SessionRef,
        context: dict[str, Any] | None = None,
        ask_id: str | None = None,
        on_delta: Callable[[str], None] = lambda delta: None,
        on_streamed: Callable[[], None] = lambda: None,
        on_redacted: Callable[[Redaction], None] = lambda found: None,
    ) -> AskResult:
        """Answer ``question`` in the session ``ref``, streaming pieces to ``on_delta``;
        ``on_streamed`` is called once the model stream has ended, before anything is stored.

        With ``redactSecrets`` on, secrets in the question and its context are replaced
        before anything is stored or sent, and ``on_redacted`` is told what, once.

        The question's write starts beside the model request (the first piece never
        waits for it) and the answer is stored once it ends; the question is stored
        before any of the answer and both before this returns. If the question
        cannot be stored, the answer is stopped and the store's error raised.
        A cancelled answer returns ``interrupted=True``; a failed one is stored as
        interrupted and raises ModelError.
        """
        ask_id = ask_id or uuid.uuid4().hex
        if ref.id in self._busy:
            raise SessionBusy(
                f'Session "{ref.id or "(unsaved)"}" is still answering another question '
                f"(askId {self._busy[ref.id].ask_id}). Wait for it or cancel it."
            )
        if ask_id in self._asks:
            raise EngineError(f"An ask with askId {ask_id!r} is already running.")
        running = RunningAsk(ask_id, ref.id)
        self._busy[ref.id] = running
        self._asks[ask_id] = running
        try:
            return await self._ask(question, ref, context, running, on_delta, on_streamed, on_redacted)
        finally:
            del self._busy[ref.id]
            del self._asks[ask_id]
            running.finished.set()

    async def _ask(
        self,
        question_text: str,
        ref: SessionRef,
        context: dict[str, Any] | None,
        running: RunningAsk,
        on_delta: Callable[[str], None],
        on_streamed: Callable[[], None],
        on_redacted: Callable[[Redaction], None],
    ) -> AskResult:
        settings = self._settings()
        model = self.models.get(settings)
        model.check_configured()  # before anything is stored: nothing to keep from a request never sent
        redacted = Redaction()
        if settings.redact_secrets:  # before the question is stored, titled or sent
            question_text, context, redacted = redact_question(question_text, context)
            if redacted:
                on_redacted(redacted)
        session, _ = await self.sessions.current(ref)
        refuse_trashed(session.info())
        question = Message(role="user", content=question_text, context=context or None)
        prompt = build_messages(
            settings.system_prompt, session.messages, question, settings.max_history_tokens
        )
        title = session.title or title_from(question_text)
        store, key = self.sessions.store.for_session(ref.id)
        untitled = not session.messages and not session.title

        pieces: list[str] = []
        usage: Usage | None = None
        failure: ModelError | None = None
        outer_cancel: asyncio.CancelledError | None = None
        question_failed = False
        # The model request goes out first and the question's durable write runs beside it,
        # starting once the first piece is out (or QUESTION_WRITE_DELAY without one): the first
        # token never waits for a disk, a network store, or the worker thread the write wakes.
        # The write must succeed before any of the answer is stored and before the result is
        # returned (below).
        first_piece_out = asyncio.Event()
        write_anyway = asyncio.get_running_loop().call_later(QUESTION_WRITE_DELAY, first_piece_out.set)
        running.task = asyncio.ensure_future(_pump(model, prompt, pieces, on_delta, first_piece_out))

        async def write_question() -> None:
            await first_piece_out.wait()
            write_anyway.cancel()
            await self.sessions.add_question(
                store, key, question, title, ref.workspace_uri, untitled=untitled
            )

        stored_question = asyncio.ensure_future(write_question())

        def question_written(write: asyncio.Future[None]) -> None:
            nonlocal question_failed
            if not write.cancelled() and write.exception() is not None and running.task is not None:
                question_failed = True  # the ask fails with the store's error: stop the answer now
                running.task.cancel()

        stored_question.add_done_callback(question_written)
        if running.cancelled:
            running.task.cancel()
        try:
            usage = await running.task
        except asyncio.CancelledError as exc:
            if not running.cancelled and not question_failed:
                outer_cancel = exc  # the ask itself was cancelled: store what we have, then stop
        except ModelError as exc:
            failure = exc
        on_streamed()
        interrupted = running.cancelled or failure is not None or outer_cancel is not None
        answer = Message(
            role="assistant",
            content="".join(pieces),
            model=settings.model,
            usage=usage.to_dict() if usage else None,
            status="interrupted" if interrupted else "complete",
        )
        if running.discarded:
            # The session is being deleted: the question must be stored (or have failed) before
            # the delete runs, and the answer must not bring the session back.
            await asyncio.gather(asyncio.shield(stored_question), return_exceptions=True)
        else:
            # Shielded: a cancelled ask must still finish storing what the user saw. A failed
            # question write raises here: the ask fails with it and no answer is stored.
            await asyncio.shield(stored_question)
            await asyncio.shield(store.append(key, [answer]))
        if outer_cancel is not None:
            raise outer_cancel
        if failure is not None:
            raise failure
        return AskResult(ref.id, running.ask_id, answer.content, usage, interrupted, redacted)


async def _pump(
    model: ModelClient,
    prompt: list[dict[str, str]],
    pieces: list[str],
    on_delta: Callable[[str], None],
    first_piece_out: asyncio.Event,
) -> Usage | None:
    usage = None
    try:
        async for item in model.stream(prompt):
            if isinstance(item, str):
                pieces.append(item)
                on_delta(item)
                first_piece_out.set()
            else:
                usage = item
    finally:
        first_piece_out.set()  # no piece at all (a failure, a cancel): the question is written now
    return usage
