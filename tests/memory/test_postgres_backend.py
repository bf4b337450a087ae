"""PostgresBackend-specific guarantees, on a real server: schema and migrations, outages, bad URLs, odd data."""

import asyncio
import time
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from deskmate.memory import Message, Session, StorageError
from deskmate.memory.backends import postgres as pg
from deskmate.memory.backends.postgres import PostgresBackend
from deskmate.memory.errors import BackendUnavailable
from deskmate.memory.models import SessionMeta
from deskmate.memory.urls import backend_for_url
from helpers import free_port, namespace_in, turn

from . import store_postgres

SECRET = "s3cret-Pa55"


@pytest.fixture
def schema():
    """A schema name of this test's own, dropped afterwards."""
    store_postgres.require_server()
    with namespace_in(store_postgres) as name:
        yield name


@pytest.fixture
def url(schema, tmp_path):
    return store_postgres.url_for(schema, tmp_path)


@pytest.fixture
async def admin():
    """A direct connection to the test server, to look at and tamper with what the backend stored."""
    async with await psycopg.AsyncConnection.connect(store_postgres.server_url(), autocommit=True) as conn:
        yield conn


@pytest.fixture
async def role(schema, admin):
    """A login role with no privileges yet; DROP OWNED at the end takes back what a test grants."""
    name = f"dm_{schema}"
    await admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        # Its connections first: a pool may still hold one.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
        )
        await admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        await admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


async def schema_at_version(admin, schema: str, version: int) -> sql.Identifier:
    """``schema`` as a release at ``version`` left it: its first migrations applied and recorded."""
    ident = sql.Identifier(schema)
    await admin.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    await admin.execute(
        sql.SQL(
            "CREATE TABLE {}.schema_version (version integer PRIMARY KEY, applied_at timestamptz "
            "NOT NULL DEFAULT now())"
        ).format(ident)
    )
    for number in range(1, version + 1):
        await admin.execute(sql.SQL(pg.MIGRATIONS[number - 1]).format(schema=ident))
        await admin.execute(
            sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(ident), (number,)
        )
    return ident


def url_as(role: str, schema: str) -> str:
    """The test server's URL, logging in as ``role`` with a password (which trust auth ignores)."""
    parts = psycopg.conninfo.conninfo_to_dict(store_postgres.server_url())
    where = f"{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/{parts.get('dbname', 'test')}"
    return f"postgresql://{role}:{SECRET}@{where}?schema={schema}"


async def versions(admin, schema: str) -> list[tuple]:
    cur = await admin.execute(
        sql.SQL("SELECT version, applied_at FROM {}.schema_version ORDER BY version").format(
            sql.Identifier(schema)
        )
    )
    return await cur.fetchall()


# -- schema creation and migration ------------------------------------------------


async def test_constructing_never_connects():
    backend = PostgresBackend.from_url(f"postgresql://u:{SECRET}@127.0.0.1:{free_port()}/db")
    await backend.close()  # nothing was opened, nothing to fail


async def test_several_daemons_initialise_a_fresh_schema_at_once(url, schema, admin):
    backends = [backend_for_url(url) for _ in range(6)]
    try:
        await asyncio.gather(*(b.append(f"s{i}", turn(i)) for i, b in enumerate(backends)))
        assert [v for v, _ in await versions(admin, schema)] == list(range(1, len(pg.MIGRATIONS) + 1))
        assert len(await backends[0].list()) == 6
    finally:
        await asyncio.gather(*(b.close() for b in backends))


async def test_version_is_recorded_and_opening_again_changes_nothing(url, schema, admin):
    first = backend_for_url(url)
    await first.append("s", turn(0))
    await first.close()
    recorded = await versions(admin, schema)
    assert [v for v, _ in recorded] == list(range(1, len(pg.MIGRATIONS) + 1))  # each applied once
    again = backend_for_url(url)
    assert len((await again.load("s")).messages) == 2
    await again.close()
    assert await versions(admin, schema) == recorded  # same rows, same applied_at


async def test_a_store_made_by_an_older_version_is_migrated(url, schema, admin, monkeypatch):
    old = backend_for_url(url)
    await old.append("kept", turn(0), title="Kept")
    await old.close()
    extra = "ALTER TABLE {schema}.sessions ADD COLUMN pinned boolean NOT NULL DEFAULT false"
    monkeypatch.setattr(pg, "MIGRATIONS", [*pg.MIGRATIONS, extra])
    newer = [backend_for_url(url) for _ in range(3)]
    try:
        loaded = await asyncio.gather(*(b.load("kept") for b in newer))
        assert all(s.title == "Kept" and len(s.messages) == 2 for s in loaded)
    finally:
        await asyncio.gather(*(b.close() for b in newer))
    assert [v for v, _ in await versions(admin, schema)] == list(range(1, len(pg.MIGRATIONS) + 1))
    cur = await admin.execute(sql.SQL("SELECT pinned FROM {}.sessions").format(sql.Identifier(schema)))
    assert await cur.fetchall() == [(False,)]


