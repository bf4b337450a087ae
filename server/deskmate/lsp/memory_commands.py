"""The project memory commands: ``deskmate.remember``, ``deskmate.listMemories``, ``deskmate.forget``."""

from __future__ import annotations

from typing import Any

from ..engine.project_memory import MAX_MEMORY_LENGTH, InstructionFile, ProjectMemory
from ..memory import Message
from ..memory.project_memories import InvalidMemoryKey
from .arguments import Arguments, invalid
from .commands import command
from .server import DeskmateServer


def memory_entry(memory: Message) -> dict[str, Any]:
    return {"memoryId": memory.id, "text": memory.content, "createdAt": memory.timestamp}


def instruction_entry(file: InstructionFile) -> dict[str, Any]:
    return {
        "uri": file.path.absolute().as_uri(),
        "path": str(file.path),
        "characters": file.characters,
        "truncated": file.truncated,
    }


def memories_result(memory: ProjectMemory) -> dict[str, Any]:
    """``deskmate.listMemories``'s result: what every ask of the project is sent besides the
    conversation."""
    return {
        "workspaceUri": memory.folder_uri,
        "project": memory.project,
        "memories": [memory_entry(m) for m in memory.memories],
        "instructionFiles": [instruction_entry(f) for f in memory.instructions],
        "refusedFiles": [{"path": str(path), "reason": reason} for path, reason in memory.refused],
    }


@command("deskmate.remember")
async def remember(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Keep a fact in the project's memory: it is sent with every ask of the project."""
    text = arguments.text("text", required=True, max_length=MAX_MEMORY_LENGTH)
    memory, after = await ls.assistant.project_memory.remember(text or "", arguments.text("workspaceUri"))
    return {**memory_entry(memory), "workspaceUri": after.folder_uri, "count": len(after.memories)}


@command("deskmate.listMemories")
async def list_memories(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """The project's memories and the instruction files read (AGENTS.md, .deskmate/memory.md)."""
    engine = ls.assistant.project_memory
    return memories_result(await engine.load(engine.folder(arguments.text("workspaceUri"))))


@command("deskmate.forget")
async def forget(ls: DeskmateServer, arguments: Arguments) -> dict[str, Any]:
    """Remove a memory from its project (no ask is sent it from now on)."""
    memory_id = arguments.text("memoryId", required=True) or ""
    try:
        folder = await ls.assistant.project_memory.forget(memory_id, arguments.text("workspaceUri"))
    except InvalidMemoryKey as exc:
        raise invalid(arguments.command, f'"memoryId": {exc}') from None
    return {"memoryId": memory_id, "forgotten": True, "workspaceUri": folder}
