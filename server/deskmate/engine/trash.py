"""The trash and retention: deleting is undoable, expiring is opt-in, visible and safe.

A deleted session is not removed: its metadata gets ``deletedAt`` (set through the
store's compare-and-set ``update``, so every store keeps it with the session, and a
shared store shows it to every daemon). Listings leave it out; ``restore`` clears the
field and the session is back with every message, title and tag. The trash is
emptied ``trashDays`` after a session went there (or was last written, if later):
that *purge* is the only real delete besides ``permanent``.

``retentionDays`` (unset by default: nothing expires) moves sessions nobody has
written to for that long into the trash; pinned ones never. Users hear of it first.

Several daemons may sweep one store at once. A purge first *claims* the session with
``update`` (``purgingAt``: written only if the session is still due and unclaimed),
then deletes it, so two daemons never both purge, and a session restored or written
to meanwhile is never purged. A restore refuses a session claimed less than
``CLAIM_TIMEOUT`` ago (its purge is under way); an older claim was a daemon that died.

Nothing is expired or purged while a process is answering in the session: not this one
(``busy``), nor another daemon or terminal sharing the store. The sweep takes the
session's answering lease in the store (the one every ask holds, ``engine/leases.py``)
for as long as it changes or deletes the session, and leaves the session for the next
sweep when another process holds it; an ask that starts meanwhile is refused.

The daemon's clock can be moved for tests of the real daemon: ``DESKMATE_TEST_CLOCK_FILE``
(``FileClock``); unset, it is the real time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..memory import MemoryBackend, SessionInfo, SessionStoreError
from ..memory.atomic import ensure_private_dir, replace_atomically
from ..memory.errors import BackendUnavailable
from ..memory.models import SessionMeta
from ..memory.patches import MetaPatch
from ..memory.watching import LEASE_SECONDS
from .errors import EngineError
from .leases import holder_name

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
WARN_AHEAD = timedelta(days=7)  # users hear of an expiry this long before it
CLAIM_TIMEOUT = timedelta(hours=1)  # a purge claim older than this was left by a daemon that died


CLOCK_FILE_ENV = "DESKMATE_TEST_CLOCK_FILE"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class FileClock:
    """A clock a test moves from outside a real daemon: the real time plus the offset, in
    seconds, written in ``path`` (``86400`` is a day ahead), or the ISO 8601 time written there
    (``2030-01-01T00:00:00Z``); the real time while the file is missing, empty or unreadable.
    Read on every call, so writing the file moves the clock of a running daemon.

    A testing aid (``DESKMATE_TEST_CLOCK_FILE``, docs/protocol.md): only the trash and retention
    read it (when sessions expire, are purged, the daily warning); stores stamp what they write
    with the real time.
    """

    POLL = 0.1  # seconds between reads of the file while waiting for it to change (``moved``)

    def __init__(self, path: Path) -> None:
        self.path = path

    def reading(self) -> str:
        """What the file says now ("" when missing or unreadable)."""
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""

    def __call__(self) -> datetime:
        text = self.reading()
        try:
            return utc_now() + timedelta(seconds=float(text))
        except (ValueError, OverflowError):
            return parse_time(text) or utc_now()

    async def moved(self, since: str) -> None:
        """Return once the file says something else than ``since`` (a ``reading``)."""
        while self.reading() == since:
            await asyncio.sleep(self.POLL)


def clock_from_environment() -> Callable[[], datetime]:
    """The real time, or a FileClock when ``DESKMATE_TEST_CLOCK_FILE`` names a file (tests)."""
    path = os.environ.get(CLOCK_FILE_ENV)
    if not path:
        return utc_now
    log.info("The time of retention and the trash is read from %s (%s, a testing aid)", path, CLOCK_FILE_ENV)
    return FileClock(Path(path))


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as every time deskmate stores."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """A stored time, or None when there is none or it does not parse (never acted on then)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def in_trash(info: SessionInfo) -> bool:
    return info.meta.deleted_at is not None


def purge_after(info: SessionInfo, trash_days: int) -> datetime | None:
    """When a trashed session may be purged: ``trash_days`` after it was deleted or last
    written, whichever is later (an answer that lands after the delete restarts the clock)."""
    deleted = parse_time(info.meta.deleted_at)
    if deleted is None:
        return None
    updated = parse_time(info.updated_at) or deleted
    return max(deleted, updated) + timedelta(days=trash_days)


def expires_at(info: SessionInfo, retention_days: int | None) -> datetime | None:
    """When a session goes to the trash by retention; None: never (no retention, pinned, or
    in the trash already)."""
    if retention_days is None or info.meta.pinned or in_trash(info):
        return None
    updated = parse_time(info.updated_at) or parse_time(info.created_at)
    return None if updated is None else updated + timedelta(days=retention_days)


class NotInTrash(EngineError):
    pass


class _Skip(Exception):
    """Raised inside an ``update`` change to write nothing: the session is not what we thought."""


