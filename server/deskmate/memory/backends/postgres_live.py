"""Live sessions in PostgreSQL: changes through ``LISTEN/NOTIFY``, and answering leases as rows.

Migration 6 (``postgres.MIGRATIONS``) puts a trigger on the sessions table: every insert,
update or delete of a row, by any client, sends ``NOTIFY "deskmate.<schema>", '<id>'`` when
its transaction commits. A watch listens on a connection of its own and reads the summary
of each session it follows that a notification names. When the connection breaks it
reconnects (backing off up to RECONNECT_MAX seconds) and reads every followed session again,
since notifications sent meanwhile are lost.

A lease is a row of ``answer_leases`` (session id, holder, expiry), taken with one upsert
that succeeds only where there is none, it has expired, or it is the holder's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

from ..models import SessionInfo
from ..watching import SessionWatch

log = logging.getLogger(__name__)

RECONNECT_MAX = 10.0

# Migration 6's text (``{schema}``: the quoted schema name).
MIGRATION = """
CREATE FUNCTION {schema}.session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('deskmate.' || TG_TABLE_SCHEMA, OLD.id);
    ELSE
        PERFORM pg_notify('deskmate.' || TG_TABLE_SCHEMA, NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_changed AFTER INSERT OR UPDATE OR DELETE ON {schema}.sessions
    FOR EACH ROW EXECUTE FUNCTION {schema}.session_changed();
CREATE TABLE {schema}.answer_leases (
    session_id text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
"""

CLAIM = """
INSERT INTO {schema}.answer_leases AS l (session_id, holder, expires_at)
VALUES (%(id)s, %(holder)s, clock_timestamp() + make_interval(secs => %(seconds)s))
ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < clock_timestamp()
RETURNING holder
"""

RELEASE = "DELETE FROM {schema}.answer_leases WHERE session_id = %(id)s AND holder = %(holder)s"

SUMMARY = "SELECT {columns} FROM {schema}.sessions WHERE id = %s"


async def _pump(conn: psycopg.AsyncConnection[Any], notices: asyncio.Queue[str | BaseException]) -> None:
    """Every notification's payload into ``notices``; then the error that ended the connection."""
    try:
        async for notice in conn.notifies():
            notices.put_nowait(notice.payload)
    except BaseException as exc:
        notices.put_nowait(exc)
        raise


def channel(schema: str) -> str:
    return f"deskmate.{schema}"


class PostgresWatch(SessionWatch):
    """Notifications on ``deskmate.<schema>``, on a connection of the watch's own."""

    mechanism = "LISTEN/NOTIFY"

    def __init__(
        self,
        read: Callable[[str], Awaitable[SessionInfo | None]],
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        schema: str,
    ) -> None:
        super().__init__(read)
        self._connect = connect
        self._channel = channel(schema)

    async def _nudges(self) -> AsyncIterator[set[str] | None]:
        delay = 0.5
        while not self._closed.is_set():
            try:
                conn = await self._connect()
            except Exception as exc:
                log.info("Cannot listen for session changes (%s); trying again in %.0f s", exc, delay)
                if await self._sleep(delay):
                    return
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            # One generator for the connection's life: notices arriving while the last ones are
            # handled wait in its queue, none is lost between two reads.
            notices: asyncio.Queue[str | BaseException] = asyncio.Queue()

            reader: asyncio.Task[None] | None = None
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                reader = asyncio.ensure_future(_pump(conn, notices))
                delay = 0.5
                self.ready.set()
                yield None  # what changed before (or while) nothing listened
                while not self._closed.is_set():
                    try:  # wakes every second with nothing to say, so a close is seen
                        first = await asyncio.wait_for(notices.get(), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    batch = [first]
                    while not notices.empty():
                        batch.append(notices.get_nowait())
                    failure = next((item for item in batch if isinstance(item, BaseException)), None)
                    ids = {item for item in batch if isinstance(item, str)}
                    if ids:
                        yield ids
                    if failure is not None:
                        raise failure
            except (psycopg.Error, OSError) as exc:
                log.info("Listening for session changes stopped (%s); reconnecting", exc)
                if await self._sleep(delay):
                    return
            finally:
                if reader is not None:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                await conn.close()
