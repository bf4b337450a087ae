"""The search index: every stored message and title in a local SQLite FTS5 database.

Derived data. It holds copies of what the sessions hold, never the only copy: it may be
deleted at any time (or found damaged, or written by another version) and is then
rebuilt from the store. Case-insensitive and Unicode-aware (FTS5's ``unicode61``
tokenizer, diacritics folded, ``_`` part of words so identifiers stay whole), ranked by
BM25 with a bonus for sessions whose title matches.

Blocking: callers run it in threads (``indexing.IndexedBackend``), one writer
connection and one reader connection, so a search never waits behind a long write
(WAL lets a reader see the last committed state meanwhile).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .models import Message, Session, SessionInfo

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '_'"
TAG_SEPARATOR = "\x1f"
TITLE_BONUS = 5.0  # subtracted from a message's BM25 rank (lower is better) when its session's title matches
SNIPPET_TOKENS = 16
MARK = "**"  # the snippet's highlight around each match (Markdown bold)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS facts(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, title TEXT NOT NULL, folder TEXT, tags TEXT NOT NULL,
    updated_at TEXT NOT NULL, message_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
    rowid INTEGER PRIMARY KEY, session_id TEXT NOT NULL, message_id TEXT NOT NULL,
    role TEXT NOT NULL, timestamp TEXT NOT NULL, content TEXT NOT NULL,
    UNIQUE(session_id, message_id));
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    content, content='messages', content_rowid='rowid', tokenize="{TOKENIZER}");
CREATE VIRTUAL TABLE IF NOT EXISTS titles_fts USING fts5(
    title, session_id UNINDEXED, tokenize="{TOKENIZER}");
CREATE TRIGGER IF NOT EXISTS messages_added AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END;
CREATE TRIGGER IF NOT EXISTS messages_removed AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content); END;
"""


class BadQuery(ValueError):
    """A search query with nothing to search for."""


_PHRASE_OR_WORD = re.compile(r'"([^"]*)"|(\S+)')
_WORD_CHARS = re.compile(r"[\w]+", re.UNICODE)


def parse_query(query: str) -> tuple[list[list[str]], bool]:
    """The query's parts, each a list of words that must occur in that order (an "exact
    phrase", or one word, which may itself split into several: ``parse_args()``), and
    whether the last part is a bare word (then also matched as a prefix: search as you type).
    BadQuery when it holds no word at all."""
    parts: list[list[str]] = []
    bare_last = False
    for phrase, word in _PHRASE_OR_WORD.findall(query):
        words = _WORD_CHARS.findall(phrase if phrase else word)
        if not words:
            continue
        if phrase:
            parts.append(words)
        else:
            parts.extend([w] for w in words)
        bare_last = not phrase
    if not parts:
        raise BadQuery("the query holds no words to search for")
    return parts, bare_last


def match_expression(query: str) -> str:
    """The user's query as an FTS5 MATCH expression: every word and every "exact phrase" must
    occur; the last bare word also matches as a prefix. Each part is quoted, so no FTS5
    syntax in the query can do anything."""
    parts, bare_last = parse_query(query)
    quoted = ['"' + " ".join(words).replace('"', '""') + '"' for words in parts]
    if bare_last:
        quoted[-1] += "*"
    return " AND ".join(quoted)


@dataclass
class Hit:
    session_id: str
    title: str
    message_id: str | None  # None: the session's title matched, no message did
    role: str | None
    timestamp: str | None
    snippet: str


@dataclass
class Filters:
    """What a search is limited to; None means any."""

    folders: Sequence[str] | None = None  # workspace folder URIs (without trailing slash)
    session_ids: Sequence[str] = ()  # also searched whatever their folder (a folder's active session)
    tag: str | None = None
    role: str | None = None
    after: str | None = None  # ISO 8601 times, compared as text
    before: str | None = None


def _folder(workspace_uri: str | None) -> str | None:
    return workspace_uri.rstrip("/") if workspace_uri else None


def _tags(tags: Iterable[str]) -> str:
    return TAG_SEPARATOR + TAG_SEPARATOR.join(t.casefold() for t in tags) + TAG_SEPARATOR


