"""The ``deskmate.*`` commands. Each parses its arguments, calls the engine, shapes the result."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pygls.exceptions import JsonRpcException

from ..engine import EngineError, InvalidArgument, ModelError
from ..engine.search import MAX_QUERY_LENGTH, MAX_RESULTS, SearchRequest
from ..memory import InvalidSessionId, SessionIdRequired, SessionStoreError
from ..memory.limits import MAX_QUESTION_LENGTH, MAX_TITLE_LENGTH
from .arguments import Arguments, check_context, check_resend, check_time, invalid
from .attachments import attach, check_attachments
from .context import fill_context
from .errors import internal_error, request_failed
from .live import live_result
from .progress import AskReporter
from .server import DeskmateServer
from .wire import (
    ask_result,
    fork_result,
    listing_entry,
    search_hit,
    session_result,
    status_result,
    trash_entry,
)

log = logging.getLogger(__name__)

Handler = Callable[[DeskmateServer, Arguments], Awaitable[dict[str, Any]]]


_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Declare a deskmate command: one argument object in, a JSON object out.

    ``register_commands`` puts the declared commands on a server.
    """

    def declare(handler: Handler) -> Handler:
        _COMMANDS[name] = handler
        return handler

    return declare


def register_commands(server: DeskmateServer) -> None:
    for name, handler in _COMMANDS.items():
        server.command(name)(_answering(name, handler))


def _answering(name: str, handler: Handler) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The handler as pygls calls it: arguments checked, errors turned into the protocol's answers.

    Bad arguments become InvalidParams naming the field; engine and storage errors
    RequestFailed with their user-facing message; anything else a one-line InternalError.
    """

    async def run(ls: DeskmateServer, *args: Any) -> dict[str, Any]:
        arguments = Arguments.of(name, args)
        try:
            await ls.settled()
            await ls.assistant.sessions.ready()  # each folder's project known, its sessions adopted
            return await handler(ls, arguments)
        except (InvalidSessionId, SessionIdRequired, InvalidArgument) as exc:
            raise invalid(name, str(exc)) from None
        except (EngineError, ModelError, SessionStoreError) as exc:
            log.info("%s failed: %s", name, exc)
            raise request_failed(str(exc)) from None
        except OSError as exc:
            log.error("%s failed: %s", name, exc, exc_info=True)
            raise request_failed(f"deskmate could not access its data: {exc}") from None
        except JsonRpcException:
            raise
        except Exception as exc:
            # A fault of ours: one line for the user, the traceback only in a verbose log.
            log.error("%s failed unexpectedly", name, exc_info=True)
            raise internal_error(
                f"{name} failed: {type(exc).__name__}: {exc}. This is a deskmate bug; "
                "run the daemon with -v for details."
            ) from None

    # Not functools.wraps: pygls reads the signature, and must see (ls, *args).
    run.__doc__, run.__name__ = handler.__doc__, handler.__name__
    return run


def session_ref(ls: DeskmateServer, arguments: Arguments):
    return ls.assistant.sessions.resolve(
        session_id=arguments.session_id(), workspace_uri=arguments.text("workspaceUri")
    )


@command("deskmate.ask")
async def ask(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Answer a question in the workspace's session, streaming ``deskmate/askDelta`` notifications."""
    name = arguments.command
    edit_message_id, regenerate = check_resend(arguments)
    question = arguments.text("question", required=not regenerate, max_length=MAX_QUESTION_LENGTH)
    context = check_context(name, arguments.object("context"))
    attachments = check_attachments(arguments)
    ask_id = arguments.text("askId") or uuid.uuid4().hex
    folders = ls.assistant.sessions.workspaces.folders
    if context is not None:
        context = await fill_context(name, context, ls.workspace, folders)
    if attachments:
        context = await attach(name, context, attachments, ls.workspace, folders)
    ref = ls.assistant.sessions.resolve(
        session_id=arguments.session_id(),
        workspace_uri=arguments.text("workspaceUri"),
        context_uri=context["uri"] if context else None,
    )
    lineage = None
    if edit_message_id is not None:  # edit and resend, or regenerate: the answer goes to a new fork
        edit = await ls.assistant.fork_for_edit(ref, edit_message_id, question, context)
        ref, question, context, lineage = edit.ref, edit.question, edit.context, edit.lineage
    request_id = ls.protocol.msg_id
    ls.asks_by_request[request_id] = ask_id
    reporter = AskReporter(
        ls,
        ask_id,
        ref.id,
        on_cancel=lambda: ls.assistant.asks.cancel(ask_id),
        window=ls.assistant.settings.delta_window_ms / 1000,
    )
    outcome = "Failed"
    try:
        result = await ls.assistant.asks.ask(
            question,
            ref=ref,
            context=context,
            ask_id=ask_id,
            on_delta=reporter.delta,
            on_streamed=reporter.flush,  # the last text need not wait for its window nor the store
            on_redacted=lambda found: ls.inform_user(found.notice()),
            on_notice=ls.warn_user,  # a summary that could not be made: the ask goes on without
        )
        outcome = "Cancelled" if result.interrupted else "Done"
    finally:
        reporter.end(outcome)
        ls.asks_by_request.pop(request_id, None)
    return ask_result(result, lineage)


