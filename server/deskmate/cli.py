"""The ``deskmate`` command: the LSP daemon, and the same engine from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from . import __version__, compaction_cli, logs
from .memory_cli import add_memory_parser, terminal_memory


def parse_tcp(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:2087, got {value!r}")
    return host, int(port)


DESCRIPTION = (
    "deskmate: an editor assistant with per-project memory. 'deskmate lsp' is the daemon editors "
    "start; 'deskmate ask' and 'deskmate sessions' use the same sessions from a terminal."
)
# Said on stderr when 'deskmate lsp' is started by hand: on stdio it waits for an editor.
LSP_ON_A_TERMINAL = (
    "deskmate: the language server is waiting for an editor on stdin/stdout (LSP); it prints "
    "nothing itself. Editors start it on their own: VS Code with the deskmate extension, Neovim "
    "with the deskmate.nvim plugin (see the README). To ask from this terminal instead: "
    'deskmate ask "your question". Ctrl-C stops it.'
)
WAITING = "waiting for the model"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskmate", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"deskmate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    lsp = commands.add_parser("lsp", help="run the language server (stdio unless --tcp)")
    lsp.add_argument(
        "--tcp",
        type=parse_tcp,
        metavar="HOST:PORT",
        help="listen on TCP instead of stdio; clients must send the daemon's token (docs/security.md)",
    )
    lsp.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="with --tcp: where to write the token clients must send (default: <data dir>/lsp-token; "
        "$DESKMATE_LSP_TOKEN gives one instead)",
    )
    lsp.add_argument(
        "--allow-remote", action="store_true", help="with --tcp: allow an address other than loopback"
    )
    # Clients such as vscode-languageclient add --stdio; it is the default anyway.
    lsp.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")

    ask = commands.add_parser("ask", help="ask a question in this project's session, answer on stdout")
    ask.add_argument("question", nargs="+")
    ask.add_argument("--session", help="session id (default: this project's active session)")
    ask.add_argument(
        "--file",
        type=Path,
        action="append",
        help="a file to send along as context (repeat it to send several)",
    )

    sessions = commands.add_parser(
        "sessions",
        help="list, new, show, search, rename, tag, pin, fork, compact, uncompact, delete, restore, trash, "
        "export, prune, project or migrate sessions",
    )
    verbs = sessions.add_subparsers(dest="verb", required=True)
    new = verbs.add_parser("new", help="start an empty session, this project's active one from now on")
    new.add_argument("--title", help="its title (default: its first question's first line)")
    listing = verbs.add_parser("list", help="this project's sessions (--all: every session)")
    listing.add_argument("--all", action="store_true")
    verbs.add_parser("project", help="this folder's project: its id, and how it was found (docs/sessions.md)")
    for verb, text in (("show", "print a session"), ("export", "print as Markdown")):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("session", nargs="?", help="session id (default: active)")
    delete = verbs.add_parser("delete", help="move a session to the trash (--permanent: delete at once)")
    delete.add_argument("session", help="session id")
    delete.add_argument("--permanent", action="store_true", help="skip the trash: nothing can bring it back")
    restore = verbs.add_parser("restore", help="take a session out of the trash")
    restore.add_argument("session", help="session id")
    trash = verbs.add_parser("trash", help="list this project's trash (--all: the whole trash)")
    trash.add_argument("--all", action="store_true")
    prune = verbs.add_parser(
        "prune",
        help="apply retention (DESKMATE_RETENTION_DAYS) and purge the trash of what is due "
        "(DESKMATE_TRASH_DAYS, default 30), e.g. from cron",
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would be done")
    fork = verbs.add_parser(
        "fork",
        help="start a new session holding a session's history up to one message ('show' prints the ids)",
    )
    fork.add_argument("session", nargs="?", help="session id (default: active)")
    fork.add_argument("--at", required=True, metavar="MESSAGE_ID", help="the last message the fork holds")
    fork.add_argument("--title", help='the fork\'s title (default: "<title> (fork)")')
    rename = verbs.add_parser("rename", help="give a session your title (automatic titles never replace it)")
    rename.add_argument("session", help="session id")
    rename.add_argument("title", nargs="+")
    tag = verbs.add_parser("tag", help="add tags to a session (--remove to take tags off)")
    tag.add_argument("session", help="session id")
    tag.add_argument("tags", nargs="*", metavar="TAG", help="tags to add")
    tag.add_argument("--remove", nargs="+", default=[], metavar="TAG", help="tags to take off")
    pin = verbs.add_parser("pin", help="pin a session to the top of every listing (--off to unpin)")
    pin.add_argument("session", help="session id")
    pin.add_argument("--off", action="store_true", help="unpin it")
    compaction_cli.add_arguments(verbs, pin)
    search = verbs.add_parser("search", help='search messages and titles: words and "exact phrases"')
    search.add_argument("query", nargs="+")
    search.add_argument("--all", action="store_true", help="every project's sessions, not only this one's")
    search.add_argument("--tag", help="only sessions with this tag")
    search.add_argument("--role", choices=("user", "assistant"), help="only questions or only answers")
    search.add_argument("--limit", type=int, default=20)
    migrate = verbs.add_parser(
        "migrate",
        help="copy every session to another store, verified by counts and hashes (run again to resume)",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="URL",
        help="storage URL to copy from (default: the configured store, $DESKMATE_STORAGE_URL or the data dir)",
    )
    migrate.add_argument("--to", dest="target", metavar="URL", help="storage URL to copy to")
    migrate.add_argument(
        "--encrypt",
        action="store_true",
        help="encrypt, in place, every session of the store stored in the clear (resumable: run it again)",
    )
    migrate.add_argument(
        "--rekey",
        action="store_true",
        help="re-encrypt, in place, every session sealed with an older key with the current one (resumable)",
    )

    add_memory_parser(commands)

    keys = commands.add_parser("keys", help="the encryption keys (docs/security.md)")
    key_verbs = keys.add_subparsers(dest="verb", required=True)
    init = key_verbs.add_parser("init", help="make a new key, in the OS keychain (or --file)")
    init.add_argument(
        "--file", type=Path, metavar="PATH", help="write the key to this file (mode 0600) instead"
    )
    init.add_argument(
        "--rotate",
        action="store_true",
        help="add a new current key, keeping the old ones for reading until `sessions migrate --rekey`",
    )
    key_verbs.add_parser("status", help="where the keys come from and their ids (never the keys)")

    models = commands.add_parser("models", help="the models the server offers, and this project's")
    model_verbs = models.add_subparsers(dest="verb")
    model_verbs.add_parser("list", help="list the server's models, marking the one this project uses")
    use = model_verbs.add_parser("use", help="use a model for this project (editors included) from now on")
    use.add_argument("model")
    model_verbs.add_parser("reset", help="this project goes back to DESKMATE_MODEL (or the model setting)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.verbose, daemon=args.command == "lsp")
    if args.command == "lsp":
        return run_lsp(args)
    try:
        return asyncio.run(run_terminal(args))
    except KeyboardInterrupt:
        return 130


def run_lsp(args: argparse.Namespace) -> int:
    from .lsp.server import ClientLogHandler, create_server

    server = create_server()
    logging.getLogger().addHandler(ClientLogHandler(server, tracebacks=args.verbose))
    if args.tcp:
        return run_tcp(server, args)
    if sys.stdin.isatty():  # started by hand: say why nothing happens (stdout is the protocol's)
        print(LSP_ON_A_TERMINAL, file=sys.stderr, flush=True)
    server.start_io()
    return 0


def run_tcp(server, args: argparse.Namespace) -> int:
    from .lsp.tcp import TOKEN_FILE_NAME, TcpSetupError, check_host, daemon_token, serve_tcp
    from .memory import default_data_dir

    host, port = args.tcp
    try:
        check_host(host, args.allow_remote)
        token, written_to = daemon_token(args.token_file or default_data_dir() / TOKEN_FILE_NAME)
    except (TcpSetupError, OSError) as exc:
        print(f"deskmate: {exc}", file=sys.stderr)
        return 2
    logs.register_secret(token)
    where = f"in {written_to}" if written_to else "from $DESKMATE_LSP_TOKEN"
    print(
        f"deskmate: listening on {host}:{port}; clients send the token {where} "
        "as initializationOptions.token",
        file=sys.stderr,
    )
    serve_tcp(server, host, port, token)
    return 0


async def run_terminal(args: argparse.Namespace) -> int:
    from .engine import Assistant, EngineError, ModelError, settings_from_environment
    from .engine.settings import for_terminal
    from .engine.trash import clock_from_environment
    from .engine.workspaces import path_to_uri, project_root
    from .memory import SessionStoreError

    if args.command == "keys":
        from .keys_cli import keys_command

        return keys_command(args)
    if args.command == "sessions" and args.verb == "migrate":
        try:
            if args.encrypt or args.rekey:
                if args.target or args.source or (args.encrypt and args.rekey):
                    print(
                        "deskmate: --encrypt and --rekey work in place: use one, without --from or --to",
                        file=sys.stderr,
                    )
                    return 2
                return await run_reseal("rekey" if args.rekey else "encrypt")
            if not args.target:
                print("deskmate: sessions migrate needs --to URL (or --encrypt / --rekey)", file=sys.stderr)
                return 2
            return await run_migrate(args.source, args.target)
        except SessionStoreError as exc:
            print(f"deskmate: {exc}", file=sys.stderr)
            return 1
    assistant = Assistant(
        settings_from_environment(),
        warn=lambda message: print(for_terminal(message), file=sys.stderr),
        clock=clock_from_environment(),  # the real time unless DESKMATE_TEST_CLOCK_FILE (tests)
    )
    folder = path_to_uri(project_root(Path.cwd()))
    assistant.sessions.workspaces.set_folders([folder])
    try:
        await assistant.sessions.ready()  # the folder's project, as the editors' daemon finds it
        if args.command == "ask":
            return await terminal_ask(assistant, args)
        if args.command == "memory":
            return await terminal_memory(assistant, args, folder)
        if args.command == "models":
            return await terminal_models(assistant, args, folder)
        return await terminal_sessions(assistant, args, folder)
    except (EngineError, ModelError, SessionStoreError) as exc:
        print(f"deskmate: {for_terminal(str(exc))}", file=sys.stderr)
        return 1
    finally:
        await assistant.close()


async def terminal_ask(assistant, args: argparse.Namespace) -> int:
    from .engine.context_files import read_context_file
    from .engine.workspaces import path_to_uri
    from .terminal import SafeWriter

    files = []
    for named in args.file or []:
        # The user names the file in their own terminal: any regular file of theirs, capped.
        path = named.absolute()
        text, note = await asyncio.to_thread(read_context_file, path, None)
        files.append({"uri": path_to_uri(path), "text": text, **({"note": note} if note else {})})
    # The first file is the question's context; the others go along as its attachments.
    context = {**files[0], "attachments": files[1:]} if len(files) > 1 else (files[0] if files else None)
    # In a terminal the project is the current directory's, wherever --file lies.
    ref = assistant.sessions.resolve(session_id=args.session)
    out = SafeWriter(sys.stdout)
    waiting = WaitingIndicator() if sys.stdout.isatty() and sys.stderr.isatty() else None

    def on_delta(delta: str) -> None:
        if waiting is not None:
            waiting.stop()
        out.write(delta)

    def on_redacted(found) -> None:
        if waiting is not None:
            sys.stderr.write("\r\x1b[K")  # over the indicator's line; it redraws below
        print(found.notice(), file=sys.stderr)

    task = asyncio.ensure_future(
        assistant.asks.ask(
            " ".join(args.question),
            ref=ref,
            context=context,
            on_delta=on_delta,
            on_redacted=on_redacted,
        )
    )
    try:
        result = await asyncio.shield(task)
    except asyncio.CancelledError:  # Ctrl-C: keep the partial answer
        if result_id := assistant.asks.running_ask(ref.id):
            assistant.asks.cancel(result_id)
        result = await task
    finally:
        if waiting is not None:
            waiting.stop()
    sys.stdout.write("\n")
    if result.interrupted:
        print("(answer interrupted)", file=sys.stderr)
    return 0


class WaitingIndicator:
    """A spinner on the terminal (stderr) until the answer's first piece: the first token of a
    local model may take seconds, and a silent terminal looks hung."""

    FRAMES = "|/-\\"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = asyncio.ensure_future(self._spin())

    async def _spin(self) -> None:
        frame = 0
        while True:
            sys.stderr.write(f"\r{self.FRAMES[frame % len(self.FRAMES)]} {WAITING}…")
            sys.stderr.flush()
            frame += 1
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            sys.stderr.write("\r\x1b[K")  # the line is cleared before the answer is written
            sys.stderr.flush()


async def terminal_models(assistant, args: argparse.Namespace, folder: str) -> int:
    """``deskmate models [list]``, ``use MODEL``, ``reset``: the model picker of the terminal."""
    if args.verb == "use":
        print(f"This project now asks {await assistant.set_model(folder, args.model)}.")
        return 0
    if args.verb == "reset":
        print(f"This project now asks {await assistant.set_model(folder, None)} (the model setting).")
        return 0
    served, current = await assistant.list_models(folder)
    for model in served:
        print(f"{'*' if model == current else ' '} {model}")
    if current not in served:
        print(f"(this project asks {current}, which the server does not list)")
    return 0


def when(timestamp: str) -> str:
    """An ISO 8601 UTC time as the local 'YYYY-MM-DD HH:MM' a listing shows."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def context_lines(context: dict) -> str:
    """A question's context as 'show' prints it: for each piece (the editor's file or selection,
    then the files added), where it came from, then its text."""
    from .memory import context_items

    return "".join(context_piece(item) for item in context_items(context))