class SearchIndex:
    """The index file at ``path``; opened (and made, or remade when unreadable) on construction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.remade = False  # True when it was made fresh: everything must be indexed again
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._writer = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("The search index %s is unreadable (%s); it is rebuilt from the sessions.", path, exc)
            self._drop_files()
            self._writer = self._open()
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA busy_timeout = 5000")

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists()
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # derived data: a lost tail is re-indexed
            version = None
            if not fresh:
                row = db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name='facts'"
                ).fetchone()
                if row:
                    found = db.execute("SELECT value FROM facts WHERE key='schema'").fetchone()
                    version = found[0] if found else None
                if version != SCHEMA_VERSION:
                    db.close()
                    self._drop_files()
                    return self._open()
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO facts VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.execute("PRAGMA quick_check(1)") if not fresh else None
        except sqlite3.DatabaseError:
            db.close()
            raise
        self.remade = self.remade or fresh or version != SCHEMA_VERSION
        return db

    def _drop_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self.remade = True

    def close(self) -> None:
        self._reader.close()
        self._writer.close()

    # -- writing (the writer thread) ------------------------------------------------

    def put_session(self, info: SessionInfo) -> None:
        """Record a session's title, folder, tags and times (its messages are untouched)."""
        db = self._writer
        with _transaction(db):
            self._put_session(db, info)

    def _put_session(self, db: sqlite3.Connection, info: SessionInfo) -> None:
        db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "title=excluded.title, folder=excluded.folder, tags=excluded.tags, "
            "updated_at=excluded.updated_at, message_count=excluded.message_count",
            (
                info.id,
                info.title,
                _folder(info.workspace_uri),
                _tags(info.meta.tags),
                info.updated_at,
                info.message_count,
            ),
        )
        old = db.execute("SELECT title FROM titles_fts WHERE session_id = ?", (info.id,)).fetchone()
        if old is None or old[0] != info.title:
            db.execute("DELETE FROM titles_fts WHERE session_id = ?", (info.id,))
            db.execute("INSERT INTO titles_fts(title, session_id) VALUES (?, ?)", (info.title, info.id))

    def add_messages(
        self, session_id: str, messages: Sequence[Message], title: str, workspace_uri: str | None
    ) -> None:
        """Index appended messages; a session not indexed yet is recorded with ``title``."""
        if not messages:
            return
        db = self._writer
        with _transaction(db):
            db.execute(
                "INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?, 0)",
                (session_id, title, _folder(workspace_uri), _tags(()), messages[-1].timestamp),
            )
            if db.execute("SELECT changes()").fetchone()[0]:
                db.execute("INSERT INTO titles_fts(title, session_id) VALUES (?, ?)", (title, session_id))
            self._insert(db, session_id, messages)
            db.execute(
                "UPDATE sessions SET updated_at = ?, "
                "message_count = (SELECT count(*) FROM messages WHERE session_id = ?) WHERE id = ?",
                (messages[-1].timestamp, session_id, session_id),
            )

    @staticmethod
    def _insert(db: sqlite3.Connection, session_id: str, messages: Iterable[Message]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO messages(session_id, message_id, role, timestamp, content) "
            "VALUES (?, ?, ?, ?, ?)",
            [(session_id, m.id, m.role, m.timestamp, m.content) for m in messages],
        )

    def replace(self, session: Session) -> None:
        """Index a whole session afresh (a save, or a rebuild)."""
        db = self._writer
        with _transaction(db):
            db.execute("DELETE FROM messages WHERE session_id = ?", (session.id,))
            self._insert(db, session.id, session.messages)
            self._put_session(db, session.info())

    def remove(self, session_id: str) -> None:
        db = self._writer
        with _transaction(db):
            db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM titles_fts WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def indexed(self) -> dict[str, tuple[str, int, str, str]]:
        """Each indexed session's (updated_at, message count, title, tags), to compare with a listing."""
        rows = self._writer.execute("SELECT id, updated_at, message_count, title, tags FROM sessions")
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}

    @staticmethod
    def summary_of(info: SessionInfo) -> tuple[str, int, str, str]:
        """What ``indexed`` holds for a session, as a listing shows it."""
        return (info.updated_at, info.message_count, info.title, _tags(info.meta.tags))

    # -- searching (the reader thread) -------------------------------------------------

    def search(self, query: str, filters: Filters, limit: int) -> tuple[list[Hit], int]:
        """The best ``limit`` hits and how many there are in all."""
        expression = match_expression(query)
        where, params = _where(filters)
        db = self._reader
        titled = {
            row[0]
            for row in db.execute("SELECT session_id FROM titles_fts WHERE titles_fts MATCH ?", (expression,))
        }
        message_where = where + ["messages_fts MATCH ?"]
        message_params = [*params, expression]
        role_sql = ""
        if filters.role:
            role_sql = " AND m.role = ?"
            message_params.append(filters.role)
        if filters.after:
            role_sql += " AND m.timestamp >= ?"
            message_params.append(filters.after)
        if filters.before:
            role_sql += " AND m.timestamp < ?"
            message_params.append(filters.before)
        joined = (
            " FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
            "JOIN sessions s ON s.id = m.session_id WHERE " + " AND ".join(message_where) + role_sql
        )
        bonus = ",".join("?" for _ in titled)
        rank = f"bm25(messages_fts) - (CASE WHEN m.session_id IN ({bonus}) THEN {TITLE_BONUS} ELSE 0 END)"
        rows = db.execute(
            f"SELECT m.session_id, s.title, m.message_id, m.role, m.timestamp, "
            f"snippet(messages_fts, 0, '{MARK}', '{MARK}', '…', {SNIPPET_TOKENS})"
            f"{joined} ORDER BY {rank if titled else 'bm25(messages_fts)'}, m.timestamp DESC LIMIT ?",
            [*message_params, *titled, limit],
        ).fetchall()
        total = db.execute(f"SELECT count(*){joined}", message_params).fetchone()[0]
        hits = [Hit(*row) for row in rows]
        if titled and not (filters.role or filters.after or filters.before):
            with_messages = {hit.session_id for hit in hits}
            title_rows = db.execute(
                "SELECT s.id, s.title, s.updated_at, "
                f"highlight(titles_fts, 0, '{MARK}', '{MARK}') FROM titles_fts "
                "JOIN sessions s ON s.id = titles_fts.session_id WHERE "
                + " AND ".join(where + ["titles_fts MATCH ?"])
                + " ORDER BY bm25(titles_fts)",
                [*params, expression],
            ).fetchall()
            title_only = [row for row in title_rows if row[0] not in with_messages]
            total += len(title_only)
            for session_id, title, updated_at, marked in title_only[: max(0, limit - len(hits))]:
                hits.append(Hit(session_id, title, None, None, updated_at, marked))
        return hits, total


def _where(filters: Filters) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []
    if filters.folders is not None:
        places = ",".join("?" for _ in filters.folders) or "NULL"
        ids = ",".join("?" for _ in filters.session_ids) or "NULL"
        where.append(f"(s.folder IN ({places}) OR s.id IN ({ids}))")
        params.extend(f.rstrip("/") for f in filters.folders)
        params.extend(filters.session_ids)
    if filters.tag:
        where.append("instr(s.tags, ?) > 0")
        params.append(TAG_SEPARATOR + filters.tag.casefold() + TAG_SEPARATOR)
    return where, params


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