@command("deskmate.cancel")
async def cancel(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Stop a running ask; its partial answer is kept."""
    ask_id = arguments.text("askId", required=True)
    return {"cancelled": ls.assistant.asks.cancel(ask_id)}


@command("deskmate.listSessions")
async def list_sessions(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """The workspace's sessions (or every session with ``all``), pinned first, then most recent
    first; ``tag``/``pinned`` filter, ``limit``/``cursor`` page; ``trash`` lists the trash."""
    if arguments.flag("trash"):
        listed = await ls.assistant.sessions.list(
            arguments.text("workspaceUri"), all=arguments.flag("all"), trash=True
        )
        return {"sessions": [trash_entry(info, ls.assistant.purge_after(info)) for info, _ in listed]}
    limit = arguments.integer("limit", minimum=1, maximum=MAX_PAGE)
    start = page_start(arguments)
    where = {
        "all": arguments.flag("all"),
        "tag": arguments.text("tag"),
        "pinned": arguments.boolean("pinned"),
    }
    workspace_uri = arguments.text("workspaceUri")
    if limit is None:
        listed = await ls.assistant.sessions.list(workspace_uri, **where)
        return {
            "sessions": [listing_entry(info, active) for info, active in listed[start:]],
            "nextCursor": None,
        }
    page, more = await ls.assistant.sessions.page(workspace_uri, **where, start=start, limit=limit)
    return {
        "sessions": [listing_entry(info, active) for info, active in page],
        "nextCursor": str(start + limit) if more else None,
    }


MAX_PAGE = 1000


def page_start(arguments: Arguments) -> int:
    """Where a ``cursor`` (a previous page's ``nextCursor``) says the next page starts."""
    cursor = arguments.text("cursor")
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 12:
        raise invalid(arguments.command, '"cursor" must be a nextCursor from an earlier listing')
    return int(cursor)


@command("deskmate.getSession")
async def get_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """A session's history, to show when a chat view opens; with ``sinceMessageId``, only the
    messages after it (``deskmate/sessionChanged`` said there are new ones). The session is
    followed from now on: changes other processes make to it are notified."""
    since_id = arguments.text("sinceMessageId")
    ref = session_ref(ls, arguments)
    view = await ls.assistant.sessions.get(ref)
    forks = await ls.assistant.forks.of(view.session.id) if view.session.id else []
    await ls.assistant.live.open(view.session.id or None)
    next_ask = await ls.assistant.asks.next_prompt(view.session, ref)
    result = session_result(
        view.session, active=view.active, persisted=view.persisted, forks=forks, next_ask=next_ask
    )
    result["model"] = ls.assistant.model_for(ref.workspace_uri)  # for the chat's header
    return live_result(result, since_id)


@command("deskmate.forkSession")
async def fork_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """A new session holding the history up to a message; it becomes the folder's active one."""
    message_id = arguments.text("messageId", required=True)
    title = arguments.text("title", max_length=MAX_TITLE_LENGTH)
    fork, lineage = await ls.assistant.forks.fork(session_ref(ls, arguments), message_id, title)
    return fork_result(fork, lineage)


@command("deskmate.newSession")
async def new_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Start an empty session that becomes the workspace folder's active one."""
    session = await ls.assistant.sessions.new(
        arguments.text("workspaceUri"), title=arguments.text("title", max_length=MAX_TITLE_LENGTH) or ""
    )
    return {"sessionId": session.id, "title": session.title}


@command("deskmate.switchSession")
async def switch_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Make an existing session the workspace folder's active one."""
    session_id = arguments.session_id(required=True)
    session = await ls.assistant.sessions.switch(session_id, arguments.text("workspaceUri"))
    return {"sessionId": session.id, "title": session.title, "messageCount": len(session.messages)}


@command("deskmate.deleteSession")
async def delete_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Move a session to the trash (``permanent``: delete it at once); folders that used it move on."""
    session_id = arguments.session_id(required=True)
    done = await ls.assistant.delete_session(session_id, permanent=arguments.flag("permanent"))
    result: dict[str, Any] = {"deleted": done.deleted, "trashed": done.trashed}
    if done.purge_after is not None:
        result["purgeAfter"] = done.purge_after
    return result


@command("deskmate.restoreSession")
async def restore_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Take a session out of the trash, with every message, title and tag."""
    session_id = arguments.session_id(required=True)
    info = await ls.assistant.restore_session(session_id)
    return {"sessionId": info.id, "title": info.title, "messageCount": info.message_count}


@command("deskmate.saveSession")
async def save_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Write the in-memory history over the stored one (for autoSave: false)."""
    session = await ls.assistant.sessions.save(session_ref(ls, arguments))
    return {"sessionId": session.id, "messageCount": len(session.messages)}


@command("deskmate.loadSession")
async def load_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Replace the in-memory history with the stored one."""
    session = await ls.assistant.sessions.load(session_ref(ls, arguments))
    return {"sessionId": session.id, "messageCount": len(session.messages)}


@command("deskmate.exportSession")
async def export_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """The session as a Markdown document."""
    session, markdown = await ls.assistant.sessions.export(session_ref(ls, arguments))
    return {"sessionId": session.id or None, "title": session.title, "markdown": markdown}


@command("deskmate.renameSession")
async def rename_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Give a session the user's title; automatic titles never replace it."""
    session_id = arguments.session_id(required=True)
    title = arguments.text("title", required=True, max_length=MAX_TITLE_LENGTH)
    info = await ls.assistant.labels.rename(session_id, title)
    return {"sessionId": info.id, "title": info.title}


@command("deskmate.tagSession")
async def tag_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Add and remove a session's tags."""
    session_id = arguments.session_id(required=True)
    add, remove = arguments.strings("add"), arguments.strings("remove")
    info = await ls.assistant.labels.tag(session_id, add, remove)
    return {"sessionId": info.id, "tags": list(info.meta.tags)}


@command("deskmate.pinSession")
async def pin_session(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Pin a session to the top of every listing, or unpin it."""
    session_id = arguments.session_id(required=True)
    pinned = arguments.boolean("pinned", required=True)
    info = await ls.assistant.labels.pin(session_id, pinned)
    return {"sessionId": info.id, "pinned": info.meta.pinned}


@command("deskmate.searchSessions")
async def search_sessions(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Ranked full-text search over messages and titles: this workspace's sessions, or all."""
    role = arguments.text("role")
    if role is not None and role not in ("user", "assistant", "system"):
        raise invalid(arguments.command, '"role" must be "user", "assistant" or "system"')
    request = SearchRequest(
        query=arguments.text("query", required=True, max_length=MAX_QUERY_LENGTH) or "",
        workspace_uri=arguments.text("workspaceUri"),
        all=arguments.flag("all"),
        tag=arguments.text("tag"),
        role=role,
        after=check_time(arguments, "after"),
        before=check_time(arguments, "before"),
        limit=arguments.integer("limit", minimum=1, maximum=MAX_RESULTS) or 20,
    )
    found = await ls.assistant.search.search(request)
    return {"results": [search_hit(hit) for hit in found.results], "total": found.total}


@command("deskmate.status")
async def status(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Version, model and storage facts, for health checks."""
    try:
        expiring: int | None = len(await ls.assistant.expiring_soon())
    except SessionStoreError as exc:  # status must answer even when the store does not
        log.info("deskmate.status could not list sessions: %s", exc)
        expiring = None
    project = await ls.assistant.sessions.project_of(
        arguments.text("workspaceUri") or next(iter(ls.assistant.sessions.workspaces.folders), None)
    )
    result = status_result(ls.assistant.status(), expiring, project)
    if arguments.flag("checkModel"):  # a health check: ask the model server, briefly
        ok, message = await ls.assistant.check_model()
        result["modelServer"] = {"ok": ok, "message": message}
    return result


# Declared in modules of their own; importing them registers them with the rest.
# compactSession, uncompactSession, pinMessage; remember, listMemories, forget
from . import compaction_commands, memory_commands  # noqa: E402, F401
