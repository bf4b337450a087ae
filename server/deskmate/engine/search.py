"""Searching every session's messages and titles: this project's by default, all on request."""

from __future__ import annotations

from dataclasses import dataclass

from ..memory.search_index import BadQuery, Filters, Hit
from .errors import InvalidArgument
from .sessions import Sessions

MAX_QUERY_LENGTH = 1000
MAX_RESULTS = 200


@dataclass
class SearchRequest:
    query: str
    workspace_uri: str | None = None  # None with all False: every folder of the workspace
    all: bool = False
    tag: str | None = None
    role: str | None = None  # "user" or "assistant"
    after: str | None = None  # ISO 8601 times (or dates)
    before: str | None = None
    limit: int = 20


@dataclass
class SearchResults:
    results: list[Hit]
    total: int


class Search:
    """Ranked full-text search over the sessions of the engine's store."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def search(self, request: SearchRequest) -> SearchResults:
        if not request.query.strip():
            raise InvalidArgument("query", "must not be empty")
        if len(request.query) > MAX_QUERY_LENGTH:
            raise InvalidArgument("query", f"is longer than {MAX_QUERY_LENGTH} characters")
        if not 1 <= request.limit <= MAX_RESULTS:
            raise InvalidArgument("limit", f"must be from 1 to {MAX_RESULTS}")
        filters = Filters(tag=request.tag, role=request.role, after=request.after, before=request.before)
        if not request.all:
            filters.folders, filters.session_ids = self._where(request.workspace_uri)
            await self.sessions.ready()
            filters.projects = sorted(await self.sessions.keys_of(filters.folders))
        try:
            hits, total = await self.sessions.store.searchable.search(request.query, filters, request.limit)
        except BadQuery as exc:
            raise InvalidArgument("query", str(exc)) from None
        return SearchResults(hits, total)

    def _where(self, workspace_uri: str | None) -> tuple[list[str], list[str]]:
        """The folders searched, and the sessions searched whatever folder they were made in
        (the folders' active sessions), as ``Sessions.list`` chooses them."""
        sessions = self.sessions
        if workspace_uri:
            ref = sessions.resolve(workspace_uri=workspace_uri)
            return ([ref.workspace_uri] if ref.workspace_uri else []), ([ref.id] if ref.id else [])
        return list(sessions.workspaces.folders), sorted(sessions.active_ids())