def context_piece(context: dict) -> str:
    from .engine.prompt import display_path

    where = display_path(context.get("uri", "")) or "the editor"
    selection = context.get("range")
    if selection:
        where += f":{selection['start']['line'] + 1}-{selection['end']['line'] + 1}"
    text = context.get("text")
    note = f" ({context['note']})" if context.get("note") else ""
    return f"--- context: {where}{note}\n{text}\n---\n" if text else f"--- context: {where}\n"


async def terminal_sessions(assistant, args: argparse.Namespace, folder: str) -> int:
    from .engine.forks import lineage_of
    from .engine.workspaces import uri_to_path
    from .terminal import SafeWriter, strip_controls

    if args.verb == "list":
        rows = await assistant.sessions.list(folder, all=args.all, placeholders=False)
        if not rows:
            print("No sessions yet.")
        for info, active in rows:
            mark = "*" if active else " "
            labels = ("  (pinned)" if info.meta.pinned else "") + "".join(
                f" #{strip_controls(tag)}" for tag in info.meta.tags
            )
            print(
                f"{mark} {info.id:40} {when(info.updated_at):16} {info.message_count:5} msgs  "
                f"{strip_controls(info.title)}{labels}"
            )
        await warn_of_expiry(assistant)
        return 0
    if args.verb == "project":
        identity = await assistant.sessions.project_of(folder)
        print(f"Project {identity.id} (from {identity.source})")
        print(f"Folder  {uri_to_path(folder) or folder}")
        if len(identity.keys) > 1:
            print(f"Also finds sessions of: {', '.join(identity.keys[1:])}")
        return 0
    done = await compaction_cli.run(assistant, args, folder)
    if done is not None:
        return done
    if args.verb in ("rename", "tag", "pin"):
        return await terminal_labels(assistant, args)
    if args.verb == "search":
        return await terminal_search(assistant, args, folder)
    if args.verb == "new":
        from .memory.limits import MAX_TITLE_LENGTH

        title = (args.title or "").strip()
        if args.title is not None and not (title and len(args.title) <= MAX_TITLE_LENGTH):
            print(f"deskmate: --title must be 1 to {MAX_TITLE_LENGTH} characters", file=sys.stderr)
            return 2
        session = await assistant.sessions.new(folder, title)
        print(f"New session {session.id}; it is now this project's active session.")
        return 0
    if args.verb == "delete":
        done = await assistant.delete_session(args.session, permanent=args.permanent)
        if not done.deleted:
            print(f"No session {args.session!r}.")
            return 1
        if done.trashed:
            print(
                f"Moved {args.session} to the trash (purged after {done.purge_after}); "
                f"`deskmate sessions restore {args.session}` brings it back."
            )
        else:
            print(f"Deleted {args.session} permanently.")
        return 0
    if args.verb == "restore":
        info = await assistant.restore_session(args.session)
        print(f"Restored {info.id} ({info.message_count} messages): {strip_controls(info.title)}")
        return 0
    if args.verb == "trash":
        rows = await assistant.sessions.list(folder, all=args.all, trash=True)
        if not rows:
            print("The trash is empty.")
        for info, _ in rows:
            print(
                f"  {info.id:40} deleted {info.meta.deleted_at:24} purged after "
                f"{assistant.purge_after(info)}  {info.message_count:5} msgs  {strip_controls(info.title)}"
            )
        return 0
    if args.verb == "prune":
        return await prune(assistant, dry_run=args.dry_run)
    ref = assistant.sessions.resolve(session_id=args.session, workspace_uri=None if args.session else folder)
    if args.verb == "fork":
        return await terminal_fork(assistant, ref, args)
    if args.session and await assistant.sessions.stored(args.session) is None:
        print(
            f"deskmate: there is no session {args.session!r} ('deskmate sessions list --all' lists them).",
            file=sys.stderr,
        )
        return 1
    session, markdown = await assistant.sessions.export(ref)
    if args.verb == "export":
        SafeWriter(sys.stdout).write(markdown)
        return 0
    out = SafeWriter(sys.stdout)
    if lineage := lineage_of(session):
        out.write(f"(forked from {lineage.session_id} at message {lineage.message_id})\n\n")
    pinned = set(session.meta.pinned_messages)
    for message in session.messages:
        flag = " (interrupted)" if message.status == "interrupted" else ""
        flag += " (pinned)" if message.id in pinned else ""
        failed = f"(failed: {message.error})\n" if message.error is not None else ""
        context = context_lines(message.context) if message.context else ""
        out.write(
            f"[{when(message.timestamp)}] {message.id} {message.role}{flag}:\n{message.content}\n"
            f"{context}{failed}\n"
        )
    if not session.messages:
        print(f"Session {session.id} has no messages.")
    else:
        out.write(await compaction_cli.describe(assistant, session, ref))
    return 0


