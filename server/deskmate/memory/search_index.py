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

import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .codec import decode_meta, dumps, encode_meta
from .models import Message, Session, SessionInfo, SessionMeta

log = logging.getLogger(__name__)

SCHEMA_VERSION = "4"
TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '_'"
TAG_SEPARATOR = "\x1f"
TITLE_BONUS = 5.0  # subtracted from a message's BM25 rank (lower is better) when its session's title matches
SNIPPET_TOKENS = 16
MARK = "**"  # the snippet's highlight around each match (Markdown bold)
RANKED_AT_MOST = 5000  # a query matching more messages ranks the most recently indexed this many

# Each message is one row of ``messages``: its text, and in ``scope`` a token for each thing a
# search can be limited to (its folder, its session, its role, each tag of its session), so
# filters are part of the full-text match itself and cost no look-up per matching row.
# ``keys`` finds a session's rows (a delete, a re-tag) and keeps a message from being indexed twice.
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS facts(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, title TEXT NOT NULL, folder TEXT, tags TEXT NOT NULL,
    updated_at TEXT NOT NULL, message_count INTEGER NOT NULL,
    workspace_uri TEXT, created_at TEXT NOT NULL, pinned INTEGER NOT NULL, meta TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_listed ON sessions(pinned DESC, updated_at DESC, id);
CREATE TABLE IF NOT EXISTS keys(
    rowid INTEGER PRIMARY KEY, session_id TEXT NOT NULL, message_id TEXT NOT NULL,
    UNIQUE(session_id, message_id));
CREATE VIRTUAL TABLE IF NOT EXISTS messages USING fts5(
    content, scope, session_id UNINDEXED, message_id UNINDEXED, role UNINDEXED, timestamp UNINDEXED,
    tokenize="{TOKENIZER}");
CREATE VIRTUAL TABLE IF NOT EXISTS titles USING fts5(
    title, session_id UNINDEXED, tokenize="{TOKENIZER}");
"""


def _token(kind: str, value: str) -> str:
    """A scope token: one word the tokenizer keeps whole, naming ``kind`` and ``value``."""
    return kind + hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def folder_token(folder: str) -> str:
    return _token("f", folder.rstrip("/"))


def session_token(session_id: str) -> str:
    return _token("s", session_id)


def tag_token(tag: str) -> str:
    return _token("t", tag.casefold())


def role_token(role: str) -> str:
    return "r" + role


def _scope(session_id: str, folder: str | None, tags: Iterable[str], role: str) -> str:
    words = [session_token(session_id), role_token(role), *(tag_token(t) for t in tags)]
    if folder:
        words.append(folder_token(folder))
    return " ".join(words)


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
    # With ``folders``: sessions of these projects (SessionMeta.project) are searched too.
    projects: Sequence[str] = ()
    after: str | None = None  # ISO 8601 times, compared as text
    before: str | None = None


def _folder(workspace_uri: str | None) -> str | None:
    return workspace_uri.rstrip("/") if workspace_uri else None


def _tags(tags: Iterable[str]) -> str:
    return TAG_SEPARATOR + TAG_SEPARATOR.join(t.casefold() for t in tags) + TAG_SEPARATOR


class SearchIndex:
    """The index file at ``path``; opened (and made, or remade when unreadable) on construction.

    With no path, the index lives in this process's memory only (encryption on: no copy of the
    messages in the clear on disk); one connection then serves writes and searches, so its
    callers must use it from one thread at a time.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.remade = False  # True when it was made fresh: everything must be indexed again
        if path is None:
            self._writer = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self._writer.executescript(_SCHEMA)
            self._reader = self._writer
            self.remade = True
            return
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
        assert self.path is not None
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
        if self.path is not None:
            drop_index_files(self.path)
        self.remade = True

    def close(self) -> None:
        self._reader.close()
        if self._writer is not self._reader:
            self._writer.close()

    # -- writing (the writer thread) ------------------------------------------------

    def put_session(self, info: SessionInfo) -> None:
        """Record a session's title, folder, tags and times; a change of tags re-scopes its rows."""
        db = self._writer
        with _transaction(db):
            self._put_session(db, info)

    def _put_session(self, db: sqlite3.Connection, info: SessionInfo) -> None:
        old = db.execute("SELECT title, tags, folder FROM sessions WHERE id = ?", (info.id,)).fetchone()
        tags, folder = _tags(info.meta.tags), _folder(info.workspace_uri)
        db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "title=excluded.title, folder=excluded.folder, tags=excluded.tags, "
            "updated_at=excluded.updated_at, message_count=excluded.message_count, "
            "workspace_uri=excluded.workspace_uri, created_at=excluded.created_at, "
            "pinned=excluded.pinned, meta=excluded.meta",
            (
                info.id,
                info.title,
                folder,
                tags,
                info.updated_at,
                info.message_count,
                info.workspace_uri,
                info.created_at,
                int(info.meta.pinned),
                dumps(encode_meta(info.meta)),
            ),
        )
        if old is None or old[0] != info.title:
            _set_title(db, info.id, info.title)
        if old is not None and (old[1] != tags or old[2] != folder):
            self._rescope(db, info.id, folder, info.meta.tags)

    def _rescope(self, db: sqlite3.Connection, session_id: str, folder: str | None, tags: list[str]) -> None:
        rowids = [row[0] for row in db.execute("SELECT rowid FROM keys WHERE session_id = ?", (session_id,))]
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT rowid, content, message_id, role, timestamp FROM messages WHERE rowid IN ({marks})",
                chunk,
            ).fetchall()
            db.execute(f"DELETE FROM messages WHERE rowid IN ({marks})", chunk)
            db.executemany(
                "INSERT INTO messages(rowid, content, scope, session_id, message_id, role, timestamp) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (rowid, content, _scope(session_id, folder, tags, role), session_id, message_id, role, ts)
                    for rowid, content, message_id, role, ts in rows
                ],
            )

    def add_messages(
        self, session_id: str, messages: Sequence[Message], title: str, workspace_uri: str | None
    ) -> None:
        """Index appended messages; a session not indexed yet is recorded with ``title``."""
        if not messages:
            return
        db = self._writer
        with _transaction(db):
            db.execute(
                "INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?, 0, ?, ?, 0, '{}')",
                (
                    session_id,
                    title,
                    _folder(workspace_uri),
                    _tags(()),
                    messages[-1].timestamp,
                    workspace_uri,
                    messages[0].timestamp,
                ),
            )
            if db.execute("SELECT changes()").fetchone()[0]:
                _set_title(db, session_id, title)
            folder, tags = db.execute(
                "SELECT folder, tags FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            marks = ",".join("?" * len(messages))
            held = {
                row[0]
                for row in db.execute(
                    f"SELECT message_id FROM keys WHERE session_id = ? AND message_id IN ({marks})",
                    (session_id, *(m.id for m in messages)),
                )
            }
            fresh = [m for m in messages if m.id not in held]
            self._insert(db, session_id, fresh, folder, [t for t in tags.split(TAG_SEPARATOR) if t])
            db.execute(
                "UPDATE sessions SET updated_at = ?, message_count = message_count + ? WHERE id = ?",
                (messages[-1].timestamp, len(fresh), session_id),
            )

    @staticmethod
    def _insert(
        db: sqlite3.Connection,
        session_id: str,
        messages: Sequence[Message],
        folder: str | None,
        tags: list[str],
    ) -> None:
        if not messages:
            return
        first = db.execute("SELECT coalesce(max(rowid), 0) + 1 FROM keys").fetchone()[0]
        rowids = range(first, first + len(messages))
        db.executemany(
            "INSERT INTO keys(rowid, session_id, message_id) VALUES (?, ?, ?)",
            [(rowid, session_id, m.id) for rowid, m in zip(rowids, messages, strict=True)],
        )
        scopes = {role: _scope(session_id, folder, tags, role) for role in ("user", "assistant", "system")}
        db.executemany(
            "INSERT INTO messages(rowid, content, scope, session_id, message_id, role, timestamp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (rowid, m.content, scopes[m.role], session_id, m.id, m.role, m.timestamp)
                for rowid, m in zip(rowids, messages, strict=True)
            ],
        )

    def replace(self, session: Session) -> None:
        """Index a whole session afresh (a save, or a rebuild)."""
        self.replace_many([session])

    def replace_many(self, sessions: Sequence[Session]) -> None:
        """Index whole sessions afresh, in one transaction."""
        db = self._writer
        with _transaction(db):
            for session in sessions:
                self._remove(db, session.id)
                self._put_session(db, session.info())
                folder = _folder(session.workspace_uri)
                self._insert(db, session.id, session.messages, folder, session.meta.tags)

    def remove(self, session_id: str) -> None:
        db = self._writer
        with _transaction(db):
            self._remove(db, session_id)
            row = db.execute("SELECT rowid FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM titles WHERE rowid = ?", row)
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    @staticmethod
    def _remove(db: sqlite3.Connection, session_id: str) -> None:
        rowids = [row[0] for row in db.execute("SELECT rowid FROM keys WHERE session_id = ?", (session_id,))]
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            db.execute(f"DELETE FROM messages WHERE rowid IN ({','.join('?' * len(chunk))})", chunk)
        db.execute("DELETE FROM keys WHERE session_id = ?", (session_id,))

    def holds(self, session_id: str) -> bool:
        """Whether the session is indexed (the writer thread)."""
        return (
            self._writer.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None
        )

    def indexed(self) -> dict[str, tuple[str, int, str, str]]:
        """Each indexed session's (updated_at, message count, title, metadata), to compare with a listing."""
        rows = self._writer.execute("SELECT id, updated_at, message_count, title, meta FROM sessions")
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}

    @staticmethod
    def summary_of(info: SessionInfo) -> tuple[str, int, str, str]:
        """What ``indexed`` holds for a session, as a listing shows it."""
        return (info.updated_at, info.message_count, info.title, dumps(encode_meta(info.meta)))

    # -- listing (the reader thread) ---------------------------------------------------

    def page(self, query: ListQuery, offset: int, limit: int) -> list[SessionInfo]:
        """Summaries of the sessions ``query`` chooses, pinned first, then most recent first."""
        where, params = _listing_where(query)
        rows = self._reader.execute(
            "SELECT id, title, workspace_uri, created_at, updated_at, message_count, meta FROM sessions s"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY pinned DESC, updated_at DESC, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        infos = []
        for session_id, title, workspace_uri, created_at, updated_at, count, meta in rows:
            try:
                decoded = decode_meta(json.loads(meta))
            except ValueError:
                decoded = SessionMeta()
            infos.append(
                SessionInfo(session_id, title, workspace_uri, created_at, updated_at, count, decoded)
            )
        return infos

    # -- searching (the reader thread) -------------------------------------------------

    def search(self, query: str, filters: Filters, limit: int) -> tuple[list[Hit], int]:
        """The best ``limit`` hits and how many there are in all.

        The filters are part of the match (scope tokens), so counting every match and
        ranking the best stay inside FTS5. BM25 ranks all matches, or, when there are
        more than RANKED_AT_MOST, the most recently indexed RANKED_AT_MOST of them; the
        messages of sessions whose title matches too get a bonus.
        """
        text = match_expression(query)
        db = self._reader
        if filters.folders is not None and filters.projects:
            filters = replace(
                filters, session_ids=[*filters.session_ids, *_sessions_of(db, filters.projects)]
            )
        scope = _scope_expression(filters)
        expression = f"content : ({text})" + (f" AND scope : ({scope})" if scope else "")
        times, time_params = "", []
        if filters.after:
            times += " AND timestamp >= ?"
            time_params.append(filters.after)
        if filters.before:
            times += " AND timestamp < ?"
            time_params.append(filters.before)
        where = "messages MATCH ?" + times
        total = db.execute(
            f"SELECT count(*) FROM messages WHERE {where}", (expression, *time_params)
        ).fetchone()[0]
        window, window_params = "", []
        if total > RANKED_AT_MOST:
            floor = db.execute(
                f"SELECT rowid FROM messages WHERE {where} ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (expression, *time_params, RANKED_AT_MOST - 1),
            ).fetchone()
            if floor:
                window, window_params = " AND rowid >= ?", [floor[0]]
        # Rowids and ranks only: a stored column (session_id) would be read for every match
        # before the sort, not for the few kept.
        candidates = db.execute(
            f"SELECT rowid, bm25(messages, 1.0, 0.0) FROM messages WHERE {where}{window} "
            "ORDER BY bm25(messages, 1.0, 0.0) LIMIT ?",
            (expression, *time_params, *window_params, limit * 3),
        ).fetchall()
        titled = _titled(db, text, filters)
        with_title = _with_title(db, [row[0] for row in candidates], set(titled)) if titled else set()
        ranked = sorted(
            candidates, key=lambda row: (row[1] - (TITLE_BONUS if row[0] in with_title else 0.0), -row[0])
        )
        chosen = [row[0] for row in ranked[:limit]]
        hits: list[Hit] = []
        if chosen:
            marks = ",".join("?" * len(chosen))
            # ``+m.rowid``: the chosen rows are picked from one pass over the matches. Given to
            # FTS5 as a constraint, each rowid would be a query of its own, the MATCH set up
            # again every time (a prefix's terms gathered anew): 6-10x slower, 280 ms for "the".
            details = {
                row[0]: row[1:]
                for row in db.execute(
                    "SELECT m.rowid, m.session_id, s.title, m.message_id, m.role, m.timestamp, "
                    f"snippet(messages, 0, '{MARK}', '{MARK}', '…', {SNIPPET_TOKENS}) "
                    "FROM messages m JOIN sessions s ON s.id = m.session_id "
                    f"WHERE messages MATCH ? AND +m.rowid IN ({marks})",
                    (expression, *chosen),
                )
            }
            hits = [Hit(*details[rowid]) for rowid in chosen if rowid in details]
        if titled and not (filters.role or filters.after or filters.before):
            marks = ",".join("?" * len(titled))
            with_messages = {
                row[0]
                for row in db.execute(
                    f"SELECT DISTINCT session_id FROM messages WHERE messages MATCH ? AND session_id IN ({marks})",
                    (expression, *titled),
                )
            }
            title_only = [session_id for session_id in titled if session_id not in with_messages]
            total += len(title_only)
            if title_only and len(hits) < limit:
                marks = ",".join("?" * len(title_only))
                for session_id, title, updated_at, marked in db.execute(
                    f"SELECT s.id, s.title, s.updated_at, highlight(titles, 0, '{MARK}', '{MARK}') FROM titles "
                    f"JOIN sessions s ON s.id = titles.session_id WHERE titles MATCH ? AND s.id IN ({marks}) "
                    "ORDER BY bm25(titles) LIMIT ?",
                    (f"title : ({text})", *title_only, limit - len(hits)),
                ):
                    hits.append(Hit(session_id, title, None, None, updated_at, marked))
        return hits, total


@dataclass
class ListQuery:
    """Which sessions a listing page holds; None means any."""

    folders: Sequence[str] | None = None  # workspace folder URIs (without trailing slash)
    session_ids: Sequence[str] = ()  # listed whatever their folder (a folder's active session)
    tag: str | None = None
    pinned: bool | None = None
    only_ids: Sequence[str] | None = None  # just these sessions (which of them are stored)
    # With ``folders``: sessions of these projects (SessionMeta.project) are listed too.
    projects: Sequence[str] = ()


def drop_index_files(path: Path) -> None:
    """Delete an index file and its WAL companions (derived data: rebuilt when needed)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _listing_where(query: ListQuery) -> tuple[list[str], list[object]]:
    # A trashed session leaves the index, but one trashed by another process may linger until
    # the catch-up: never page it, so a page is never shorter than asked.
    where: list[str] = ["json_extract(s.meta, '$.deletedAt') IS NULL"]
    params: list[object] = []
    if query.folders is not None:
        places = ",".join("?" * len(query.folders)) or "NULL"
        ids = ",".join("?" * len(query.session_ids)) or "NULL"
        projects = ",".join("?" * len(query.projects)) or "NULL"
        where.append(
            f"(s.folder IN ({places}) OR s.id IN ({ids}) OR json_extract(s.meta, '$.project') IN ({projects}))"
        )
        params.extend(f.rstrip("/") for f in query.folders)
        params.extend(query.session_ids)
        params.extend(query.projects)
    if query.tag:
        where.append("instr(s.tags, ?) > 0")
        params.append(TAG_SEPARATOR + query.tag.casefold() + TAG_SEPARATOR)
    if query.pinned is not None:
        where.append("s.pinned = ?")
        params.append(int(query.pinned))
    if query.only_ids is not None:
        where.append(f"s.id IN ({','.join('?' * len(query.only_ids)) or 'NULL'})")
        params.extend(query.only_ids)
    return where, params


def _sessions_of(db: sqlite3.Connection, projects: Sequence[str]) -> list[str]:
    """The indexed sessions of ``projects``: a project is not in the scope tokens (it may be set
    after a session's messages were indexed), so its sessions are searched by id."""
    marks = ",".join("?" * len(projects))
    rows = db.execute(
        f"SELECT id FROM sessions WHERE json_extract(meta, '$.project') IN ({marks})", list(projects)
    )
    return [row[0] for row in rows]


def _scope_expression(filters: Filters) -> str:
    """The filters as a match on the scope column (empty: no filter)."""
    parts = []
    if filters.folders is not None:
        places = [folder_token(f) for f in filters.folders] + [session_token(i) for i in filters.session_ids]
        parts.append("(" + " OR ".join(places or ["fnowhere"]) + ")")
    if filters.role:
        parts.append(role_token(filters.role))
    if filters.tag:
        parts.append(tag_token(filters.tag))
    return " AND ".join(parts)


def _titled(db: sqlite3.Connection, text: str, filters: Filters) -> list[str]:
    """The sessions, within the filters, whose title matches."""
    where, params = [], []
    if filters.folders is not None:
        places = ",".join("?" * len(filters.folders)) or "NULL"
        ids = ",".join("?" * len(filters.session_ids)) or "NULL"
        where.append(f"(s.folder IN ({places}) OR s.id IN ({ids}))")
        params.extend(f.rstrip("/") for f in filters.folders)
        params.extend(filters.session_ids)
    if filters.tag:
        where.append("instr(s.tags, ?) > 0")
        params.append(TAG_SEPARATOR + filters.tag.casefold() + TAG_SEPARATOR)
    rows = db.execute(
        "SELECT s.id FROM titles JOIN sessions s ON s.id = titles.session_id WHERE titles MATCH ?"
        + "".join(" AND " + w for w in where),
        (f"title : ({text})", *params),
    )
    return [row[0] for row in rows]


def _with_title(db: sqlite3.Connection, rowids: list[int], titled: set[str]) -> set[int]:
    """Which of the messages at ``rowids`` belong to a session in ``titled`` (through ``keys``)."""
    if not rowids:
        return set()
    marks = ",".join("?" * len(rowids))
    rows = db.execute(f"SELECT rowid, session_id FROM keys WHERE rowid IN ({marks})", rowids)
    return {rowid for rowid, session_id in rows if session_id in titled}


def _set_title(db: sqlite3.Connection, session_id: str, title: str) -> None:
    """A session's title row in ``titles`` has its ``sessions`` row's rowid, so replacing it is a
    look-up, not a scan of every title."""
    (rowid,) = db.execute("SELECT rowid FROM sessions WHERE id = ?", (session_id,)).fetchone()
    db.execute("DELETE FROM titles WHERE rowid = ?", (rowid,))
    db.execute("INSERT INTO titles(rowid, title, session_id) VALUES (?, ?, ?)", (rowid, title, session_id))


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