async def test_sessions_of_a_version_1_store_keep_their_tags_after_migration_2(url, schema, admin):
    """A store the previous release made (tags in their column, no metadata record) reads whole."""
    ident = await schema_at_version(admin, schema, 1)
    await admin.execute(
        sql.SQL(
            "INSERT INTO {}.sessions VALUES ('old', 'Old', NULL, '2026-01-01', '2026-01-01', "
            "ARRAY['a','b'], 0)"
        ).format(ident)
    )
    backend = backend_for_url(url)
    try:
        assert (await backend.load("old")).meta == SessionMeta(tags=["a", "b"])
        assert [(i.id, i.meta.tags) for i in await backend.list()] == [("old", ["a", "b"])]
        await backend.save(Session(id="old", title="Old", meta=SessionMeta(tags=["c"], pinned=True)))
        assert (await backend.load("old")).meta == SessionMeta(tags=["c"], pinned=True)
    finally:
        await backend.close()
    cur = await admin.execute(sql.SQL("SELECT tags, meta FROM {}.sessions").format(ident))
    assert await cur.fetchall() == [(["c"], '{"tags":["c"],"pinned":true}')]  # the column follows


async def test_a_store_from_a_newer_deskmate_is_refused(url, schema, admin):
    backend = backend_for_url(url)
    await backend.list()
    await admin.execute(
        sql.SQL("INSERT INTO {}.schema_version (version) VALUES (99)").format(sql.Identifier(schema))
    )
    newer = backend_for_url(url)
    with pytest.raises(StorageError, match="version 99, newer than this deskmate"):
        await newer.list()
    await asyncio.gather(backend.close(), newer.close())


async def test_a_role_without_create_privileges_uses_a_prepared_schema(url, schema, admin, role):
    prepared = backend_for_url(url)  # as the administrator: creates the schema
    await prepared.list()
    await prepared.close()
    ident = sql.Identifier(schema)
    await admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, sql.Identifier(role)))
    await admin.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
            ident, sql.Identifier(role)
        )
    )
    backend = backend_for_url(url_as(role, schema))
    try:
        await backend.append("s", turn(0), title="T")
        await backend.save(Session(id="s", title="T2", messages=turn(1)))
        assert [m.content for m in (await backend.load("s")).messages] == ["q1", "a1"]
        assert await backend.delete("s") is True
    finally:
        await backend.close()


# -- unreachable servers ------------------------------------------------------------


async def test_closed_port_is_unavailable_fast_naming_the_server_not_the_password():
    port = free_port()
    backend = backend_for_url(f"postgresql://deskmate:{SECRET}@127.0.0.1:{port}/test?schema=x")
    started = time.monotonic()
    for call in (lambda: backend.load("s"), lambda: backend.append("s", turn(0)), backend.list):
        with pytest.raises(BackendUnavailable) as caught:
            await call()
        assert caught.value.backend == f"PostgreSQL at 127.0.0.1:{port}/test"
        assert str(caught.value).startswith(f"PostgreSQL at 127.0.0.1:{port}/test is unreachable: ")
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert time.monotonic() - started < 3
    await backend.close()


async def test_unknown_role_is_unavailable_without_the_password():
    store_postgres.require_server()
    backend = backend_for_url(url_as("no_such_role_here", "x"))
    with pytest.raises(BackendUnavailable, match="no_such_role_here") as caught:
        await backend.list()
    assert SECRET not in str(caught.value)
    await backend.close()


async def test_server_gone_mid_operation_is_unavailable_and_writes_nothing(url, schema, admin):
    app = f"dm-{schema}"
    backend = backend_for_url(f"{url}&application_name={app}")
    await backend.append("s", turn(0))
    async with admin.transaction():
        # Hold the session row so the next append waits inside the server, then cut it off.
        await admin.execute(sql.SQL("SELECT FROM {}.sessions FOR UPDATE").format(sql.Identifier(schema)))
        pending = asyncio.create_task(backend.append("s", turn(1)))
        for _ in range(200):
            cur = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND wait_event_type = 'Lock'",
                (app,),
            )
            if await cur.fetchall():
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the append never waited for the session row")
        with pytest.raises(BackendUnavailable, match="PostgreSQL at .* is unreachable"):
            await pending
    assert [m.content for m in (await backend.load("s")).messages] == ["q0", "a0"]
    await backend.append("s", turn(2))  # the pool replaced the connection it lost
    assert len((await backend.load("s")).messages) == 4
    await backend.close()


