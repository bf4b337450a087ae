"""The operations a wrapper store hands to the store it wraps unchanged: project memories
(records the codec seals like any turn, never indexed, never held for disk space) and live
sessions (watches and answering leases). One copy here instead of one in each wrapper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import Message
from .watching import SessionWatch

if TYPE_CHECKING:
    from .backend import MemoryBackend


class PassesThrough:
    """Mixed into a wrapper whose ``inner`` is the store it wraps."""

    inner: MemoryBackend

    async def load_memories(self, project: str) -> list[Message]:
        return await self.inner.load_memories(project)

    async def memory_projects(self) -> list[str]:
        return await self.inner.memory_projects()

    async def add_memory(self, project: str, memory: Message) -> None:
        await self.inner.add_memory(project, memory)

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        return await self.inner.delete_memory(project, memory_id)

    def watch(self) -> SessionWatch:
        return self.inner.watch()

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        return await self.inner.claim_answer(session_id, holder, seconds)

    async def release_answer(self, session_id: str, holder: str) -> None:
        await self.inner.release_answer(session_id, holder)
