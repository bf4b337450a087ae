"""PostgresBackend: sessions in a PostgreSQL schema, shared by daemons on several machines.

Tables, in the schema the URL names (``deskmate`` unless ``?schema=``):

- ``sessions``: one row per session with what a listing shows (title, workspace_uri,
  created_at, updated_at, tags, message_count, meta: the metadata record as JSON), so ``list`` never reads histories.
- ``messages``: one row per message, primary key ``(session_id, seq)``, seq counting
  from 1; ``data`` is ``Message.to_dict()`` as JSON text (``codec.dumps``: lone surrogates
  become U+FFFD, as in every store), which escapes NUL (a ``text`` cannot hold one, nor can ``jsonb``).
- ``schema_version``: one row per migration applied.

An append is one statement: an upsert of the session row, which locks it so writers
of one session take turns on every machine, returns the new message count, and the
new rows are inserted with the numbers just below it. Timestamps stay the models'
ISO 8601 text, compared bytewise (``COLLATE "C"``), as the FileBackend compares them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..backend import MetaChange
from ..codec import (
    REPLACEMENT,
    BadRecord,
    decode_message,
    decode_messages,
    decode_meta,
    decode_records,
    dumps,
    dumps_bytes,
    encode_message,
    encode_meta,
    storable,
)
from ..errors import BackendUnavailable, SessionChanged, SessionStoreError, StorageError
from ..ids import validate_session_id
from ..limits import clip_title
from ..models import Message, Session, SessionInfo, SessionMeta, updated_at_of
from ..project_memories import decode_memory, encode_memory, ordered, validate_memory_id, validate_project
from ..search_index import Filters, Hit, ListQuery
from ..urls import redact
from . import postgres_live, postgres_search

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "deskmate"
CONNECT_TIMEOUT_SECONDS = 5  # a dead server fails the operation fast instead of hanging it
POOL_MAX_SIZE = 4
HISTORIES_KEPT = 32  # sessions whose history a backend keeps decoded, for the next load to add to
_LOCK_SPACE = 0x64736B6D  # "dskm": first key of our advisory locks, the second is the schema's hash
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_YES, _NO = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})

# MIGRATIONS[i] takes the schema from version i to version i + 1. Never edit a released
# entry: add one. ``{schema}`` is the quoted schema name.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE {schema}.sessions (
        id text COLLATE "C" PRIMARY KEY,
        title text NOT NULL,
        workspace_uri text,
        created_at text COLLATE "C" NOT NULL,
        updated_at text COLLATE "C" NOT NULL,
        tags text[] NOT NULL,
        message_count integer NOT NULL
    );
    CREATE TABLE {schema}.messages (
        session_id text COLLATE "C" NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        data text NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    """,
    # 2: the session's metadata record (codec.encode_meta) as JSON text; NULL in rows
    # written before it, whose tags column is then all there is. tags stays, filled from
    # the record, as the column a tag filter can index.
    """
    ALTER TABLE {schema}.sessions ADD COLUMN meta text;
    """,
    # 3: full-text search in the database (backends/postgres_search.py): every message's
    # text as a tsvector kept by the server itself, and the titles, each under a GIN index.
    # A record that is not plain JSON with a content (a transform's, or damaged) has none.
    # message_text catches what it cannot parse, which takes a subtransaction: not parallel safe.
    """
    CREATE FUNCTION {schema}.message_text(data text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN (data::jsonb) ->> 'content';
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END $$;
    ALTER TABLE {schema}.messages ADD COLUMN search tsvector
        GENERATED ALWAYS AS (to_tsvector('simple', coalesce({schema}.message_text(data), ''))) STORED;
    CREATE INDEX messages_search ON {schema}.messages USING gin (search);
    CREATE INDEX sessions_title_search ON {schema}.sessions USING gin (to_tsvector('simple', title));
    CREATE FUNCTION {schema}.meta_pinned(meta text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN coalesce((meta::jsonb ->> 'pinned')::boolean, false);
    EXCEPTION WHEN others THEN
        RETURN false;
    END $$;
    CREATE INDEX sessions_listed ON {schema}.sessions ({schema}.meta_pinned(meta) DESC, updated_at DESC, id);
    """,
    # 4: the words column becomes a plain one, kept by a trigger, so a fork's copy of rows
    # (INSERT ... SELECT) carries them along instead of computing them again (that cost five
    # times the copy itself). The values stay (DROP EXPRESSION rewrites nothing); a row
    # inserted without words, or whose data changes, gets them computed as before.
    """
    ALTER TABLE {schema}.messages ALTER COLUMN search DROP EXPRESSION;
    CREATE FUNCTION {schema}.message_words() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' AND NEW.search IS NOT NULL THEN
            RETURN NEW;
        END IF;
        NEW.search := to_tsvector('simple', coalesce({schema}.message_text(NEW.data), ''));
        RETURN NEW;
    END $$;
    CREATE TRIGGER messages_words BEFORE INSERT OR UPDATE OF data ON {schema}.messages
        FOR EACH ROW EXECUTE FUNCTION {schema}.message_words();
    """,
    # 5: project memories (MemoryBackend.load_memories), a row each: the record as a message's
    # JSON text; created_at orders them. Not sessions: no listing or search reads this table.
    """
    CREATE TABLE {schema}.memories (
        project text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        created_at text COLLATE "C" NOT NULL,
        data text NOT NULL,
        PRIMARY KEY (project, id)
    );
    """,
    # 6: live sessions (backends/postgres_live.py): a trigger that NOTIFYs each session row's
    # change, and the answering leases.
    postgres_live.MIGRATION,
    # 7: cheaper row copies (a fork's INSERT ... SELECT, a save's COPY). The foreign key on
    # messages checked every inserted row with a query of its own (half a fork's copy): it
    # goes, and deleting a session deletes its messages itself (``delete``). The words
    # trigger runs only for rows that come without words: a condition the server tests
    # without calling the function (the copy's other seventh).
    """
    ALTER TABLE {schema}.messages DROP CONSTRAINT IF EXISTS messages_session_id_fkey;
    DROP TRIGGER messages_words ON {schema}.messages;
    CREATE TRIGGER messages_words BEFORE INSERT ON {schema}.messages
        FOR EACH ROW WHEN (NEW.search IS NULL) EXECUTE FUNCTION {schema}.message_words();
    CREATE TRIGGER messages_words_changed BEFORE UPDATE OF data ON {schema}.messages
        FOR EACH ROW EXECUTE FUNCTION {schema}.message_words();
    """,
    # 8: what every search and listing filters sessions on, as columns the server keeps from
    # the row: whether it is in the trash, its folder and its project. Tested on the JSON
    # text, they cost a parse per session and left the planner guessing that 1 session in
    # 200 passes, so it planned every search as if the store were tiny (60-350 ms where the
    # plan made with the columns' statistics takes 3-35 ms). ANALYZE gives them statistics at once.
    """
    CREATE FUNCTION {schema}.meta_value(meta text, key text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN meta::jsonb ->> key;
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END $$;
    ALTER TABLE {schema}.sessions
        ADD COLUMN trashed boolean GENERATED ALWAYS AS ({schema}.meta_value(meta, 'deletedAt') IS NOT NULL) STORED,
        ADD COLUMN folder text GENERATED ALWAYS AS (rtrim(workspace_uri, '/')) STORED,
        ADD COLUMN project text GENERATED ALWAYS AS ({schema}.meta_value(meta, 'project')) STORED;
    ANALYZE {schema}.sessions;
    """,
    # 9: a number for each version of a session's stored history, so a daemon that loaded a
    # session reads only the rows appended since (``load``). Appends keep it; a save, and any
    # change to stored rows (a rewrite, or an edit or delete made by hand), gives a new one,
    # and the next load reads the whole history again. The number is the id of the
    # transaction that made that version (no two transactions share one, and no sequence
    # needs a privilege granted).
    """
    ALTER TABLE {schema}.sessions ADD COLUMN generation bigint NOT NULL DEFAULT txid_current();
    CREATE FUNCTION {schema}.history_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE {schema}.sessions SET generation = txid_current()
        WHERE id IN (SELECT DISTINCT session_id FROM changed);
        RETURN NULL;
    END $$;
    CREATE TRIGGER messages_changed AFTER UPDATE ON {schema}.messages
        REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {schema}.history_changed();
    CREATE TRIGGER messages_removed AFTER DELETE ON {schema}.messages
        REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {schema}.history_changed();
    CREATE FUNCTION {schema}.histories_emptied() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE {schema}.sessions SET generation = txid_current();
        RETURN NULL;
    END $$;
    CREATE TRIGGER messages_truncated AFTER TRUNCATE ON {schema}.messages
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.histories_emptied();
    """,
    # 10: identifiers kept whole as well as split (backends/postgres_search.py). The words are
    # taken from the text with each '_' between a letter or digit and a letter made a '-', so
    # the server's parser keeps `parse_config` as one hyphenated word, `parse-config`, beside
    # its parts: a search for an identifier is one word of the index, where its parts as a
    # phrase had every message holding both parts read to compare positions (18-21 ms for an
    # identifier in 1,500 of 100,000 messages). The words of the messages and titles that hold
    # such an identifier are computed again; no history changes (no new generation).
    """
    CREATE FUNCTION {schema}.search_text(text text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT regexp_replace(text, '([[:alnum:]])_(?=[[:alpha:]])', '\\1-', 'g')
    $$;
    CREATE OR REPLACE FUNCTION {schema}.message_words() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search := to_tsvector('simple', {schema}.search_text(coalesce({schema}.message_text(NEW.data), '')));
        RETURN NEW;
    END $$;
    ALTER TABLE {schema}.messages DISABLE TRIGGER messages_changed;
    UPDATE {schema}.messages
        SET search = to_tsvector('simple', {schema}.search_text({schema}.message_text(data)))
        WHERE {schema}.message_text(data) ~ '[[:alnum:]]_[[:alpha:]]';
    ALTER TABLE {schema}.messages ENABLE TRIGGER messages_changed;
    DROP INDEX {schema}.sessions_title_search;
    CREATE INDEX sessions_title_search ON {schema}.sessions
        USING gin (to_tsvector('simple', {schema}.search_text(title)));
    """,
]

