"""Files the user adds to a question (``@file``, ``#buffer``, "+ add context"): ``deskmate.ask``'s
``attachments``, checked and read like its ``context``, and put together with it.

Each attachment is a context ``{uri, range?, text?, languageId?}``; one with neither ``range``
nor ``text`` is the whole file, read only when it is a synced document or a regular file inside
a workspace folder (``lsp.context``). What all pieces carry together is capped at
MAX_CONTEXT_LENGTH characters: the pieces past it are cut, and say so in their ``note``.
"""

from __future__ import annotations

from typing import Any

from pygls.workspace import Workspace

from ..memory.limits import MAX_CONTEXT_LENGTH
from .arguments import Arguments, check_context, invalid
from .context import fill_context

MAX_ATTACHMENTS = 20


def check_attachments(arguments: Arguments) -> list[dict[str, Any]]:
    """``attachments``: a list of at most MAX_ATTACHMENTS contexts (empty when absent)."""
    value = arguments.values.get("attachments")
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(arguments.command, '"attachments" must be a list of contexts {"uri": ...}')
    if len(value) > MAX_ATTACHMENTS:
        raise invalid(
            arguments.command, f'"attachments" holds {len(value)} files; the limit is {MAX_ATTACHMENTS}'
        )
    checked = []
    for index, item in enumerate(value):
        field = f"attachments[{index}]"
        if not isinstance(item, dict):
            raise invalid(arguments.command, f'"{field}" must be an object {{"uri": ...}}')
        clean = check_context(arguments.command, item, field)
        assert clean is not None
        checked.append(clean)
    return checked


async def attach(
    command: str,
    context: dict[str, Any] | None,
    attachments: list[dict[str, Any]],
    workspace: Workspace,
    folders: list[str],
) -> dict[str, Any] | None:
    """The question's context with the attachments read and inside it (``context.attachments``).

    Without an editor context, the first attachment is the context. A file named twice (the
    editor's file also added with ``@file``) goes along once.
    """
    filled = []
    # An editor context that only says where the user is gives way to the same file added whole.
    seen = (
        {(context["uri"], repr(context.get("range")))}
        if context and context.get("text") is not None
        else set()
    )
    for index, item in enumerate(attachments):
        key = (item["uri"], repr(item.get("range")))
        if key in seen:
            continue
        seen.add(key)
        field = f"attachments[{index}]"
        filled.append(await fill_context(command, item, workspace, folders, field=field, whole=True))
    if not filled:
        return context
    budget = MAX_CONTEXT_LENGTH - len((context or {}).get("text") or "")
    for item in filled:
        text = item.get("text") or ""
        if len(text) > budget:
            cut = (
                f"only the first {max(budget, 0):,} of {len(text):,} characters were sent "
                "(the limit for all context together)"
            )
            item["text"] = text[: max(budget, 0)]
            item["note"] = f"{item['note']}; {cut}" if item.get("note") else cut
        budget -= len(item.get("text") or "")
    if context is None or (
        context.get("text") is None
        and context.get("range") is None
        and any(item["uri"] == context["uri"] for item in filled)
    ):
        first, *rest = filled
        return {**first, "attachments": rest} if rest else first
    return {**context, "attachments": filled}