@dataclass
class SweepReport:
    """What a sweep did (or, dry, would do)."""

    trashed: list[SessionInfo] = field(default_factory=list)  # retention moved them
    purged: list[SessionInfo] = field(default_factory=list)
    expiring: list[tuple[SessionInfo, datetime]] = field(default_factory=list)  # within WARN_AHEAD
    skipped: list[tuple[SessionInfo, str]] = field(default_factory=list)  # due, left for now: why


def trash_patch(now: datetime) -> MetaPatch:
    """Move to the trash; a session already there keeps the time it went (replayable: a
    patch can wait in a shared store's outbox)."""
    return MetaPatch({"deletedAt": iso(now)}, only_missing=True)


def restore_change(session_id: str, now: datetime):
    def change(info: SessionInfo) -> tuple[str, SessionMeta]:
        if not in_trash(info):
            raise NotInTrash(f'Session "{session_id}" is not in the trash.')
        claimed = parse_time(info.meta.purging_at)
        if claimed is not None and now - claimed < CLAIM_TIMEOUT:
            raise EngineError(
                f'Session "{session_id}" is being purged from the trash; it cannot be restored.'
            )
        meta = info.meta.copy()
        meta.deleted_at = meta.purging_at = None
        return info.title, meta

    return change


def claim_change(trash_days: int, now: datetime):
    """Claim a purge: only a session still in the trash, due, and not claimed by a live daemon."""

    def change(info: SessionInfo) -> tuple[str, SessionMeta]:
        due = purge_after(info, trash_days)
        if due is None or due > now:
            raise _Skip("restored or written to meanwhile")
        claimed = parse_time(info.meta.purging_at)
        if claimed is not None and now - claimed < CLAIM_TIMEOUT:
            raise _Skip("another daemon is purging it")
        meta = info.meta.copy()
        meta.purging_at = iso(now)
        return info.title, meta

    return change


def expire_change(retention_days: int, now: datetime):
    """Move to the trash by retention: only if the session is still as old and not pinned."""

    def change(info: SessionInfo) -> tuple[str, SessionMeta]:
        due = expires_at(info, retention_days)
        if due is None or due > now:
            raise _Skip("pinned, trashed or written to meanwhile")
        meta = info.meta.copy()
        meta.deleted_at = iso(now)
        return info.title, meta

    return change