_SESSION_COLUMNS = "id, title, workspace_uri, created_at, updated_at, tags, message_count, meta"

_APPEND = """
WITH s AS (
    INSERT INTO {schema}.sessions AS s ({columns})
    VALUES (%(id)s, %(title)s, %(workspace_uri)s, %(first)s, %(last)s, ARRAY[]::text[], %(n)s, '{{}}')
    ON CONFLICT (id) DO UPDATE SET
        message_count = s.message_count + excluded.message_count,
        updated_at = excluded.updated_at
    RETURNING message_count
)
INSERT INTO {schema}.messages (session_id, seq, data)
SELECT %(id)s, s.message_count - %(n)s + m.n, m.data
FROM s, unnest(%(data)b::text[]) WITH ORDINALITY AS m (data, n)
"""

_SAVE_SESSION = """
INSERT INTO {schema}.sessions ({columns})
VALUES (%(id)s, %(title)s, %(workspace_uri)s, %(created_at)s, %(updated_at)s, %(tags)s::text[], %(n)s,
        %(meta)s)
ON CONFLICT (id) DO UPDATE SET
    title = excluded.title, workspace_uri = excluded.workspace_uri, created_at = excluded.created_at,
    updated_at = excluded.updated_at, tags = excluded.tags, message_count = excluded.message_count,
    meta = excluded.meta
"""