async def test_login_refused_after_start_is_unavailable_then_recovers(url, schema, admin, role):
    await admin.execute(
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(admin.info.dbname), sql.Identifier(role)
        )
    )
    backend = backend_for_url(url_as(role, schema))
    await backend.append("s", turn(0))
    await admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
    await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
    with pytest.raises(BackendUnavailable, match="not permitted to log in") as caught:
        await backend.load("s")  # the pool times out; the reason comes from the server
    assert SECRET not in str(caught.value)
    await admin.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
    assert len((await backend.load("s")).messages) == 2
    await backend.close()


# -- URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_url", "problem"),
    [
        (f"postgresql://u:{SECRET}@db:port/x", "port must be a number"),
        (f"postgresql://u:{SECRET}@db/x?schema=bad-name", "Invalid PostgreSQL schema name 'bad-name'"),
        (f"postgresql://u:{SECRET}@db/x?schema=", "Invalid PostgreSQL schema name ''"),
        (f"postgresql://u:{SECRET}@db/x?nosuchoption=1", 'invalid connection option "nosuchoption"'),
        (f"postgresql://u:{SECRET}@db/x#frag", "must not have a #fragment"),
        (f"postgresql://u:{SECRET}@[::1/x", "is malformed"),
        (f"postgresql://u@[::1/x?sslpassword={SECRET}", "is malformed"),
        (f"postgresql://u:1234/{SECRET}@db/x", "percent-encode"),
        (f"postgresql://u:{SECRET}@db:1/x?port=pass", "port must be a number"),
        (f"postgresql://u:1234?{SECRET}@db/x", "percent-encode"),
        (f"postgresql://db/x?password={SECRET}&port=p", "port must be a number"),
        (f"postgresql://u:{SECRET}@db/x?connect_timeout=soon", "connect_timeout must be a number"),
    ],
)
async def test_bad_urls_are_refused_naming_the_problem_not_the_password(bad_url, problem):
    try:
        backend = backend_for_url(bad_url)
    except StorageError as exc:
        assert problem in str(exc)
        assert SECRET not in str(exc)
        return
    # libpq checks some values only when connecting.
    with pytest.raises(StorageError) as caught:
        await backend.list()
    assert problem in str(caught.value) and SECRET not in str(caught.value)
    await backend.close()


@pytest.mark.parametrize(
    "schema", ["information_schema", "INFORMATION_SCHEMA", "pg_catalog", "pg_toast", "PG_temp_3", "pg_x"]
)
def test_system_schemas_are_refused_naming_them(schema):
    for url in (
        f"postgresql://u:{SECRET}@db/x?schema={schema}",
        f"postgresql://db/x?schema={schema}&allow_public_schema=1",
    ):
        with pytest.raises(
            StorageError, match=f"schema '{schema}' belongs to the server's own catalog"
        ) as caught:
            PostgresBackend.from_url(url)
        assert SECRET not in str(caught.value)


@pytest.mark.parametrize("schema", ["public", "PUBLIC"])
def test_the_public_schema_only_when_asked_for(schema):
    with pytest.raises(
        StorageError, match=f"schema '{schema}' is shared by every application.*allow_public_schema=1"
    ):
        PostgresBackend.from_url(f"postgresql://db/x?schema={schema}")
    with pytest.raises(StorageError, match="allow_public_schema .* must be 1 or 0"):
        PostgresBackend.from_url(f"postgresql://db/x?schema={schema}&allow_public_schema=maybe")
    backend = PostgresBackend.from_url(f"postgresql://db/x?schema={schema}&allow_public_schema=1")
    assert backend.schema == schema
    assert "allow_public_schema" not in backend._conninfo  # deskmate's option, not libpq's
    with pytest.raises(StorageError, match="shared by every application"):
        PostgresBackend.from_url(f"postgresql://db/x?schema={schema}&allow_public_schema=0")


def test_url_parts_and_defaults():
    backend = PostgresBackend.from_url(
        f"postgres://alice:{SECRET}@db.internal:6543/chat?sslmode=require&password={SECRET}&schema=team"
    )
    assert (backend.name, backend.schema) == ("PostgreSQL at db.internal:6543/chat", "team")
    assert SECRET not in repr(backend) and "alice" not in repr(backend)
    assert repr(backend) == "PostgresBackend('PostgreSQL at db.internal:6543/chat', schema='team')"
    assert PostgresBackend.from_url("postgresql://db/chat").schema == "deskmate"
    several = PostgresBackend.from_url("postgresql://a:5433,[::1]:5434,b/chat")
    assert several.name == "PostgreSQL at a:5433,[::1]:5434,b:5432/chat"
    socket_dir = PostgresBackend.from_url("postgresql://%2Fvar%2Frun%2Fpostgresql/chat")
    assert socket_dir.name == "PostgreSQL at /var/run/postgresql:5432/chat"


