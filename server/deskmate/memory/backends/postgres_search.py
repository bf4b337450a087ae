"""Full-text search in PostgreSQL: the query the PostgresBackend sends for ``search``.

The server keeps every message's words in a tsvector column with a GIN index (schema
migration 3) and the titles under an expression index, so every daemon of a team sees
the same results at once and no daemon keeps an index of its own. The ``simple``
configuration: words lower-cased (Unicode-aware, by the database's ctype), no stemming
and no stop words, so code identifiers and any language match as written.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from ..search_index import Filters, Hit, ListQuery, parse_query
from .postgres_ranking import HEADLINE, Bound, Matches, best, title_words

RANDOM_PAGE_COST = 1.1  # the usual setting for a database in memory or on SSD


# An identifier as the server keeps it whole (schema migration 10): ASCII letters and digits,
# each '_' followed by a letter. Others (`retry_2`, `__init__`, non-ASCII) are split as the
# server splits them, on both sides alike.
_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z][A-Za-z0-9]*)+")


def _quoted(word: str) -> str:
    """``word`` as a tsquery term, quoted so nothing in it is tsquery syntax."""
    return "'" + word.lower().replace("\\", "\\\\").replace("'", "''") + "'"


def _identifier(word: str, prefix: bool) -> str:
    """The tsquery of an identifier: the one hyphenated word the server keeps for it."""
    return _quoted(word.replace("_", "-")) + (":*" if prefix else "")


def tsquery(query: str, schema: sql.Identifier) -> tuple[sql.Composable, list[Any]]:
    """The query as a tsquery expression and its parameters: every word and phrase ANDed,
    matching the messages' words as the server keeps them (``search_text``: identifiers whole)."""
    return _tsquery(query, sql.SQL("{schema}.search_text(%s)").format(schema=schema), identifiers=True)


def shown_tsquery(query: str) -> tuple[sql.Composable, list[Any]]:
    """The same query over the text as written, for ``ts_headline`` to mark the words found."""
    return _tsquery(query, sql.SQL("%s"), identifiers=False)


def _tsquery(query: str, text: sql.Composable, *, identifiers: bool) -> tuple[sql.Composable, list[Any]]:
    parts, bare_last = parse_query(query)
    pieces: list[sql.Composable] = []
    params: list[Any] = []
    for number, words in enumerate(parts):
        prefix = bare_last and number == len(parts) - 1
        if identifiers and len(words) == 1 and _IDENTIFIER.fullmatch(words[0]):
            pieces.append(sql.SQL("%s::tsquery"))
            params.append(_identifier(words[0], prefix))
        elif prefix and len(words) == 1:
            # The server splits a word at '_' (and more): of its words only the last is a
            # prefix, as the whole word is (`parse_conf` finds parse_config, not parsed_conf).
            pieces.append(
                sql.SQL("replace(to_tsquery('simple', {text})::text, ':* <->', ' <->')::tsquery").format(
                    text=text
                )
            )
            params.append(_quoted(words[0]) + ":*")
        else:
            pieces.append(sql.SQL("phraseto_tsquery('simple', {text})").format(text=text))
            params.append(" ".join(words))
    return sql.SQL("(") + sql.SQL(" && ").join(pieces) + sql.SQL(")"), params


def _filters(filters: Filters) -> tuple[list[sql.Composable], list[Any]]:
    # Sessions in the trash are neither searched nor paged (their deletedAt stays in the clear).
    where: list[sql.Composable] = [sql.SQL("NOT s.trashed")]
    params: list[Any] = []
    if filters.folders is not None:
        # A session of one of the folders' projects counts too, wherever it was made.
        where.append(sql.SQL("(s.folder = ANY(%s) OR s.id = ANY(%s) OR s.project = ANY(%s))"))
        params.extend(
            [[f.rstrip("/") for f in filters.folders], list(filters.session_ids), list(filters.projects)]
        )
    if filters.tag:
        where.append(sql.SQL("EXISTS (SELECT FROM unnest(s.tags) t WHERE lower(t) = lower(%s))"))
        params.append(filters.tag)
    return where, params


async def search(
    conn: Any, schema: str, query: str, filters: Filters, limit: int, bound: Bound = Bound()
) -> tuple[list[Hit], int]:
    """The best ``limit`` hits and how many there are in all, from one connection, in one
    snapshot (the count and the title-only hits agree with the hits); ``bound``: which
    matches are ranked (``postgres_ranking.py``)."""
    # Pipelined: the statements up to the estimate go in one round trip, the two that find
    # the hits in another (six round trips took about 1.5 ms of a 10 ms search).
    async with conn.pipeline(), conn.transaction():
        # Planned with the server's default random_page_cost (4, for spinning disks), a word
        # in 1,500 of 100,000 messages was sought by reading every message (60 ms) instead of
        # the few pages its index names (15 ms). A lower setting of the server's is kept.
        await conn.execute(
            "SELECT set_config('random_page_cost', %s, true) "
            "WHERE current_setting('random_page_cost')::float8 > %s",
            (str(RANDOM_PAGE_COST), RANDOM_PAGE_COST),
        )
        return await _search(conn, schema, query, filters, limit, bound)