# The messages come joined into one JSON array body: one parser call for the whole
# history is several times faster than one per row. One statement, one snapshot. Given the
# generation and length of a history this backend read before, only the rows after it come,
# if the history is still that generation.
_LOAD = """
SELECT s.title, s.workspace_uri, s.created_at, s.tags, s.meta, m.joined, m.count, s.generation, s.message_count
FROM {schema}.sessions s,
LATERAL (SELECT string_agg(data, ',' ORDER BY seq) AS joined, count(*) AS count
         FROM {schema}.messages WHERE session_id = s.id
         AND seq > CASE WHEN s.generation = %(generation)s THEN %(known)s ELSE 0 END) m
WHERE s.id = %(id)s
"""

# The row locked until the transaction ends: updates of one session take turns.
_LOCK_SESSION = "SELECT {columns} FROM {schema}.sessions WHERE id = %s FOR UPDATE"

_UPDATE = "UPDATE {schema}.sessions SET title = %(title)s, tags = %(tags)s::text[], meta = %(meta)s WHERE id = %(id)s"

_LOAD_ROWS = "SELECT seq, data FROM {schema}.messages WHERE session_id = %s ORDER BY seq"


def _text(value: str) -> str:
    """``value`` storable in a ``text`` column: lone surrogates (as every store) and NUL become U+FFFD.

    Only for labels (title, workspace URI, tags, timestamps); messages keep NUL,
    escaped in their JSON.
    """
    value = storable(value)
    return value.replace("\0", REPLACEMENT) if "\0" in value else value


def _encode(message: Message) -> str:
    return dumps_bytes(encode_message(message)).decode()  # msgspec: several times json's speed


def _shown(value: str) -> str:
    """``value`` safe to put in a message or log line: repr'd (no control characters) and short."""
    return repr(value[:80]) + ("..." if len(value) > 80 else "")


def _reason(exc: BaseException) -> str:
    """The error's text on one line (libpq's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _parse_hosts(hostlist: str, url: str) -> tuple[str, str]:
    """libpq's ``host`` and ``port`` values for ``h1[:p1],[::1][:p2],...``."""
    hosts, ports = [], []
    for piece in hostlist.split(","):
        if piece.startswith("["):  # an IPv6 literal
            host, _, rest = piece[1:].partition("]")
            if rest and not rest.startswith(":"):
                raise StorageError(f"The PostgreSQL storage URL {redact(url)} has a malformed host.")
            port = rest[1:]
        else:
            host, _, port = piece.partition(":")
        hosts.append(unquote(host))
        ports.append(port)
    return ",".join(hosts), ",".join(ports) if any(ports) else ""