# -- data ------------------------------------------------------------------------------


async def test_nul_characters_round_trip_in_messages(url):
    backend = backend_for_url(url)
    odd = Message(
        role="assistant",
        content="before\0after \0\0 end",
        model="m\0",
        usage={"n\0": 1},
        context={"uri": "file:///a", "text": "x\0y"},
    )
    await backend.append(
        "nul-chars", [Message(role="user", content="\0"), odd], title="t\0t", workspace_uri="file:///w"
    )
    loaded = await backend.load("nul-chars")
    assert [m.to_dict() for m in loaded.messages][1] == odd.to_dict()
    assert loaded.messages[0].content == "\0"
    # Labels cannot hold NUL in PostgreSQL and need not: it becomes U+FFFD there.
    assert loaded.title == "t\ufffdt"
    await backend.save(Session(id="nul2", title="a\0", meta=SessionMeta(tags=["x\0"]), messages=[odd]))
    saved = await backend.load("nul2")
    # Tags live in the metadata record, JSON that escapes NUL: kept exactly, as in every store.
    assert (saved.title, saved.meta.tags, saved.messages[0].to_dict()) == ("a\ufffd", ["x\0"], odd.to_dict())
    await backend.close()


async def test_lone_surrogates_round_trip_in_messages(url):
    # As in every store (codec.dumps): the replacement character, in messages and labels alike.
    backend = backend_for_url(url)
    text = "half a pair: \ud83d, and 日本語"
    await backend.append("sur", [Message(role="user", content=text)], title=text)
    loaded = await backend.load("sur")
    assert loaded.messages[0].content == text.replace("\ud83d", "\ufffd")
    assert loaded.title == text.replace("\ud83d", "\ufffd")
    await backend.close()


@pytest.mark.parametrize("bad_data", ["{not json", '{"role": "robot", "content": "x"}', "[1, 2]"])
async def test_a_malformed_row_is_reported_and_left_alone(url, schema, admin, bad_data):
    backend = backend_for_url(url)
    await backend.append("hurt", turn(0) + turn(1))
    await admin.execute(
        sql.SQL("UPDATE {}.messages SET data = %s WHERE session_id = 'hurt' AND seq = 3").format(
            sql.Identifier(schema)
        ),
        (bad_data,),
    )
    with pytest.raises(
        StorageError, match=r"Session 'hurt' on PostgreSQL at .*: message seq 3 in t\w+\.messages"
    ):
        await backend.load("hurt")
    cur = await admin.execute(
        sql.SQL("SELECT count(*) FROM {}.messages WHERE session_id = 'hurt'").format(sql.Identifier(schema))
    )
    assert (await cur.fetchone())[0] == 4  # nothing deleted
    assert next(i for i in await backend.list() if i.id == "hurt").message_count == 4
    await backend.close()


async def test_appends_number_messages_without_gaps(url, schema, admin):
    backend = backend_for_url(url)
    await asyncio.gather(*(backend.append("seq", turn(i)) for i in range(25)))
    await backend.save(Session(id="other", messages=turn(0)))
    cur = await admin.execute(
        sql.SQL("SELECT seq FROM {}.messages WHERE session_id = 'seq' ORDER BY seq").format(
            sql.Identifier(schema)
        )
    )
    assert [seq for (seq,) in await cur.fetchall()] == list(range(1, 51))
    await backend.close()


async def test_closed_backend_refuses_work(url):
    backend = backend_for_url(url)
    await backend.list()
    await backend.close()
    await backend.close()
    with pytest.raises(StorageError, match="is closed"):
        await backend.list()