async def terminal_labels(assistant, args: argparse.Namespace) -> int:
    from .terminal import strip_controls

    if args.verb == "rename":
        info = await assistant.labels.rename(args.session, " ".join(args.title))
        print(f"Renamed {info.id} to {strip_controls(info.title)!r}.")
    elif args.verb == "tag":
        info = await assistant.labels.tag(args.session, args.tags, args.remove)
        print(f"{info.id} is tagged: {', '.join(strip_controls(t) for t in info.meta.tags) or '(no tags)'}.")
    else:
        info = await assistant.labels.pin(args.session, not args.off)
        print(f"{'Pinned' if info.meta.pinned else 'Unpinned'} {info.id}.")
    return 0


async def terminal_search(assistant, args: argparse.Namespace, folder: str) -> int:
    from .engine.search import SearchRequest
    from .terminal import SafeWriter

    found = await assistant.search.search(
        SearchRequest(
            query=" ".join(args.query),
            workspace_uri=None if args.all else folder,
            tag=args.tag,
            role=args.role,
            limit=args.limit,
        )
    )
    out = SafeWriter(sys.stdout)
    for hit in found.results:
        where = f"{hit.session_id} {hit.message_id or '(title)'}"
        out.write(f"{hit.timestamp or '':24} {where}  {hit.title}\n    {hit.snippet}\n")
    print(f"{found.total} match{'es' if found.total != 1 else ''}.")
    return 0 if found.results else 1