class PostgresBackend:
    """Sessions in PostgreSQL, usually opened with ``from_url``.

    ``params`` are libpq connection parameters (host, port, dbname, user, password,
    sslmode, ...); anything not given comes from libpq's environment (``PGHOST``,
    ``PGPASSWORD``, ``~/.pgpass``, ...). Nothing connects until the first operation,
    which also creates or migrates the schema.
    """

    def __init__(
        self, params: dict[str, str], *, schema: str = DEFAULT_SCHEMA, allow_public_schema: bool = False
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StorageError(
                f"Invalid PostgreSQL schema name {schema!r}: use up to 63 letters, digits and '_', "
                "not starting with a digit."
            )
        folded = schema.lower()
        if folded.startswith("pg_") or folded == "information_schema":
            raise StorageError(
                f"The PostgreSQL schema {schema!r} belongs to the server's own catalog: "
                f"give deskmate a schema of its own, e.g. ?schema={DEFAULT_SCHEMA}."
            )
        if folded == "public" and not allow_public_schema:
            raise StorageError(
                f"The PostgreSQL schema {schema!r} is shared by every application in the database: "
                f"give deskmate a schema of its own, e.g. ?schema={DEFAULT_SCHEMA}, or add "
                "allow_public_schema=1 to the URL if it really should use it."
            )
        if not all(port.isdigit() for port in params.get("port", "0").split(",") if port):
            # Not echoed: in a garbled URL the "port" may be a piece of the password.
            raise StorageError("The PostgreSQL port must be a number.")
        params = {"connect_timeout": str(CONNECT_TIMEOUT_SECONDS), "application_name": "deskmate", **params}
        try:
            # Also how long an operation waits for a pooled connection before giving up.
            self._timeout = float(params["connect_timeout"])
        except ValueError:
            raise StorageError("The PostgreSQL connect_timeout must be a number of seconds.") from None
        if self._timeout <= 0:  # libpq's "wait forever": an operation must not
            self._timeout = CONNECT_TIMEOUT_SECONDS
        try:
            self._conninfo = make_conninfo("", **params)
        except psycopg.ProgrammingError as exc:
            raise StorageError(f"Invalid PostgreSQL connection settings: {_reason(exc)}.") from None
        self.schema = schema
        self.name = self._describe(params)
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()  # binds to the running loop only when first awaited
        self._closed = False
        self._warned: set[str] = set()
        # Histories this backend read, by session: (generation, messages), most recently used last.
        self._histories: dict[str, tuple[int, list[Message]]] = {}
        quoted = sql.Identifier(schema)
        columns = sql.SQL(_SESSION_COLUMNS)

        def statement(template: str) -> sql.Composed:
            return sql.SQL(template).format(schema=quoted, columns=columns)

        self._append_sql = statement(_APPEND)
        self._save_session_sql = statement(_SAVE_SESSION)
        self._count_for_update_sql = statement(
            "SELECT message_count FROM {schema}.sessions WHERE id = %s FOR UPDATE"
        )
        self._copy_messages_sql = statement("COPY {schema}.messages (session_id, seq, data) FROM STDIN")
        self._copy_prefix_sql = statement(
            "INSERT INTO {schema}.messages (session_id, seq, data, search) SELECT %(id)s, seq, data, search "
            "FROM {schema}.messages WHERE session_id = %(source)s AND seq <= %(n)s"
        )
        self._ends_sql = statement(
            "SELECT seq, data FROM {schema}.messages WHERE session_id = %s AND seq IN (1, %s)"
        )
        self._load_sql = statement(_LOAD)
        self._load_rows_sql = statement(_LOAD_ROWS)
        self._lock_session_sql = statement(_LOCK_SESSION)
        self._update_sql = statement(_UPDATE)
        self._delete_messages_sql = statement("DELETE FROM {schema}.messages WHERE session_id = %s")
        self._delete_sql = statement("DELETE FROM {schema}.sessions WHERE id = %s")
        self._memories_sql = statement(
            "SELECT data FROM {schema}.memories WHERE project = %s ORDER BY created_at, id"
        )
        self._add_memory_sql = statement(
            "INSERT INTO {schema}.memories (project, id, created_at, data) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (project, id) DO UPDATE SET created_at = excluded.created_at, data = excluded.data"
        )
        self._memory_projects_sql = statement(
            "SELECT DISTINCT project FROM {schema}.memories ORDER BY project"
        )
        self._delete_memory_sql = statement("DELETE FROM {schema}.memories WHERE project = %s AND id = %s")
        self._claim_sql = statement(postgres_live.CLAIM)
        self._release_sql = statement(postgres_live.RELEASE)
        self._summary_sql = statement(postgres_live.SUMMARY)
        self._list_sql = statement(
            "SELECT {columns} FROM {schema}.sessions ORDER BY updated_at DESC, created_at DESC, id"
        )

    def __repr__(self) -> str:
        return f"PostgresBackend({self.name!r}, schema={self.schema!r})"

    @classmethod
    def from_url(cls, url: str) -> PostgresBackend:
        """``postgresql://[user[:password]@][host][:port][,host2...][/dbname][?schema=NAME&...]``.

        ``schema`` (default ``deskmate``) is deskmate's own: never a system schema (``pg_*``,
        ``information_schema``), nor ``public`` unless ``allow_public_schema=1``; every other query
        parameter (``sslmode``, ``connect_timeout``, ``target_session_attrs``, ...)
        is passed to libpq. ``connect_timeout`` defaults to 5 s and also bounds the wait
        for a pooled connection. Percent-encode special characters in the password.
        """
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            # Not echoed: its text may quote the login ("netloc '...' contains invalid characters").
            raise StorageError(
                f"The PostgreSQL storage URL {redact(url)} is malformed: check its host and port, and "
                "percent-encode '/', '?', '#', '@' and ':' in the user name and password."
            ) from None
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            raise StorageError(f"{redact(url)} is not a postgresql:// URL.")
        if "@" in parts.path or "@" in parts.query:
            # Most likely a password with an unencoded '/' or '?': the rest would leak into names.
            raise StorageError(
                f"The PostgreSQL storage URL {redact(url)} has an '@' after its host: percent-encode "
                "'/', '?', '#' and '@' in the user name and password (%2F, %3F, %23, %40)."
            )
        if parts.fragment:
            raise StorageError(f"The PostgreSQL storage URL {redact(url)} must not have a #fragment.")
        params: dict[str, str] = {}
        userinfo, _, hostlist = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        if user:
            params["user"] = unquote(user)
        if password:
            params["password"] = unquote(password)
        if hostlist:
            params["host"], port = _parse_hosts(hostlist, url)
            if port:
                params["port"] = port
        if parts.path.strip("/"):
            params["dbname"] = unquote(parts.path[1:])
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        schema = query.pop("schema", DEFAULT_SCHEMA)
        allow_public = query.pop("allow_public_schema", "0").lower()
        if allow_public not in _YES | _NO:
            raise StorageError("allow_public_schema in the PostgreSQL storage URL must be 1 or 0.")
        return cls({**params, **query}, schema=schema, allow_public_schema=allow_public in _YES)

    @staticmethod
    def _describe(params: dict[str, str]) -> str:
        """``PostgreSQL at host:port/db`` for messages: where, never who or with what password."""
        hosts = (params.get("host") or os.environ.get("PGHOST") or "localhost").split(",")
        ports = (params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
        ports += [ports[-1]] * (len(hosts) - len(ports))
        places = []
        for host, port in zip(hosts, ports, strict=False):
            host = host or "localhost"
            places.append(f"[{host}]:{port or 5432}" if ":" in host else f"{host}:{port or 5432}")
        where = ",".join(places)
        dbname = params.get("dbname") or os.environ.get("PGDATABASE")
        return f"PostgreSQL at {where}/{dbname}" if dbname else f"PostgreSQL at {where}"

    # -- connections and errors -------------------------------------------------

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """Turn psycopg's errors into ours: unreachable server or refused login, or anything else."""
        try:
            yield
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(self.name, _reason(exc)) from exc
        except psycopg.Error as exc:
            raise StorageError(f"{self.name} could not {doing}: {_reason(exc)}") from exc

    @asynccontextmanager
    async def _connection(self, doing: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled autocommit connection, the schema ready; errors raised as ours."""
        pool = await self._open_pool()
        async with self._errors(doing):
            try:
                async with pool.connection() as conn:
                    yield conn
            except PoolTimeout:
                raise BackendUnavailable(self.name, await self._why_no_connection()) from None

    async def _why_no_connection(self) -> str:
        """The pool only says it timed out: ask the server ourselves, to report its reason."""
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo)
        except psycopg.Error as exc:
            return _reason(exc)
        await conn.close()
        return f"no pooled connection became free within {self._timeout:g} s"

    async def _open_pool(self) -> AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._closed:
                raise StorageError(f"The session store on {self.name} is closed.")
            if self._pool is None:
                # A connection of its own first: its failure carries the server's reason,
                # where the pool would only time out.
                async with self._errors(f"prepare schema {self.schema!r}"):
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                    try:
                        await self._migrate(conn)
                    finally:
                        await conn.close()
                pool = AsyncConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=POOL_MAX_SIZE,
                    open=False,
                    kwargs={"autocommit": True},
                    # One round trip per operation, so a connection a restart broke is replaced
                    # instead of failing the user's operation.
                    check=AsyncConnectionPool.check_connection,
                    timeout=self._timeout,
                    # Give up reconnecting soon, so the next operation starts afresh: the pool's
                    # backoff would otherwise grow to minutes and outlast the outage.
                    reconnect_timeout=2 * self._timeout,
                    name=f"deskmate {self.name}",
                )
                await pool.open(wait=False)
                self._pool = pool
        return self._pool

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Create the schema or bring it to the newest version, under a lock all daemons share."""
        target = len(MIGRATIONS)
        async with conn.transaction():
            # Daemons starting together take turns; the lock ends with the transaction.
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SPACE, self.schema))
            # Look before creating: a schema an administrator made needs no CREATE privilege.
            cur = await conn.execute(
                "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s),"
                " EXISTS (SELECT FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_version')",
                (self.schema, self.schema),
            )
            schema_exists, versioned = await cur.fetchone() or (False, False)
            quoted = sql.Identifier(self.schema)
            version = 0
            if versioned:
                cur = await conn.execute(
                    sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(quoted)
                )
                version = (await cur.fetchone() or (0,))[0]
            if version > target:
                raise StorageError(
                    f"Schema {self.schema!r} on {self.name} is at version {version}, newer than this "
                    f"deskmate knows ({target}): upgrade deskmate."
                )
            if version == target:
                return
            if not schema_exists:
                await conn.execute(sql.SQL("CREATE SCHEMA {}").format(quoted))
            if not versioned:
                await conn.execute(
                    sql.SQL(
                        "CREATE TABLE {}.schema_version ("
                        " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(quoted)
                )
            for number in range(version + 1, target + 1):
                await conn.execute(sql.SQL(MIGRATIONS[number - 1]).format(schema=quoted))
                await conn.execute(
                    sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(quoted), (number,)
                )
            log.info("Schema %r on %s is now at version %d (was %d)", self.schema, self.name, target, version)

    # -- MemoryBackend ---------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        """The session and its messages in order, read in one statement (one snapshot)."""
        validate_session_id(session_id, "load")
        generation, known = self._histories.pop(session_id, (-1, []))
        async with self._connection(f"load session {session_id!r}") as conn:
            cur = await conn.execute(
                self._load_sql, {"id": session_id, "generation": generation, "known": len(known)}
            )
            row = await cur.fetchone()
            if row is None:
                return None
            title, workspace_uri, created_at, tags, meta, joined, count, stored, stored_count = row
            added_to = stored == generation and bool(known)
            if not added_to:
                known = []
            try:
                records = json.loads(f"[{joined or ''}]")
                if len(records) != count:  # a row held more than one value
                    raise ValueError
                messages = known + decode_records(records)
            except (ValueError, RecursionError):  # read row by row to name the one to blame
                cur = await conn.execute(self._load_rows_sql, (session_id,))
                messages = self._decode(session_id, await cur.fetchall())
                added_to, stored_count = False, -1  # all of it, and not kept: read whole next time
        if len(messages) != stored_count:  # rows not as the session's row counts them
            if added_to:
                return await self.load(session_id)  # read it all: the history kept is not to be trusted
        else:
            self._remember(session_id, stored, messages)
        if meta is None and None in tags:
            raise StorageError(f"{self._null_tag(session_id)}: it cannot be read. Nothing was changed.")
        return Session(
            id=session_id,
            title=title,
            workspace_uri=workspace_uri,
            created_at=created_at,
            meta=self._meta(session_id, meta, tags),
            messages=messages,
        )

    def _remember(self, session_id: str, generation: int, messages: list[Message]) -> None:
        """Keep a history read, for the next load of it to read only what comes after."""
        self._histories[session_id] = (generation, list(messages))  # messages are never mutated
        if len(self._histories) > HISTORIES_KEPT:
            del self._histories[next(iter(self._histories))]

    def _meta(self, session_id: str, raw: str | None, tags: list[str | None]) -> SessionMeta:
        """The row's metadata record; a row from before migration 2 has only its tags column."""
        if raw is None:
            return SessionMeta(tags=[tag for tag in tags if tag is not None])
        try:
            return decode_meta(json.loads(raw))
        except (ValueError, RecursionError) as exc:
            raise StorageError(
                f"Session {session_id!r} on {self.name}: its meta in {self.schema}.sessions cannot be "
                f"read ({exc}). Nothing was changed."
            ) from None

    def _decode(self, session_id: str, rows: list[tuple[int, str]]) -> list[Message]:
        try:
            return decode_messages([data for _, data in rows])
        except BadRecord as bad:
            # Refuse rather than repair: the row stays for someone to look at.
            raise StorageError(
                f"Session {session_id!r} on {self.name} cannot be read: message seq {rows[bad.index][0]} in "
                f"{self.schema}.messages is not a valid message ({bad.reason}). Nothing was changed."
            ) from None

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        """Add ``messages`` after the last stored one, all or none, in one statement."""
        validate_session_id(session_id, "append")
        if not messages:
            return
        params = {
            "id": session_id,
            "title": _text(title),
            "workspace_uri": None if workspace_uri is None else _text(workspace_uri),
            "first": _text(messages[0].timestamp),
            "last": _text(messages[-1].timestamp),
            "n": len(messages),
            "data": [_encode(message) for message in messages],
        }
        async with self._connection(f"append to session {session_id!r}") as conn:
            await conn.execute(self._append_sql, params)

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        """Replace the session and all its messages in one transaction."""
        await self._save(session, None, expected_messages)

    async def save_copy(self, session: Session, source_id: str) -> None:
        """A save whose messages are copied from the source's rows inside the database (one
        INSERT ... SELECT, nothing sent), when the source still starts with them."""
        validate_session_id(source_id, "save_copy")
        await self._save(session, source_id if source_id != session.id else None)

    async def _save(
        self, session: Session, source_id: str | None, expected_messages: int | None = None
    ) -> None:
        validate_session_id(session.id, "save")
        self._histories.pop(session.id, None)
        messages = session.messages
        params = {
            "id": session.id,
            "title": _text(session.title),
            "workspace_uri": None if session.workspace_uri is None else _text(session.workspace_uri),
            "created_at": _text(session.created_at),
            # As a load computes it, not session.updated_at, which callers may not keep up to date.
            "updated_at": _text(updated_at_of(messages, session.created_at)),
            "tags": [_text(tag) for tag in session.meta.tags],
            "meta": _text(dumps(encode_meta(session.meta))),
            "n": len(messages),
        }
        async with self._connection(f"save session {session.id!r}") as conn, conn.transaction():
            if expected_messages is not None:
                # Locked until the commit: no append lands between this count and the rewrite.
                cur = await conn.execute(self._count_for_update_sql, (session.id,))
                row = await cur.fetchone()
                found = None if row is None else row[0]
                if found != expected_messages:
                    raise SessionChanged(session.id, expected_messages, found)
            # The upsert locks the session row first, so appends wait and the delete sees them all.
            await conn.execute(self._save_session_sql, params)
            await conn.execute(self._delete_messages_sql, (session.id,))
            if not messages:
                return
            if source_id is not None and await self._copied(conn, session, source_id):
                return
            # COPY: several times faster than an INSERT of the same rows for a long history.
            async with conn.cursor() as cur, cur.copy(self._copy_messages_sql) as copy:
                for seq, message in enumerate(messages, 1):
                    await copy.write_row((session.id, seq, _encode(message)))

    async def _copied(self, conn: psycopg.AsyncConnection[Any], session: Session, source_id: str) -> bool:
        """Copy the source's first rows as ``session``'s messages if they are the ones given (same
        count, same first and last message); otherwise copy nothing and say so."""
        n = len(session.messages)
        cur = await conn.execute(self._copy_prefix_sql, {"id": session.id, "source": source_id, "n": n})
        if cur.rowcount == n:
            cur = await conn.execute(self._ends_sql, (session.id, n))
            ends = {seq: data for seq, data in await cur.fetchall()}
            try:
                first, last = (decode_message(json.loads(ends[seq])).id for seq in (1, n))
            except (KeyError, ValueError, RecursionError, StorageError):
                first = last = None
            if (first, last) == (session.messages[0].id, session.messages[-1].id):
                return True
        await conn.execute(self._delete_messages_sql, (session.id,))
        return False

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Change the title and metadata in one transaction that holds the session's row."""
        validate_session_id(session_id, "update")
        async with self._connection(f"update session {session_id!r}") as conn, conn.transaction():
            cur = await conn.execute(self._lock_session_sql, (session_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            _, title, workspace_uri, created_at, updated_at, tags, message_count, meta = row
            if meta is None and None in tags:
                raise StorageError(
                    f"{self._null_tag(session_id)}: it cannot be changed. Nothing was changed."
                )
            info = SessionInfo(
                id=session_id,
                title=title,
                workspace_uri=workspace_uri,
                created_at=created_at,
                updated_at=updated_at,
                message_count=message_count,
                meta=self._meta(session_id, meta, tags),  # damaged: raises, nothing is written
            )
            new_title, new_meta = change(info)
            params = {
                "id": session_id,
                "title": _text(clip_title(new_title)),
                "tags": [_text(tag) for tag in new_meta.tags],
                "meta": _text(dumps(encode_meta(new_meta))),
            }
            await conn.execute(self._update_sql, params)
        return replace(info, title=params["title"], meta=decode_meta(json.loads(params["meta"])))

    async def delete(self, session_id: str) -> bool:
        """Remove the session and its messages; False if there was none."""
        validate_session_id(session_id, "delete")
        self._histories.pop(session_id, None)
        async with self._connection(f"delete session {session_id!r}") as conn, conn.transaction():
            # The row first: it waits for an append holding it, and the messages' delete (a
            # statement of its own, so a snapshot taken after that wait) sees all it added.
            cur = await conn.execute(self._delete_sql, (session_id,))
            await conn.execute(self._delete_messages_sql, (session_id,))
            return cur.rowcount > 0

    async def load_memories(self, project: str) -> list[Message]:
        validate_project(project, "read project memories")
        async with self._connection(f"read the memories of project {project!r}") as conn:
            cur = await conn.execute(self._memories_sql, (project,))
            rows = await cur.fetchall()
        where = f"{self.schema}.memories on {self.name}"
        return ordered(decode_memory(data, where) for (data,) in rows)

    async def memory_projects(self) -> list[str]:
        async with self._connection("list the projects with memories") as conn:
            cur = await conn.execute(self._memory_projects_sql)
            return [project for (project,) in await cur.fetchall()]

    async def add_memory(self, project: str, memory: Message) -> None:
        validate_project(project, "remember")
        params = (project, validate_memory_id(memory.id), _text(memory.timestamp), encode_memory(memory))
        async with self._connection(f"store a memory of project {project!r}") as conn:
            await conn.execute(self._add_memory_sql, params)

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        validate_project(project, "forget a memory")
        async with self._connection(f"forget a memory of project {project!r}") as conn:
            cur = await conn.execute(self._delete_memory_sql, (project, validate_memory_id(memory_id)))
            return cur.rowcount > 0

    async def list(self) -> list[SessionInfo]:
        """Every session's summary from the sessions table, most recently updated first.

        A row whose id is not a session id (written by hand, say) is skipped and a NULL
        tag left out, each with a warning: one bad row never hides the others.
        """
        async with self._connection("list sessions") as conn:
            cur = await conn.execute(self._list_sql)
            rows = await cur.fetchall()
        infos = []
        for id_, title, workspace_uri, created_at, updated_at, tags, message_count, meta in rows:
            try:
                validate_session_id(id_)
            except SessionStoreError:
                self._warn(
                    f"Skipped the row {_shown(id_)} of {self.schema}.sessions on {self.name}: "
                    "its id is not a session id."
                )
                continue
            if meta is None and None in tags:
                self._warn(f"{self._null_tag(id_)}; it is listed without them.")
            try:
                listed_meta = self._meta(id_, meta, tags)
            except StorageError as exc:
                self._warn(f"{exc}; it is listed without tags or pin.")
                listed_meta = SessionMeta()
            infos.append(
                SessionInfo(
                    id=id_,
                    title=title,
                    workspace_uri=workspace_uri,
                    created_at=created_at,
                    updated_at=updated_at,
                    message_count=message_count,
                    meta=listed_meta,
                )
            )
        return infos

    async def list_page(self, query: ListQuery, offset: int, limit: int) -> list[SessionInfo]:
        """A page of summaries, pinned first, then most recent first, read through an index in
        that order: the first page of 100,000 sessions reads about a page of rows."""
        statement, params = postgres_search.list_page(self.schema, query, offset, limit)
        async with self._connection("list sessions") as conn:
            rows = await (await conn.execute(statement, params)).fetchall()
        return [info for info in map(self._listed, rows) if info is not None]

    def _listed(self, row: tuple[Any, ...]) -> SessionInfo | None:
        id_, title, workspace_uri, created_at, updated_at, tags, message_count, meta = row
        try:
            validate_session_id(id_)
            listed_meta = self._meta(id_, meta, tags)
        except SessionStoreError as exc:
            self._warn(f"{exc}; it is left out of the page.")
            return None
        return SessionInfo(id_, title, workspace_uri, created_at, updated_at, message_count, listed_meta)

    async def search(self, query: str, filters: Filters, limit: int) -> tuple[list[Hit], int]:
        """Full-text search done by the server (``postgres_search.py``): what every daemon sees."""
        async with self._connection("search sessions") as conn:
            return await postgres_search.search(conn, self.schema, query, filters, limit)

    def _null_tag(self, session_id: str) -> str:
        return f"Session {session_id!r} on {self.name} has a NULL among its tags in {self.schema}.sessions"

    def _warn(self, message: str) -> None:
        """Log ``message`` once per backend: a listing read every few seconds must not flood the log."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    def watch(self) -> postgres_live.PostgresWatch:
        """LISTEN on the channel the sessions table's trigger NOTIFYs (``postgres_live.py``)."""
        return postgres_live.PostgresWatch(self._summary, self._listening_connection, self.schema)

    async def _summary(self, session_id: str) -> SessionInfo | None:
        async with self._connection(f"read session {session_id!r}") as conn:
            row = await (await conn.execute(self._summary_sql, (session_id,))).fetchone()
        return None if row is None else self._listed(row)

    async def _listening_connection(self) -> psycopg.AsyncConnection[Any]:
        """A connection outside the pool (it stays busy listening), the schema ready first."""
        await self._open_pool()
        async with self._errors("listen for session changes"):
            return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        """One upsert of the session's ``answer_leases`` row (it expires ``seconds`` later)."""
        validate_session_id(session_id, "claim_answer")
        params = {"id": session_id, "holder": holder, "seconds": seconds}
        async with self._connection(f"claim session {session_id!r}") as conn:
            return await (await conn.execute(self._claim_sql, params)).fetchone() is not None

    async def release_answer(self, session_id: str, holder: str) -> None:
        validate_session_id(session_id, "release_answer")
        async with self._connection(f"release session {session_id!r}") as conn:
            await conn.execute(self._release_sql, {"id": session_id, "holder": holder})

    async def close(self) -> None:
        """Close the pool's connections; later operations raise StorageError."""
        async with self._opening:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
