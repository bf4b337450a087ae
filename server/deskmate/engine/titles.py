"""Automatic titles: after a session's first answer, the model names the session.

The session already carries its first question's first line as title (``first_title``);
the model's title replaces it only if that is still the title and the user has not named
the session (``SessionMeta.user_title``), checked inside the store's compare-and-set
``update``, so a rename made while the model thinks always wins. A model that fails or
takes longer than TITLE_TIMEOUT leaves the first line in place.
"""

from __future__ import annotations

import asyncio
import logging
import re

from ..memory import SessionInfo, SessionStoreError
from ..memory.backend import MemoryBackend
from ..memory.models import SessionMeta
from .model_client import ModelClient, ModelError

log = logging.getLogger(__name__)

TITLE_TIMEOUT = 15.0  # seconds
TITLE_LENGTH = 60  # characters
QUESTION_CHARS = 2000  # of the question, sent to name it
INSTRUCTION = (
    "Name the conversation that starts with the user's next message: at most six words, "
    "no quotes, no final full stop. Answer with the title alone."
)
_QUOTES = "\"'`“”‘’«»*#"


def clean_title(text: str) -> str:
    """The model's answer as a title: its first non-empty line, unquoted, cut to TITLE_LENGTH."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = re.sub(r"^(title\s*:\s*)", "", line, flags=re.IGNORECASE).strip(_QUOTES + " ").rstrip(".")
    line = " ".join(line.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


async def model_title(model: ModelClient, question: str) -> str:
    """Ask the model for a title; stops reading once it has more than a title's worth."""
    prompt = [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": question[:QUESTION_CHARS]},
    ]
    pieces: list[str] = []
    stream = model.stream(prompt)
    try:
        async for item in stream:
            if isinstance(item, str):
                pieces.append(item)
                if sum(map(len, pieces)) > 4 * TITLE_LENGTH:
                    break
    finally:
        await stream.aclose()
    return clean_title("".join(pieces))


async def give_title(
    store: MemoryBackend, session_id: str, model: ModelClient, question: str, first_line: str
) -> str | None:
    """Title the session with the model's title unless it was named meanwhile; the title
    stored, or None when it was left as it was."""
    try:
        title = await asyncio.wait_for(model_title(model, question), TITLE_TIMEOUT)
    except (ModelError, asyncio.TimeoutError) as exc:
        log.info("No automatic title for session %r (%s); it keeps its first line.", session_id, exc)
        return None
    if not title:
        return None

    def change(info: SessionInfo) -> tuple[str, SessionMeta]:
        if info.meta.user_title or info.title != first_line:
            return info.title, info.meta
        return title, info.meta

    try:
        info = await store.update(session_id, change)
    except SessionStoreError as exc:
        log.warning("Could not store the automatic title of session %r: %s", session_id, exc)
        return None
    return info.title if info is not None and info.title == title else None
