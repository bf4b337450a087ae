"""Project memory: facts and instructions sent with every ask of a project, in every session.

Two sources, both put in the system message of every prompt of the project (after the
``systemPrompt`` setting), never in another project's:

- **memories** the user adds (``remember``) and removes (``forget``), kept per project in
  the session store (``MemoryBackend.load_memories``), so a shared store shares them with
  the team;
- **instruction files** the project holds, ``AGENTS.md`` and ``.deskmate/memory.md`` at the
  workspace folder's root, read at every ask (edits count at once), each cut at
  MAX_INSTRUCTIONS_CHARS, only regular files inside the folder (``context_files.py``).

A project is the workspace folder's project identity (engine/projects.py: a
``.deskmate/project`` pin, the git root commit, the ``origin`` remote, else the path), so
every clone of a repository, on any machine, and the folder moved, has the same memories.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..memory import BackendUnavailable, Message, SessionStoreError
from ..memory.project_memories import validate_memory_id
from .context_files import ContextRefused, read_context_file
from .errors import EngineError, InvalidArgument
from .projects import ProjectIdentity
from .redaction import Redaction, redact
from .sessions import SessionRef, Sessions
from .settings import Settings
from .workspaces import folder_key, uri_to_path

log = logging.getLogger(__name__)

INSTRUCTION_FILES = ("AGENTS.md", ".deskmate/memory.md")
MAX_INSTRUCTIONS_CHARS = 32_000  # of each file, about 8,000 tokens
MAX_MEMORY_LENGTH = 2_000  # characters of one memory
MAX_MEMORIES = 200  # per project


class MemoryNotFound(EngineError):
    """No memory with that id in the projects asked about."""


@dataclass(frozen=True)
class InstructionFile:
    """An instruction file found in a project: its text as sent, and whether it was cut."""

    path: Path
    text: str
    characters: int  # of the whole file, before any cut
    truncated: bool


@dataclass(frozen=True)
class ProjectMemory:
    """What a project's asks are sent besides the conversation."""

    project: str  # the key its memories are stored under
    folder_uri: str
    memories: list[Message]
    instructions: list[InstructionFile]
    refused: list[tuple[Path, str]]  # instruction files found but not read, and why


# -- which project ---------------------------------------------------------------------------


def memory_key(identity: ProjectIdentity) -> str:
    """The key a project's memories are stored under: a hash of its identity (engine/projects.py),
    so they follow the project wherever it is cloned or moved, as its sessions do."""
    return "project-" + hashlib.sha256(identity.id.encode()).hexdigest()[:16]


# -- reading -----------------------------------------------------------------------------------


def read_instructions(folder_uri: str) -> tuple[list[InstructionFile], list[tuple[Path, str]]]:
    """The project's instruction files that exist, and those found but refused (with why).
    Blocking: run it in a thread."""
    folder = uri_to_path(folder_uri)
    if folder is None:
        return [], []
    found: list[InstructionFile] = []
    refused: list[tuple[Path, str]] = []
    for name in INSTRUCTION_FILES:
        path = folder / name
        if not path.exists() and not path.is_symlink():
            continue
        try:
            text, _ = read_context_file(path, [folder])
        except ContextRefused as exc:
            refused.append((path, str(exc)))
            continue
        characters = len(text)
        if characters > MAX_INSTRUCTIONS_CHARS:
            text = text[:MAX_INSTRUCTIONS_CHARS]
        if text.strip():
            found.append(InstructionFile(path, text, characters, characters > MAX_INSTRUCTIONS_CHARS))
    return found, refused


def system_prompt(base: str, memory: ProjectMemory, *, redact_secrets: bool) -> str:
    """The system message of a prompt in this project: ``base`` (the systemPrompt setting),
    then each instruction file, then the memories, each part under a heading that says what
    it is. With ``redact_secrets``, secrets in the files are replaced as in a question."""
    parts = [base] if base else []
    for file in memory.instructions:
        text = redact(file.text, Redaction()) if redact_secrets else file.text
        cut = f"\n\n(Only the first {MAX_INSTRUCTIONS_CHARS:,} characters of this file were read.)"
        name = file.path.name if file.path.parent.name != ".deskmate" else ".deskmate/memory.md"
        parts.append(f"# Project instructions ({name})\n\n{text.rstrip()}{cut if file.truncated else ''}")
    if memory.memories:
        listed = "\n".join(f"- {m.content}" for m in memory.memories)
        parts.append(
            "# Project memory\n\nFacts the user asked you to remember in every conversation of "
            f"this project:\n{listed}"
        )
    return "\n\n".join(parts)