class Trash:
    """Sweeps a store: retention into the trash, and purges out of it.

    ``busy(session_id)`` says whether this daemon is answering in a session (another
    process answering in it holds its answering lease, which the sweep takes first);
    ``clock`` gives the time (tests pass a controllable one).
    """

    def __init__(
        self, busy: Callable[[str], bool], clock: Clock = utc_now, *, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.busy = busy
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.holder = holder_name("sweeping")  # never this process's asks' holder: they exclude each other

    def expiring(
        self, infos: list[SessionInfo], retention_days: int | None
    ) -> list[tuple[SessionInfo, datetime]]:
        """Sessions that go to the trash within WARN_AHEAD, soonest first."""
        now = self.clock()
        soon = [(info, expires_at(info, retention_days)) for info in infos]
        found = [(info, when) for info, when in soon if when is not None and now < when <= now + WARN_AHEAD]
        return sorted(found, key=lambda pair: pair[1])

    async def sweep(
        self,
        store: MemoryBackend,
        *,
        retention_days: int | None,
        trash_days: int,
        dry_run: bool = False,
    ) -> SweepReport:
        """Move expired sessions to the trash and purge the trash's due ones.

        Nothing is done while the store is unreachable (it raises BackendUnavailable,
        or, wrapped for outages, says ``unavailable``): a listing from memory is never
        acted on.
        """
        if getattr(store, "unavailable", None) is not None:
            raise store.unavailable  # type: ignore[attr-defined]
        infos = await store.list()
        if getattr(store, "unavailable", None) is not None:
            raise store.unavailable  # type: ignore[attr-defined]
        report = SweepReport(expiring=self.expiring(infos, retention_days))
        now = self.clock()
        for info in infos:
            expiry = expires_at(info, retention_days)
            if expiry is not None and expiry <= now:
                await self._expire(store, info, retention_days, now, dry_run, report)
            due = purge_after(info, trash_days)
            if due is not None and due <= now:
                await self._purge(store, info, trash_days, now, dry_run, report)
        return report

    async def _expire(self, store, info, retention_days, now, dry_run, report) -> None:
        if self._answering_here(info, report):
            return
        if dry_run:
            report.trashed.append(info)
            return
        async with self._leased(store, info, report) as leased:
            if not leased:
                return
            moved = await self._change(store, info, expire_change(retention_days, now), report)
        if moved is not None:
            report.trashed.append(moved)

    async def _purge(self, store, info, trash_days, now, dry_run, report) -> None:
        if self._answering_here(info, report):
            return
        if dry_run:
            report.purged.append(info)
            return
        async with self._leased(store, info, report) as leased:
            if not leased:
                return
            claimed = await self._change(store, info, claim_change(trash_days, now), report)
            if claimed is None:
                return  # left for now, or gone: another daemon purged it
            # An ask of this process that started meanwhile (refused in the trash, but be sure).
            if self._answering_here(info, report):
                return
            await store.delete(info.id)
        log.info("Purged session %r from the trash (deleted at %s)", info.id, info.meta.deleted_at)
        report.purged.append(claimed)

    def _answering_here(self, info: SessionInfo, report: SweepReport) -> bool:
        if self.busy(info.id):
            report.skipped.append((info, "answering"))
            return True
        return False

    @asynccontextmanager
    async def _leased(
        self, store: MemoryBackend, info: SessionInfo, report: SweepReport
    ) -> AsyncIterator[bool]:
        """Hold the session's answering lease for the block: True; False (and the session is
        left for the next sweep) while another process holds it, answering in the session.
        Held, it keeps any process from starting an answer in the session meanwhile."""
        try:
            taken = await store.claim_answer(info.id, self.holder, self.lease_seconds)
        except BackendUnavailable:
            raise  # nothing is swept while the store is unreachable
        except SessionStoreError as exc:
            report.skipped.append((info, str(exc)))
            taken = None
        if not taken:
            if taken is False:
                report.skipped.append((info, "another process is answering in it, or sweeping it"))
            yield False
            return
        try:
            yield True
        finally:
            try:
                await asyncio.shield(store.release_answer(info.id, self.holder))
            except Exception as exc:  # it expires by itself (files: when this process ends)
                log.info("Could not release the lease of session %r after sweeping it: %s", info.id, exc)

    async def _change(self, store: MemoryBackend, info: SessionInfo, change, report: SweepReport):
        """``store.update(info.id, change)``: the session as changed, or None when it is gone or
        left as it was (``report.skipped`` says why)."""
        try:
            return await store.update(info.id, change)
        except _Skip as why:
            report.skipped.append((info, str(why)))
        except SessionStoreError as exc:  # one session that cannot be changed never stops a sweep
            if isinstance(exc, BackendUnavailable):
                raise
            report.skipped.append((info, str(exc)))
        return None


class DailyWarning:
    """Remembers (in ``path``, shared by every daemon of the data dir) when the expiry warning
    was last shown, so it is shown once a day however many editors are open."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def due(self, now: datetime) -> bool:
        try:
            shown = parse_time(json.loads(self.path.read_text()).get("warnedAt"))
        except (OSError, ValueError, AttributeError):
            shown = None
        return shown is None or now - shown >= timedelta(days=1)

    def shown(self, now: datetime) -> None:
        try:
            ensure_private_dir(self.path.parent)
            replace_atomically(self.path, json.dumps({"warnedAt": iso(now)}).encode())
        except OSError as exc:  # then it is shown again next time: better than never
            log.info("Could not note the expiry warning in %s: %s", self.path, exc)


def describe_trashed(trashed: list[SessionInfo], retention_days: int, trash_days: int) -> str:
    """The notice: which sessions retention just moved to the trash, and how to get them back."""
    names = ", ".join(f'"{(info.title or info.id)[:60]}" ({info.id})' for info in trashed[:5])
    more = f" and {len(trashed) - 5} more" if len(trashed) > 5 else ""
    sessions = "session" if len(trashed) == 1 else "sessions"
    return (
        f"deskmate: {len(trashed)} {sessions} not used for {retention_days} days went to the trash "
        f"(the retentionDays setting): {names}{more}. Restore them from the trash within {trash_days} days."
    )


def describe_expiring(
    expiring: list[tuple[SessionInfo, datetime]], retention_days: int, trash_days: int, now: datetime
) -> str:
    """The warning: which sessions go to the trash soon, and how to keep them."""
    count = len(expiring)
    shown = []
    for info, when in expiring[:5]:
        days = max(1, round((when - now) / timedelta(days=1)))
        label = info.title or info.id
        shown.append(f'"{label[:60]}" ({info.id}, in {days} day{"s" if days != 1 else ""})')
    more = f" and {count - 5} more" if count > 5 else ""
    sessions = "session goes" if count == 1 else "sessions go"
    return (
        f"deskmate: {count} {sessions} to the trash within 7 days (not used for {retention_days} days, "
        f"the retentionDays setting): {', '.join(shown)}{more}. To keep one, ask in it; to keep "
        f"everything, unset retentionDays. From the trash a session can be restored for {trash_days} days."
    )


__all__ = [
    "CLOCK_FILE_ENV",
    "BackendUnavailable",
    "DailyWarning",
    "FileClock",
    "NotInTrash",
    "SweepReport",
    "Trash",
    "clock_from_environment",
    "describe_expiring",
    "expires_at",
    "in_trash",
    "iso",
    "parse_time",
    "purge_after",
    "utc_now",
]