async def test_rows_that_are_not_sessions_do_not_break_the_listing(url, schema, admin, caplog):
    backend = backend_for_url(url)
    await backend.append("good", turn(0), title="Good")
    await backend.save(
        Session(id="tagged", title="Tagged", meta=SessionMeta(tags=["a", "b"]), messages=turn(1))
    )
    sessions = sql.Identifier(schema, "sessions")
    for bad_id in ("../../etc/passwd", "été", "-dash", "x" * 300, "new\nline"):
        await admin.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, 'hand-made', NULL, 'c', 'z', '{{}}', 0)").format(sessions),
            (bad_id,),
        )
    await admin.execute(
        sql.SQL("""UPDATE {} SET meta = '{{"tags": 5}}' WHERE id = 'tagged'""").format(sessions)
    )
    infos = await backend.list()
    assert [(i.id, i.title, i.meta.tags) for i in infos] == [
        ("tagged", "Tagged", []),
        ("good", "Good", []),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 6
    assert any("'../../etc/passwd'" in w and f"{schema}.sessions" in w for w in warnings)
    assert any("'new\\nline'" in w for w in warnings) and not any("\n" in w for w in warnings)
    assert any("Session 'tagged'" in w and "its meta" in w and "tags must be a list" in w for w in warnings)
    await backend.list()
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 6  # once, not every listing
    with pytest.raises(StorageError, match="Session 'tagged' on PostgreSQL at .* its meta .* cannot be read"):
        await backend.load("tagged")
    await backend.close()


async def test_a_version_3_store_keeps_its_words_after_migration_4_and_forks_copy_them(url, schema, admin):
    """Migration 4 makes the words column a plain one kept by a trigger: the words computed
    before stay searchable, new rows get theirs, a fork's copied rows carry them, and a row
    whose data is changed by hand gets its words again."""
    from deskmate.memory.search_index import Filters

    ident = await schema_at_version(admin, schema, 3)
    await admin.execute(
        sql.SQL(
            "INSERT INTO {0}.sessions VALUES ('old', 'Old', NULL, '2026-01-01', '2026-01-01', ARRAY[]::text[], 1, NULL);"
            "INSERT INTO {0}.messages (session_id, seq, data) VALUES "
            '(\'old\', 1, \'{{"id":"m1","role":"user","content":"frobnicate the widget","timestamp":"2026-01-01"}}\')'
        ).format(ident)
    )
    backend = backend_for_url(url)
    try:

        async def found(word: str) -> set[str]:
            hits, _ = await backend.search(word, Filters(), 10)
            return {hit.session_id for hit in hits}

        assert await found("frobnicate") == {"old"}  # words from before the migration
        await backend.append("new", [Message(role="user", content="quux handler")])
        assert await found("quux") == {"new"}
        source = await backend.load("old")
        await backend.save_copy(Session(id="fork", messages=source.messages), "old")
        assert await found("frobnicate") == {"old", "fork"}
        await admin.execute(
            sql.SQL(
                "UPDATE {}.messages SET data = replace(data, 'frobnicate', 'defenestrate') WHERE session_id = 'old'"
            ).format(ident)
        )
        assert await found("defenestrate") == {"old"} and await found("frobnicate") == {"fork"}
    finally:
        await backend.close()


async def test_deleting_a_session_deletes_its_rows_even_while_another_daemon_appends(url, schema, admin):
    """Since migration 7 no foreign key cascades a session's delete to its messages: the
    delete does it, after the session's row, so turns an append adds meanwhile go too."""
    writer, deleter = backend_for_url(url), backend_for_url(url)
    try:
        await writer.append("doomed", [Message(role="user", content=f"q{i}") for i in range(3)], title="t")

        async def append_turns():
            for i in range(20):
                await writer.append("doomed", [Message(role="user", content=f"more {i}")])

        appending = asyncio.create_task(append_turns())
        await asyncio.sleep(0.01)
        assert await deleter.delete("doomed")
        await appending
        await deleter.delete("doomed")  # what the appends after the delete made again
        cur = await admin.execute(
            sql.SQL("SELECT count(*) FROM {}.messages WHERE session_id = 'doomed'").format(
                sql.Identifier(schema)
            )
        )
        assert (await cur.fetchone())[0] == 0
        assert await deleter.load("doomed") is None
        # A new session of that id starts from nothing.
        await writer.append("doomed", [Message(role="user", content="again")], title="t")
        assert [m.content for m in (await deleter.load("doomed")).messages] == ["again"]
    finally:
        await writer.close()
        await deleter.close()


async def test_phrases_and_words_search_with_every_filter(url):
    """Phrases, whole words and a word being typed (a prefix) give the same hits under every filter."""
    from deskmate.memory.search_index import Filters

    backend = backend_for_url(url)
    try:
        here, there = "file:///work/here", "file:///work/there"
        await backend.save(
            Session(
                id="tagged",
                title="t",
                workspace_uri=here,
                meta=SessionMeta(tags=["work"]),
                messages=[
                    Message(
                        role="user", content="the connection refused again", timestamp="2026-03-01T00:00:00Z"
                    ),
                    Message(
                        role="assistant",
                        content="retry the connection later",
                        timestamp="2026-03-01T00:00:01Z",
                    ),
                ],
            )
        )
        await backend.append(
            "elsewhere", [Message(role="user", content="connection refused here too")], workspace_uri=there
        )

        async def found(query: str, **filters) -> list[tuple[str, str]]:
            hits, total = await backend.search(query, Filters(**filters), 10)
            assert total == len(hits)
            return sorted((hit.session_id, hit.role) for hit in hits)

        for query in ('"connection refused"', "refused connection", "connection refu"):
            assert await found(query) == [("elsewhere", "user"), ("tagged", "user")], query
            assert await found(query, tag="work", role="user", folders=[here]) == [("tagged", "user")]
            assert await found(query, role="assistant") == []
            assert await found(query, after="2026-03-01T00:00:00Z", before="2026-03-02") == [
                ("tagged", "user")
            ]
        assert await found('"refused connection"') == []
        assert await found("connection", role="assistant") == [("tagged", "assistant")]
    finally:
        await backend.close()


async def append_each(backend, contents: dict[str, str]) -> None:
    """A session of one user message for each (session id, content)."""
    for session_id, content in contents.items():
        await backend.append(session_id, [Message(role="user", content=content)])


async def test_a_word_being_typed_is_a_prefix_at_its_end_only(url):
    """A word being typed is a prefix at its end only, as on every store: `parse_conf` finds
    parse_config and parse_configuration, not parsed_conf."""
    from deskmate.memory.search_index import Filters

    backend = backend_for_url(url)
    try:
        contents = {
            "config": "call parse_config(path)",
            "longer": "see parse_configuration_file",
            "parsed": "the parsed_conf stays",
            "class": "class ParseSession reads the conf",
        }
        await append_each(backend, contents)
        hits, total = await backend.search("parse_conf", Filters(), 10)
        assert sorted(hit.session_id for hit in hits) == ["config", "longer"]
        assert total == 2
        hits, _ = await backend.search("pars", Filters(), 10)
        assert sorted(hit.session_id for hit in hits) == sorted(contents)  # a lone word: any prefix
    finally:
        await backend.close()


async def test_past_the_bound_only_the_most_recent_matches_are_ranked_and_all_are_counted(url, schema, admin):
    """A query expected to match more messages than ``Bound.all_up_to`` ranks only the
    ``Bound.most_recent`` most recent matches (the session last changed first, then its latest
    messages): the best match of an older session is left out, and ``total`` still counts every
    match. Below the bound every match is ranked. Sessions in the trash stay out of both."""
    from deskmate.memory.backends import postgres_search
    from deskmate.memory.backends.postgres_ranking import Bound
    from deskmate.memory.search_index import Filters

    def session(session_id: str, day: str, contents: list[str], meta: SessionMeta | None = None) -> Session:
        return Session(
            id=session_id,
            title=session_id,
            workspace_uri="file:///work/here",
            meta=meta or SessionMeta(),
            messages=[
                Message(role="user", content=content, timestamp=f"2026-03-{day}T00:00:{n:02d}Z")
                for n, content in enumerate(contents)
            ],
        )

    backend = backend_for_url(url)
    try:
        strong = "needle needle needle"  # ranks above one needle among other words
        weak = "a needle in a long haystack of other words and more words"
        await backend.save(session("older", "01", [strong, "no match here", strong]))
        await backend.save(session("middle", "02", ["an early needle " + weak, "nothing", weak]))
        await backend.save(session("newest", "03", [weak, weak + " needle", "nothing"]))
        binned = SessionMeta(deleted_at="2026-03-05T00:00:00Z")
        await backend.save(session("binned", "04", [strong, strong], meta=binned))

        async def search(bound: Bound) -> tuple[list[tuple[str, str]], int]:
            hits, total = await postgres_search.search(admin, schema, "needle", Filters(), 10, bound)
            return [(hit.session_id, hit.snippet) for hit in hits], total

        everything, total = await search(Bound())
        assert total == 6
        assert [session_id for session_id, _ in everything[:2]] == ["older", "older"]

        # 0: any query is expected to match more; the 3 most recent of the 6 matches are ranked:
        # both of "newest" (its second message, with two needles, first) and the latest of "middle".
        bounded, total = await search(Bound(all_up_to=0, most_recent=3))
        assert total == 6
        assert sorted(session_id for session_id, _ in bounded) == ["middle", "newest", "newest"]
        assert bounded[0][0] == "newest" and bounded[0][1].count("**needle**") == 2
        assert not any("early" in snippet for _, snippet in bounded)

        # Keeping as many as match ranks them all, as does a query expected to match fewer than
        # the bound, however few are kept past it.
        assert await search(Bound(all_up_to=0, most_recent=6)) == (everything, 6)
        assert await search(Bound(all_up_to=10**9, most_recent=1)) == (everything, 6)
    finally:
        await backend.close()


async def test_a_version_7_store_filters_on_the_columns_migration_8_adds(url, schema, admin):
    """Migration 8 keeps a session's trash mark, folder and project as columns the server
    computes from the row: rows written before it get theirs, and so do later writes; a
    metadata text that is not JSON counts as none (the row still loads and lists)."""
    from deskmate.memory.search_index import Filters

    ident = await schema_at_version(admin, schema, 7)
    rows = [
        ("kept", "file:///a/", '{"project": "proj-1"}'),
        ("binned", "file:///a", '{"deletedAt": "2026-02-01T00:00:00Z"}'),
        ("mangled", "file:///b", "{not json"),
    ]
    for session_id, folder, meta in rows:
        await admin.execute(
            sql.SQL(
                "INSERT INTO {}.sessions VALUES (%s, %s, %s, '2026-01-01', '2026-01-01', ARRAY[]::text[], 1, %s)"
            ).format(ident),
            (session_id, session_id.title(), folder, meta),
        )
        await admin.execute(
            sql.SQL("INSERT INTO {}.messages (session_id, seq, data) VALUES (%s, 1, %s)").format(ident),
            (
                session_id,
                '{"id":"m1","role":"user","content":"frobnicate the widget","timestamp":"2026-01-01"}',
            ),
        )
    backend = backend_for_url(url)
    try:

        async def found(**filters) -> set[str]:
            hits, total = await backend.search("frobnicate", Filters(**filters), 10)
            assert total == len(hits)
            return {hit.session_id for hit in hits}

        assert await found() == {"kept", "mangled"}  # the trash is not searched
        assert await found(folders=["file:///a"]) == {"kept"}  # a trailing slash or not
        assert await found(folders=["file:///elsewhere"], projects=["proj-1"]) == {"kept"}
        assert await found(folders=["file:///b"]) == {"mangled"}
        # Later writes keep the columns: a session moved to the trash, one given a project.
        await backend.update(
            "kept", lambda info: (info.title, replace(info.meta, deleted_at="2026-03-01T00:00:00Z"))
        )
        await backend.append(
            "fresh", [Message(role="user", content="frobnicate again")], workspace_uri="file:///c"
        )
        await backend.update("fresh", lambda info: (info.title, replace(info.meta, project="proj-2")))
        assert await found() == {"mangled", "fresh"}
        assert await found(folders=["file:///elsewhere"], projects=["proj-2"]) == {"fresh"}
        assert {info.id for info in await backend.list()} == {"kept", "binned", "mangled", "fresh"}
    finally:
        await backend.close()


async def test_a_second_load_reads_only_what_was_appended_since(url, schema, admin):
    """A backend keeps the histories it loaded: the next load of one reads the rows after
    them. Shown by an old row changed where the server's triggers cannot see it: the kept
    copy is what the load gives back, and the rows appended since are added to it."""
    ident = sql.Identifier(schema)
    writer, reader = backend_for_url(url), backend_for_url(url)
    try:
        await writer.append("s", turn(0), title="T")
        assert [m.content for m in (await reader.load("s")).messages] == ["q0", "a0"]
        await admin.execute(sql.SQL("ALTER TABLE {}.messages DISABLE TRIGGER USER").format(ident))
        await admin.execute(
            sql.SQL("UPDATE {}.messages SET data = replace(data, 'q0', 'unseen') WHERE seq = 1").format(ident)
        )
        await admin.execute(sql.SQL("ALTER TABLE {}.messages ENABLE TRIGGER USER").format(ident))
        await writer.append("s", turn(1))
        assert [m.content for m in (await reader.load("s")).messages] == ["q0", "a0", "q1", "a1"]
        assert [m.content for m in (await backend_for_url(url).load("s")).messages][0] == "unseen"
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE {}.messages SET data = replace(data, 'q0', 'edited') WHERE seq = 1",
        "DELETE FROM {}.messages WHERE seq = 2",
        "TRUNCATE {}.messages",
    ],
    ids=["row edited", "row deleted", "table truncated"],
)
async def test_a_history_changed_by_hand_is_read_again_whole(url, schema, admin, change):
    """Edits, deletes and a truncate made outside deskmate give the history a new generation:
    the next load reads every row, not the copy kept from before."""
    ident = sql.Identifier(schema)
    backend, fresh = backend_for_url(url), None
    try:
        await backend.append("s", [*turn(0), *turn(1)], title="T")
        await backend.load("s")
        await admin.execute(sql.SQL(change).format(ident))
        fresh = backend_for_url(url)
        assert [m.content for m in (await backend.load("s")).messages] == [
            m.content for m in (await fresh.load("s")).messages
        ]
        assert [m.content for m in (await backend.load("s")).messages] != ["q0", "a0", "q1", "a1"]
    finally:
        await backend.close()
        if fresh is not None:
            await fresh.close()


