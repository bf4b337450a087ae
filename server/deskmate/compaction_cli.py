"""``deskmate sessions compact``, ``uncompact`` and ``pin --message``: compaction and pinned
messages from the terminal (the engine's compaction.py, as the editors reach it)."""

from __future__ import annotations

import argparse


def add_arguments(verbs, pin: argparse.ArgumentParser) -> None:
    """The verbs' parsers; ``pin`` (the session pin) learns ``--message``."""
    compact = verbs.add_parser(
        "compact",
        help="summarize a session's turns before its latest one; the messages stay (uncompact undoes it)",
    )
    compact.add_argument("session", nargs="?", help="session id (default: active)")
    compact.add_argument(
        "--instructions", "-i", metavar="TEXT", help='what the summary should keep, e.g. "the API decisions"'
    )
    uncompact = verbs.add_parser(
        "uncompact", help="drop a summary: its messages are sent again as far as they fit"
    )
    uncompact.add_argument("session", help="session id")
    uncompact.add_argument("summary", help="summary id ('show' prints them)")
    pin.add_argument(
        "--message",
        metavar="MESSAGE_ID",
        help="pin one message of the session instead: always sent to the model, never summarized",
    )


async def run(assistant, args: argparse.Namespace, folder: str) -> int | None:
    """Run a compaction verb; None when ``args`` names none of them."""
    from .terminal import strip_controls

    if args.verb == "compact":
        ref = assistant.sessions.resolve(
            session_id=args.session, workspace_uri=None if args.session else folder
        )
        done = await assistant.compaction.compact(ref, args.instructions)
        summary = done.summary
        print(
            f"Summarized {summary.covered} messages of {done.session_id} "
            f"({summary.from_id} .. {summary.to_id}) as summary {summary.id}; "
            f"`deskmate sessions uncompact {done.session_id} {summary.id}` undoes it.\n"
        )
        print(strip_controls(summary.text))
        return 0
    if args.verb == "uncompact":
        await assistant.compaction.uncompact(args.session, args.summary)
        print(f"Dropped summary {args.summary}: the next ask sends the messages it stood for again.")
        return 0
    if args.verb == "pin" and args.message:
        ref = assistant.sessions.resolve(session_id=args.session)
        info = await assistant.compaction.pin(ref, args.message, not args.off)
        done = "Pinned" if args.message in info.meta.pinned_messages else "Unpinned"
        print(f"{done} message {args.message} of {info.id}.")
        return 0
    return None


async def describe(assistant, session, ref) -> str:
    """What ``sessions show`` prints after the messages: summaries, pins, the tokens the next ask
    from ``ref``'s folder sends."""
    from .engine.history import active_summary, summaries_of
    from .terminal import strip_controls

    lines = []
    found = active_summary(session.meta, session.messages)
    for summary in summaries_of(session.meta):
        used = " (in use)" if found and found[0].id == summary.id else ""
        lines.append(
            f"Summary {summary.id}{used} of {summary.covered} messages ({summary.from_id} .. {summary.to_id}):\n"
            f"{strip_controls(summary.text)}\n"
        )
    if session.meta.pinned_messages:
        lines.append(f"Pinned messages: {', '.join(session.meta.pinned_messages)}\n")
    prompt = await assistant.asks.next_prompt(session, ref)
    window = f" of a {prompt.context_window}-token window" if prompt.context_window else ""
    lines.append(
        f"The next ask sends {prompt.tokens} tokens ({prompt.counted_by}){window} before its question; "
        f"{prompt.summarized} messages summarized, {prompt.left_out} left out.\n"
    )
    return "\n".join(lines)