# -- the engine's part -------------------------------------------------------------------------


class ProjectMemories:
    """Remembering, listing and forgetting a project's memories, and what an ask is sent."""

    def __init__(self, sessions: Sessions, settings: Callable[[], Settings]) -> None:
        self.sessions = sessions
        self._settings = settings  # the settings in force

    def folder(self, workspace_uri: str | None) -> str:
        """The workspace folder a request means; EngineError when no folder is open or named."""
        workspaces = self.sessions.workspaces
        if workspace_uri:
            return workspaces.folder_of(workspace_uri) or folder_key(workspace_uri)
        if workspaces.folders:
            return workspaces.folders[0]
        raise EngineError(
            "Project memory belongs to a project: open a folder (or name one with workspaceUri)."
        )

    async def key_of(self, folder_uri: str) -> str:
        """The memory key of the project the folder belongs to."""
        identity = await self.sessions.project_of(folder_uri)
        assert identity is not None  # a folder always has a project
        return memory_key(identity)

    async def load(self, folder_uri: str) -> ProjectMemory:
        """The project's memories and instruction files, as the next ask would send them."""
        project = await self.key_of(folder_uri)
        memories = await self.sessions.store.backend.load_memories(project)
        instructions, refused = await self._instructions(folder_uri)
        return ProjectMemory(project, folder_uri, memories, instructions, refused)

    async def _instructions(self, folder_uri: str) -> tuple[list[InstructionFile], list[tuple[Path, str]]]:
        # Only an open workspace folder's files: a folder a request merely names is not read.
        if folder_uri not in self.sessions.workspaces.folders:
            return [], []
        return await asyncio.to_thread(read_instructions, folder_uri)

    async def remember(self, text: str, workspace_uri: str | None = None) -> tuple[Message, ProjectMemory]:
        """Store ``text`` as a memory of the project; returns it (secrets redacted when
        redactSecrets is on) and the project's memory after it."""
        text = text.strip()
        if not text:
            raise InvalidArgument("text", "is empty: say what deskmate should remember")
        if len(text) > MAX_MEMORY_LENGTH:
            raise InvalidArgument(
                "text", f"is {len(text):,} characters long; a memory holds at most {MAX_MEMORY_LENGTH:,}"
            )
        if self._settings().redact_secrets:
            text = redact(text, Redaction())
        folder = self.folder(workspace_uri)
        project = await self.key_of(folder)
        store = self.sessions.store.backend
        held = await store.load_memories(project)
        if len(held) >= MAX_MEMORIES:
            raise EngineError(
                f"This project has {len(held)} memories, the most deskmate keeps: forget some first."
            )
        memory = Message(role="system", content=text)
        await store.add_memory(project, memory)
        return memory, await self.load(folder)

    async def forget(self, memory_id: str, workspace_uri: str | None = None) -> str:
        """Remove a memory; returns the folder whose project held it. Without
        ``workspace_uri``, every open folder's project is looked in."""
        validate_memory_id(memory_id)
        if workspace_uri:
            folders = [self.folder(workspace_uri)]
        else:
            folders = self.sessions.workspaces.folders or [self.folder(None)]
        store = self.sessions.store.backend
        for folder in folders:
            if await store.delete_memory(await self.key_of(folder), memory_id):
                return folder
        where = "this project" if len(folders) == 1 else "the open projects"
        raise MemoryNotFound(f"There is no memory with id {memory_id!r} in {where}.")

    async def settings_for(self, settings: Settings, ref: SessionRef) -> Settings:
        """``settings`` with the project's instructions and memories in the system prompt: what
        an ask in ``ref`` sends. A session outside any folder gets none."""
        if ref.workspace_uri is None or ref.id is None:
            return settings
        try:
            memory = await self.load(ref.workspace_uri)
        except BackendUnavailable as exc:  # the ask goes on, as its turns do (the outbox)
            log.warning("This ask goes without the project's memories: %s", exc)
            memory = ProjectMemory("", ref.workspace_uri, [], *await self._instructions(ref.workspace_uri))
        except SessionStoreError as exc:
            self.sessions.warn(f"deskmate: this answer goes without the project's memories: {exc}")
            memory = ProjectMemory("", ref.workspace_uri, [], *await self._instructions(ref.workspace_uri))
        prompt = system_prompt(settings.system_prompt, memory, redact_secrets=settings.redact_secrets)
        return replace(settings, system_prompt=prompt)
