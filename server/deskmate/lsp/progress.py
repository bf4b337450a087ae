"""Reporting one ask to the client: deltas in order, and work-done progress when supported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from .server import DeskmateServer

log = logging.getLogger(__name__)

DELTA_NOTIFICATION = "deskmate/askDelta"
REPORT_INTERVAL_SECONDS = 0.25
# A progress is created once the first delta is out, or after this long without one.
PROGRESS_DELAY_SECONDS = 0.1


class AskReporter:
    """Sends an ask's text as ``deskmate/askDelta`` notifications, and a cancellable progress.

    Deltas are coalesced: the first goes out at once; after each delta, text that
    arrives within ``window`` seconds is held and goes out as one delta when the
    window ends, so a fast model costs the editor at most one notification per
    window. ``index`` counts notifications; ``flush`` (or ``end``) sends what is held.

    Creating the progress is a round trip to the client, so it starts only once the
    first delta is out (or after PROGRESS_DELAY_SECONDS without one): it never
    delays the first token, and deltas never wait for it.
    """

    def __init__(
        self,
        server: DeskmateServer,
        ask_id: str,
        session_id: str | None,
        on_cancel: Callable[[], None],
        *,
        window: float = 0.0,
    ):
        self.server = server
        self.ask_id = ask_id
        self.session_id = session_id
        self.index = 0
        self.characters = 0
        self._window = window
        self._loop = asyncio.get_running_loop()
        self._held: list[str] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_sent = float("-inf")
        self._on_cancel = on_cancel
        self._token: str | None = None
        self._last_report = 0.0
        self._ended = False
        self._creating: asyncio.Task[None] | None = None
        self._progress_timer: asyncio.TimerHandle | None = None
        if server.supports_work_done_progress():
            self._progress_timer = self._loop.call_later(PROGRESS_DELAY_SECONDS, self._start_progress)

    def delta(self, text: str) -> None:
        if not text:
            return
        self.characters += len(text)
        if self._flush_timer is not None:
            self._held.append(text)
            return
        if self._loop.time() - self._last_sent >= self._window:
            self._send(text)
        else:
            self._held.append(text)
            self._flush_timer = self._loop.call_at(self._last_sent + self._window, self.flush)

    def flush(self) -> None:
        """Send the text held back now (its window ended, or the ask did)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._held:
            text = "".join(self._held)
            self._held.clear()
            self._send(text)

    def _send(self, text: str) -> None:
        self.server.protocol.notify(
            DELTA_NOTIFICATION,
            {"askId": self.ask_id, "sessionId": self.session_id, "delta": text, "index": self.index},
        )
        self._last_sent = now = self._loop.time()
        self.index += 1
        if self.index == 1:
            self._start_progress()
        elif self._token is not None and now - self._last_report >= REPORT_INTERVAL_SECONDS:
            self._last_report = now
            self.server.work_done_progress.report(
                self._token, types.WorkDoneProgressReport(message=f"{self.characters} characters")
            )

    def _start_progress(self) -> None:
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None
            if not self._ended:
                self._creating = asyncio.ensure_future(self._begin_progress())

    async def _begin_progress(self) -> None:
        token = f"deskmate-ask-{self.ask_id}"
        progress = self.server.work_done_progress
        try:
            await progress.create_async(token)
        except Exception as exc:  # the client may refuse; the answer goes on without progress
            log.info("Client refused work done progress: %s", exc)
            return
        if self._ended:
            return
        progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title="deskmate", message=f"Asking {self.server.assistant.settings.model}…", cancellable=True
            ),
        )
        self._token = token
        # pygls cancels this future when the client sends window/workDoneProgress/cancel.
        progress.tokens[token].add_done_callback(lambda future: future.cancelled() and self._on_cancel())

    def end(self, message: str) -> None:
        """Send the text still held, then end the progress (before the ask's result goes out)."""
        self.flush()
        # A progress still being created is left to finish: _begin_progress sees _ended and
        # stops there. Cancelling it would leave pygls a reply to a request nobody awaits.
        self._ended = True
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None
        if self._token is not None:
            progress = self.server.work_done_progress
            progress.end(self._token, types.WorkDoneProgressEnd(message=message))
            progress.tokens.pop(self._token, None)
