"""The statement that ranks a search's matches in PostgreSQL (``postgres_search.search``).

Every match is counted. Ranking (``ts_rank_cd``) reads a match's words, which costs about as
much as finding it: `the`, in 99,361 of 100,000 messages, cost every message twice over. So a
query the server's statistics expect to match more than ``Bound.all_up_to`` messages ranks
only the ``Bound.most_recent`` most recent (by their session's last change, then their order
in it), as the local index ranks its most recent 5,000. Keeping the most recent takes ordering
every match and reading the kept ones' words again, which pays only when the matches far
outnumber the kept (ranking the most recent 5,000 of 8,268 `timeout` matches took longer than
ranking them all): hence two numbers, and every match is ranked below the first.

Each step is kept apart (OFFSET 0, LIMIT, MATERIALIZED) so the planner cannot merge them, and
their rows carry narrow columns, never a message's text or words (99,361 matches of `the` once
spilled them to disk to be counted). Only the hits shown are read whole, and marked up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from ..search_index import MARK

HEADLINE = f"StartSel={MARK}, StopSel={MARK}, MaxWords=24, MinWords=10, ShortWord=2, MaxFragments=1, FragmentDelimiter=…"
TITLE_BONUS = 1.0  # added to a message's ts_rank_cd (higher is better) when its session's title matches
RECENT_FIRST = "updated_at DESC, session_id DESC, seq DESC"


def title_words(schema: sql.Identifier) -> sql.Composed:
    """A session title's words, as the titles' index keeps them (schema migration 10)."""
    return sql.SQL("to_tsvector('simple', {schema}.search_text(s.title))").format(schema=schema)


@dataclass(frozen=True)
class Bound:
    """Every match is ranked unless more than ``all_up_to`` are expected; then the ``most_recent``."""

    all_up_to: int = 20_000
    most_recent: int = 5_000


@dataclass(frozen=True)
class Matches:
    """The parts of a search the ranking statement is made of, each with its parameters."""

    schema: sql.Identifier
    q: sql.Composable  # the query's tsquery expression, over the words as kept (identifiers whole)
    q_params: list[Any]
    shown: sql.Composable  # the same over the text as written, for the snippets' marks
    shown_params: list[Any]
    session_where: list[sql.Composable]
    session_params: list[Any]
    message_where: list[sql.Composable]
    message_params: list[Any]

    def rank(self) -> tuple[sql.Composed, list[Any]]:
        """A match's rank (higher is better), by its length: for one word of the index, how often
        it holds it (``ts_rank``); for more, also how near together they are (``ts_rank_cd``:
        covers, which for one word are each occurrence again, at twice the cost)."""
        rank = sql.SQL(
            "CASE WHEN numnode({q}) = 1 THEN ts_rank(m.search, {q}, 2) ELSE ts_rank_cd(m.search, {q}, 2) END"
        ).format(q=self.q)
        return rank, self.q_params * 3

    def _found(self, columns: sql.Composable, column_params: list[Any]) -> tuple[sql.Composed, list[Any]]:
        """Every matching message of the sessions searched (its session_id, seq and ``columns``),
        and the count of all: counted above where the columns are computed, since the count's
        window holds every row."""
        sessions = (
            sql.SQL("(SELECT s.id, s.updated_at FROM {schema}.sessions s WHERE ").format(schema=self.schema)
            + sql.SQL(" AND ").join(self.session_where)
            + sql.SQL(" OFFSET 0)")
        )
        statement = (
            sql.SQL("SELECT c.*, count(*) OVER () AS total FROM (SELECT m.session_id, m.seq, ")
            + columns
            + sql.SQL(" FROM {schema}.messages m JOIN ").format(schema=self.schema)
            + sessions
            + sql.SQL(" s ON s.id = m.session_id WHERE ")
            + sql.SQL(" AND ").join(self.message_where)
            + sql.SQL(" OFFSET 0) c")
        )
        return statement, [*column_params, *self.session_params, *self.message_params]

    def ranked_as_found(self) -> tuple[sql.Composed, list[Any]]:
        """CTEs ending in ``ranked`` (session_id, seq, words_rank, total): every match ranked
        where it is found."""
        rank, rank_params = self.rank()
        found, params = self._found(sql.SQL("{rank} AS words_rank").format(rank=rank), rank_params)
        return sql.SQL("ranked AS (") + found + sql.SQL(")"), params

    def ranked_again(self, most_recent: int) -> tuple[sql.Composed, list[Any]]:
        """The same ``ranked`` for only the ``most_recent`` matches: all found where they lie,
        ordered, and the kept ones read again by those places (one scan of the list, not a
        look-up each) to be ranked."""
        found, params = self._found(sql.SQL("s.updated_at, m.ctid AS place"), [])
        rank, rank_params = self.rank()
        statement = (
            sql.SQL("kept AS MATERIALIZED (")
            + found
            + sql.SQL(
                " ORDER BY {order} LIMIT %s), "
                "ranked AS (SELECT m.session_id, m.seq, {rank} AS words_rank, "
                "(SELECT total FROM kept LIMIT 1) AS total FROM {schema}.messages m "
                "WHERE m.ctid = ANY(ARRAY(SELECT place FROM kept)))"
            ).format(order=sql.SQL(RECENT_FIRST), rank=rank, schema=self.schema)
        )
        return statement, [*params, most_recent, *rank_params]


def best(
    ranked: tuple[sql.Composed, list[Any]], matches: Matches, limit: int
) -> tuple[sql.Composed, list[Any]]:
    """The best ``limit`` of the ``ranked`` rows, a session's title matching too adding a bonus,
    with what a hit shows. The sessions whose title matches come from the titles' index (each
    title searched parsed again cost about 1 ms a search per 1,000 sessions)."""
    ctes, ranked_params = ranked
    schema, q = matches.schema, matches.q
    statement = (
        sql.SQL(
            "WITH titled AS MATERIALIZED (SELECT s.id FROM {schema}.sessions s WHERE {words} @@ {q}), "
        ).format(schema=schema, q=q, words=title_words(schema))
        + ctes
        + sql.SQL(
            ", hits AS (SELECT r.session_id, r.seq, r.total, r.words_rank "
            "+ CASE WHEN r.session_id IN (SELECT id FROM titled) THEN {bonus} ELSE 0 END AS rank "
            "FROM ranked r ORDER BY rank DESC, r.session_id, r.seq DESC LIMIT %s) "
            "SELECT h.session_id, s.title, m.data::jsonb ->> 'id', m.data::jsonb ->> 'role', "
            "m.data::jsonb ->> 'timestamp', ts_headline('simple', {schema}.message_text(m.data), {shown}, {headline}), "
            "h.total FROM hits h JOIN {schema}.messages m ON m.session_id = h.session_id AND m.seq = h.seq "
            "JOIN {schema}.sessions s ON s.id = h.session_id ORDER BY h.rank DESC, h.session_id, h.seq DESC"
        ).format(
            schema=schema, shown=matches.shown, bonus=sql.Literal(TITLE_BONUS), headline=sql.Literal(HEADLINE)
        )
    )
    return statement, [*matches.q_params, *ranked_params, limit, *matches.shown_params]