async def test_a_history_saved_again_at_the_same_length_is_read_again(url):
    """Another daemon's save (a rewrite, here of the same length) is never taken for appends."""
    reader, writer = backend_for_url(url), backend_for_url(url)
    try:
        await writer.save(Session(id="s", title="T", messages=turn(0)))
        await reader.load("s")
        await writer.save(Session(id="s", title="T", messages=turn(7)))
        assert [m.content for m in (await reader.load("s")).messages] == ["q7", "a7"]
        await writer.delete("s")
        await writer.append("s", turn(8), title="T")  # deleted, then made again
        assert [m.content for m in (await reader.load("s")).messages] == ["q8", "a8"]
    finally:
        await reader.close()
        await writer.close()


async def test_an_identifier_is_one_word_of_the_index_and_found_whole_or_as_typed(url, schema, admin):
    """Since migration 10 an identifier (`parse_config`) is kept whole beside its parts: a
    search for it is that one word (no positions to compare), found while typed
    (`parse_conf`), inside a phrase and in titles; its parts are still words of their own;
    the snippet marks it in the text as written. As in the local index, an identifier is not
    found inside a longer one (`reparse_config`)."""
    from deskmate.memory.backends import postgres_search
    from deskmate.memory.search_index import Filters

    backend = backend_for_url(url)
    try:
        await append_each(
            backend,
            {
                "whole": "call parse_config before merge_with_backoff",
                "spaced": "parse config files first",
                "longer": "see reparse_config and parse_configuration",
                "digits": "retry_2 and x_y1 and __init__",
            },
        )
        await backend.append(
            "titled", [Message(role="user", content="nothing here")], title="About load_session"
        )

        async def found(query: str) -> list[str]:
            hits, total = await backend.search(query, Filters(), 10)
            assert total == len(hits)
            return sorted(hit.session_id for hit in hits)

        assert await found("parse_config") == ["longer", "whole"]  # as typed: parse_configuration too
        assert await found('"parse_config"') == ["whole"]  # a phrase: the word itself
        assert await found("parse_conf") == ["longer", "whole"]
        assert await found("Merge_With_Backoff") == ["whole"]
        assert await found('"call parse_config before"') == ["whole"]
        assert await found("parse config") == ["longer", "spaced", "whole"]  # the parts, still words
        assert await found("retry_2") == ["digits"] and await found("x_y1") == ["digits"]
        assert await found("__init__") == ["digits"]
        assert await found("load_session") == ["titled"]
        hits, _ = await backend.search("parse_config", Filters(), 10)
        assert {hit.snippet for hit in hits if hit.session_id == "whole"} == {
            "call **parse**_**config** before merge_with_backoff"
        }
        q, params = postgres_search.tsquery("parse_config", sql.Identifier(schema))
        assert params == ["'parse-config':*"]  # one word of the index, not a phrase of two
    finally:
        await backend.close()