async def warn_of_expiry(assistant) -> None:
    """Under a listing: the sessions retention moves to the trash within 7 days, if any."""
    from .engine.trash import describe_expiring
    from .terminal import strip_controls

    settings = assistant.settings
    expiring = await assistant.expiring_soon()
    if expiring and settings.retention_days is not None:
        text = describe_expiring(
            expiring, settings.retention_days, settings.trash_days, assistant.trash.clock()
        )
        print(strip_controls(text), file=sys.stderr)


async def prune(assistant, *, dry_run: bool) -> int:
    """Retention and purging once, as the daemon does every hour; says what it did."""
    from .terminal import strip_controls

    report = await assistant.sweep(dry_run=dry_run)
    would = "would be " if dry_run else ""
    for info in report.trashed:
        print(f"{would}moved to the trash: {info.id}  {strip_controls(info.title)}")
    for info in report.purged:
        print(f"{would}purged: {info.id}  {strip_controls(info.title)}")
    for info, why in report.skipped:
        print(f"left for now: {info.id} ({why})")
    settings = assistant.settings
    retention = f"{settings.retention_days} days" if settings.retention_days else "none (nothing expires)"
    print(
        f"{len(report.trashed)} {would}moved to the trash, {len(report.purged)} {would}purged "
        f"(retention: {retention}; trash kept {settings.trash_days} days)."
    )
    return 0