async def _search(
    conn: Any, schema: str, query: str, filters: Filters, limit: int, bound: Bound
) -> tuple[list[Hit], int]:
    quoted = sql.Identifier(schema)
    q, q_params = tsquery(query, quoted)
    shown, shown_params = shown_tsquery(query)
    session_where, session_params = _filters(filters)
    message_where = [sql.SQL("m.search @@ {q}").format(q=q)]
    message_params = list(q_params)
    for key, condition in (
        ("role", "(m.data::jsonb ->> 'role') = %s"),
        ("after", "(m.data::jsonb ->> 'timestamp') >= %s"),
        ("before", "(m.data::jsonb ->> 'timestamp') < %s"),
    ):
        value = getattr(filters, key)
        if value:
            message_where.append(sql.SQL(condition))
            message_params.append(value)
    matches = Matches(
        quoted, q, q_params, shown, shown_params, session_where, session_params, message_where, message_params
    )
    # Which way is cheaper depends on how many messages match, which the statistics of the
    # words foretell before anything is read (roughly for a phrase: its words are taken as
    # independent, so `"raise RuntimeError"` is expected in 1,450 messages and is in 11,885).
    if await _expected_matches(conn, quoted, q, q_params) > bound.all_up_to:
        ranked = matches.ranked_again(bound.most_recent)
    else:
        ranked = matches.ranked_as_found()
    statement, params = best(ranked, matches, limit)
    # Never prepared: a prepared statement soon runs a generic plan, blind to how many messages
    # the words match, which took 2-9 s where a plan for the query's own words takes 10-500 ms.
    found = await conn.execute(statement, params, prepare=False)
    titled = None
    if not (filters.role or filters.after or filters.before):
        titled = await conn.execute(
            _titled(quoted, q, shown, session_where),
            [*q_params, *shown_params, *session_params],
            prepare=False,
        )
    rows = await found.fetchall()
    hits = [Hit(*row[:6]) for row in rows]
    total = rows[0][6] if rows else 0
    if titled is not None:
        title_rows = await titled.fetchall()
        total += len(title_rows)
        for session_id, title, updated_at, marked in title_rows[: max(0, limit - len(hits))]:
            hits.append(Hit(session_id, title, None, None, updated_at, marked))
    return hits, total


def _titled(
    quoted: sql.Identifier, q: sql.Composable, shown: sql.Composable, session_where: list[sql.Composable]
) -> sql.Composed:
    """The sessions searched whose title matches and none of whose messages do."""
    return (
        sql.SQL(
            "SELECT s.id, s.title, s.updated_at, ts_headline('simple', s.title, q.shown, {headline}) "
            "FROM {schema}.sessions s, (SELECT {q} AS q, {shown} AS shown) q WHERE "
        ).format(schema=quoted, q=q, shown=shown, headline=sql.Literal(HEADLINE))
        + sql.SQL(" AND ").join([*session_where, sql.SQL("{words} @@ q.q").format(words=title_words(quoted))])
        + sql.SQL(
            " AND NOT EXISTS (SELECT FROM {schema}.messages m WHERE m.session_id = s.id AND m.search @@ q.q)"
            " ORDER BY ts_rank_cd({words}, q.q) DESC, s.updated_at DESC"
        ).format(schema=quoted, words=title_words(quoted))
    )


async def _expected_matches(
    conn: Any, quoted: sql.Identifier, q: sql.Composable, q_params: list[Any]
) -> float:
    """How many messages the server's statistics say the words match (planned, not run)."""
    statement = sql.SQL("EXPLAIN (FORMAT JSON) SELECT FROM {schema}.messages m WHERE m.search @@ {q}").format(
        schema=quoted, q=q
    )
    plan = (await (await conn.execute(statement, q_params, prepare=False)).fetchone())[0]
    return float(plan[0]["Plan"]["Plan Rows"])


def list_page(schema: str, query: ListQuery, offset: int, limit: int) -> tuple[sql.Composed, list[Any]]:
    """The statement for a page of the sessions listing and its parameters."""
    quoted = sql.Identifier(schema)
    where, params = _filters(
        Filters(folders=query.folders, session_ids=query.session_ids, tag=query.tag, projects=query.projects)
    )
    if query.pinned is not None:
        where.append(sql.SQL("{schema}.meta_pinned(s.meta) = %s").format(schema=quoted))
        params.append(query.pinned)
    if query.only_ids is not None:
        where.append(sql.SQL("s.id = ANY(%s)"))
        params.append(list(query.only_ids))
    statement = (
        sql.SQL(
            "SELECT s.id, s.title, s.workspace_uri, s.created_at, s.updated_at, s.tags, s.message_count, s.meta "
            "FROM {schema}.sessions s"
        ).format(schema=quoted)
        + (sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
        + sql.SQL(
            " ORDER BY {schema}.meta_pinned(s.meta) DESC, s.updated_at DESC, s.id LIMIT %s OFFSET %s"
        ).format(schema=quoted)
    )
    return statement, [*params, limit, offset]
