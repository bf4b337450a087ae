"""A session as a Markdown document a person can read, share or archive."""

from __future__ import annotations

from ..memory import Session, context_items
from .prompt import display_path


def session_to_markdown(session: Session) -> str:
    title = session.title or session.id or "deskmate conversation"
    lines = [f"# {title}", ""]
    facts = [f"Session `{session.id}`"] if session.id else ["Unsaved session"]
    if session.workspace_uri:
        facts.append(f"workspace `{display_path(session.workspace_uri)}`")
    facts.append(f"created {session.created_at}")
    facts.append(f"{len(session.messages)} messages")
    lines += ["_" + " · ".join(facts) + "_", ""]
    for message in session.messages:
        if message.role == "user":
            lines += [f"## You — {message.timestamp}", "", message.content, ""]
            for context in context_items(message.context):
                if not context.get("text"):
                    continue
                where = display_path(context.get("uri", "")) or "selection"
                fence = "````" if "```" in context["text"] else "```"
                lines += [
                    f"Context from `{where}`:",
                    "",
                    f"{fence}{context.get('languageId') or ''}",
                    context["text"],
                    fence,
                    "",
                ]
        elif message.role == "assistant":
            by = f"deskmate ({message.model})" if message.model else "deskmate"
            lines += [f"## {by} — {message.timestamp}", "", message.content or "_(no answer)_", ""]
            if message.error is not None:
                lines += [f"_(answer failed: {message.error})_", ""]
            elif message.status == "interrupted":
                lines += ["_(answer interrupted)_", ""]
    return "\n".join(lines).rstrip() + "\n"
