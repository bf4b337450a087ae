"""Filling in an ask's context: from a document the editor synced, or a workspace file on disk, nothing else.

A context that carries its ``text`` is taken as it is, and no file is opened for
it. Only a ``range`` without ``text`` needs the document: the synced copy if the
editor opened it, else the file, if it is a regular file inside a workspace folder
(``engine.context_files``). Whatever deskmate reads itself is capped and, when
cut, says so in ``note``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument, Workspace

from ..engine.context_files import ContextRefused, read_context_file
from ..engine.workspaces import uri_to_path
from ..memory.limits import MAX_CONTEXT_LENGTH


def _refused(command: str, why: str, field: str = "context") -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(f'{command}: "{field}.uri": {why}.')


async def fill_context(
    command: str,
    context: dict[str, Any],
    workspace: Workspace,
    folders: list[str],
    *,
    field: str = "context",
    whole: bool = False,
) -> dict[str, Any]:
    """``context`` with ``text`` and ``languageId`` filled in where deskmate may; raises InvalidParams
    (naming ``{field}.uri`` and why) for a file it will not read. ``whole``: a context with neither
    ``range`` nor ``text`` stands for the whole file (an attachment), not just where the user is."""
    filled = dict(context)
    document = workspace.text_documents.get(unquote(context["uri"]))
    if document is not None and document.language_id and not filled.get("languageId"):
        filled["languageId"] = document.language_id
    selection = context.get("range")
    if context.get("text") is not None or (selection is None and not whole):
        return filled
    notes = []
    if document is None:
        path = uri_to_path(context["uri"])
        if path is None:
            raise _refused(
                command, "only file:// documents can be read from disk; send the text instead", field
            )
        roots = [root for root in map(uri_to_path, folders) if root is not None]
        try:
            source, note = await asyncio.to_thread(read_context_file, Path(path), roots)
        except ContextRefused as exc:
            raise _refused(command, str(exc), field) from None
        if note:
            notes.append(note)
        document = TextDocument(context["uri"], source)
    if selection is None:
        text = document.source
    else:
        start = document.offset_at_position(types.Position(**selection["start"]))
        end = document.offset_at_position(types.Position(**selection["end"]))
        text = document.source[start:end]
    if len(text) > MAX_CONTEXT_LENGTH:
        notes.append(f"only the first {MAX_CONTEXT_LENGTH:,} of {len(text):,} characters were sent")
        text = text[:MAX_CONTEXT_LENGTH]
    filled["text"] = text
    if notes:
        filled["note"] = "; ".join(notes)
    return filled
