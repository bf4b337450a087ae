"""Answering a question: prompt, model stream, deltas, cancellation, and storing both turns."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..memory import MemoryBackend, Message, Session
from .compaction import KEEP_SHARE, Compacted, Compaction, CompactionFailed
from .errors import EngineError, SessionBusy
from .history import Fitted, fit
from .leases import AnswerLeases
from .live import LiveSessions
from .model_client import ContextOverflow, Finished, ModelClient, ModelError, Usage
from .prompt import with_context
from .redaction import Redaction, redact_question
from .sessions import SessionRef, Sessions, refuse_trashed
from .settings import Settings
from .titles import give_title
from .tokens import TokenCounter, context_window, prompt_limit

ProjectSettings = Callable[[Settings, SessionRef], Awaitable[Settings]]

TITLE_LENGTH = 60
# The question's durable write starts when the answer's first piece is out, or after this long.
QUESTION_WRITE_DELAY = 0.02
# Ends an answer the model stopped at its token limit (maxTokens, or a full context window).
CUT_OFF_NOTE = "\n\n(cut off at the length limit)"


@dataclass
class AskResult:
    session_id: str | None
    ask_id: str
    answer: str
    usage: Usage | None
    interrupted: bool
    redacted: Redaction = field(default_factory=Redaction)  # secrets taken out of the question
    compacted: Compacted | None = None  # earlier turns this ask summarized first
    compaction_error: str | None = None  # why they could not be (the ask went on without)


@dataclass(frozen=True)
class NextPrompt:
    """What the next ask of a session sends besides its question (``AskRunner.next_prompt``)."""

    tokens: int
    context_window: int | None
    limit: int | None  # the most a prompt may take in that window (None: no window known)
    history_budget: int
    counted_by: str  # tiktoken, calibrated or estimated
    summarized: int  # messages a summary stands for
    left_out: int  # messages neither summarized nor sent (the next ask summarizes them)


@dataclass
class RunningAsk:
    ask_id: str
    session_id: str | None
    cancelled: bool = False
    discarded: bool = False  # its session is being deleted: store nothing more
    task: asyncio.Task[Any] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    then: Callable[[], None] | None = None  # runs once the ask has ended (lease released)

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

    def __init__(
        self,
        sessions: Sessions,
        models: ModelClients,
        folder_settings: Callable[[str | None], Settings],
        project_settings: ProjectSettings | None = None,
        counter: TokenCounter | None = None,
        compaction: Compaction | None = None,
        *,
        leases: AnswerLeases | None = None,
        live: LiveSessions | None = None,
    ) -> None:
        self.sessions = sessions
        self.models = models
        # The settings of asks in a folder: the model chosen for it, else the model setting.
        self._folder_settings = folder_settings
        # The settings an ask in a session sends with: its project's memory in the system
        # prompt (project_memory.py); None: the settings as they are.
        self.project_settings = project_settings
        self.leases = leases or AnswerLeases(sessions.store)  # one answer per session across processes
        self.live = live or LiveSessions(sessions.store)
        self.counter = counter or TokenCounter()
        self.compaction = compaction  # None: earlier turns that do not fit are left out, unsummarized
        self._busy: dict[str | None, RunningAsk] = {}
        self._asks: dict[str, RunningAsk] = {}
        self.titling: set[asyncio.Task[str | None]] = set()  # automatic titles being made

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
        on_notice: Callable[[str], None] = lambda message: None,
    ) -> AskResult:
        """Answer ``question`` in the session ``ref``, streaming pieces to ``on_delta``;
        ``on_streamed`` is called once the model stream has ended, before anything is stored.

        With ``redactSecrets`` on, secrets in the question and its context are replaced
        before anything is stored or sent, and ``on_redacted`` is told what, once.

        When the history does not fit, its oldest turns are summarized first (one
        summarization at most, ``summaryTimeout``); ``on_notice`` is told when that fails.

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
            # Another process (a daemon, the CLI) may be answering in it: refused the same way.
            async with self.leases.holding(ref.id), self.live.quiet(ref.id):
                await self.live.open(ref.id)
                result = await self._ask(
                    question, ref, context, running, on_delta, on_streamed, on_redacted, on_notice
                )
        finally:
            del self._busy[ref.id]
            del self._asks[ask_id]
            running.finished.set()
        if running.then is not None:
            running.then()
        return result

    async def _ask(
        self,
        question_text: str,
        ref: SessionRef,
        context: dict[str, Any] | None,
        running: RunningAsk,
        on_delta: Callable[[str], None],
        on_streamed: Callable[[], None],
        on_redacted: Callable[[Redaction], None],
        on_notice: Callable[[str], None],
    ) -> AskResult:
        settings = self._folder_settings(ref.workspace_uri)
        model = self.models.get(settings)
        model.check_configured()  # before anything is stored: nothing to keep from a request never sent
        redacted = Redaction()
        if settings.redact_secrets:  # before the question is stored, titled or sent
            question_text, context, redacted = redact_question(question_text, context)
            if redacted:
                on_redacted(redacted)
        session, _ = await self.sessions.current(ref)
        refuse_trashed(session.info())
        settings = await self.with_project(settings, ref)
        question = Message(role="user", content=question_text, context=context or None)
        fitting = PromptFitting(settings, model, self.counter, session, question)
        window = await fitting.window_of()
        prompt = fitting.first(window)
        compacted: Compacted | None = None
        compaction_error: str | None = None
        if fitting.fitted.drops_any() and settings.auto_compact and ref.id is not None and self.compaction:
            # The ask's task while it runs, so cancelling the ask stops the summary too.
            running.task = asyncio.ensure_future(
                self.compaction.for_ask(
                    session, fitting.fitted, fitting.keeping(), fitting.summary_room(), settings
                )
            )
            try:
                compacted = await running.task
            except CompactionFailed as exc:
                compaction_error = str(exc)
                on_notice(compaction_error)
            except asyncio.CancelledError:
                if not running.cancelled:
                    raise
                compaction_error = "The summary of earlier messages was cancelled. Nothing was changed."
            else:
                prompt = fitting.first(window)  # the summary in place of the turns it covers
        title = session.title or title_from(question_text)
        store, key = self.sessions.store.for_session(ref.id)
        untitled = not session.messages and not session.title
        identity = await self.sessions.project_of(ref.workspace_uri) if ref.id is not None else None
        project = identity.id if identity is not None and session.meta.project is None else None

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
        running.task = asyncio.ensure_future(
            _answer(model, prompt, fitting, pieces, on_delta, first_piece_out)
        )

        async def write_question() -> None:
            await first_piece_out.wait()
            write_anyway.cancel()
            await self.sessions.add_question(
                store, key, question, title, ref.workspace_uri, untitled=untitled, project=project
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
            if usage is not None:
                self.counter.calibrate(settings, fitting.sent, usage.prompt_tokens)
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
            error=str(failure) if failure is not None else None,
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
        if untitled and not interrupted and settings.auto_title and ref.id is not None:
            session_id = ref.id  # named once the ask has ended: other windows hear of the new title
            running.then = lambda: self._title_later(store, session_id, model, question_text, title)
        return AskResult(
            ref.id, running.ask_id, answer.content, usage, interrupted, redacted, compacted, compaction_error
        )

    async def with_project(self, settings: Settings, ref: SessionRef) -> Settings:
        """``settings`` with ``ref``'s project memory and instructions in the system prompt."""
        return settings if self.project_settings is None else await self.project_settings(settings, ref)

    async def next_prompt(self, session: Session, ref: SessionRef) -> NextPrompt:
        """What the next ask in ``session``, asked from ``ref``'s folder, would send before its
        question: its tokens (the project's memory and instructions included, counted for the
        folder's model), the window and limit they are held to, and how much of the history is
        summarized or left out."""
        settings = await self.with_project(self._folder_settings(ref.workspace_uri), ref)
        fitting = PromptFitting(settings, self.models.get(settings), self.counter, session, None)
        window = await fitting.window_of()
        try:
            fitting.first(window)
        except ContextOverflow:  # the pins alone overflow: said when asking; here, the count
            fitting.window = None
            fitting.first(None)
        fitted = fitting.fitted
        assert fitted is not None
        return NextPrompt(
            tokens=fitted.tokens,
            context_window=window,
            limit=fitting.limit(window),
            history_budget=fitting._budget(window),
            counted_by=self.counter.method(settings),
            summarized=fitted.covered_until + 1,
            left_out=len(fitted.dropped),
        )

    def _title_later(
        self, store: MemoryBackend, session_id: str, model: ModelClient, question: str, first_line: str
    ) -> None:
        """Name a session after its first answer, in the background (``titles.py``)."""
        task = asyncio.ensure_future(give_title(store, session_id, model, question, first_line))
        self.titling.add(task)
        task.add_done_callback(self.titling.discard)

    async def close(self) -> None:
        """Stop naming sessions (a title not stored yet leaves the first line)."""
        for task in list(self.titling):
            task.cancel()
        await asyncio.gather(*self.titling, return_exceptions=True)


class PromptFitting:
    """The prompt for one ask (engine/history.py), and a smaller one when the model's context
    refused it. Tokens are counted as ``counter`` counts them for the model."""

    def __init__(
        self,
        settings: Settings,
        model: ModelClient,
        counter: TokenCounter,
        session: Session,
        question: Message | None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.counter = counter
        self.session = session
        self.question = question
        self.window: int | None = None
        self.fitted: Fitted | None = None
        self.sent: list[dict[str, str]] = []  # the last prompt built
        self.history_sent = 0  # tokens of earlier turns (summary and pins too) in it

    async def window_of(self) -> int | None:
        return await context_window(self.settings, self.model)

    def count(self, content: str) -> int:
        return self.counter.message(self.settings, content)

    def first(self, window: int | None) -> list[dict[str, str]]:
        """Within maxHistoryTokens and, when it is known, the context window."""
        self.window = window
        prompt = self._build(self._budget(window))
        if prompt is None:
            raise ContextOverflow(self._too_long(), window)
        return prompt

    def keeping(self) -> Fitted:
        """The prompt fitted to KEEP_SHARE of the budget: the turns an automatic compaction keeps."""
        budget = int(max(0, self._budget(self.window)) * KEEP_SHARE)
        return fit(
            self.settings.system_prompt,
            self.session.messages,
            self.question,
            self.session.meta,
            budget,
            self.count,
        )

    def summary_room(self) -> int:
        """The longest summary (tokens) worth writing: half the history budget, so the turns
        kept beside it still fit."""
        return max(0, self._budget(self.window)) // 2

    def smaller(self, overflow: ContextOverflow) -> list[dict[str, str]]:
        """The prompt to try once more after ``overflow``: fitted to the window the server
        named, else with half the earlier turns; raises ModelError saying what to set when
        there is nothing left to take out."""
        if overflow.window:
            self.model.learn_window(overflow.window)
            self.window = overflow.window
        if not self.history_sent:
            raise ContextOverflow(self._too_long(), self.window)
        budget = self.history_sent // 2
        if self.window:
            budget = min(budget, max(0, self._budget(self.window)))
        prompt = self._build(budget)
        if prompt is None:
            raise ContextOverflow(self._too_long(), self.window)
        return prompt

    def limit(self, window: int | None) -> int | None:
        return prompt_limit(self.settings, self.counter, window)

    def _budget(self, window: int | None) -> int:
        """Tokens of earlier turns (summary and pins included) that may go with the question."""
        settings = self.settings
        limit = self.limit(window)
        if limit is None:
            return settings.max_history_tokens
        fixed = self.count(settings.system_prompt) if settings.system_prompt else 0
        if self.question is not None:
            fixed += self.count(with_context(self.question.content, self.question.context))
        return min(settings.max_history_tokens, limit - fixed)

    def _build(self, budget: int) -> list[dict[str, str]] | None:
        if budget < 0:
            return None
        settings = self.settings
        meta = self.session.meta
        fitted = fit(settings.system_prompt, self.session.messages, self.question, meta, budget, self.count)
        limit = self.limit(self.window)
        if limit is not None and fitted.tokens > limit and fitted.summary is not None:
            # A summary longer than the room left: the turns that fit are sent without it.
            meta = dataclasses.replace(meta, summaries=[])
            fitted = fit(
                settings.system_prompt, self.session.messages, self.question, meta, budget, self.count
            )
        if limit is not None and fitted.tokens > limit:
            # Only the pinned messages, always sent, can overflow a budget.
            raise ContextOverflow(self._pins_too_long(), self.window)
        self.fitted, self.sent, self.history_sent = fitted, fitted.messages, fitted.history_tokens
        return fitted.messages

    def _pins_too_long(self) -> str:
        return (
            f"The pinned messages of this session do not fit "
            f"the context window of model {self.settings.model!r} ({self.window} tokens) beside the question. "
            "Unpin some messages (deskmate.pinMessage), or run the model with a larger context."
        )

    def _too_long(self) -> str:
        window = f" ({self.window} tokens)" if self.window else ""
        return (
            f"The question and its context do not fit the context window of model "
            f"{self.settings.model!r}{window}, even without earlier turns. Shorten the question or the "
            "selection, or run the model with a larger context (llama.cpp: --ctx-size; Ollama: num_ctx)."
        )

    def still_too_long(self) -> str:
        window = f" ({self.window} tokens)" if self.window else ""
        return (
            f"The conversation does not fit the context window of model {self.settings.model!r}{window}, "
            "even with fewer earlier turns. Lower deskmate.maxHistoryTokens (now "
            f"{self.settings.max_history_tokens}) or deskmate.maxTokens, start a new session, or run the "
            "model with a larger context (llama.cpp: --ctx-size; Ollama: num_ctx)."
        )


async def _answer(
    model: ModelClient,
    prompt: list[dict[str, str]],
    fitting: PromptFitting,
    pieces: list[str],
    on_delta: Callable[[str], None],
    first_piece_out: asyncio.Event,
) -> Usage | None:
    """Stream the answer into ``pieces``. A prompt the model's context refused (an error
    saying so, or an empty answer stopped at the length limit) is made smaller and sent
    once more; an answer cut off at the length limit ends with CUT_OFF_NOTE."""
    try:
        for attempt in (1, 2):
            try:
                usage, finish = await _pump(model, prompt, pieces, on_delta, first_piece_out)
            except ContextOverflow as overflow:
                if pieces:
                    raise
                if attempt == 2:
                    raise ContextOverflow(fitting.still_too_long(), overflow.window) from overflow
                prompt = fitting.smaller(overflow)
                continue
            if finish == "length" and not pieces:  # the prompt filled the window: no room to answer
                if attempt == 2:
                    raise ContextOverflow(fitting.still_too_long())
                prompt = fitting.smaller(ContextOverflow("the answer stopped at the length limit"))
                continue
            if finish == "length":
                pieces.append(CUT_OFF_NOTE)
                on_delta(CUT_OFF_NOTE)
            return usage
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        first_piece_out.set()  # no piece at all (a failure, a cancel): the question is written now


async def _pump(
    model: ModelClient,
    prompt: list[dict[str, str]],
    pieces: list[str],
    on_delta: Callable[[str], None],
    first_piece_out: asyncio.Event,
) -> tuple[Usage | None, str | None]:
    usage = None
    finish = None
    async for item in model.stream(prompt):
        if isinstance(item, str):
            pieces.append(item)
            on_delta(item)
            first_piece_out.set()
        elif isinstance(item, Finished):
            finish = item.reason
        else:
            usage = item
    return usage, finish
