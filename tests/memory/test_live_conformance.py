"""Live sessions on every store: a watch sees what another process wrote, and one answer at a
time per session across processes (the answering lease)."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskmate.memory import Message, Session
from deskmate.memory.models import SessionMeta
from deskmate.memory.patches import fork_made
from deskmate.memory.watching import SessionChange
from helpers import turn
from memory.conftest import STORES

HOLDER = Path(__file__).with_name("lease_holder.py")
WAIT = 10.0  # seconds a change may take to be reported here (the 1 s target is benchmarked; CI machines are slow)

# Every store as it watches, and the file store a second time on its fallback: polling, as where
# inotify is unavailable (its watch limit reached) or untrusted (WATCHFILES_FORCE_POLLING set for
# a data dir on a network file system).
pytestmark = pytest.mark.parametrize(
    "store_kind, watching",
    [pytest.param(kind, "native", id=kind) for kind in sorted(STORES)]
    + [pytest.param("file", "polling", id="file-polling")],
)


@pytest.fixture(autouse=True)
def _watching(watching, monkeypatch):
    if watching == "polling":
        monkeypatch.setenv("WATCHFILES_FORCE_POLLING", "1")


class Recorder:
    """Runs a watch's ``changes()`` in a task and keeps what it reports."""

    def __init__(self, watch) -> None:
        self.watch = watch
        self.seen: list[SessionChange] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for change in self.watch.changes():
            self.seen.append(change)

    async def ready(self) -> None:
        await asyncio.wait_for(self.watch.ready.wait(), WAIT)

    async def next(self, session_id: str) -> SessionChange:
        """The next change reported for ``session_id`` (taken off the list)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for change in self.seen:
                if change.session_id == session_id:
                    self.seen.remove(change)
                    return change
            await asyncio.sleep(0.01)
        raise AssertionError(f"no change of {session_id!r} reported within {WAIT} s (saw {self.seen})")

    async def close(self) -> None:
        await self.watch.close()
        await asyncio.wait_for(self.task, WAIT)


async def test_a_watch_reports_what_another_process_did(backend, reopen, store_kind, watching):
    other = reopen()  # another daemon: no caches shared with ``backend``
    await other.append("live", turn(0), title="First")
    recorder = Recorder(backend.watch())
    await recorder.watch.follow("live")
    await recorder.watch.follow("born-later")
    await recorder.ready()
    if store_kind == "file":
        assert recorder.watch.mechanism.startswith("polling") == (watching == "polling")
    try:
        await other.append("live", turn(1))
        assert await recorder.next("live") == SessionChange("live", "appended", 4)
        await other.update("live", lambda info: ("Renamed", SessionMeta(tags=["x"])))
        assert await recorder.next("live") == SessionChange("live", "updated", 4)
        await other.append("born-later", [Message(role="user", content="hello")])
        assert await recorder.next("born-later") == SessionChange("born-later", "appended", 1)
        await other.delete("live")
        assert await recorder.next("live") == SessionChange("live", "deleted", 0)
    finally:
        await recorder.close()


async def test_a_fork_made_in_another_process_is_an_update_of_its_source(backend, reopen):
    """A fork writes itself (``save_copy``) and, on its source, only ``lastForkAt``: a watch
    of the source reports it ``updated`` (its history unchanged), so a window showing the
    source hears of its new fork; a second fork is reported again."""
    other = reopen()
    await other.append("source", turn(0) + turn(1), title="Source")
    recorder = Recorder(backend.watch())
    await recorder.watch.follow("source")
    await recorder.ready()
    try:
        for number in (1, 2):
            source = await other.load("source")
            fork = Session(
                id=f"source-fork-{number}",
                title="Source (fork)",
                meta=SessionMeta(forked_from={"sessionId": "source", "messageId": source.messages[1].id}),
                messages=source.messages[:2],
            )
            await other.save_copy(fork, "source")
            await other.update("source", fork_made(f"2026-01-0{number}T00:00:00.000Z"))
            assert await recorder.next("source") == SessionChange("source", "updated", 4)
        stored = await backend.load("source")
        assert stored.meta.last_fork_at == "2026-01-02T00:00:00.000Z"
        assert [m.content for m in stored.messages] == ["q0", "a0", "q1", "a1"]
        await asyncio.sleep(1.0)  # longer than any store's polling interval: nothing more
        assert recorder.seen == []
    finally:
        await recorder.close()


async def test_a_watch_reports_only_the_sessions_it_follows(backend, reopen):
    other = reopen()
    recorder = Recorder(backend.watch())
    await recorder.watch.follow("mine")
    await recorder.ready()
    try:
        await other.append("theirs", turn(0))
        await other.append("mine", turn(0))
        assert await recorder.next("mine") == SessionChange("mine", "appended", 2)
        recorder.watch.unfollow("mine")
        await other.append("mine", turn(1))
        await other.append("theirs", turn(1))
        await asyncio.sleep(1.0)  # longer than any store's polling interval
        assert recorder.seen == []
    finally:
        await recorder.close()


async def test_one_answering_lease_per_session_across_processes(backend, reopen):
    other = reopen()
    assert await backend.claim_answer("s", "daemon-a", 30) is True
    assert await other.claim_answer("s", "daemon-b", 30) is False
    assert await backend.claim_answer("s", "daemon-a", 30) is True  # a renewal
    assert await other.claim_answer("another-session", "daemon-b", 30) is True
    await other.release_answer("s", "daemon-b")  # not its lease: nothing happens
    assert await other.claim_answer("s", "daemon-b", 30) is False
    await backend.release_answer("s", "daemon-a")
    assert await other.claim_answer("s", "daemon-b", 30) is True
    assert await backend.claim_answer("s", "daemon-a", 30) is False
    await other.release_answer("s", "daemon-b")
    await other.release_answer("another-session", "daemon-b")


async def test_the_lease_of_a_killed_process_ends(backend, backend_url, store_kind):
    """A daemon killed while answering (SIGKILL: it releases nothing) frees the session: at
    once on files (the kernel drops its lock), within the lease's seconds on shared stores."""
    seconds = 2.0
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), backend_url, "s", "doomed", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert await backend.claim_answer("s", "survivor", seconds) is False
        await asyncio.sleep(seconds)  # renewed meanwhile: still held
        assert await backend.claim_answer("s", "survivor", seconds) is False
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    killed_at = time.monotonic()
    while not await backend.claim_answer("s", "survivor", seconds):
        assert time.monotonic() - killed_at < seconds + WAIT, "the dead process's lease never ended"
        await asyncio.sleep(0.05)
    if store_kind == "file":
        assert time.monotonic() - killed_at < 1.0
    await backend.release_answer("s", "survivor")
