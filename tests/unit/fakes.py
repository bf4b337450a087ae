"""A fake model for in-process engine tests: scripted pieces, recorded prompts, optional pauses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from deskmate.engine import ModelError, Settings, Usage


class FakeModel:
    """Stands in for ``ModelClient``: ``answer`` is streamed word by word.

    ``gate``, when set, is awaited after the first piece, so a test can act while an
    answer is half-way; ``fail`` raises ModelError after the pieces.
    """

    def __init__(self, settings: Settings, answer: str = "fake answer", *, fail: str | None = None) -> None:
        self.settings = settings
        self.answer = answer
        self.fail = fail
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.prompts: list[list[dict[str, str]]] = []
        self.closed = False

    def check_configured(self) -> None:
        pass

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str | Usage]:
        self.prompts.append(messages)
        words = self.answer.split(" ")
        for index, word in enumerate(words):
            yield word if index == len(words) - 1 else word + " "
            self.started.set()
            if self.gate is not None:
                await self.gate.wait()
        if self.fail:
            raise ModelError(self.fail)
        yield Usage(len(messages), len(words), len(messages) + len(words))

    async def close(self) -> None:
        self.closed = True
