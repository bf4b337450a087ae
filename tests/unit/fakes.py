"""A fake model for in-process engine tests: scripted pieces, recorded prompts, optional pauses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from deskmate.engine import ModelError, Settings, Usage
from deskmate.engine.model_client import ContextOverflow, Finished


class FakeModel:
    """Stands in for ``ModelClient``: ``answer`` is streamed word by word.

    ``gate``, when set, is awaited after the first piece, so a test can act while an
    answer is half-way; ``pause`` sleeps that many seconds between pieces (a paced
    stream); ``fail`` raises ModelError after the pieces. ``sent`` counts the pieces
    streamed so far. ``window`` makes it a small local model: the context window it
    reports, and prompts over it (4 characters a token) refused as a server would
    (``report_window=False``: refused, but not reported); ``finish`` is the finish reason
    it gives (e.g. ``length``).
    """

    def __init__(self, settings: Settings, answer: str = "fake answer", *, fail: str | None = None) -> None:
        self.settings = settings
        self.answer = answer
        self.fail = fail
        self.gate: asyncio.Event | None = None
        self.pause = 0.0
        self.sent = 0
        self.started = asyncio.Event()
        self.prompts: list[list[dict[str, str]]] = []
        self.closed = False
        self.window: int | None = None
        self.report_window = True
        self.learned: int | None = None
        self.finish: str | None = None

    async def context_window(self) -> int | None:
        return self.learned or (self.window if self.report_window else None)

    def learn_window(self, window: int) -> None:
        self.learned = window

    def check_configured(self) -> None:
        pass

    async def stream(
        self, messages: list[dict[str, str]], settings: Settings | None = None
    ) -> AsyncIterator[str | Usage]:
        self.prompts.append(messages)
        if self.window is not None and sum(len(m["content"]) for m in messages) // 4 > self.window:
            raise ContextOverflow(
                "the request exceeds the available context size",
                self.learned or (self.window if self.report_window else None),
            )
        words = self.answer.split(" ") if self.answer else []
        for index, word in enumerate(words):
            if index and self.pause:
                await asyncio.sleep(self.pause)
            self.sent += 1
            yield word if index == len(words) - 1 else word + " "
            self.started.set()
            if self.gate is not None:
                await self.gate.wait()
        if self.fail:
            raise ModelError(self.fail)
        if self.finish:
            yield Finished(self.finish)
        yield Usage(len(messages), len(words), len(messages) + len(words))

    async def close(self) -> None:
        self.closed = True


class WatchedStore:
    """A real store with its appends watched: ``events`` records each append's start and end
    by role; ``question_gate``, when set, holds a question's append until it is set;
    ``question_error`` makes a question's append fail with it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[str] = []
        self.question_gate: asyncio.Event | None = None
        self.question_error: Exception | None = None

    async def append(self, session_id: str, messages: list[Any], **kw: Any) -> None:
        role = messages[0].role
        self.events.append(f"{role} write starts")
        if role == "user" and self.question_gate is not None:
            await self.question_gate.wait()
        if role == "user" and self.question_error is not None:
            raise self.question_error
        await self.inner.append(session_id, messages, **kw)
        self.events.append(f"{role} stored")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