async def terminal_fork(assistant, ref, args: argparse.Namespace) -> int:
    from .memory.limits import MAX_TITLE_LENGTH
    from .terminal import strip_controls

    if args.title is not None and not (0 < len(args.title.strip()) and len(args.title) <= MAX_TITLE_LENGTH):
        print(f"deskmate: --title must be 1 to {MAX_TITLE_LENGTH} characters", file=sys.stderr)
        return 2
    fork, lineage = await assistant.forks.fork(ref, args.at, args.title)
    print(
        f"Forked {lineage.session_id} at message {lineage.message_id} into {fork.id} "
        f"({len(fork.messages)} messages, {strip_controls(fork.title)!r}); it is now this project's active session."
    )
    return 0


async def run_migrate(source_url: str | None, target_url: str) -> int:
    from .engine import settings_from_environment
    from .engine.store import apply_record_encoding
    from .memory import default_data_dir
    from .memory.migrate import migrate
    from .memory.sealed import SealedLabels
    from .memory.urls import backend_for_url, redact

    settings = settings_from_environment()
    source_url = source_url or settings.storage_url or str(default_data_dir())
    # Sessions are read opened and written as the encryption and compression settings say
    # (DESKMATE_ENCRYPTION, DESKMATE_COMPRESSION), never left half encrypted by a copy.
    problem = apply_record_encoding(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    seal = settings.encryption == "on"
    source = SealedLabels(backend_for_url(source_url), seal=seal)
    target = SealedLabels(backend_for_url(target_url), seal=seal)

    def progress(outcome: str, session_id: str, session) -> None:
        print(f"{outcome:14} {session_id}  ({len(session.messages)} messages)", file=sys.stderr)

    try:
        report = await migrate(source, target, progress=progress)
    finally:
        await source.close()
        await target.close()
    print(
        f"{len(report.copied)} copied, {len(report.already_there)} already there, "
        f"{len(report.conflicts)} conflicts; {report.messages} messages verified "
        f"from {redact(source_url)} in {redact(target_url)}"
        + (f", and {report.memories} project memories." if report.memories else ".")
    )
    for session_id, why in report.conflicts:
        print(f"conflict: {session_id}: {why}", file=sys.stderr)
    return 0 if report.ok else 1


async def run_reseal(verb: str) -> int:
    """``sessions migrate --encrypt`` / ``--rekey``: every session of the configured store sealed
    with the current key, in place, one atomic save per session."""
    from .engine import settings_from_environment
    from .engine.store import apply_record_encoding, data_dir_of
    from .memory import keys
    from .memory.reseal import reseal
    from .memory.sealed import SealedLabels
    from .memory.urls import daemon_store, redact

    settings = settings_from_environment()
    ring = keys.keys()
    if ring.current is None:
        print("deskmate: there is no encryption key: run `deskmate keys init` first.", file=sys.stderr)
        return 1
    apply_record_encoding(replace_setting(settings, encryption="on"))
    url = settings.storage_url or str(data_dir_of(settings))
    store = SealedLabels(daemon_store(settings.storage_url, data_dir_of(settings)), seal=True)

    def progress(outcome: str, session_id: str, messages: int) -> None:
        print(f"{outcome:15} {session_id}  ({messages} messages)", file=sys.stderr, flush=True)

    try:
        report = await reseal(store, progress=progress)
    finally:
        await store.close()
    done = "encrypted" if verb == "encrypt" else "re-encrypted"
    print(
        f"{len(report.resealed)} {done}, {len(report.already_sealed)} already sealed with key "
        f"{ring.current_id}, {len(report.refused)} refused; {report.messages} messages verified in {redact(url)}"
        + (f", and {report.memories} project memories." if report.memories else ".")
    )
    for session_id, why in report.refused:
        print(f"refused: {session_id}: {why}", file=sys.stderr)
    if report.ok and len(ring.keys) > 1:
        old = ", ".join(ring.ids()[1:])
        print(f"Nothing in this store needs the older key(s) {old} any more.")
    return 0 if report.ok else 1


def replace_setting(settings, **changes):
    import dataclasses

    return dataclasses.replace(settings, **changes)


if __name__ == "__main__":
    sys.exit(main())