async def test_a_version_9_store_finds_identifiers_whole_after_migration_10(url, schema, admin):
    """Migration 10 computes again the words of the rows and titles that hold an identifier;
    no session's history counts as changed (a daemon that loaded one reads only what is new)."""
    from deskmate.memory.search_index import Filters

    ident = await schema_at_version(admin, schema, 9)
    await admin.execute(
        sql.SQL(
            "INSERT INTO {0}.sessions VALUES ('old', 'About load_session', NULL, '2026-01-01', '2026-01-01', "
            "ARRAY[]::text[], 2, NULL);"
            "INSERT INTO {0}.messages (session_id, seq, data) VALUES "
            '(\'old\', 1, \'{{"id":"m1","role":"user","content":"why does parse_config fail","timestamp":"2026-01-01"}}\'),'
            '(\'old\', 2, \'{{"id":"m2","role":"assistant","content":"no identifier here","timestamp":"2026-01-02"}}\')'
        ).format(ident)
    )
    before = await (
        await admin.execute(sql.SQL("SELECT generation FROM {}.sessions WHERE id = 'old'").format(ident))
    ).fetchone()
    backend = backend_for_url(url)
    try:
        hits, total = await backend.search("parse_config", Filters(), 10)
        assert (total, [hit.message_id for hit in hits]) == (1, ["m1"])
        hits, _ = await backend.search("load_session", Filters(), 10)
        assert [(hit.session_id, hit.message_id) for hit in hits] == [("old", None)]  # the title
        after = await (
            await admin.execute(sql.SQL("SELECT generation FROM {}.sessions WHERE id = 'old'").format(ident))
        ).fetchone()
        assert after == before
        words = await (
            await admin.execute(sql.SQL("SELECT search::text FROM {}.messages ORDER BY seq").format(ident))
        ).fetchall()
        assert "'parse-config'" in words[0][0] and "'parse'" in words[0][0]
        assert words[1][0] == "'here':3 'identifier':2 'no':1"  # no identifier: not rewritten
    finally:
        await backend.close()
